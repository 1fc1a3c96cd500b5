//! The certificate scenarios of the benchmark report. The daemon runs in-process against the
//! sandbox's Kubernetes API server and local Azure, which adds [`azure_latency`] to every call.
//! The anchor column is what the AKS operator's Secrets Store CSI driver does by its documented
//! defaults (`anchors-tls.md` (b)): a placeholder pod per listener whose mount fetches every object
//! every `--rotation-poll-interval` (2 min). Every time is taken from one label-selected watch on the Secrets
//! routewarden owns (`app.kubernetes.io/managed-by=routewarden`): the first time it shows a
//! Secret, and the first time it shows each value of its `routewarden.io/certificate-version`
//! annotation. Every Key Vault count is local Azure's own call counter. The certificate poll
//! interval is 10 s, the shortest the daemon accepts.
//!
//! Rows:
//!
//! - **listener applied → Secret written**: seed scenario (namespaces `app-a`/`app-b` with the
//!   ServiceAccount `approuting-demo-sa`), daemon running. 200 Gateways, each with one HTTPS
//!   listener asking for the seed certificate, are applied one every 25 ms; per listener, the time
//!   from the apply returning to the watch first showing its Secret `kv-gw-cert-<gw>-https`.
//! - **rotation → Secret updated**: the seed certificate gets a new Key Vault version 10 times,
//!   one after another, each time once all 200 Secrets serve the previous one, after a pause that
//!   steps through the poll interval (0, 1/10, … 9/10 of it) so rotations land at different
//!   points before the next poll. Per listener, the time from the new version existing to its
//!   Secret serving it. It includes the wait for the next poll, so its target is the interval
//!   plus 1 s.
//! - **detection → Secret updated**: the same rotations, timed from detection: the first Key
//!   Vault request the daemon makes after the rotation (its poll; no other Key Vault traffic
//!   happens while the Secrets are current), seen by sampling the call counter every 2 ms.
//!   The daemon promises a new valid version reaches the Secret within 1 s of detection: the
//!   slowest of the 2,000 listener updates must be under 1 s.
//! - **fan-out**: per rotation, the first to the last of the 200 Secrets to change.
//! - **1,000 listeners on 50 certificates**: a scenario with 49 more certificates
//!   (`bench-cert-01`..`49`, EC) in the seed vault, a federated credential for namespace `bench`,
//!   and Key Vault Certificate User for the seed identity, so rotation checks read certificate
//!   metadata. 1,000 Gateways in `bench` (listener i uses certificate i mod 50, all through the
//!   one ServiceAccount: 50 distinct (vault, certificate, identity)) exist before the daemon
//!   starts. *Initial sync* is daemon start → all 1,000 Secrets seen, with the Key Vault requests
//!   and secret downloads it took. *Requests per poll interval* then counts every Key Vault
//!   request over exactly two intervals, started halfway between polls (their timing is
//!   observed for one interval first), halved; it must be 50. *Steady-state downloads* are the
//!   secret downloads in that window: nothing changed, so the target is none.
//! - **listener applied → Secret at 1,000**: then 200 more Gateways on the shared certificates,
//!   one every 25 ms, timed as in the first row. (Routes are timed at 10,000 too; 10,000 Gateways
//!   are beyond the sandbox, whose Gateway controller lists its store on every reconcile.)

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PartialObjectMeta, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use routewarden::tls::labels;
use routewarden_e2e::bench::{
    Anchor, Report, Verdict, azure_latency, histogram, human, must, quantiles, record, resource_group, target,
};
use routewarden_e2e::{Env, Options, seed_certificate_uri, seed000};
use routewarden_sandbox_azure::scenario::{
    CertificateSpec, FederatedCredentialSpec, KeyType, RoleAssignmentSpec, TOKEN_EXCHANGE_AUDIENCE,
};
use routewarden_sandbox_azure::{CallCounter, Scenario};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NAMESPACES: &str = routewarden_sandbox::demo::NAMESPACES_YAML;
const POLL: Duration = Duration::from_secs(10);
const POLL_FLAG: &str = "10s";
const LATENCY_GATEWAYS: usize = 200;
const LATENCY_NAMESPACE: &str = "app-a";
const APPLY_EVERY: Duration = Duration::from_millis(25);
const ROTATIONS: u32 = 10;
const SHARED_LISTENERS: usize = 1_000;
const SHARED_CERTIFICATES: usize = 50;
const SHARED_NAMESPACE: &str = "bench";
/// Listeners applied one by one to time apply → Secret with 1,000 listeners present.
const PACED_LISTENERS: usize = 200;
const DETECTION_MUST: Duration = Duration::from_secs(1);
/// Generous bounds on waits, so a daemon that stalls ends the run instead of hanging it.
const SYNC_TIMEOUT: Duration = Duration::from_secs(120);
/// The CSI driver's `--rotation-poll-interval` default.
const CSI_ROTATION_POLL: Duration = Duration::from_secs(120);

