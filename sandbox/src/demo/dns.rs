//! Seed 000's DNS walkthrough against a running sandbox, as `routewarden-sandbox demo` shows it
//! after the TLS one.
//!
//! [`run`] takes the seed's steps in order. It applies the ClusterExternalDNS `demo-cluster-dns`
//! and waits until the zone holds an A record set per Gateway (`a`, `b`) and the resource reports
//! `Ready=True` with every record set applied. Then it deletes it, as the seed does before its
//! namespaced step; with the default `deletionPolicy: Retain` its record sets stay in the zone.
//! It applies Gateway `app-a/c-gateway` (label `zone: c`) and its HTTPRoute, waits for the Gateway
//! to be `Programmed` (the seed's `kubectl wait`), applies the namespaced ExternalDNS
//! `app-a/demo-ns-dns` (filter `gatewayLabels: zone=c`), and waits for `c` the same way.
//!
//! After each wait it builds a [`DnsReport`] from Azure and the cluster, never from routewarden's
//! memory. The report holds the zone's A record sets read through local Azure's admin API, shaped
//! like `az network dns record-set a list -o table` plus FQDN, addresses and routewarden's owner
//! metadata, and the `status` of every DNS resource. The last report also holds routewarden's
//! stale-record report, read from its admin endpoint and rendered as `routewarden journal stale`
//! renders it.

use std::fmt;
use std::time::Duration;

use anyhow::Context as _;
use kube::api::{Api, DeleteParams, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use routewarden::view::StaleView;
use routewarden_sandbox_azure::admin::Admin;
use serde_json::Value;

use super::{C_GATEWAY_YAML, EXTERNALDNS_YAML, FIELD_MANAGER, apply_objects, str_at, yaml_objects};

/// The record-set metadata key routewarden writes its owner id into.
pub const OWNER_METADATA: &str = "routewarden-owner";
/// The record sets the ClusterExternalDNS publishes: one per Gateway of the TLS walkthrough.
pub const CLUSTER_RECORDS: [&str; 2] = ["a", "b"];
/// The record set the namespaced ExternalDNS publishes: only `c-gateway` is in its namespace and
/// carries `zone=c`.
pub const NAMESPACED_RECORDS: [&str; 1] = ["c"];

const GROUP: &str = "approuting.kubernetes.azure.com";
const VERSION: &str = "v1alpha1";

/// A ClusterExternalDNS or an ExternalDNS.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum DnsResource {
    Cluster { name: String },
    Namespaced { namespace: String, name: String },
}

impl DnsResource {
    /// The walkthrough's ClusterExternalDNS.
    pub fn demo_cluster() -> Self {
        DnsResource::Cluster { name: "demo-cluster-dns".into() }
    }

    /// The walkthrough's namespaced ExternalDNS.
    pub fn demo_namespaced() -> Self {
        DnsResource::Namespaced { namespace: "app-a".into(), name: "demo-ns-dns".into() }
    }

    pub fn name(&self) -> &str {
        match self {
            DnsResource::Cluster { name } | DnsResource::Namespaced { name, .. } => name,
        }
    }

    fn api(&self, client: &kube::Client) -> Api<DynamicObject> {
        match self {
            DnsResource::Cluster { .. } => Api::all_with(client.clone(), &cluster_dns_resource()),
            DnsResource::Namespaced { namespace, .. } => {
                Api::namespaced_with(client.clone(), namespace, &namespaced_dns_resource())
            }
        }
    }
}

impl fmt::Display for DnsResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsResource::Cluster { name } => write!(f, "ClusterExternalDNS {name}"),
            DnsResource::Namespaced { namespace, name } => write!(f, "ExternalDNS {namespace}/{name}"),
        }
    }
}

fn cluster_dns_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(GROUP, VERSION, "ClusterExternalDNS"),
        "clusterexternaldnses",
    )
}

fn namespaced_dns_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, VERSION, "ExternalDNS"), "externaldnses")
}

