//! The admin endpoint and `routewarden journal --admin`: the same views as from the directory,
//! following events, remote compact and export, and `routewarden run` itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;
use common::*;
use routewarden::view;
use routewarden_store::{NewEvent, Time};
use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;

const VIEWS: [&str; 6] = ["summary", "records", "certs", "queue", "events", "stale"];

fn without_size(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("size_bytes");
    }
    v
}

#[test]
fn admin_output_is_identical_to_dir_output() {
    let f = Fixture::filled();
    let local: Vec<Value> = VIEWS.iter().map(|cmd| json(&["journal", "--dir", f.dir(), "-o", "json", cmd])).collect();
    let admin = TestAdmin::start(f.open());
    for (cmd, local) in VIEWS.iter().zip(local) {
        let remote = json(&["journal", "--admin", &admin.url, "-o", "json", cmd]);
        // The daemon's open engine takes more room on disk than the closed one; all else is equal.
        assert_eq!(without_size(remote), without_size(local), "{cmd}");
    }
    for cmd in ["summary", "records", "queue", "events"] {
        let local_table = stdout(&run(&["journal", "--admin", &admin.url, cmd]));
        assert!(!local_table.is_empty(), "{cmd}");
    }
}

#[test]
fn admin_serves_exactly_the_views_built_from_the_journal() {
    let f = Fixture::filled();
    let j = f.open();
    let expected: Vec<(&str, Value)> = vec![
        ("summary", serde_json::to_value(view::summary(&j).unwrap()).unwrap()),
        ("records", serde_json::to_value(view::records(&j, None).unwrap()).unwrap()),
        ("certs", serde_json::to_value(view::certs(&j).unwrap()).unwrap()),
        ("queue", serde_json::to_value(view::queue(&j, &Default::default()).unwrap()).unwrap()),
        ("events", serde_json::to_value(view::events(&j, &Default::default()).unwrap().0).unwrap()),
        ("stale", serde_json::to_value(view::stale(&j).unwrap()).unwrap()),
    ];
    let admin = TestAdmin::start(j);
    for (cmd, expected) in expected {
        let remote = json(&["journal", "--admin", &admin.url, "-o", "json", cmd]);
        assert_eq!(without_size(remote), without_size(expected), "{cmd}");
    }
    let filtered = json(&["journal", "--admin", &admin.url, "-o", "json", "events", "--since", "10m"]);
    let seqs: Vec<u64> = filtered.as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [3, 4], "filters reach the endpoint");
    let parked = json(&["journal", "--admin", &admin.url, "-o", "json", "queue", "--state", "parked"]);
    assert_eq!(parked.as_array().unwrap().len(), 1);
    let zone = json(&["journal", "--admin", &admin.url, "-o", "json", "records", "--zone", "internal.example"]);
    assert_eq!(zone.as_array().unwrap().len(), 1);
}

#[test]
fn export_and_compact_work_through_the_admin_endpoint() {
    let f = Fixture::filled();
    let local = stdout(&run(&["journal", "--dir", f.dir(), "export"]));
    let admin = TestAdmin::start(f.open());
    let o = run(&["journal", "--admin", &admin.url, "export"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["table"], "meta");
    assert_eq!(lines.len(), 1 + 5 + 2 + 3 + 4 + 1 + 4);
    let local: Vec<Value> = local.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[1..], local[1..], "every row but the meta line (export time, size) is the same as from --dir");
    let c = json(&["journal", "--admin", &admin.url, "-o", "json", "compact"]);
    assert!(c["size_after"].is_u64(), "{c}");
    let (status, _) = http_get(&admin.url, "/v1/journal/compact");
    assert_eq!(status, 405, "compact changes the journal: POST only");
}

#[test]
fn bad_query_parameters_are_refused_with_a_clear_answer() {
    let f = Fixture::filled();
    let admin = TestAdmin::start(f.open());
    let (status, body) = http_get(&admin.url, "/v1/journal/queue?state=sleeping");
    assert_eq!(status, 400);
    assert!(body.contains("unknown state"), "{body}");
    let (status, body) = http_get(&admin.url, "/v1/journal/events?since=whenever");
    assert_eq!(status, 400);
    assert!(body.contains("since"), "{body}");
}