/// The seed scenario with Azure's latency emulated.
fn emulated() -> Scenario {
    let mut s = Scenario::seed000();
    s.faults.latency = azure_latency();
    s
}

/// The CSI driver's rotation latency: the new version waits for the next refetch, uniformly
/// placed in its interval (kubelet's remount cadence, undocumented, only adds to it).
fn csi_rotation_latency() -> Anchor {
    let (p50, p99) = (CSI_ROTATION_POLL.mul_f64(0.5), CSI_ROTATION_POLL.mul_f64(0.99));
    Anchor {
        value: format!("p50 {}  p99 {}  (a 2 min poll; ours here {POLL_FLAG})", human(p50), human(p99)),
        ratio: String::new(),
    }
}

/// What the Secret watch has shown: when each Secret and each of its versions was first seen.
/// Dropping it ends the watch, so it does not outlive its API server.
struct SecretLog {
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Seen {
    listed: bool,
    /// `namespace/name` → first sight.
    names: HashMap<String, Instant>,
    /// (`namespace/name`, version) → first sight.
    versions: HashMap<(String, String), Instant>,
}

fn lock(seen: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|p| p.into_inner())
}

impl Drop for SecretLog {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SecretLog {
    fn first_seen(&self, name: &str) -> Option<Instant> {
        lock(&self.seen).names.get(name).copied()
    }

    fn version_seen(&self, name: &str, version: &str) -> Option<Instant> {
        lock(&self.seen).versions.get(&(name.to_owned(), version.to_owned())).copied()
    }

    /// Starts the watch and waits for its initial list, so nothing written later is missed or
    /// stamped late.
    async fn start(client: kube::Client) -> anyhow::Result<Self> {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let api: Api<PartialObjectMeta<Secret>> = Api::all(client);
        let events = watcher(api, watcher::Config::default().labels(labels::SELECTOR)).default_backoff();
        let log = seen.clone();
        let task = tokio::spawn(async move {
            let mut events = std::pin::pin!(events);
            while let Some(event) = events.next().await {
                let now = Instant::now();
                let s = match event {
                    Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) => s,
                    Ok(watcher::Event::InitDone) => {
                        lock(&log).listed = true;
                        continue;
                    }
                    // Deletions, restarts and errors (the watch retries) tell nothing new.
                    _ => continue,
                };
                let name =
                    format!("{}/{}", s.metadata.namespace.unwrap_or_default(), s.metadata.name.unwrap_or_default());
                let version = s.metadata.annotations.unwrap_or_default().remove(labels::VERSION);
                let mut seen = lock(&log);
                seen.names.entry(name.clone()).or_insert(now);
                if let Some(v) = version {
                    seen.versions.entry((name, v)).or_insert(now);
                }
            }
        });
        let log = SecretLog { seen, task };
        wait("the Secret watch's initial list", Duration::from_secs(30), || lock(&log.seen).listed.then_some(()))
            .await?;
        Ok(log)
    }
}