fn objects_of_kind(yaml: &str, kind: &str) -> anyhow::Result<Vec<Value>> {
    Ok(yaml_objects(yaml)?.into_iter().filter(|o| o["kind"] == kind).collect())
}

/// The walkthrough's ClusterExternalDNS, as applied.
pub fn cluster_dns_objects() -> anyhow::Result<Vec<Value>> {
    objects_of_kind(EXTERNALDNS_YAML, "ClusterExternalDNS")
}

/// The walkthrough's namespaced ExternalDNS, as applied.
pub fn namespaced_dns_objects() -> anyhow::Result<Vec<Value>> {
    objects_of_kind(EXTERNALDNS_YAML, "ExternalDNS")
}

/// The zone the walkthrough publishes into: (resource group, zone name), from its manifests.
pub fn zone() -> anyhow::Result<(String, String)> {
    let objects = cluster_dns_objects()?;
    let id = objects
        .first()
        .and_then(|o| str_at(o, "/spec/dnsZoneResourceIDs/0"))
        .context("the walkthrough's ClusterExternalDNS names no zone")?;
    let resource_group = segment_after(id, "resourceGroups").context("zone id without a resource group")?;
    let name = id.rsplit('/').next().unwrap_or_default();
    Ok((resource_group.to_string(), name.to_string()))
}

/// The path segment after `key` (case-insensitive, as ARM ids are).
fn segment_after<'a>(id: &'a str, key: &str) -> Option<&'a str> {
    let mut parts = id.split('/');
    parts.by_ref().find(|p| p.eq_ignore_ascii_case(key))?;
    parts.next().filter(|p| !p.is_empty())
}

/// One A record set, as `az network dns record-set a list` shows it, plus its addresses and owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ARecordSet {
    pub name: String,
    pub resource_group: String,
    pub ttl: Option<u64>,
    /// `A`.
    pub record_type: String,
    /// As Azure returns it, with the trailing dot.
    pub fqdn: String,
    /// IPv4 addresses, in the record set's order.
    pub ips: Vec<String>,
    /// The `routewarden-owner` metadata: `<cluster id>/<DNS resource>`.
    pub owner: Option<String>,
}

impl ARecordSet {
    /// The record set as ARM renders it, if it is an A record set.
    fn from_arm(set: &Value) -> Option<Self> {
        let record_type = str_at(set, "/type")?.rsplit('/').next()?.to_string();
        if record_type != "A" {
            return None;
        }
        let p = &set["properties"];
        Some(ARecordSet {
            name: str_at(set, "/name")?.to_string(),
            resource_group: str_at(set, "/id").and_then(|id| segment_after(id, "resourceGroups")).unwrap_or("-").into(),
            ttl: p.get("TTL").or_else(|| p.get("ttl")).and_then(Value::as_u64),
            record_type,
            fqdn: str_at(p, "/fqdn").unwrap_or_default().to_string(),
            ips: p["ARecords"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| str_at(r, "/ipv4Address").map(str::to_string))
                .collect(),
            owner: p.pointer("/metadata").and_then(|m| m.get(OWNER_METADATA)).and_then(Value::as_str).map(Into::into),
        })
    }
}

/// A status condition: status, reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionState {
    pub status: String,
    pub reason: String,
    pub message: String,
}

impl ConditionState {
    fn of(status: &Value, type_: &str) -> Option<Self> {
        let c = status.pointer("/conditions")?.as_array()?.iter().find(|c| c["type"] == type_)?;
        Some(ConditionState {
            status: str_at(c, "/status").unwrap_or("Unknown").into(),
            reason: str_at(c, "/reason").unwrap_or_default().into(),
            message: str_at(c, "/message").unwrap_or_default().into(),
        })
    }

    fn is_true(&self) -> bool {
        self.status == "True"
    }
}

impl fmt::Display for ConditionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.status, self.reason)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// What a DNS resource's `status` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsResourceStatus {
    pub resource: DnsResource,
    pub ready: Option<ConditionState>,
    pub degraded: Option<ConditionState>,
    pub records_desired: Option<u64>,
    pub records_applied: Option<u64>,
    pub conflicts: Option<u64>,
    pub stale: Option<u64>,
    pub unzoned: Option<u64>,
}

