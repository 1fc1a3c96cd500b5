//! The DNS scenarios of the benchmark report. The daemon runs against the sandbox's Kubernetes
//! API server and local Azure; every time is taken from local Azure's record-set feed
//! ([`routewarden_sandbox_azure::Admin::watch_record_sets`]): each write that changed a zone,
//! stamped by the sandbox while it held the zone, so nothing is polled and the stamp is the moment
//! a client could first have read the record set. Every Azure count is local Azure's own call
//! counter.
//!
//! Local Azure adds [`azure_latency`] to every call and enforces Azure's documented rate limits,
//! with every refill period divided by [`SCALE`] so the cold start takes minutes instead of a
//! quarter of an hour; the daemon is told the same scaled limits through its token-bucket flags
//! ([`DAEMON_LIMIT_FLAGS`]). The anchor column is the AKS operator's managed external-dns
//! ([`routewarden_e2e::anchor`]) under the same latency and the same scaled limits, fed the same
//! moments at which routes became `Accepted`; its latencies pool 12 placements of its 3-minute
//! sync schedule.
//!
//! Rows:
//!
//! - **route applied → record set visible, 1,000**: seed scenario, daemon running, a Gateway
//!   `bench-gw` (class `approuting-istio`, one HTTP listener, routes from its own namespace) with
//!   an address, a ClusterExternalDNS over the seed zone `example.com`. 1,000 HTTPRoutes,
//!   `r<i>.example.com`, are applied one every 50 ms; per route, from the apply returning to its A
//!   record set existing with the Gateway's address. It includes the sandbox's Gateway controller
//!   accepting the route (the `Accepted` condition both systems wait for), as on AKS it includes
//!   Istio's.
//! - **ARM writes per change** (must): with the 1,000 published and nothing in flight, one route's
//!   hostname changes (2 record sets) and one route is deleted (1 record set); every ARM
//!   record-set call until things are quiet for 3 s is counted. Exactly one per changed record set.
//! - **steady state** (must): 60 s with nothing changing: no ARM write at all; the list calls
//!   (zone verification) are extrapolated to an hour.
//! - **cold start**: 7 more public zones in the seed resource group, DNS Zone Contributor on each
//!   for the seed identity, a ClusterExternalDNS over all 7, and 10,000 HTTPRoutes (route i in
//!   zone i mod 7), all accepted before the daemon starts. The daemon runs as its own process
//!   (`routewarden-child`), so its CPU time and peak memory are its own. Daemon start → all
//!   10,000 record sets present, against the floor the rate limits impose: for each bucket,
//!   (calls − burst) / refill rate, the largest of them; and the floor the emulated write latency
//!   puts under the default 8 workers (writes × mean latency / 8), which binds first at the
//!   scaled limits (at the documented ones the limits do).
//! - **route applied → record set visible, 10,000**: then 1,000 more routes over the 7 zones, one
//!   every 50 ms, timed as above.
//! - **CPU, memory, journal**: the daemon's CPU seconds per 1,000 routes over the cold start, its
//!   peak resident memory, and its journal commit latency (from its own
//!   `routewarden_journal_commit_duration_seconds` histogram, interpolated within buckets).
//! - **steady state at 10,000**: 60 s with nothing changing, Azure calls per hour.
//! - **restart, nothing changed**: SIGTERM, then a new process on the same journal: time to
//!   `/readyz`, and ARM writes until every zone has been verified and 5 s have been quiet (must 0).

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use routewarden_e2e::anchor::{self, Change, ExternalDns};
use routewarden_e2e::bench::{
    Anchor, ProcessStats, Report, Verdict, azure_latency, histogram, histogram_quantile, human, mean_latency, mib,
    must, quantiles, record, resource_group, target,
};
use routewarden_e2e::{Env, Options, seed000};
use routewarden_sandbox_azure::scenario::{RoleAssignmentSpec, ZoneKind, ZoneSpec};
use routewarden_sandbox_azure::{Bucket, CallCounter, RateLimits, RecordSetChange, Scenario};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;

const NAMESPACES: &str = routewarden_sandbox::demo::NAMESPACES_YAML;
/// Every rate-limit refill period is divided by this, in local Azure and in the daemon alike.
const SCALE: u32 = 10;
const NAMESPACE: &str = "app-a";
const GATEWAY: &str = "bench-gw";
const DNS_RESOURCE: &str = "bench-dns";
const ROUTES: usize = 1_000;
const APPLY_EVERY: Duration = Duration::from_millis(50);
/// Quiet time after a change before its calls are counted: any repeated write would come by then.
const QUIET: Duration = Duration::from_secs(3);
const STEADY_WINDOW: Duration = Duration::from_secs(60);
const COLD_ROUTES: usize = 10_000;
const COLD_ZONES: usize = 7;
/// Generous bounds on waits, so a daemon that stalls ends the run instead of hanging it.
const SYNC_TIMEOUT: Duration = Duration::from_secs(120);
const COLD_TIMEOUT: Duration = Duration::from_secs(900);
const SETUP_TIMEOUT: Duration = Duration::from_secs(600);

/// Which of local Azure's buckets a daemon flag mirrors.
type BucketOf = fn(&RateLimits) -> Bucket;

/// The daemon's own token buckets: each flag with the local Azure bucket it mirrors, given as
/// `BURST/PERIOD` at the same scale.
const DAEMON_LIMIT_FLAGS: &[(&str, BucketOf)] = &[
    ("--arm-write-limit", |l| l.arm_writes),
    ("--arm-read-limit", |l| l.arm_reads),
    ("--arm-delete-limit", |l| l.arm_deletes),
    ("--public-zone-write-limit", |l| l.public_zone_writes),
    ("--private-zone-write-limit", |l| l.private_zone_writes),
    ("--public-zone-list-limit", |l| l.public_zone_lists),
    ("--private-zone-list-limit", |l| l.private_zone_lists),
];