/// Checks `ready` every few milliseconds (it reads memory only) until it answers.
async fn wait<T>(what: &str, timeout: Duration, mut ready: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = ready() {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn secret_name(namespace: &str, gateway: &str) -> String {
    format!("{namespace}/kv-gw-cert-{gateway}-https")
}

fn gateway(namespace: &str, name: &str, certificate_uri: &str) -> serde_json::Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "gatewayClassName": "approuting-istio",
            "listeners": [{
                "name": "https",
                "hostname": format!("{name}.example.com"),
                "port": 443,
                "protocol": "HTTPS",
                "tls": {
                    "mode": "Terminate",
                    "options": {
                        "kubernetes.azure.com/tls-cert-keyvault-uri": certificate_uri,
                        "kubernetes.azure.com/tls-cert-service-account": seed000::SERVICE_ACCOUNT,
                    },
                },
                "allowedRoutes": {"namespaces": {"from": "Same"}},
            }],
        },
    })
}

async fn apply_gateway(env: &Env, namespace: &str, name: &str, certificate_uri: &str) -> anyhow::Result<()> {
    env.gateways(namespace)
        .patch(
            name,
            &PatchParams::apply("routewarden-bench").force(),
            &Patch::Apply(gateway(namespace, name, certificate_uri)),
        )
        .await
        .with_context(|| format!("applying Gateway {namespace}/{name}"))?;
    Ok(())
}

fn keyvault_total(calls: &CallCounter) -> u64 {
    calls.service_total("keyvault")
}

/// Key Vault calls by operation and status, for the evidence under the table.
fn keyvault_calls(env: &Env) -> String {
    let rows: Vec<String> = env
        .azure
        .admin()
        .calls()
        .into_iter()
        .filter(|c| c.key.service == "keyvault")
        .map(|c| format!("{} {} ×{}", c.key.operation, c.key.status, c.count))
        .collect();
    if rows.is_empty() { "none".into() } else { rows.join(", ") }
}

/// The first four rows: the seed scenario, 200 listeners on the seed certificate.
pub async fn latency_and_rotation(report: &mut Report) -> anyhow::Result<()> {
    let env = Env::start(Options { poll_interval: POLL_FLAG.into(), scenario: Some(emulated()), ..Options::default() })
        .await?;
    env.apply_yaml(NAMESPACES).await?;
    let log = SecretLog::start(env.client.clone()).await?;
    let uri = seed_certificate_uri();

    let h = paced(&env, &log, LATENCY_NAMESPACE, "g", LATENCY_GATEWAYS, |_| uri.clone()).await?;
    let secrets: Vec<String> =
        (0..LATENCY_GATEWAYS).map(|i| secret_name(LATENCY_NAMESPACE, &format!("g{i}"))).collect();
    report.compare(
        format!("listener applied → Secret written ({LATENCY_GATEWAYS} listeners, one per {APPLY_EVERY:?})"),
        quantiles(&h),
        Anchor::none("not documented: a placeholder pod's scheduling, start and CSI mount"),
        "report",
        Verdict::Info,
    );

    eprintln!("rotating {} {ROTATIONS} times", seed000::CERTIFICATE);
    let calls = env.azure.calls();
    let (mut to_secret, mut from_detection, mut fan_out, mut to_first) =
        (histogram(), histogram(), histogram(), histogram());
    for k in 0..ROTATIONS {
        tokio::time::sleep(POLL * k / ROTATIONS).await;
        let admin = env.azure.admin();
        // Generating the new key takes a while and holds local Azure's lock: off the runtime.
        let version =
            tokio::task::spawn_blocking(move || admin.rotate_certificate(seed000::VAULT, seed000::CERTIFICATE))
                .await??;
        let rotated = Instant::now();
        // Read after the rotation: a request answered before it (with the old version) has been
        // counted by now, so the next one to count is the poll that finds the new version.
        let before = keyvault_total(&calls);
        let detected = wait("the poll that finds the new version", 3 * POLL, || {
            (keyvault_total(&calls) > before).then(Instant::now)
        })
        .await?;
        let seen = wait("every Secret to serve the new version", 3 * POLL, || {
            secrets.iter().map(|s| log.version_seen(s, &version)).collect::<Option<Vec<_>>>()
        })
        .await?;
        for s in &seen {
            record(&mut to_secret, s.saturating_duration_since(rotated));
            record(&mut from_detection, s.saturating_duration_since(detected));
        }
        let (first, last) = (seen.iter().min(), seen.iter().max());
        if let (Some(first), Some(last)) = (first, last) {
            record(&mut fan_out, last.saturating_duration_since(*first));
            record(&mut to_first, first.saturating_duration_since(detected));
        }
    }
    let group = format!("{ROTATIONS} rotations × {LATENCY_GATEWAYS}");
    let mut csi = csi_rotation_latency();
    let ours = |q: f64| Duration::from_micros(to_secret.value_at_quantile(q)).as_secs_f64();
    csi.ratio = format!(
        "p50 {}, p99 {} (same interval: 1×)",
        Anchor::vs("", CSI_ROTATION_POLL.as_secs_f64() * 0.5, ours(0.5)).ratio,
        Anchor::vs("", CSI_ROTATION_POLL.as_secs_f64() * 0.99, ours(0.99)).ratio
    );
    report.compare(
        format!("rotation → Secret updated, incl. wait for poll ({group})"),
        quantiles(&to_secret),
        csi,
        format!("p99 ≤ interval {POLL_FLAG} + 1 s"),
        target(Duration::from_micros(to_secret.value_at_quantile(0.99)) <= POLL + DETECTION_MUST),
    );
    report.compare(
        format!("detection → Secret updated ({group})"),
        quantiles(&from_detection),
        Anchor::none("not documented: the next remount by kubelet"),
        "must: max < 1 s",
        must(Duration::from_micros(from_detection.max()) < DETECTION_MUST),
    );
    report.row(
        format!("fan-out: first → last of {LATENCY_GATEWAYS} Secrets, per rotation"),
        quantiles(&fan_out),
        "max < 1 s",
        target(Duration::from_micros(fan_out.max()) < DETECTION_MUST),
    );
    report.notes.push(format!("rotations, detection → first Secret updated: {}", quantiles(&to_first)));
    report.notes.push(format!("first four rows, Key Vault calls over the whole run: {}", keyvault_calls(&env)));
    env.shutdown().await;
    Ok(())
}

