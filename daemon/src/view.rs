//! What `routewarden journal` shows: plain, serialisable views of the journal, built here from a
//! [`Journal`] and nowhere else. The admin endpoint serialises exactly these structs and the CLI's
//! remote source deserialises them again, so `--dir` and `--admin` print the same thing.
//!
//! Views hold absolute timestamps only; anything relative ("in 12s", "3m ago") is computed when
//! rendering, so a view does not depend on when it was built. Views never hold key material (the
//! journal has none) and show a work item's payload only as text, or only its size when it is not
//! UTF-8.

use jiff::Timestamp;
use routewarden_store::{
    AppliedRecordSet, CompactReport, DesiredRecordSet, Event, ItemState, Journal, RecordSetKey, ReportedRecord, Result,
    SCHEMA_VERSION, Time, WorkItem, ZoneReport,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

fn ts(t: Time) -> Timestamp {
    t.to_timestamp()
}

/// The last path segment of a zone's ARM resource id: the zone's DNS name.
pub fn zone_name(zone_id: &str) -> &str {
    zone_id.trim_end_matches('/').rsplit('/').next().unwrap_or(zone_id)
}

// ---------------------------------------------------------------------------------------------
// summary

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SummaryView {
    pub dir: String,
    pub schema_version: u32,
    /// The newest schema the process that built this view understands.
    pub supported_schema_version: u32,
    pub cluster_id: Option<String>,
    pub created_at: Option<Timestamp>,
    pub size_bytes: u64,
    /// Entries per table.
    pub tables: BTreeMap<String, u64>,
    /// Work items per kind, then per state (every state listed, zeros included).
    pub queue: BTreeMap<String, BTreeMap<String, u64>>,
    pub oldest_pending: Option<OldestPendingView>,
    pub parked: u64,
    pub first_event_seq: Option<u64>,
    pub last_event_seq: Option<u64>,
    pub migrations: Vec<MigrationView>,
}

/// The pending (or in-flight) work item that has waited longest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OldestPendingView {
    pub id: u64,
    pub kind: String,
    pub key: String,
    pub state: String,
    /// When it last changed; its age is measured from here.
    pub waiting_since: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MigrationView {
    pub version: u32,
    pub name: String,
    pub applied_at: Timestamp,
}

pub fn summary(j: &Journal) -> Result<SummaryView> {
    let s = j.summary()?;
    let queue = s
        .queue
        .into_iter()
        .map(|(kind, by_state)| {
            let counts = ItemState::ALL
                .into_iter()
                .map(|state| (state.as_str().to_owned(), by_state.get(&state).copied().unwrap_or(0)))
                .collect();
            (kind, counts)
        })
        .collect();
    Ok(SummaryView {
        dir: s.dir.display().to_string(),
        schema_version: s.schema_version,
        supported_schema_version: SCHEMA_VERSION,
        cluster_id: s.cluster_id,
        created_at: s.created_at.map(ts),
        size_bytes: s.size_bytes,
        tables: s.tables.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        queue,
        oldest_pending: s.oldest_pending.map(|i| OldestPendingView {
            id: i.id,
            kind: i.kind,
            key: i.key,
            state: i.state.as_str().to_owned(),
            waiting_since: ts(i.updated_at),
        }),
        parked: s.parked,
        first_event_seq: s.first_event_seq,
        last_event_seq: s.last_event_seq,
        migrations: s
            .migrations
            .into_iter()
            .map(|m| MigrationView { version: m.version, name: m.name, applied_at: ts(m.applied_at) })
            .collect(),
    })
}

// ---------------------------------------------------------------------------------------------
// records

/// How a record set's applied state compares with its desired state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordStatus {
    /// Applied exactly as desired.
    InSync,
    /// Applied, but the desired content has changed since.
    Pending,
    /// Desired, never applied.
    NotApplied,
    /// Applied, no longer desired: waiting for deletion.
    Orphaned,
}

