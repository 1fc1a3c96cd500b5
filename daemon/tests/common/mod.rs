//! Shared fixtures for the binary's tests: a journal filled through the store API with every
//! kind of row (records in each sync state, bindings, versions, work items in all four states,
//! events at known ages, a zone report), a way to run the real binary with a time limit, and an
//! in-process admin endpoint.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use routewarden_store::*;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const ZONE: &str = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/dnszones/example.com";
pub const PRIVATE_ZONE: &str =
    "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/privateDnsZones/internal.example";
pub const CLUSTER_ID: &str = "test-cluster";
pub const OWNER: &str = "test-cluster/default/edns";
pub const VAULT: &str = "https://kv1.vault.azure.net";
pub const LEASE: Duration = Duration::from_secs(3600);
const MINUTE: i64 = 60_000;

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_routewarden"));
    // Keep the caller's environment from choosing a source or colours for us.
    c.env_remove("ROUTEWARDEN_JOURNAL_DIR").env_remove("ROUTEWARDEN_ADMIN_URL").env_remove("ROUTEWARDEN_ADMIN_ADDR");
    c.env_remove("NO_COLOR");
    c
}

/// Runs the binary with `args`, killing it (and failing the test) after `limit`.
pub fn run_for(args: &[&str], limit: Duration) -> Output {
    let mut child =
        bin().args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let status =
        wait_for(&mut child, limit).unwrap_or_else(|| panic!("routewarden {args:?} did not finish within {limit:?}"));
    Output { status, stdout: out.join().unwrap(), stderr: err.join().unwrap() }
}

/// Runs the binary with a 60 s limit.
pub fn run(args: &[&str]) -> Output {
    run_for(args, Duration::from_secs(60))
}

fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Waits for `child` up to `limit`; kills it and returns `None` on timeout.
pub fn wait_for(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed when the test ends, also when it ends by panicking, so a failed
/// assertion never leaves a daemon behind.
pub struct Reaped(pub Child);

impl Reaped {
    pub fn spawn(cmd: &mut Command) -> Self {
        Reaped(cmd.spawn().unwrap())
    }
}

impl std::ops::Deref for Reaped {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Reaped {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Lines of a child's pipe, readable with a timeout.
pub struct Lines(mpsc::Receiver<String>);

impl Lines {
    pub fn new(r: impl Read + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(r).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines(rx)
    }

    /// The first line (from now on) that satisfies `pred`, or panics after `limit`; lines read
    /// on the way are returned too.
    pub fn until(&self, limit: Duration, mut pred: impl FnMut(&str) -> bool) -> (String, Vec<String>) {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.0.recv_timeout(left) {
                Ok(line) if pred(&line) => return (line, seen),
                Ok(line) => seen.push(line),
                Err(_) => panic!("no matching line within {limit:?}; saw {seen:#?}"),
            }
        }
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Runs and expects exit 0 and JSON on stdout.
pub fn json(args: &[&str]) -> serde_json::Value {
    let o = run(args);
    assert!(o.status.success(), "routewarden {args:?} failed: {}", stderr(&o));
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("routewarden {args:?} printed no JSON ({e}): {}", stdout(&o)))
}

pub fn at(now: Time, minutes_ago: i64) -> Time {
    Time::from_millis(now.as_millis() - minutes_ago * MINUTE)
}

pub fn open(dir: &Path, now: Time) -> Journal {
    let options = routewarden_migrations::OpenOptions { cluster_id: Some(CLUSTER_ID.into()), ..Default::default() };
    routewarden_migrations::open(dir, options, now).unwrap()
}

pub fn rs(zone: &str, name: &str, t: RecordType) -> RecordSetKey {
    RecordSetKey { zone: zone.into(), name: name.into(), record_type: t }
}

pub fn desired(targets: &[&str], at: Time) -> DesiredRecordSet {
    DesiredRecordSet {
        ttl: 300,
        targets: targets.iter().map(|s| s.to_string()).collect(),
        owner: OWNER.into(),
        sources: vec!["Gateway/default/gw".into()],
        updated_at: at,
    }
}

pub fn applied(targets: &[&str], etag: &str, at: Time) -> AppliedRecordSet {
    AppliedRecordSet {
        etag: etag.into(),
        owner: OWNER.into(),
        ttl: 300,
        targets: targets.iter().map(|s| s.to_string()).collect(),
        applied_at: at,
    }
}

/// A journal in a temporary directory, filled with one of everything.
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub now: Time,
}

impl Fixture {
    /// A filled journal, closed again so the binary can open it.
    pub fn filled() -> Self {
        let f = Self::empty();
        let j = open(&f.dir, f.now);
        fill(&j, f.now);
        j.close().unwrap();
        f
    }

    /// A journal with nothing but its meta.
    pub fn empty() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("journal");
        let now = Time::now();
        open(&dir, now).close().unwrap();
        Fixture { tmp, dir, now }
    }

    pub fn dir(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    pub fn open(&self) -> Journal {
        open(&self.dir, self.now)
    }
}

/// What `fill` writes, for assertions:
/// - example.com: www A in-sync, api A pending (targets differ), new AAAA not-applied,
///   old CNAME orphaned; internal.example: db A in-sync.
/// - bindings default/gw/https (follows rotation) and team/gw2/tls (pinned to v1);
///   versions of web-cert: v1 applied, v2 rejected, v3 seen.
/// - work items: dns.record example.com/A/api done, tls.listener team/gw2/tls parked (binary
///   payload), dns.record example.com/AAAA/new in flight, dns.record example.com/CNAME/old pending
///   after one failed attempt, due in 10 minutes.
/// - events: 1 at -120m, 2 at -30m, 3 item.parked at -4m, 4 at -1m.
/// - a zone report for example.com: 9000 of 10000 record sets, one stale, one foreign-blocking.
pub fn fill(j: &Journal, now: Time) {
    j.commit(|tx| {
        tx.put_desired_record(&rs(ZONE, "www", RecordType::A), &desired(&["1.2.3.4"], at(now, 60)))?;
        tx.put_applied_record(&rs(ZONE, "www", RecordType::A), &applied(&["1.2.3.4"], "etag-www", at(now, 59)))?;
        tx.put_desired_record(&rs(ZONE, "api", RecordType::A), &desired(&["5.6.7.8"], at(now, 5)))?;
        tx.put_applied_record(&rs(ZONE, "api", RecordType::A), &applied(&["5.6.7.9"], "etag-api", at(now, 50)))?;
        tx.put_desired_record(&rs(ZONE, "new", RecordType::Aaaa), &desired(&["2001:db8::1"], at(now, 3)))?;
        tx.put_applied_record(
            &rs(ZONE, "old", RecordType::Cname),
            &applied(&["gone.example.net"], "etag-old", at(now, 90)),
        )?;
        tx.put_desired_record(&rs(PRIVATE_ZONE, "db", RecordType::A), &desired(&["10.0.0.5"], at(now, 40)))?;
        tx.put_applied_record(&rs(PRIVATE_ZONE, "db", RecordType::A), &applied(&["10.0.0.5"], "etag-db", at(now, 39)))?;

        let binding = |pinned: Option<&str>| CertBinding {
            vault: VAULT.into(),
            object: "web-cert".into(),
            pinned_version: pinned.map(Into::into),
            identity: "default/gateway-sa".into(),
            updated_at: at(now, 30),
        };
        let https = CertBindingKey { namespace: "default".into(), gateway: "gw".into(), listener: "https".into() };
        let tls = CertBindingKey { namespace: "team".into(), gateway: "gw2".into(), listener: "tls".into() };
        tx.put_cert_binding(&https, &binding(None))?;
        tx.put_cert_binding(&tls, &binding(Some("v1")))?;
        for (version, outcome, reason, applied_at) in [
            ("v1", CertOutcome::Applied, None, Some(at(now, 100))),
            ("v2", CertOutcome::Rejected, Some("private key does not match the certificate"), None),
            ("v3", CertOutcome::Seen, None, None),
        ] {
            let key = CertVersionKey { vault: VAULT.into(), object: "web-cert".into(), version: version.into() };
            tx.put_cert_version(
                &key,
                &CertVersion {
                    x5t: format!("x5t-{version}"),
                    not_before: at(now, 1000),
                    not_after: at(now, -100_000),
                    seen_at: at(now, 100),
                    applied_at,
                    outcome,
                    reason: reason.map(Into::into),
                },
            )?;
        }
        tx.append_event(NewEvent::new(at(now, 120), "record.applied", "example.com/A/www", "created with 1.2.3.4"))?;
        tx.append_event(NewEvent::new(
            at(now, 30),
            "cert.applied",
            "default/gw/https",
            "web-cert v1 written to the listener Secret",
        ))?;
        Ok(())
    })
    .unwrap();

    // Done.
    let t = at(now, 6);
    j.commit(|tx| tx.enqueue("dns.record", "example.com/A/api", b"{\"op\":\"put\",\"targets\":[\"5.6.7.8\"]}", t))
        .unwrap();
    let c = j.claim(t, 1, LEASE).unwrap().remove(0);
    j.commit(|tx| tx.complete(c.lease, t)).unwrap();
    // Parked (appends event 3).
    let t = at(now, 4);
    j.commit(|tx| tx.enqueue("tls.listener", "team/gw2/tls", &[0xff, 0xfe, 0x00], t)).unwrap();
    let c = j.claim(t, 1, LEASE).unwrap().remove(0);
    j.commit(|tx| tx.park(c.lease, "certificate web-cert not found in kv1", t)).unwrap();
    // In flight, leased for an hour.
    let t = at(now, 3);
    j.commit(|tx| tx.enqueue("dns.record", "example.com/AAAA/new", b"{\"op\":\"put\"}", t)).unwrap();
    let c = j.claim(t, 1, LEASE).unwrap().remove(0);
    assert_eq!(c.item.key, "example.com/AAAA/new");
    // Pending after a failed attempt, due in ten minutes.
    let t = at(now, 2);
    j.commit(|tx| tx.enqueue("dns.record", "example.com/CNAME/old", b"{\"op\":\"delete\"}", t)).unwrap();
    let c = j.claim(t, 1, LEASE).unwrap().remove(0);
    assert_eq!(c.item.key, "example.com/CNAME/old");
    j.commit(|tx| tx.retry(c.lease, at(now, -10), "429 Too Many Requests", t)).unwrap();

    j.commit(|tx| {
        tx.append_event(NewEvent::new(at(now, 1), "record.pending", "example.com/A/api", "targets changed"))?;
        tx.put_zone_report(
            ZONE,
            &ZoneReport {
                verified_at: at(now, 10),
                record_sets: 9000,
                limit: 10000,
                stale: vec![ReportedRecord {
                    name: "legacy".into(),
                    record_type: RecordType::A,
                    owner: Some(OWNER.into()),
                    detail: "no live source".into(),
                }],
                foreign_blocking: vec![ReportedRecord {
                    name: "blog".into(),
                    record_type: RecordType::Cname,
                    owner: None,
                    detail: "exists without owner metadata".into(),
                }],
                drift_repaired: 2,
            },
        )
    })
    .unwrap();
}

/// The admin endpoint on a thread of its own, on an ephemeral loopback port.
pub struct TestAdmin {
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestAdmin {
    pub fn start(journal: Journal) -> Self {
        let (url_tx, url_rx) = mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                url_tx.send(format!("http://{}", listener.local_addr().unwrap())).unwrap();
                routewarden::admin::serve(listener, journal, axum::Router::new(), async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            });
            rt.shutdown_timeout(Duration::from_secs(5));
        });
        let url = url_rx.recv_timeout(Duration::from_secs(10)).expect("admin endpoint did not start");
        TestAdmin { url, stop: Some(stop), thread: Some(thread) }
    }
}

impl Drop for TestAdmin {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A plain HTTP/1.1 GET over std, so a test can look at the endpoint without the CLI.
pub fn http_get(base: &str, path: &str) -> (u16, String) {
    use std::io::Write;
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}