/// The seed scenario plus 49 certificates in the seed vault, a federated credential for the
/// benchmark namespace, and certificate metadata readable by the seed identity.
fn shared_scenario() -> anyhow::Result<Scenario> {
    let mut s = emulated();
    let rg = resource_group(&mut s)?;
    let vault = rg.vaults.first_mut().context("the seed scenario has a vault")?;
    let template = vault.certificates.first().context("the seed vault has a certificate")?.clone();
    for i in 1..SHARED_CERTIFICATES {
        // EC keys: generating 49 RSA keys would slow the start without changing what is measured.
        vault.certificates.push(CertificateSpec {
            name: format!("bench-cert-{i:02}"),
            key_type: KeyType::Ec,
            ..template.clone()
        });
    }
    let identity = rg.identities.first_mut().context("the seed scenario has an identity")?;
    identity.federated_credentials.push(FederatedCredentialSpec {
        name: format!("approuting-demo-fic-{SHARED_NAMESPACE}"),
        issuer: None,
        subject: format!("system:serviceaccount:{SHARED_NAMESPACE}:{}", seed000::SERVICE_ACCOUNT),
        audiences: vec![TOKEN_EXCHANGE_AUDIENCE.into()],
    });
    s.role_assignments.push(RoleAssignmentSpec {
        principal: seed000::PRINCIPAL_ID.into(),
        role: "Key Vault Certificate User".into(),
        scope: format!("vault/{}", seed000::VAULT),
    });
    Ok(s)
}

fn certificate_uri(i: usize) -> String {
    match i % SHARED_CERTIFICATES {
        0 => seed_certificate_uri(),
        n => format!("https://{}.vault.azure.net/certificates/bench-cert-{n:02}", seed000::VAULT),
    }
}