/// `routewarden run --dns-verify-interval` by default.
const DAEMON_VERIFY_INTERVAL: Duration = Duration::from_secs(600);
/// `routewarden run --workers` by default: concurrent record-set writes.
const DAEMON_WORKERS: u32 = 8;
/// Sync schedules of the anchor whose latencies are pooled.
const ANCHOR_OFFSETS: u32 = 12;

/// The AKS operator's external-dns under the emulated latency and the scaled limits.
fn anchor_model() -> ExternalDns {
    ExternalDns::aks(
        mean_latency("arm", "RecordSets_ListByDnsZone"),
        mean_latency("arm", "RecordSets_CreateOrUpdate"),
        scaled_limits(),
    )
}

/// The anchor's latencies for routes applied at `applied`, accepted at `accepted` (when seen),
/// into zones `zones[i]` that hold `record_sets` record sets; the time to `Accepted` is added to
/// the model's, as it is part of ours.
fn anchor_latencies(
    record_sets: &[usize],
    zones: &[usize],
    applied: &[Instant],
    accepted: &[Option<Instant>],
) -> hdrhistogram::Histogram<u64> {
    let t0 = applied.first().copied().unwrap_or_else(Instant::now);
    let changes: Vec<Change> = applied
        .iter()
        .zip(accepted)
        .zip(zones)
        .map(|((a, acc), &zone)| Change { zone, ready: acc.unwrap_or(*a).saturating_duration_since(t0) })
        .collect();
    let until = changes.iter().map(|c| c.ready).max().unwrap_or_default() + Duration::from_secs(3600);
    let mut h = histogram();
    for (i, latency) in anchor_model().latencies(record_sets, &changes, ANCHOR_OFFSETS, until) {
        let to_accepted = accepted[i].map_or(Duration::ZERO, |acc| acc.saturating_duration_since(applied[i]));
        record(&mut h, latency + to_accepted);
    }
    h
}

/// The seed scenario's record sets are the apex SOA and NS only.
fn seed_zone_record_sets() -> usize {
    anchor::APEX_RECORD_SETS
}

/// Local Azure: the emulated latency and the scaled limits.
fn emulate(scenario: &mut Scenario) {
    scenario.faults.rate_limits = scaled_limits();
    scenario.faults.latency = azure_latency();
}

/// Azure's documented limits with every refill period divided by [`SCALE`].
fn scaled_limits() -> RateLimits {
    let mut l = RateLimits::default();
    for b in [
        &mut l.arm_reads,
        &mut l.arm_writes,
        &mut l.arm_deletes,
        &mut l.public_zone_writes,
        &mut l.public_zone_gets,
        &mut l.public_zone_lists,
        &mut l.public_zone_list_by_rg,
        &mut l.private_zone_writes,
        &mut l.private_zone_gets,
        &mut l.private_zone_lists,
        &mut l.private_zone_list_by_rg,
        &mut l.key_vault_all,
        &mut l.key_vault_writes,
    ] {
        b.period_seconds /= f64::from(SCALE);
    }
    l
}

/// `BURST/PERIOD` as the daemon's flags take it (`200/2s`, `60/6s`, `200/1m`).
fn bucket_flag(b: Bucket) -> String {
    let ms = (b.period_seconds * 1000.0).round() as u64;
    let period = match ms {
        ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    };
    format!("{}/{period}", b.limit)
}

/// The daemon's limit flags with their scaled values, noted under the table once.
fn daemon_limit_flags(report: &mut Report) -> Vec<String> {
    let limits = scaled_limits();
    let flags: Vec<(&str, String)> =
        DAEMON_LIMIT_FLAGS.iter().map(|(flag, bucket)| (*flag, bucket_flag(bucket(&limits)))).collect();
    if report.notes.iter().all(|n| !n.starts_with("daemon limit flags")) {
        let shown: Vec<String> = flags.iter().map(|(f, v)| format!("{f} {v}")).collect();
        report.notes.push(format!("daemon limit flags: {}", shown.join(" ")));
    }
    flags.into_iter().flat_map(|(f, v)| [f.to_owned(), v]).collect()
}

/// The floor the rate limits put under publishing `per_zone` record sets (one write each) into
/// zones in one subscription, through one principal: (calls − burst) / refill rate, per bucket;
/// the slowest bucket sets it. Returns the floor and the bucket that sets it.
fn floor(limits: &RateLimits, per_zone: &[usize]) -> (Duration, &'static str) {
    let wait = |calls: usize, b: Bucket| {
        let rate = f64::from(b.limit) / b.period_seconds;
        Duration::from_secs_f64((calls.saturating_sub(b.limit as usize)) as f64 / rate)
    };
    let total: usize = per_zone.iter().sum();
    let busiest = per_zone.iter().copied().max().unwrap_or(0);
    let arm = wait(total, limits.arm_writes);
    let zone = wait(busiest, limits.public_zone_writes);
    if arm >= zone { (arm, "ARM writes per subscription and principal") } else { (zone, "public zone writes") }
}

// ---------------------------------------------------------------------------------------------
// What local Azure shows.

/// Local Azure's record-set feed, folded: the current content of every record set written since
/// the feed started, and the first time each (record set, content) was seen.
struct Records {
    feed: UnboundedReceiver<RecordSetChange>,
    /// (zone name, relative name) → current values, `None` once deleted.
    current: HashMap<(String, String), Option<Vec<String>>>,
    /// (zone name, relative name, values) → first commit with exactly those values.
    first: HashMap<(String, String, Option<Vec<String>>), Instant>,
    writes: usize,
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records").field("current", &self.current.len()).field("writes", &self.writes).finish()
    }
}

/// The zone name of a zone resource id.
fn zone_name(id: &str) -> String {
    id.rsplit('/').next().unwrap_or(id).to_ascii_lowercase()
}

impl Records {
    fn new(feed: UnboundedReceiver<RecordSetChange>) -> Self {
        Records { feed, current: HashMap::new(), first: HashMap::new(), writes: 0 }
    }