impl DnsResourceStatus {
    fn of(resource: DnsResource, obj: &DynamicObject) -> Self {
        let status = obj.data.get("status").cloned().unwrap_or_default();
        let count = |field: &str| status.get(field).and_then(Value::as_u64);
        DnsResourceStatus {
            ready: ConditionState::of(&status, "Ready"),
            degraded: ConditionState::of(&status, "Degraded"),
            records_desired: count("recordsDesired"),
            records_applied: count("recordsApplied"),
            conflicts: count("conflicts"),
            stale: count("stale"),
            unzoned: count("unzoned"),
            resource,
        }
    }
}

/// routewarden's stale-record report, as its admin endpoint served it.
#[derive(Debug, Clone, PartialEq)]
pub struct StaleReport {
    /// The admin endpoint it was read from.
    pub admin_url: String,
    /// The report, or why it could not be read.
    pub view: Result<StaleView, String>,
}

/// What the demo shows after each DNS step.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsReport {
    pub resource_group: String,
    pub zone: String,
    /// The zone's A record sets, by name.
    pub record_sets: Vec<ARecordSet>,
    /// Every ClusterExternalDNS and ExternalDNS in the cluster.
    pub resources: Vec<DnsResourceStatus>,
    /// routewarden's stale-record report, when asked for.
    pub stale: Option<StaleReport>,
}

impl DnsReport {
    /// The A record set `name`, if the zone holds it.
    pub fn record_set(&self, name: &str) -> Option<&ARecordSet> {
        self.record_sets.iter().find(|s| s.name.eq_ignore_ascii_case(name))
    }

    /// The status of `resource`, if it exists.
    pub fn resource(&self, resource: &DnsResource) -> Option<&DnsResourceStatus> {
        self.resources.iter().find(|r| r.resource == *resource)
    }

    /// What is still missing before `resource` has published `records`: the record sets absent
    /// from the zone, and the resource itself unless it is `Ready=True` with at least that many
    /// record sets applied.
    pub fn missing(&self, records: &[&str], resource: &DnsResource) -> Vec<String> {
        let mut missing: Vec<String> = records
            .iter()
            .filter(|r| self.record_set(r).is_none())
            .map(|r| format!("A record set {r} in zone {}", self.zone))
            .collect();
        match self.resource(resource) {
            None => missing.push(format!("{resource} (it does not exist)")),
            Some(s) => {
                match &s.ready {
                    Some(ready) if ready.is_true() => {}
                    Some(ready) => missing.push(format!("{resource} Ready=True (it is {ready})")),
                    None => missing.push(format!("{resource} Ready=True (no Ready condition yet)")),
                }
                let applied = s.records_applied.unwrap_or(0);
                if applied < records.len() as u64 {
                    missing.push(format!("{resource} recordsApplied {} (it is {applied})", records.len()));
                }
            }
        }
        missing
    }
}

/// A table the way the Azure CLI's `-o table` draws it: headers, a dashed rule as wide as each
/// column, columns two spaces apart, no borders.
fn az_table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING).force_no_tty();
    table.set_header(header.to_vec());
    table.add_row(widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>());
    for row in rows {
        table.add_row(row);
    }
    let mut out = String::new();
    for line in table.lines() {
        // The preset pads every cell by one space: drop the first column's and the line ends'.
        let line = line.strip_prefix(' ').unwrap_or(&line).trim_end();
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn count(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |n| n.to_string())
}

/// A condition as `status (reason)`; the messages are in `kubectl describe`.
fn condition(c: &Option<ConditionState>) -> String {
    match c {
        None => "-".into(),
        Some(c) => format!("{} ({})", c.status, c.reason),
    }
}