/// The last four rows: 1,000 listeners sharing 50 certificates.
pub async fn shared_certificates(report: &mut Report) -> anyhow::Result<()> {
    let mut env = Env::start(Options {
        poll_interval: POLL_FLAG.into(),
        scenario: Some(shared_scenario()?),
        daemon: false,
        ..Options::default()
    })
    .await?;
    env.apply_yaml(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n---\napiVersion: v1\nkind: ServiceAccount\n\
         metadata:\n  name: {sa}\n  namespace: {ns}\n  annotations:\n    azure.workload.identity/client-id: {id}\n",
        ns = SHARED_NAMESPACE,
        sa = seed000::SERVICE_ACCOUNT,
        id = seed000::CLIENT_ID,
    ))
    .await?;
    eprintln!("applying {SHARED_LISTENERS} Gateways on {SHARED_CERTIFICATES} certificates");
    let env_ref = &env;
    futures::stream::iter(0..SHARED_LISTENERS)
        .map(|i| async move { apply_gateway(env_ref, SHARED_NAMESPACE, &format!("g{i}"), &certificate_uri(i)).await })
        .buffer_unordered(8)
        .try_collect::<()>()
        .await?;
    let log = SecretLog::start(env.client.clone()).await?;
    let secrets: Vec<String> = (0..SHARED_LISTENERS).map(|i| secret_name(SHARED_NAMESPACE, &format!("g{i}"))).collect();

    eprintln!("starting the daemon");
    let calls = env.azure.calls();
    calls.reset();
    let started = Instant::now();
    env.start_daemon().await?;
    let last = wait("every listener's Secret", SYNC_TIMEOUT, || {
        secrets.iter().map(|s| log.first_seen(s)).collect::<Option<Vec<_>>>().and_then(|v| v.into_iter().max())
    })
    .await?;
    // Answered downloads and metadata reads; the 401s beside them are the Key Vault SDK's
    // authentication challenge round trip (listed under the table), not reads.
    let downloads = calls.get("keyvault", "GetSecret", 200);
    let metadata = calls.get("keyvault", "GetCertificate", 200);
    report.row(
        format!("initial sync: daemon start → {SHARED_LISTENERS} Secrets"),
        format!(
            "{}  ({} Key Vault requests, {metadata} metadata reads)",
            human(last.saturating_duration_since(started)),
            keyvault_total(&calls)
        ),
        "report",
        Verdict::Info,
    );
    report.row(
        "initial sync: secret downloads",
        downloads.to_string(),
        format!("{SHARED_CERTIFICATES} (one per certificate version)"),
        target(downloads == SHARED_CERTIFICATES as u64),
    );
    report.notes.push(format!("initial sync, Key Vault calls: {}", keyvault_calls(&env)));

    // When the polls happen: one interval of the counter, sampled every millisecond.
    eprintln!("observing the poll schedule for {POLL:?}");
    let observed = Instant::now();
    let mut ticks: Vec<Duration> = Vec::new();
    let mut count = keyvault_total(&calls);
    while observed.elapsed() < POLL {
        tokio::time::sleep(Duration::from_millis(1)).await;
        let now = keyvault_total(&calls);
        if now != count {
            ticks.push(observed.elapsed());
            count = now;
        }
    }
    // Start the window in the middle of the longest quiet stretch, so no poll sits on its edges
    // and each (vault, certificate, identity) is counted for exactly two intervals.
    let mut phases: Vec<Duration> =
        ticks.iter().map(|t| Duration::from_nanos((t.as_nanos() % POLL.as_nanos()) as u64)).collect();
    phases.sort();
    let middle = match phases.as_slice() {
        [] => Duration::ZERO,
        [only] => *only + POLL / 2,
        _ => {
            let gaps = phases
                .windows(2)
                .map(|w| (w[0], w[1] - w[0]))
                .chain(phases.last().zip(phases.first()).map(|(l, f)| (*l, POLL - *l + *f)));
            let (from, gap) = gaps.max_by_key(|(_, gap)| *gap).unwrap_or_default();
            from + gap / 2
        }
    };
    let middle = Duration::from_nanos((middle.as_nanos() % POLL.as_nanos()) as u64);
    let mut window = observed + middle;
    while window < Instant::now() {
        window += POLL;
    }
    tokio::time::sleep_until(window.into()).await;
    calls.reset();
    eprintln!("counting Key Vault requests for {:?}", 2 * POLL);
    tokio::time::sleep_until((window + 2 * POLL).into()).await;
    let total = keyvault_total(&calls);
    let steady_downloads = calls.total("keyvault", "GetSecret");
    let per_interval = total as f64 / 2.0;
    report.compare(
        format!("Key Vault requests per poll interval ({SHARED_LISTENERS} on {SHARED_CERTIFICATES} certificates)"),
        format!("{per_interval}  ({total} in 2 intervals)"),
        Anchor::vs(
            format!("{SHARED_LISTENERS}  (pods × objects: every placeholder pod fetches its own)"),
            SHARED_LISTENERS as f64,
            per_interval,
        ),
        format!("must: {SHARED_CERTIFICATES}"),
        must(total == 2 * SHARED_CERTIFICATES as u64),
    );
    report.compare(
        "steady state: secret downloads in 2 intervals",
        steady_downloads.to_string(),
        Anchor::vs(
            format!("{}  (every fetch downloads the secret)", 2 * SHARED_LISTENERS),
            (2 * SHARED_LISTENERS) as f64,
            steady_downloads as f64,
        ),
        "0",
        target(steady_downloads == 0),
    );
    report.notes.push(format!("steady-state window, Key Vault calls: {}", keyvault_calls(&env)));
    report.notes.push(format!(
        "poll schedule: {} counter changes in the observed interval; window started {:.2} s into it",
        ticks.len(),
        middle.as_secs_f64()
    ));

    // Listener applied → Secret with 1,000 listeners present. (10,000 Gateways are beyond the
    // sandbox: its Gateway controller lists the store on every reconcile.)
    paced_listeners(report, &env, &log, "a", SHARED_LISTENERS).await?;
    env.shutdown().await;
    Ok(())
}