    fn drain(&mut self) {
        while let Ok(c) = self.feed.try_recv() {
            let zone = zone_name(&c.zone);
            let values = c.values.map(|mut v| {
                v.sort();
                v
            });
            self.first.entry((zone.clone(), c.name.clone(), values.clone())).or_insert(c.at);
            self.current.insert((zone, c.name), values);
            self.writes += 1;
        }
    }

    fn holds(&self, zone: &str, name: &str, values: &[String]) -> bool {
        self.current.get(&(zone.to_owned(), name.to_owned())).is_some_and(|v| v.as_deref() == Some(values))
    }

    fn deleted(&self, zone: &str, name: &str) -> bool {
        self.current.get(&(zone.to_owned(), name.to_owned())).is_some_and(Option::is_none)
    }

    fn first_with(&self, zone: &str, name: &str, values: Option<&[String]>) -> Option<Instant> {
        self.first.get(&(zone.to_owned(), name.to_owned(), values.map(<[String]>::to_vec))).copied()
    }

    /// Waits (checking every 10 ms) until `done` holds; `Err` after `timeout`.
    async fn wait(&mut self, what: &str, timeout: Duration, mut done: impl FnMut(&Self) -> bool) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.drain();
            if done(self) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("timed out after {timeout:?} waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn arm_writes(calls: &CallCounter) -> u64 {
    ["RecordSets_CreateOrUpdate", "RecordSets_Update", "RecordSets_Delete"]
        .iter()
        .map(|op| calls.total("arm", op))
        .sum()
}

fn arm_count(calls: &CallCounter, status: u16) -> u64 {
    calls.snapshot().iter().filter(|c| c.key.service == "arm" && c.key.status == status).map(|c| c.count).sum()
}

fn arm_lists(calls: &CallCounter) -> u64 {
    calls
        .snapshot()
        .iter()
        .filter(|c| c.key.service == "arm" && c.key.operation.contains("List"))
        .map(|c| c.count)
        .sum()
}

/// Every Azure call by service, operation and status, for the evidence under the table.
fn azure_calls(calls: &CallCounter) -> String {
    let rows: Vec<String> = calls
        .snapshot()
        .into_iter()
        .map(|c| format!("{} {} {} ×{}", c.key.service, c.key.operation, c.key.status, c.count))
        .collect();
    if rows.is_empty() { "none".into() } else { rows.join(", ") }
}

/// Waits until no ARM record-set write has happened for [`QUIET`].
async fn quiet(calls: &CallCounter, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let (mut last, mut since) = (arm_writes(calls), Instant::now());
    while since.elapsed() < QUIET {
        if Instant::now() > deadline {
            bail!("ARM writes did not stop within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = arm_writes(calls);
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// What the cluster holds.

fn http_routes(env: &Env) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute");
    Api::namespaced_with(env.client.clone(), NAMESPACE, &ApiResource::from_gvk_with_plural(&gvk, "httproutes"))
}

fn cluster_dns_api(env: &Env) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("approuting.kubernetes.azure.com", "v1alpha1", "ClusterExternalDNS");
    Api::all_with(env.client.clone(), &ApiResource::from_gvk_with_plural(&gvk, "clusterexternaldnses"))
}

fn gateway() -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": GATEWAY, "namespace": NAMESPACE},
        "spec": {
            "gatewayClassName": "approuting-istio",
            "listeners": [{
                "name": "http", "port": 80, "protocol": "HTTP",
                "allowedRoutes": {"namespaces": {"from": "Same"}},
            }],
        },
    })
}

fn route(name: &str, hostname: &str) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "parentRefs": [{"name": GATEWAY}],
            "hostnames": [hostname],
            "rules": [{"backendRefs": [{"name": "httpbin", "port": 8000}]}],
        },
    })
}

fn zone_id(zone: &str) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/dnszones/{zone}",
        seed000::SUBSCRIPTION,
        seed000::RESOURCE_GROUP
    )
}

fn cluster_dns(zones: &[String]) -> Value {
    json!({
        "apiVersion": "approuting.kubernetes.azure.com/v1alpha1",
        "kind": "ClusterExternalDNS",
        "metadata": {"name": DNS_RESOURCE},
        "spec": {
            "resourceName": DNS_RESOURCE,
            "resourceNamespace": NAMESPACE,
            "dnsZoneResourceIDs": zones.iter().map(|z| zone_id(z)).collect::<Vec<_>>(),
            "resourceTypes": ["gateway"],
            "identity": {"type": "workloadIdentity", "serviceAccount": seed000::SERVICE_ACCOUNT},
        },
    })
}

async fn apply(api: &Api<DynamicObject>, object: &Value) -> anyhow::Result<()> {
    let name = object.pointer("/metadata/name").and_then(Value::as_str).context("a name")?;
    api.patch(name, &PatchParams::apply("routewarden-bench").force(), &Patch::Apply(object))
        .await
        .with_context(|| format!("applying {name}"))?;
    Ok(())
}

/// Applies the Gateway and waits for its addresses (sorted).
async fn gateway_with_addresses(env: &Env) -> anyhow::Result<Vec<String>> {
    let api = env.gateways(NAMESPACE);
    apply(&api, &gateway()).await?;
    routewarden_e2e::wait_for("the Gateway's addresses", SYNC_TIMEOUT, || async {
        let gw = api.get(GATEWAY).await.ok()?;
        let mut ips: Vec<String> = gw.data["status"]["addresses"]
            .as_array()?
            .iter()
            .filter_map(|a| a["value"].as_str().map(str::to_owned))
            .collect();
        ips.sort();
        (!ips.is_empty()).then_some(ips)
    })
    .await
}