impl fmt::Display for DnsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "$ az network dns record-set a list -g {} -z {} -o table", self.resource_group, self.zone)?;
        if self.record_sets.is_empty() {
            writeln!(f, "(no A record sets)")?;
        } else {
            let rows = self
                .record_sets
                .iter()
                .map(|s| {
                    vec![
                        s.name.clone(),
                        s.resource_group.clone(),
                        count(s.ttl),
                        s.record_type.clone(),
                        s.fqdn.clone(),
                        if s.ips.is_empty() { "-".into() } else { s.ips.join(",") },
                        s.owner.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            f.write_str(&az_table(&["Name", "ResourceGroup", "Ttl", "Type", "Fqdn", "IPs", OWNER_METADATA], rows))?;
        }
        writeln!(f)?;
        writeln!(f, "DNS resources' status:")?;
        if self.resources.is_empty() {
            writeln!(f, "(no ClusterExternalDNS or ExternalDNS)")?;
        } else {
            let rows = self
                .resources
                .iter()
                .map(|r| {
                    vec![
                        r.resource.to_string(),
                        condition(&r.ready),
                        condition(&r.degraded),
                        count(r.records_desired),
                        count(r.records_applied),
                        count(r.conflicts),
                        count(r.stale),
                        count(r.unzoned),
                    ]
                })
                .collect();
            f.write_str(&az_table(
                &["Resource", "Ready", "Degraded", "Desired", "Applied", "Conflicts", "Stale", "Unzoned"],
                rows,
            ))?;
        }
        if let Some(stale) = &self.stale {
            writeln!(f)?;
            writeln!(f, "$ routewarden journal stale --admin {}", stale.admin_url)?;
            match &stale.view {
                Ok(view) => {
                    let style = routewarden::cli::render::Style::plain(routewarden_store::Time::now());
                    f.write_str(&routewarden::cli::render::stale(view, &style))?;
                }
                Err(e) => writeln!(f, "could not read the stale report: {e}")?,
            }
        }
        Ok(())
    }
}

/// Every DNS resource of one kind in the cluster; none when the kind is not served.
async fn list_resources(client: &kube::Client, namespaced: bool) -> anyhow::Result<Vec<DnsResourceStatus>> {
    let ar = if namespaced { namespaced_dns_resource() } else { cluster_dns_resource() };
    let listed = match Api::<DynamicObject>::all_with(client.clone(), &ar).list(&Default::default()).await {
        Ok(list) => list.items,
        Err(kube::Error::Api(e)) if e.code == 404 => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("failed to list {}", ar.plural)),
    };
    Ok(listed
        .iter()
        .map(|obj| {
            let name = obj.metadata.name.clone().unwrap_or_default();
            let resource = match (namespaced, obj.metadata.namespace.clone()) {
                (true, Some(namespace)) => DnsResource::Namespaced { namespace, name },
                _ => DnsResource::Cluster { name },
            };
            DnsResourceStatus::of(resource, obj)
        })
        .collect())
}

/// The report as Azure and the cluster show it now (nothing need exist yet), without the stale
/// report.
pub async fn dns_report(client: &kube::Client, azure: &Admin) -> anyhow::Result<DnsReport> {
    let (resource_group, zone) = zone()?;
    let sets = azure.list_record_sets(&zone).with_context(|| format!("failed to list the record sets of {zone}"))?;
    let mut record_sets: Vec<ARecordSet> = sets.iter().filter_map(ARecordSet::from_arm).collect();
    record_sets.sort_by(|a, b| a.name.cmp(&b.name));
    let mut resources = list_resources(client, false).await?;
    resources.extend(list_resources(client, true).await?);
    resources.sort_by(|a, b| a.resource.cmp(&b.resource));
    Ok(DnsReport { resource_group, zone, record_sets, resources, stale: None })
}