/// `count` Gateways `<prefix><i>` in `namespace`, listener i on `uri(i)`, applied one every
/// [`APPLY_EVERY`]: from each apply returning to the watch first showing its Secret.
async fn paced(
    env: &Env,
    log: &SecretLog,
    namespace: &str,
    prefix: &str,
    count: usize,
    uri: impl Fn(usize) -> String,
) -> anyhow::Result<hdrhistogram::Histogram<u64>> {
    eprintln!("applying {count} Gateways in {namespace}, one every {APPLY_EVERY:?}");
    let names: Vec<String> = (0..count).map(|i| format!("{prefix}{i}")).collect();
    let mut applied = Vec::with_capacity(names.len());
    let start = tokio::time::Instant::now();
    for (i, name) in names.iter().enumerate() {
        tokio::time::sleep_until(start + APPLY_EVERY * u32::try_from(i)?).await;
        apply_gateway(env, namespace, name, &uri(i)).await?;
        applied.push(Instant::now());
    }
    let secrets: Vec<String> = names.iter().map(|g| secret_name(namespace, g)).collect();
    let seen = wait("every listener's Secret", SYNC_TIMEOUT, || {
        secrets.iter().map(|s| log.first_seen(s)).collect::<Option<Vec<_>>>()
    })
    .await?;
    let mut h = histogram();
    for (a, s) in applied.iter().zip(&seen) {
        record(&mut h, s.saturating_duration_since(*a));
    }
    Ok(h)
}

/// [`PACED_LISTENERS`] more Gateways (`<prefix><i>`, on the shared certificates) applied one
/// every [`APPLY_EVERY`] while `present` listeners exist.
async fn paced_listeners(
    report: &mut Report,
    env: &Env,
    log: &SecretLog,
    prefix: &str,
    present: usize,
) -> anyhow::Result<()> {
    let h = paced(env, log, SHARED_NAMESPACE, prefix, PACED_LISTENERS, certificate_uri).await?;
    report.compare(
        format!("listener applied → Secret written, {present} present ({PACED_LISTENERS}, one per {APPLY_EVERY:?})"),
        quantiles(&h),
        Anchor::none("not documented: a placeholder pod's scheduling, start and CSI mount"),
        "report",
        Verdict::Info,
    );
    Ok(())
}