#[test]
fn follow_prints_events_appended_after_it_started() {
    let f = Fixture::filled();
    let j = f.open();
    let admin = TestAdmin::start(j.clone());
    let mut child = Reaped::spawn(
        bin()
            .args(["journal", "--admin", &admin.url, "-o", "json", "events", "--follow", "--since", "10m"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let lines = Lines::new(child.stdout.take().unwrap());
    // The backlog first (events of the last ten minutes: 3 and 4) ...
    let (last, before) = lines.until(Duration::from_secs(30), |l| l.contains("\"seq\":4"));
    assert_eq!(before.len(), 1, "{before:?} then {last}");
    assert!(before[0].contains("\"seq\":3"), "{before:?}");
    // ... then what is appended while it runs.
    for i in 0..3 {
        j.commit(|tx| {
            tx.append_event(NewEvent::new(Time::now(), "test.appended", format!("subject-{i}"), "while following"))
        })
        .unwrap();
    }
    let mut got = Vec::new();
    for i in 0..3 {
        let (line, _) = lines.until(Duration::from_secs(30), |l| l.contains("test.appended"));
        let e: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(e["subject"], format!("subject-{i}"));
        got.push(e["seq"].as_u64().unwrap());
    }
    assert_eq!(got, [5, 6, 7]);
    assert!(child.try_wait().unwrap().is_none(), "follow keeps running");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn follow_in_table_mode_prints_one_aligned_line_per_event() {
    let f = Fixture::filled();
    let j = f.open();
    let admin = TestAdmin::start(j.clone());
    let mut child = Reaped::spawn(
        bin()
            .args(["journal", "--admin", &admin.url, "events", "--follow", "--after", "4"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let lines = Lines::new(child.stdout.take().unwrap());
    let (header, _) = lines.until(Duration::from_secs(30), |l| l.contains("SEQ"));
    j.commit(|tx| tx.append_event(NewEvent::new(Time::now(), "a.short", "s", "m1"))).unwrap();
    j.commit(|tx| tx.append_event(NewEvent::new(Time::now(), "a.much.longer.action", "a/longer/subject", "m2")))
        .unwrap();
    let (one, _) = lines.until(Duration::from_secs(30), |l| l.contains("a.short"));
    let (two, _) = lines.until(Duration::from_secs(30), |l| l.contains("a.much.longer.action"));
    for col in ["ACTION", "SUBJECT", "MESSAGE"] {
        let at = header.find(col).unwrap();
        assert!(one[at..].starts_with(|c: char| !c.is_whitespace()), "{col} misaligned:\n{header}\n{one}");
        assert!(two[at..].starts_with(|c: char| !c.is_whitespace()), "{col} misaligned:\n{header}\n{two}");
    }
    assert!(!one.contains('\x1b'));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn an_unreachable_admin_endpoint_exits_5_naming_the_url() {
    // A port that was just free: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let o = run(&["journal", "--admin", &url, "summary"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains(&url), "{}", stderr(&o));
    let o = run(&["journal", "--admin", &url, "events", "--follow"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
}

#[test]
fn the_admin_url_may_come_from_the_environment() {
    let f = Fixture::filled();
    let admin = TestAdmin::start(f.open());
    let o = bin()
        .args(["journal", "-o", "json", "summary"])
        .env("ROUTEWARDEN_ADMIN_URL", &admin.url)
        .env("ROUTEWARDEN_JOURNAL_DIR", "/nonexistent/journal")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

/// `routewarden run` without Kubernetes on the journal in `dir`, its endpoints on free ports.
fn run_on(dir: &str) -> std::process::Command {
    let mut command = bin();
    command.args(["run", "--no-kubernetes", "--journal-dir", dir]);
    command.args(["--admin-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"]);
    command
}

#[test]
fn run_serves_the_admin_endpoint_and_stops_cleanly_on_sigterm() {
    let f = Fixture::filled();
    let mut daemon = Reaped::spawn(
        run_on(f.dir()).env("RUST_LOG", "info").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()),
    );
    let log = Lines::new(daemon.stderr.take().unwrap());
    let (line, _) = log.until(Duration::from_secs(30), |l| l.contains("admin endpoint listening on http://"));
    let url = line.split("listening on ").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    let (status, body) = http_get(&url, "/v1/journal/summary");
    assert_eq!(status, 200, "{body}");
    let s: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(s["cluster_id"], CLUSTER_ID);
    assert_eq!(s["dir"], f.dir());

    // While it runs, --dir is refused and --admin works.
    assert_eq!(run(&["journal", "--dir", f.dir(), "summary"]).status.code(), Some(3));
    assert_eq!(json(&["journal", "--admin", &url, "-o", "json", "records"]).as_array().unwrap().len(), 5);

    let kill = std::process::Command::new("kill").args(["-TERM", &daemon.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let status =
        wait_for(&mut daemon, Duration::from_secs(30)).expect("the daemon did not stop within 30 s of SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    log.until(Duration::from_secs(5), |l| l.contains("journal closed"));

    let s = json(&["journal", "--dir", f.dir(), "-o", "json", "summary"]);
    assert_eq!(s["cluster_id"], CLUSTER_ID, "the journal is free again after the daemon stopped");
}

#[test]
fn run_stops_cleanly_while_a_follower_is_attached() {
    let f = Fixture::empty();
    let mut daemon = Reaped::spawn(
        run_on(f.dir())
            .args(["--log-format", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let log = Lines::new(daemon.stderr.take().unwrap());
    let (line, _) = log.until(Duration::from_secs(30), |l| l.contains("admin endpoint listening"));
    let entry: Value = serde_json::from_str(&line).expect("JSON log lines");
    let url = format!("http://{}", entry["fields"]["addr"].as_str().unwrap());
    let mut follower = Reaped::spawn(
        bin()
            .args(["journal", "--admin", &url, "events", "--follow"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let out = Lines::new(follower.stdout.take().unwrap());
    out.until(Duration::from_secs(30), |l| l.contains("SEQ"));
    std::process::Command::new("kill").args(["-TERM", &daemon.id().to_string()]).status().unwrap();
    let status =
        wait_for(&mut daemon, Duration::from_secs(30)).expect("the daemon did not stop with a follower attached");
    assert!(status.success(), "{status:?}");
    let status = wait_for(&mut follower, Duration::from_secs(30)).expect("the follower did not end with the daemon");
    assert!(status.success(), "{status:?}");
}