/// routewarden's stale-record report from its admin endpoint `admin_url`, read the way
/// `routewarden journal stale --admin` reads it.
pub async fn stale_report(admin_url: &str) -> StaleReport {
    use routewarden::cli::journal::{Remote, Source};
    let view = match Remote::new(admin_url) {
        Ok(remote) => Source::Remote(remote).stale().await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    StaleReport { admin_url: admin_url.to_string(), view }
}

/// Polls [`dns_report`] until the zone holds `records` and `resource` is `Ready=True` with them
/// applied, for at most `timeout`; the error then names what is still missing.
pub async fn wait_for_records(
    client: &kube::Client,
    azure: &Admin,
    records: &[&str],
    resource: &DnsResource,
    timeout: Duration,
) -> anyhow::Result<DnsReport> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let report = dns_report(client, azure).await?;
        let missing = report.missing(records, resource);
        if missing.is_empty() {
            return Ok(report);
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "routewarden did not publish {resource}'s records within {}s; still missing: {}",
                timeout.as_secs(),
                missing.join("; ")
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Polls [`dns_report`] until `resource` counts `stale` stale record sets in its zones, for at
/// most `timeout`.
pub async fn wait_for_stale(
    client: &kube::Client,
    azure: &Admin,
    resource: &DnsResource,
    stale: usize,
    timeout: Duration,
) -> anyhow::Result<DnsReport> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let report = dns_report(client, azure).await?;
        let counted = report.resource(resource).and_then(|r| r.stale);
        if counted.is_some_and(|n| n >= stale as u64) {
            return Ok(report);
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "routewarden's zone verification did not report {stale} stale record sets for {resource} within {}s (it counts {})",
                timeout.as_secs(),
                counted.map_or_else(|| "none".to_owned(), |n| n.to_string())
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Polls until `namespace/gateway` is `Programmed=True`, as `kubectl wait --for=condition=programmed`
/// does, for at most `timeout`.
pub async fn wait_for_programmed(
    client: &kube::Client,
    namespace: &str,
    gateway: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let gateways: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &super::gateway_resource("Gateway", "gateways"));
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let gw =
            gateways.get_opt(gateway).await.with_context(|| format!("failed to read Gateway {namespace}/{gateway}"))?;
        let programmed =
            gw.as_ref().and_then(|g| g.data.get("status")).and_then(|s| ConditionState::of(s, "Programmed"));
        if programmed.as_ref().is_some_and(ConditionState::is_true) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            let now = match (&gw, programmed) {
                (None, _) => "it does not exist".to_string(),
                (Some(_), None) => "no Programmed condition yet".to_string(),
                (Some(_), Some(c)) => format!("it is {c}"),
            };
            anyhow::bail!(
                "Gateway {namespace}/{gateway} was not Programmed=True within {}s ({now})",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Deletes `resource` and waits until it is gone (a finalizer may hold it while routewarden
/// removes its record sets); `false` when it did not exist.
pub async fn delete(client: &kube::Client, resource: &DnsResource, timeout: Duration) -> anyhow::Result<bool> {
    let api = resource.api(client);
    match api.delete(resource.name(), &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("failed to delete {resource}")),
    }
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let Some(obj) = api.get_opt(resource.name()).await.with_context(|| format!("failed to read {resource}"))?
        else {
            return Ok(true);
        };
        if tokio::time::Instant::now() >= deadline {
            let finalizers = obj.metadata.finalizers.unwrap_or_default();
            anyhow::bail!(
                "{resource} still exists {}s after its deletion (finalizers: {finalizers:?})",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Deletes what a previous run's namespaced step left in a saved sandbox (the ExternalDNS and
/// `c-gateway` with its route), so the ClusterExternalDNS step starts where the seed starts:
/// otherwise both resources would claim `c` and the second one would report a conflict.
/// Returns what it deleted, as `kind namespace/name`.
pub async fn reset(client: &kube::Client, timeout: Duration) -> anyhow::Result<Vec<String>> {
    let mut deleted = Vec::new();
    if delete(client, &DnsResource::demo_namespaced(), timeout).await? {
        deleted.push(DnsResource::demo_namespaced().to_string());
    }
    for obj in yaml_objects(C_GATEWAY_YAML)? {
        let kind = str_at(&obj, "/kind").unwrap_or_default();
        let ns = str_at(&obj, "/metadata/namespace").unwrap_or("default");
        let name = str_at(&obj, "/metadata/name").unwrap_or_default();
        let plural = format!("{}s", kind.to_ascii_lowercase());
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &super::gateway_resource(kind, &plural));
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => deleted.push(format!("{kind} {ns}/{name}")),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e).with_context(|| format!("failed to delete {kind} {ns}/{name}")),
        }
    }
    Ok(deleted)
}

/// The two reports of the walkthrough.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsWalkthrough {
    /// Once the ClusterExternalDNS has published `a` and `b`.
    pub cluster: DnsReport,
    /// Once the namespaced ExternalDNS has published `c`, with the stale report.
    pub namespaced: DnsReport,
}

/// Runs the seed's DNS walkthrough (see the module documentation), telling `say` each step and
/// each report as it goes; every wait lasts at most `timeout`. `daemon_admin` is routewarden's
/// admin endpoint, for the stale report.
pub async fn run(
    client: &kube::Client,
    azure: &Admin,
    daemon_admin: &str,
    timeout: Duration,
    mut say: impl FnMut(&str),
) -> anyhow::Result<DnsWalkthrough> {
    let (_, zone) = zone()?;
    let secs = timeout.as_secs();
    let reset = reset(client, timeout).await?;
    if !reset.is_empty() {
        say("Deleting what an earlier run's namespaced step left, so the walkthrough starts where the seed does:");
        for deleted in &reset {
            say(&format!("  {deleted}"));
        }
        say("");
    }

    let cluster_dns = DnsResource::demo_cluster();
    say(&format!("Applying seed 000's ClusterExternalDNS (server-side, as {FIELD_MANAGER}):"));
    for applied in apply_objects(client, &cluster_dns_objects()?, FIELD_MANAGER).await? {
        say(&format!("  {applied}"));
    }
    say("");
    say(&format!(
        "Waiting up to {secs}s for routewarden to publish A record sets {} in {zone} and report {cluster_dns} Ready…",
        CLUSTER_RECORDS.join(" and ")
    ));
    let cluster = wait_for_records(client, azure, &CLUSTER_RECORDS, &cluster_dns, timeout).await?;
    say("");
    say(cluster.to_string().trim_end());
    say("");

    say(&format!(
        "Deleting {cluster_dns}, as the seed does before its namespaced step (deletionPolicy Retain: its record sets stay in the zone)."
    ));
    delete(client, &cluster_dns, timeout).await?;
    say("");
    say("Applying the seed's Gateway labelled zone=c and its HTTPRoute:");
    for applied in apply_objects(client, &yaml_objects(C_GATEWAY_YAML)?, FIELD_MANAGER).await? {
        say(&format!("  {applied}"));
    }
    say(&format!("Waiting up to {secs}s for Gateway app-a/c-gateway to be Programmed…"));
    wait_for_programmed(client, "app-a", "c-gateway", timeout).await?;
    say("");

    let namespaced_dns = DnsResource::demo_namespaced();
    say(&format!("Applying seed 000's namespaced ExternalDNS with filter gatewayLabels zone=c (as {FIELD_MANAGER}):"));
    for applied in apply_objects(client, &namespaced_dns_objects()?, FIELD_MANAGER).await? {
        say(&format!("  {applied}"));
    }
    say("");
    say(&format!(
        "Waiting up to {secs}s for routewarden to publish A record set {} in {zone} and report {namespaced_dns} Ready…",
        NAMESPACED_RECORDS.join(" and ")
    ));
    wait_for_records(client, azure, &NAMESPACED_RECORDS, &namespaced_dns, timeout).await?;
    say(&format!(
        "Waiting up to {secs}s for routewarden's zone verification to report {}, kept from {cluster_dns}, as stale…",
        CLUSTER_RECORDS.join(" and ")
    ));
    let mut namespaced = wait_for_stale(client, azure, &namespaced_dns, CLUSTER_RECORDS.len(), timeout).await?;
    namespaced.stale = Some(stale_report(daemon_admin).await);
    say("");
    say(namespaced.to_string().trim_end());
    Ok(DnsWalkthrough { cluster, namespaced })
}