async fn dns_resource_ready(env: &Env) -> anyhow::Result<()> {
    let api = cluster_dns_api(env);
    routewarden_e2e::wait_for("the ClusterExternalDNS to be Ready", SYNC_TIMEOUT, || async {
        let obj = api.get(DNS_RESOURCE).await.ok()?;
        obj.data["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
            .then_some(())
    })
    .await
}

/// When a watch on the HTTPRoutes first showed each one `Accepted` by its Gateway: where the
/// sandbox's Gateway controller's share of a route's latency ends and routewarden's begins.
/// Dropping it ends the watch.
struct AcceptedLog {
    seen: Arc<Mutex<HashMap<String, Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AcceptedLog {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn accepted(route: &DynamicObject) -> bool {
    route.data["status"]["parents"].as_array().into_iter().flatten().any(|p| {
        p["conditions"].as_array().into_iter().flatten().any(|c| c["type"] == "Accepted" && c["status"] == "True")
    })
}

impl AcceptedLog {
    /// Starts the watch and waits for its initial list.
    async fn start(routes: Api<DynamicObject>) -> anyhow::Result<Self> {
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let listed = Arc::new(tokio::sync::Notify::new());
        let events = watcher(routes, watcher::Config::default()).default_backoff();
        let (log, done) = (seen.clone(), listed.clone());
        let task = tokio::spawn(async move {
            let mut events = std::pin::pin!(events);
            while let Some(event) = events.next().await {
                let now = Instant::now();
                match event {
                    Ok(watcher::Event::Apply(r) | watcher::Event::InitApply(r)) if accepted(&r) => {
                        let name = r.metadata.name.clone().unwrap_or_default();
                        log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(name).or_insert(now);
                    }
                    Ok(watcher::Event::InitDone) => done.notify_one(),
                    _ => {}
                }
            }
        });
        tokio::time::timeout(SYNC_TIMEOUT, listed.notified()).await.context("the HTTPRoute watch's initial list")?;
        Ok(AcceptedLog { seen, task })
    }

    fn get(&self, name: &str) -> Option<Instant> {
        self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(name).copied()
    }
}

/// The rows of one latency run: ours and the anchor's, route applied → record set visible, and
/// ours from `Accepted`.
#[allow(clippy::too_many_arguments)]
fn latency_rows(
    report: &mut Report,
    what: &str,
    records: &Records,
    accepted_log: &AcceptedLog,
    names: &[String],
    applied: &[Instant],
    zone_of: impl Fn(usize) -> usize,
    zones: &[String],
    targets: &[String],
    record_sets: &[usize],
) -> anyhow::Result<()> {
    let (mut h, mut to_accepted, mut from_accepted) = (histogram(), histogram(), histogram());
    let mut accepted = Vec::with_capacity(names.len());
    for (i, (name, at)) in names.iter().zip(applied).enumerate() {
        let seen = records.first_with(&zones[zone_of(i)], name, Some(targets)).context("a record set seen")?;
        record(&mut h, seen.saturating_duration_since(*at));
        let when = accepted_log.get(name);
        if let Some(when) = when {
            record(&mut to_accepted, when.saturating_duration_since(*at));
            record(&mut from_accepted, seen.saturating_duration_since(when));
        }
        accepted.push(when);
    }
    let zone_index: Vec<usize> = (0..names.len()).map(&zone_of).collect();
    let theirs = anchor_latencies(record_sets, &zone_index, applied, &accepted);
    report.compare(
        format!("route applied → record set visible ({what}, one per {APPLY_EVERY:?})"),
        quantiles(&h),
        Anchor::quantiles(&theirs, &h),
        "report",
        Verdict::Info,
    );
    report.row(
        "  of which: route Accepted (watch) → record set visible",
        quantiles(&from_accepted),
        "report",
        Verdict::Info,
    );
    report.notes.push(format!(
        "{what}: route applied → Accepted by the sandbox Gateway controller (seen by a watch): {}",
        quantiles(&to_accepted)
    ));
    Ok(())
}

/// The steady-state list calls per hour, ours (extrapolated from the calls counted) and the
/// anchor's (a full sync every interval over zones of `record_sets`).
fn steady_rows(report: &mut Report, window: u64, what: &str, record_sets: &[usize], verified: Option<u64>) {
    // Nothing but zone verification reads at steady state: every zone listed, page by page, once
    // per --dns-verify-interval. A quiet minute rarely holds one, so the hour is computed from the
    // pages a verification of these zones took (counted at the restart), or from the page size.
    let pages = verified.unwrap_or_else(|| anchor::record_pages(record_sets));
    let verifications = 3600.0 / DAEMON_VERIFY_INTERVAL.as_secs_f64();
    let per_hour = pages as f64 * verifications;
    let model = anchor_model();
    let theirs = model.syncs_per_hour() * ExternalDns::reads_per_sync(record_sets) as f64;
    report.compare(
        format!("steady state: ARM reads per hour ({what})"),
        format!(
            "{per_hour:.0}  ({verifications:.0} verifications × {pages} pages{}; {window} list calls in the {} s window)",
            if verified.is_some() { ", counted" } else { "" },
            STEADY_WINDOW.as_secs()
        ),
        Anchor::vs(
            format!(
                "{theirs:.0}  ({} syncs × {} pages)",
                model.syncs_per_hour(),
                ExternalDns::reads_per_sync(record_sets)
            ),
            theirs,
            per_hour,
        ),
        "report",
        Verdict::Info,
    );
}

// ---------------------------------------------------------------------------------------------
// Phases.

/// The first rows: 1,000 routes applied one by one into the seed zone, then single changes,
/// then a quiet minute.
pub async fn incremental(report: &mut Report) -> anyhow::Result<()> {
    let mut since = Instant::now();
    let mut scenario = Scenario::seed000();
    emulate(&mut scenario);
    let daemon_flags = daemon_limit_flags(report);
    let env = Env::start(Options { scenario: Some(scenario), daemon_flags, ..Options::default() }).await?;
    env.apply_yaml(NAMESPACES).await?;
    let targets = gateway_with_addresses(&env).await?;
    let zone = seed000::ZONE.to_owned();
    apply(&cluster_dns_api(&env), &cluster_dns(std::slice::from_ref(&zone))).await?;
    dns_resource_ready(&env).await?;
    report.phase("incremental: setup", &mut since);

    let calls = env.azure.calls();
    calls.reset();
    let mut records = Records::new(env.azure.admin().watch_record_sets());
    let routes = http_routes(&env);
    let accepted_log = AcceptedLog::start(routes.clone()).await?;
    eprintln!("applying {ROUTES} HTTPRoutes, one every {APPLY_EVERY:?}");
    let names: Vec<String> = (0..ROUTES).map(|i| format!("r{i}")).collect();
    let mut applied = Vec::with_capacity(ROUTES);
    let start = tokio::time::Instant::now();
    for (i, name) in names.iter().enumerate() {
        tokio::time::sleep_until(start + APPLY_EVERY * u32::try_from(i)?).await;
        apply(&routes, &route(name, &format!("{name}.{zone}"))).await?;
        applied.push(Instant::now());
    }
    records
        .wait("every route's record set", SYNC_TIMEOUT, |r| names.iter().all(|n| r.holds(&zone, n, &targets)))
        .await?;
    latency_rows(
        report,
        &format!("{ROUTES} routes"),
        &records,
        &accepted_log,
        &names,
        &applied,
        |_| 0,
        std::slice::from_ref(&zone),
        &targets,
        &[seed_zone_record_sets()],
    )?;
    drop(accepted_log);
    quiet(&calls, SYNC_TIMEOUT).await?;
    let writes = arm_writes(&calls);
    report.compare(
        format!("ARM writes to publish {ROUTES} routes"),
        format!("{writes}  ({} throttled)", arm_count(&calls, 429)),
        Anchor::vs(
            format!("{}  (a record and its TXT each)", anchor::WRITES_PER_HOSTNAME * ROUTES as u64),
            (anchor::WRITES_PER_HOSTNAME * ROUTES as u64) as f64,
            writes as f64,
        ),
        format!("{ROUTES} (one per record set)"),
        target(writes == ROUTES as u64),
    );
    report.notes.push(format!("publishing {ROUTES} routes, Azure calls: {}", azure_calls(&calls)));
    report.phase("incremental: 1,000 routes", &mut since);

    // One hostname changes: its new record set is created and its old one deleted.
    calls.reset();
    let renamed = format!("r0-renamed.{zone}");
    let changed = Instant::now();
    apply(&routes, &route("r0", &renamed)).await?;
    records
        .wait("the renamed route's record sets", SYNC_TIMEOUT, |r| {
            r.holds(&zone, "r0-renamed", &targets) && r.deleted(&zone, "r0")
        })
        .await?;
    let visible = records
        .first_with(&zone, "r0-renamed", Some(&targets))
        .max(records.first_with(&zone, "r0", None))
        .unwrap_or(changed);
    quiet(&calls, SYNC_TIMEOUT).await?;
    let (puts, deletes) = (calls.total("arm", "RecordSets_CreateOrUpdate"), calls.total("arm", "RecordSets_Delete"));
    let full_sync = ExternalDns::reads_per_sync(&[seed_zone_record_sets() + 2 * ROUTES]);
    report.compare(
        "ARM writes: one route's hostname changed (2 record sets)",
        format!(
            "{}  ({puts} CreateOrUpdate, {deletes} Delete; both done {} after the apply)",
            arm_writes(&calls),
            human(visible.saturating_duration_since(changed))
        ),
        Anchor::vs(
            format!("4  (record and TXT created, record and TXT deleted; in the next sync, {full_sync} reads)"),
            4.0,
            arm_writes(&calls) as f64,
        ),
        "must: 2 (1 CreateOrUpdate, 1 Delete)",
        must(puts == 1 && deletes == 1 && arm_writes(&calls) == 2),
    );
    report.notes.push(format!("hostname change, Azure calls: {}", azure_calls(&calls)));

    // One route is deleted: its record set is deleted.
    calls.reset();
    let changed = Instant::now();
    routes.delete("r1", &DeleteParams::default()).await?;
    records.wait("the deleted route's record set to go", SYNC_TIMEOUT, |r| r.deleted(&zone, "r1")).await?;
    let gone = records.first_with(&zone, "r1", None).unwrap_or(changed);
    quiet(&calls, SYNC_TIMEOUT).await?;
    let deletes = calls.total("arm", "RecordSets_Delete");
    report.compare(
        "ARM writes: one route deleted (1 record set)",
        format!(
            "{}  ({deletes} Delete; done {} after the delete)",
            arm_writes(&calls),
            human(gone.saturating_duration_since(changed))
        ),
        Anchor::vs("2  (record and TXT)", 2.0, arm_writes(&calls) as f64),
        "must: 1 (1 Delete)",
        must(deletes == 1 && arm_writes(&calls) == 1),
    );
    report.notes.push(format!("route deletion, Azure calls: {}", azure_calls(&calls)));
    report.phase("incremental: single changes", &mut since);

    eprintln!("counting Azure calls for {STEADY_WINDOW:?} with nothing changing");
    calls.reset();
    let writes_before = records.writes;
    tokio::time::sleep(STEADY_WINDOW).await;
    records.drain();
    let writes = arm_writes(&calls);
    report.compare(
        format!("steady state: ARM writes in {} s, nothing changing", STEADY_WINDOW.as_secs()),
        format!("{writes}  (record sets changed: {})", records.writes - writes_before),
        Anchor::vs("0", 0.0, writes as f64),
        "must: 0",
        must(writes == 0 && records.writes == writes_before),
    );
    steady_rows(
        report,
        arm_lists(&calls),
        &format!("1 zone, {ROUTES} record sets"),
        &[seed_zone_record_sets() + 2 * ROUTES],
        None,
    );
    report.notes.push(format!("steady state, Azure calls: {}", azure_calls(&calls)));
    report.phase("incremental: steady state", &mut since);
    env.shutdown().await;
    Ok(())
}

fn cold_zone(n: usize) -> String {
    format!("zone{n}.example.org")
}

/// The seed scenario plus 7 public zones in its resource group, each with DNS Zone Contributor
/// for the seed identity, under the scaled rate limits.
fn cold_scenario() -> anyhow::Result<Scenario> {
    let mut s = Scenario::seed000();
    emulate(&mut s);
    let zones = &mut resource_group(&mut s)?.zones;
    zones.extend((0..COLD_ZONES).map(|n| ZoneSpec {
        name: cold_zone(n),
        kind: ZoneKind::Public,
        record_sets: Vec::new(),
    }));
    for n in 0..COLD_ZONES {
        s.role_assignments.push(RoleAssignmentSpec {
            principal: seed000::IDENTITY.into(),
            role: "DNS Zone Contributor".into(),
            scope: format!("zone/{}", cold_zone(n)),
        });
    }
    Ok(s)
}

/// Lists the routes until every one is accepted by the Gateway and the Gateway counts them all.
async fn all_accepted(env: &Env, n: usize) -> anyhow::Result<()> {
    let routes = http_routes(env);
    let gateways = env.gateways(NAMESPACE);
    routewarden_e2e::wait_for("every route accepted", SETUP_TIMEOUT, || async {
        let list = routes.list(&ListParams::default()).await.ok()?;
        let accepted = list
            .items
            .iter()
            .filter(|r| {
                r.data["status"]["parents"].as_array().into_iter().flatten().any(|p| {
                    p["conditions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|c| c["type"] == "Accepted" && c["status"] == "True")
                })
            })
            .count();
        let attached = gateways.get(GATEWAY).await.ok()?.data["status"]["listeners"][0]["attachedRoutes"].as_u64();
        eprintln!("  {accepted} of {n} routes accepted, Gateway counts {attached:?}");
        (accepted == n && attached == Some(n as u64)).then_some(())
    })
    .await
}

/// `routewarden run` for `env` as its own process on `journal`, serving `/metrics` and `/readyz`
/// on `port` and logging warnings to `log`.
fn spawn_daemon(env: &Env, journal: &Path, port: u16, log: &Path) -> anyhow::Result<Child> {
    let mut args = env.daemon_args_for(journal);
    let at = args.iter().position(|a| a == "--metrics-addr").context("the daemon's --metrics-addr")?;
    args[at + 1] = format!("127.0.0.1:{port}");
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    Ok(std::process::Command::new(env!("CARGO_BIN_EXE_routewarden-child"))
        .args(&args[1..])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?)
}

/// A free loopback port.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits until `/readyz` on `port` answers 200.
async fn ready(port: u16, timeout: Duration) -> anyhow::Result<()> {
    let url = format!("http://127.0.0.1:{port}/readyz");
    routewarden_e2e::wait_for("the daemon's /readyz", timeout, || async {
        reqwest::get(&url).await.ok().filter(|r| r.status().is_success()).map(|_| ())
    })
    .await
}

/// SIGTERM, then waits for the process to exit.
async fn terminate(child: &mut Child) -> anyhow::Result<()> {
    std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status()?;
    let deadline = Instant::now() + SYNC_TIMEOUT;
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            child.kill()?;
            bail!("the daemon did not stop within {SYNC_TIMEOUT:?} of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// The child daemon, killed if a phase ends early.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The last rows: 10,000 routes over 7 zones, all there before the daemon starts; then 1,000
/// more, a quiet minute, and a restart.
pub async fn cold_start(report: &mut Report) -> anyhow::Result<()> {
    let mut since = Instant::now();
    let daemon_flags = daemon_limit_flags(report);
    let env =
        Env::start(Options { scenario: Some(cold_scenario()?), daemon: false, daemon_flags, ..Options::default() })
            .await?;
    env.apply_yaml(NAMESPACES).await?;
    let targets = gateway_with_addresses(&env).await?;
    let zones: Vec<String> = (0..COLD_ZONES).map(cold_zone).collect();
    apply(&cluster_dns_api(&env), &cluster_dns(&zones)).await?;
    eprintln!("applying {COLD_ROUTES} HTTPRoutes over {COLD_ZONES} zones");
    let routes = http_routes(&env);
    let wanted: Vec<(String, String)> =
        (0..COLD_ROUTES).map(|i| (zones[i % COLD_ZONES].clone(), format!("r{i}"))).collect();
    let routes_ref = &routes;
    futures::stream::iter(&wanted)
        .map(|(zone, name)| async move { apply(routes_ref, &route(name, &format!("{name}.{zone}"))).await })
        .buffer_unordered(16)
        .try_collect::<()>()
        .await?;
    report.phase("cold start: apply 10,000 routes", &mut since);
    all_accepted(&env, COLD_ROUTES).await?;
    report.phase("cold start: wait for the Gateway controller", &mut since);

    let calls = env.azure.calls();
    calls.reset();
    let mut records = Records::new(env.azure.admin().watch_record_sets());
    let (journal, log, port) = (env.journal_dir(), env.dir.path().join("daemon.log"), free_port()?);
    eprintln!("starting the daemon (log: {})", log.display());
    let started = Instant::now();
    let mut daemon = ChildGuard(spawn_daemon(&env, &journal, port, &log)?);
    let mut progress = Instant::now();
    let outcome = records
        .wait("every record set", COLD_TIMEOUT, |r| {
            let report = progress.elapsed() >= Duration::from_secs(10);
            // Fewer writes than record sets cannot be all of them: skip the scan (it shares the
            // two cores with the daemon).
            if r.writes < wanted.len() && !report {
                return false;
            }
            let present = wanted.iter().filter(|(z, n)| r.holds(z, n, &targets)).count();
            if report {
                eprintln!("  {present} of {COLD_ROUTES} record sets after {}", human(started.elapsed()));
                progress = Instant::now();
            }
            present == wanted.len()
        })
        .await;
    let cold = ProcessStats::of(daemon.0.id()).unwrap_or_default();
    let mut seen: Vec<Instant> = wanted.iter().filter_map(|(z, n)| records.first_with(z, n, Some(&targets))).collect();
    seen.sort();
    let at = |fraction: f64| {
        let i = ((wanted.len() as f64 * fraction).ceil() as usize).saturating_sub(1);
        seen.get(i).map(|t| human(t.saturating_duration_since(started)))
    };
    let per_zone: Vec<usize> =
        (0..COLD_ZONES).map(|z| wanted.iter().filter(|(zone, _)| *zone == zones[z]).count()).collect();
    let (limit_floor, bucket) = floor(&scaled_limits(), &per_zone);
    // With writes this slow, the workers bound the pace before the scaled limits do.
    let write = mean_latency("arm", "RecordSets_CreateOrUpdate");
    let worker_floor = write * u32::try_from(COLD_ROUTES)? / DAEMON_WORKERS;
    let scaled_floor = limit_floor.max(worker_floor);
    let (documented_floor, _) = floor(&RateLimits::default(), &per_zone);
    let elapsed = seen.last().filter(|_| outcome.is_ok()).map(|t| t.saturating_duration_since(started));
    let all_at_once: Vec<Change> =
        (0..COLD_ROUTES).map(|i| Change { zone: i % COLD_ZONES, ready: Duration::ZERO }).collect();
    let empty = vec![anchor::APEX_RECORD_SETS; COLD_ZONES];
    let theirs = anchor_model().run(&empty, &all_at_once, Duration::ZERO, Duration::from_secs(24 * 3600));
    let their_time = theirs.all_visible().unwrap_or_default();
    let mut documented = anchor_model();
    documented.limits = RateLimits::default();
    let their_documented = documented
        .run(&empty, &all_at_once, Duration::ZERO, Duration::from_secs(48 * 3600))
        .all_visible()
        .unwrap_or_default();
    report.compare(
        format!("cold start: daemon start → {COLD_ROUTES} record sets in {COLD_ZONES} zones"),
        match elapsed {
            Some(e) => format!("{}  ({:.1} × floor)", human(e), e.as_secs_f64() / scaled_floor.as_secs_f64()),
            None => format!("{} of {COLD_ROUTES} after {}", seen.len(), human(COLD_TIMEOUT)),
        },
        Anchor::vs(
            format!(
                "{}  ({} writes, one at a time; {} at the documented limits)",
                human(their_time),
                theirs.writes,
                human(their_documented)
            ),
            their_time.as_secs_f64(),
            elapsed.unwrap_or(COLD_TIMEOUT).as_secs_f64(),
        ),
        format!(
            "report; floor {} at limits ÷{SCALE} ({bucket}), {} for {DAEMON_WORKERS} workers × {} per write; {} at the documented limits",
            human(limit_floor),
            human(worker_floor),
            human(write),
            human(documented_floor)
        ),
        if elapsed.is_some() { Verdict::Info } else { Verdict::Fail },
    );
    report.notes.push(format!(
        "cold start progress from daemon start: first record set {}, 10% {}, 50% {}, 90% {}, 100% {}",
        at(0.0).unwrap_or_else(|| "—".into()),
        at(0.1).unwrap_or_else(|| "—".into()),
        at(0.5).unwrap_or_else(|| "—".into()),
        at(0.9).unwrap_or_else(|| "—".into()),
        at(1.0).unwrap_or_else(|| "—".into()),
    ));
    let timeline: Vec<String> = zones
        .iter()
        .map(|zone| {
            let times: Vec<Duration> = wanted
                .iter()
                .filter(|(z, _)| z == zone)
                .filter_map(|(z, n)| records.first_with(z, n, Some(&targets)))
                .map(|t| t.saturating_duration_since(started))
                .collect();
            match (times.iter().min(), times.iter().max()) {
                (Some(first), Some(last)) => format!("{zone} {:.0}–{:.0} s", first.as_secs_f64(), last.as_secs_f64()),
                _ => format!("{zone} none"),
            }
        })
        .collect();
    report.notes.push(format!("cold start, first → last record set per zone: {}", timeline.join(", ")));
    let writes = arm_writes(&calls);
    report.compare(
        "cold start: ARM writes",
        format!("{writes}  (record sets changed {} times)", records.writes),
        Anchor::vs(theirs.writes.to_string(), theirs.writes as f64, writes as f64),
        format!("{COLD_ROUTES} (one per record set)"),
        target(writes == COLD_ROUTES as u64),
    );
    let throttled = arm_count(&calls, 429);
    report.row(
        "cold start: 429s received",
        throttled.to_string(),
        "0 (the daemon paces itself)",
        target(throttled == 0),
    );
    report.compare(
        "daemon CPU per 1,000 routes (cold start, start-up included)",
        format!(
            "{:.2} s  ({:.1} s for {COLD_ROUTES})",
            cold.cpu.as_secs_f64() * 1000.0 / COLD_ROUTES as f64,
            cold.cpu.as_secs_f64()
        ),
        Anchor::none("not documented (pod requests 100m CPU)"),
        "report",
        Verdict::Info,
    );
    report.notes.push(format!("cold start, Azure calls: {}", azure_calls(&calls)));
    report.phase("cold start: daemon start → all record sets", &mut since);
    if let Err(e) = outcome {
        eprintln!("{e}");
        env.shutdown().await;
        return Ok(());
    }
    ready(port, SYNC_TIMEOUT).await?;

    // 1,000 more routes, one every 50 ms, into zones that hold 10,000.
    calls.reset();
    let accepted_log = AcceptedLog::start(routes.clone()).await?;
    eprintln!("applying {ROUTES} more HTTPRoutes, one every {APPLY_EVERY:?}");
    let names: Vec<String> = (0..ROUTES).map(|i| format!("n{i}")).collect();
    let mut applied = Vec::with_capacity(ROUTES);
    let start = tokio::time::Instant::now();
    for (i, name) in names.iter().enumerate() {
        tokio::time::sleep_until(start + APPLY_EVERY * u32::try_from(i)?).await;
        apply(&routes, &route(name, &format!("{name}.{}", zones[i % COLD_ZONES]))).await?;
        applied.push(Instant::now());
    }
    records
        .wait("every new route's record set", SYNC_TIMEOUT, |r| {
            names.iter().enumerate().all(|(i, n)| r.holds(&zones[i % COLD_ZONES], n, &targets))
        })
        .await?;
    let sizes: Vec<usize> = per_zone.iter().map(|n| anchor::APEX_RECORD_SETS + 2 * n).collect();
    latency_rows(
        report,
        &format!("{ROUTES} more routes into {COLD_ZONES} zones holding {COLD_ROUTES}"),
        &records,
        &accepted_log,
        &names,
        &applied,
        |i| i % COLD_ZONES,
        &zones,
        &targets,
        &sizes,
    )?;
    drop(accepted_log);
    quiet(&calls, SYNC_TIMEOUT).await?;
    report.phase("at 10,000: 1,000 more routes", &mut since);

    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await?.text().await?;
    let stats = ProcessStats::of(daemon.0.id()).unwrap_or_default();
    report.compare(
        "daemon peak memory (VmHWM, 11,000 routes in 7 zones)",
        mib(Some(stats.peak)),
        Anchor::none("not documented (pod requests 250 MiB)"),
        "report",
        Verdict::Info,
    );
    let commit = |q| histogram_quantile(&metrics, "routewarden_journal_commit_duration_seconds", q);
    if let (Some((p50, count, mean)), Some((p99, ..))) = (commit(0.5), commit(0.99)) {
        report.compare(
            "journal commit latency (fsync included; daemon's histogram)",
            format!(
                "p50 {}  p99 {}  mean {}  (n={count})",
                human(Duration::from_secs_f64(p50)),
                human(Duration::from_secs_f64(p99)),
                human(Duration::from_secs_f64(mean))
            ),
            Anchor::none("no journal: every sync relists Azure"),
            "report",
            Verdict::Info,
        );
    }

    eprintln!("counting Azure calls for {STEADY_WINDOW:?} with nothing changing");
    calls.reset();
    let cpu_before = ProcessStats::of(daemon.0.id()).unwrap_or_default().cpu;
    tokio::time::sleep(STEADY_WINDOW).await;
    let cpu = ProcessStats::of(daemon.0.id()).unwrap_or_default().cpu.saturating_sub(cpu_before);
    let writes = arm_writes(&calls);
    report.compare(
        format!("steady state at {}: ARM writes in {} s", COLD_ROUTES + ROUTES, STEADY_WINDOW.as_secs()),
        writes.to_string(),
        Anchor::vs("0", 0.0, writes as f64),
        "must: 0",
        must(writes == 0),
    );
    let sizes: Vec<usize> = sizes.iter().map(|n| n + 2 * ROUTES / COLD_ZONES).collect();
    let window_lists = arm_lists(&calls);
    report.row(
        "steady state: daemon CPU",
        format!("{:.2} s per minute", cpu.as_secs_f64() * 60.0 / STEADY_WINDOW.as_secs_f64()),
        "report",
        Verdict::Info,
    );
    report.notes.push(format!("steady state at {}, Azure calls: {}", COLD_ROUTES + ROUTES, azure_calls(&calls)));
    report.phase("at 10,000: steady state", &mut since);

    // Restart with nothing changed: a new process on the same journal.
    terminate(&mut daemon.0).await?;
    calls.reset();
    let writes_before = records.writes;
    let restarted = Instant::now();
    let mut daemon = ChildGuard(spawn_daemon(&env, &journal, port, &log)?);
    ready(port, SYNC_TIMEOUT).await?;
    let to_ready = restarted.elapsed();
    // Verified: every zone listed once in the new term, then quiet.
    routewarden_e2e::wait_for("every zone verified after the restart", SYNC_TIMEOUT, || async {
        (calls
            .snapshot()
            .iter()
            .filter(|c| c.key.operation == "RecordSets_ListByType" || c.key.operation == "RecordSets_ListByDnsZone")
            .map(|c| c.count)
            .sum::<u64>()
            >= COLD_ZONES as u64)
            .then_some(())
    })
    .await?;
    quiet(&calls, SYNC_TIMEOUT).await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    records.drain();
    let writes = arm_writes(&calls);
    let restart_reads = ExternalDns::reads_per_sync(&sizes);
    let their_restart = anchor_model().read_latency * u32::try_from(restart_reads)?;
    report.compare(
        "restart, nothing changed: process start → /readyz",
        human(to_ready),
        Anchor::vs(
            format!("{}  (a full sync: {restart_reads} reads, one at a time)", human(their_restart)),
            their_restart.as_secs_f64(),
            to_ready.as_secs_f64(),
        ),
        "report",
        Verdict::Info,
    );
    report.compare(
        "restart, nothing changed: ARM writes",
        format!("{writes}  (record sets changed: {})", records.writes - writes_before),
        Anchor::vs("0", 0.0, writes as f64),
        "must: 0",
        must(writes == 0 && records.writes == writes_before),
    );
    report.notes.push(format!("restart, Azure calls until quiet: {}", azure_calls(&calls)));
    let verified = arm_lists(&calls);
    steady_rows(
        report,
        window_lists,
        &format!("{COLD_ZONES} zones, {} record sets", COLD_ROUTES + ROUTES),
        &sizes,
        Some(verified),
    );
    report.phase("restart", &mut since);
    terminate(&mut daemon.0).await?;
    env.shutdown().await;
    Ok(())
}