impl RecordStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordStatus::InSync => "in-sync",
            RecordStatus::Pending => "pending",
            RecordStatus::NotApplied => "not-applied",
            RecordStatus::Orphaned => "orphaned",
        }
    }

    /// Pure classification of one key's two halves.
    pub fn classify(desired: Option<&DesiredRecordSet>, applied: Option<&AppliedRecordSet>) -> Option<Self> {
        match (desired, applied) {
            (None, None) => None,
            (Some(_), None) => Some(RecordStatus::NotApplied),
            (None, Some(_)) => Some(RecordStatus::Orphaned),
            (Some(d), Some(a)) => {
                let mut dt = d.targets.clone();
                let mut at = a.targets.clone();
                dt.sort();
                at.sort();
                if d.ttl == a.ttl && dt == at && d.owner == a.owner {
                    Some(RecordStatus::InSync)
                } else {
                    Some(RecordStatus::Pending)
                }
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordView {
    /// ARM resource id of the zone.
    pub zone_id: String,
    /// The zone's DNS name (last segment of the id).
    pub zone: String,
    pub name: String,
    pub record_type: String,
    pub status: RecordStatus,
    pub desired: Option<DesiredView>,
    pub applied: Option<AppliedView>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DesiredView {
    pub ttl: u32,
    pub targets: Vec<String>,
    pub owner: String,
    pub sources: Vec<String>,
    pub updated_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppliedView {
    pub ttl: u32,
    pub targets: Vec<String>,
    pub etag: String,
    pub owner: String,
    pub applied_at: Timestamp,
}

/// Desired and applied record sets joined per key, in key order. `zone` matches either the
/// zone's resource id or its DNS name.
pub fn records(j: &Journal, zone: Option<&str>) -> Result<Vec<RecordView>> {
    let mut joined: BTreeMap<RecordSetKey, (Option<DesiredRecordSet>, Option<AppliedRecordSet>)> = BTreeMap::new();
    for (k, d) in j.desired_records(None)? {
        joined.entry(k).or_default().0 = Some(d);
    }
    for (k, a) in j.applied_records(None)? {
        joined.entry(k).or_default().1 = Some(a);
    }
    let wanted = |id: &str| zone.is_none_or(|z| id == z || zone_name(id).eq_ignore_ascii_case(z.trim_end_matches('.')));
    Ok(joined
        .into_iter()
        .filter(|(k, _)| wanted(&k.zone))
        .filter_map(|(k, (d, a))| {
            let status = RecordStatus::classify(d.as_ref(), a.as_ref())?;
            Some(RecordView {
                zone: zone_name(&k.zone).to_owned(),
                zone_id: k.zone,
                name: k.name,
                record_type: k.record_type.as_str().to_owned(),
                status,
                desired: d.map(|d| DesiredView {
                    ttl: d.ttl,
                    targets: d.targets,
                    owner: d.owner,
                    sources: d.sources,
                    updated_at: ts(d.updated_at),
                }),
                applied: a.map(|a| AppliedView {
                    ttl: a.ttl,
                    targets: a.targets,
                    etag: a.etag,
                    owner: a.owner,
                    applied_at: ts(a.applied_at),
                }),
            })
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// certs

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CertsView {
    pub bindings: Vec<BindingView>,
    pub versions: Vec<VersionView>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BindingView {
    pub namespace: String,
    pub gateway: String,
    pub listener: String,
    pub vault: String,
    pub object: String,
    pub pinned_version: Option<String>,
    pub identity: String,
    pub updated_at: Timestamp,
}

/// Metadata of one certificate version; by construction nothing else.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VersionView {
    pub vault: String,
    pub object: String,
    pub version: String,
    pub x5t: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    pub outcome: String,
    pub reason: Option<String>,
    pub seen_at: Timestamp,
    pub applied_at: Option<Timestamp>,
}

pub fn certs(j: &Journal) -> Result<CertsView> {
    let bindings = j
        .cert_bindings()?
        .into_iter()
        .map(|(k, b)| BindingView {
            namespace: k.namespace,
            gateway: k.gateway,
            listener: k.listener,
            vault: b.vault,
            object: b.object,
            pinned_version: b.pinned_version,
            identity: b.identity,
            updated_at: ts(b.updated_at),
        })
        .collect();
    let versions = j
        .cert_versions()?
        .into_iter()
        .map(|(k, v)| VersionView {
            vault: k.vault,
            object: k.object,
            version: k.version,
            x5t: v.x5t,
            not_before: ts(v.not_before),
            not_after: ts(v.not_after),
            outcome: v.outcome.as_str().to_owned(),
            reason: v.reason,
            seen_at: ts(v.seen_at),
            applied_at: v.applied_at.map(ts),
        })
        .collect();
    Ok(CertsView { bindings, versions })
}

// ---------------------------------------------------------------------------------------------
// queue

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueFilter {
    /// `pending`, `in-flight`, `done` or `parked`.
    pub state: Option<String>,
    pub kind: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkItemView {
    pub id: u64,
    pub kind: String,
    pub key: String,
    pub state: String,
    pub attempts: u32,
    /// When it is due (pending), its lease ends (in flight), or it settled (done, parked).
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    /// The payload, when it is UTF-8 text.
    pub payload: Option<String>,
    pub payload_bytes: usize,
    /// A newer payload arrived while in flight; the item runs again after this attempt.
    pub rerun: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<WorkItem> for WorkItemView {
    fn from(i: WorkItem) -> Self {
        let payload_bytes = i.payload.len();
        WorkItemView {
            id: i.id,
            kind: i.kind,
            key: i.key,
            state: i.state.as_str().to_owned(),
            attempts: i.attempts,
            next_attempt_at: ts(i.next_attempt_at),
            last_error: i.last_error,
            payload: String::from_utf8(i.payload).ok(),
            payload_bytes,
            rerun: i.rerun,
            created_at: ts(i.created_at),
            updated_at: ts(i.updated_at),
        }
    }
}

/// Parses a state name as `--state` and the admin query take it.
pub fn parse_state(s: &str) -> Option<ItemState> {
    ItemState::ALL.into_iter().find(|st| st.as_str() == s)
}

pub fn queue(j: &Journal, filter: &QueueFilter) -> Result<Vec<WorkItemView>> {
    Ok(j.work_items()?
        .into_iter()
        .filter(|i| filter.state.as_deref().is_none_or(|s| i.state.as_str() == s))
        .filter(|i| filter.kind.as_deref().is_none_or(|k| i.kind == k))
        .map(WorkItemView::from)
        .collect())
}

// ---------------------------------------------------------------------------------------------
// events

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventView {
    pub seq: u64,
    pub at: Timestamp,
    pub action: String,
    pub subject: String,
    pub message: String,
}

impl From<Event> for EventView {
    fn from(e: Event) -> Self {
        EventView { seq: e.seq, at: ts(e.at), action: e.action, subject: e.subject, message: e.message }
    }
}

/// Which events to show. Without `after` or `since`, `limit` keeps the newest entries (a tail);
/// with either, it keeps the first entries after that point (a page).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFilter {
    pub after: Option<u64>,
    pub since: Option<Timestamp>,
    pub limit: Option<usize>,
}

/// `--since` and the admin `since` parameter: RFC 3339, or a duration back from `now` such as `10m`.
pub fn parse_since(s: &str, now: Timestamp) -> std::result::Result<Timestamp, String> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("--since {s:?} is neither a duration like 10m nor an RFC 3339 time ({e})"))?;
    let span = jiff::SignedDuration::try_from(d).map_err(|e| format!("--since {s:?}: {e}"))?;
    now.checked_sub(span).map_err(|e| format!("--since {s:?}: {e}"))
}

impl EventFilter {
    pub fn admits(&self, e: &Event) -> bool {
        self.after.is_none_or(|a| e.seq > a) && self.since.is_none_or(|s| ts(e.at) >= s)
    }
}

/// The events selected by `filter`, oldest first, and the sequence number a follower continues
/// after (the newest event in the log when the selection was made).
pub fn events(j: &Journal, filter: &EventFilter) -> Result<(Vec<EventView>, u64)> {
    const PAGE: usize = 1024;
    let last = j.last_event()?.map(|e| e.seq).unwrap_or(0);
    let cursor = last.max(filter.after.unwrap_or(0));
    let limit = filter.limit.unwrap_or(usize::MAX);
    if limit == 0 {
        return Ok((Vec::new(), cursor));
    }
    if filter.after.is_none() && filter.since.is_none() {
        // Sequence numbers are gap-free and retention only drops the oldest, so the tail is a range.
        let from = match filter.limit {
            Some(n) => last.saturating_sub(n as u64),
            None => 0,
        };
        let out = j.events_after(from, limit)?.into_iter().filter(|e| e.seq <= last).map(EventView::from).collect();
        return Ok((out, cursor));
    }
    let mut out = Vec::new();
    let mut at = filter.after.unwrap_or(0);
    'pages: loop {
        let page = j.events_after(at, PAGE)?;
        let Some(tail) = page.last() else { break };
        at = tail.seq;
        for e in page {
            if e.seq > last {
                break 'pages;
            }
            if filter.admits(&e) {
                out.push(EventView::from(e));
                if out.len() >= limit {
                    break 'pages;
                }
            }
        }
    }
    Ok((out, cursor))
}

// ---------------------------------------------------------------------------------------------
// stale

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StaleView {
    /// One entry per verified zone; empty until the DNS verifier has run.
    pub zones: Vec<ZoneReportView>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZoneReportView {
    pub zone_id: String,
    pub zone: String,
    pub verified_at: Timestamp,
    pub record_sets: u64,
    pub limit: u64,
    /// Share of the zone's record-set limit still free, in percent (one decimal).
    pub headroom_percent: f64,
    pub stale: Vec<ReportedRecordView>,
    pub foreign_blocking: Vec<ReportedRecordView>,
    pub drift_repaired: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportedRecordView {
    pub name: String,
    pub record_type: String,
    pub owner: Option<String>,
    pub detail: String,
}

impl From<ReportedRecord> for ReportedRecordView {
    fn from(r: ReportedRecord) -> Self {
        ReportedRecordView {
            name: r.name,
            record_type: r.record_type.as_str().to_owned(),
            owner: r.owner,
            detail: r.detail,
        }
    }
}

/// Free share of `limit`, in percent rounded to one decimal; 0 when the limit is unknown (0).
pub fn headroom_percent(record_sets: u64, limit: u64) -> f64 {
    if limit == 0 {
        return 0.0;
    }
    let free = limit.saturating_sub(record_sets) as f64 / limit as f64 * 100.0;
    (free * 10.0).round() / 10.0
}

fn zone_report(zone_id: String, r: ZoneReport) -> ZoneReportView {
    ZoneReportView {
        zone: zone_name(&zone_id).to_owned(),
        zone_id,
        verified_at: ts(r.verified_at),
        record_sets: r.record_sets,
        limit: r.limit,
        headroom_percent: headroom_percent(r.record_sets, r.limit),
        stale: r.stale.into_iter().map(Into::into).collect(),
        foreign_blocking: r.foreign_blocking.into_iter().map(Into::into).collect(),
        drift_repaired: r.drift_repaired,
    }
}

pub fn stale(j: &Journal) -> Result<StaleView> {
    Ok(StaleView { zones: j.zone_reports()?.into_iter().map(|(z, r)| zone_report(z, r)).collect() })
}

// ---------------------------------------------------------------------------------------------
// compact

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactView {
    pub events_pruned: u64,
    pub done_items_pruned: u64,
    pub cert_versions_pruned: u64,
    pub size_before: u64,
    pub size_after: u64,
}

impl From<CompactReport> for CompactView {
    fn from(r: CompactReport) -> Self {
        CompactView {
            events_pruned: r.events_pruned,
            done_items_pruned: r.done_items_pruned,
            cert_versions_pruned: r.cert_versions_pruned,
            size_before: r.size_before,
            size_after: r.size_after,
        }
    }
}

pub fn compact(j: &Journal, now: Time) -> Result<CompactView> {
    Ok(j.compact(now)?.into())
}

// ---------------------------------------------------------------------------------------------
// export

/// One line of `routewarden journal export`: every table as typed objects, tagged by `table`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "table", rename_all = "snake_case")]
pub enum ExportLine {
    /// Always the first line.
    Meta(ExportMeta),
    Record(RecordView),
    CertBinding(BindingView),
    CertVersion(VersionView),
    WorkItem(WorkItemView),
    ZoneReport(ZoneReportView),
    Event(EventView),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportMeta {
    pub exported_at: Timestamp,
    pub routewarden_version: String,
    pub summary: SummaryView,
}

/// Streams the export line by line to `emit`, which stops the export by returning `false`.
/// Events go in pages, so a large log is never held in memory at once.
pub fn export(j: &Journal, now: Time, mut emit: impl FnMut(ExportLine) -> bool) -> Result<()> {
    let meta = ExportMeta {
        exported_at: ts(now),
        routewarden_version: env!("CARGO_PKG_VERSION").to_owned(),
        summary: summary(j)?,
    };
    if !emit(ExportLine::Meta(meta)) {
        return Ok(());
    }
    let certs = certs(j)?;
    let lines = records(j, None)?
        .into_iter()
        .map(ExportLine::Record)
        .chain(certs.bindings.into_iter().map(ExportLine::CertBinding))
        .chain(certs.versions.into_iter().map(ExportLine::CertVersion))
        .chain(queue(j, &QueueFilter::default())?.into_iter().map(ExportLine::WorkItem))
        .chain(stale(j)?.zones.into_iter().map(ExportLine::ZoneReport));
    for line in lines {
        if !emit(line) {
            return Ok(());
        }
    }
    let mut after = 0;
    loop {
        let page = j.events_after(after, 1024)?;
        let Some(last) = page.last() else { return Ok(()) };
        after = last.seq;
        for e in page {
            if !emit(ExportLine::Event(e.into())) {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use routewarden_store::Time;

    fn d(targets: &[&str], ttl: u32) -> DesiredRecordSet {
        DesiredRecordSet {
            ttl,
            targets: targets.iter().map(|s| s.to_string()).collect(),
            owner: "o".into(),
            sources: vec![],
            updated_at: Time::from_millis(0),
        }
    }

    fn a(targets: &[&str], ttl: u32) -> AppliedRecordSet {
        AppliedRecordSet {
            etag: "e".into(),
            owner: "o".into(),
            ttl,
            targets: targets.iter().map(|s| s.to_string()).collect(),
            applied_at: Time::from_millis(0),
        }
    }

    #[test]
    fn record_status_compares_desired_with_applied() {
        type Case = (&'static str, Option<DesiredRecordSet>, Option<AppliedRecordSet>, Option<RecordStatus>);
        let cases: &[Case] = &[
            (
                "same content is in sync",
                Some(d(&["1.1.1.1"], 300)),
                Some(a(&["1.1.1.1"], 300)),
                Some(RecordStatus::InSync),
            ),
            (
                "target order does not matter",
                Some(d(&["1", "2"], 300)),
                Some(a(&["2", "1"], 300)),
                Some(RecordStatus::InSync),
            ),
            (
                "other targets are pending",
                Some(d(&["1.1.1.1"], 300)),
                Some(a(&["2.2.2.2"], 300)),
                Some(RecordStatus::Pending),
            ),
            (
                "another ttl is pending",
                Some(d(&["1.1.1.1"], 60)),
                Some(a(&["1.1.1.1"], 300)),
                Some(RecordStatus::Pending),
            ),
            ("desired only is not applied", Some(d(&["1.1.1.1"], 300)), None, Some(RecordStatus::NotApplied)),
            ("applied only is orphaned", None, Some(a(&["1.1.1.1"], 300)), Some(RecordStatus::Orphaned)),
            ("neither is nothing", None, None, None),
        ];
        for (what, desired, applied, want) in cases {
            assert_eq!(RecordStatus::classify(desired.as_ref(), applied.as_ref()), *want, "{what}");
        }
    }

    #[test]
    fn headroom_is_the_free_share_of_the_limit() {
        assert_eq!(headroom_percent(9000, 10000), 10.0);
        assert_eq!(headroom_percent(1, 3), 66.7);
        assert_eq!(headroom_percent(12, 10), 0.0, "over the limit is no headroom, not negative");
        assert_eq!(headroom_percent(5, 0), 0.0, "an unknown limit");
    }

    #[test]
    fn zone_name_is_the_last_segment_of_the_resource_id() {
        assert_eq!(
            zone_name("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/dnszones/example.com"),
            "example.com"
        );
        assert_eq!(zone_name("example.com"), "example.com");
    }

    #[test]
    fn since_takes_a_duration_or_a_timestamp() {
        let now: Timestamp = "2026-01-01T12:00:00Z".parse().unwrap_or(Timestamp::UNIX_EPOCH);
        assert_eq!(parse_since("10m", now).map(|t| t.to_string()), Ok("2026-01-01T11:50:00Z".to_owned()));
        assert_eq!(
            parse_since("2026-01-01T10:00:00Z", now).map(|t| t.to_string()),
            Ok("2026-01-01T10:00:00Z".to_owned())
        );
        assert!(parse_since("soon", now).is_err());
    }
}
