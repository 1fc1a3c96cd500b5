//! Rendering views as text: JSON, YAML, and aligned tables for people. Tables are coloured only
//! when stdout is a terminal and `NO_COLOR` is unset, and only in the state/outcome/status
//! columns. Times relative to now ("in 12s", "3m ago") are computed here, from the `now` in
//! [`Style`], never stored in views.

use crate::view::{CertsView, CompactView, EventView, RecordView, StaleView, SummaryView, WorkItemView};
use comfy_table::{Cell, Color, Table, presets};
use jiff::Timestamp;
use routewarden_store::Time;
use std::io::IsTerminal;

/// How to render: colours on or off, and the instant relative times are measured from.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    pub color: bool,
    pub now: Time,
}

impl Style {
    /// Colour when stdout is a terminal and `NO_COLOR` is unset or empty.
    pub fn detect(now: Time) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style { color: !no_color && std::io::stdout().is_terminal(), now }
    }

    pub fn plain(now: Time) -> Self {
        Style { color: false, now }
    }
}

pub fn json<T: serde::Serialize>(v: &T) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": {:?}}}", e.to_string()));
    s.push('\n');
    s
}

pub fn json_line<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|e| format!("{{\"error\": {:?}}}", e.to_string()))
}

pub fn yaml<T: serde::Serialize>(v: &T) -> String {
    serde_yaml_ng::to_string(v).unwrap_or_else(|e| format!("error: {e:?}\n"))
}

/// The colour of a state, outcome or status word; `None` for words without one.
pub fn state_color(word: &str) -> Option<Color> {
    match word {
        "pending" | "not-applied" => Some(Color::Yellow),
        "in-flight" | "seen" => Some(Color::Cyan),
        "done" | "applied" | "in-sync" => Some(Color::Green),
        "parked" | "rejected" | "orphaned" => Some(Color::Red),
        _ => None,
    }
}

fn state_cell(word: &str, style: &Style) -> Cell {
    let cell = Cell::new(word);
    match state_color(word) {
        Some(c) if style.color => cell.fg(c),
        _ => cell,
    }
}

fn table(style: &Style, header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    if style.color {
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
    t.set_header(header.to_vec());
    t
}

/// A table as text: no border, first column flush left, no trailing blanks.
fn finish(t: &Table) -> String {
    let mut out = String::new();
    for line in t.lines() {
        let line = line.strip_prefix(' ').unwrap_or(&line);
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn dash(s: Option<&str>) -> String {
    match s {
        Some(s) if !s.is_empty() => s.to_owned(),
        _ => "-".to_owned(),
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// RFC 3339 in UTC, to the second.
pub fn time(t: Timestamp) -> String {
    // Truncated, not rounded: a time shown must never be later than the event it describes.
    t.round(jiff::TimestampRound::new().smallest(jiff::Unit::Second).mode(jiff::RoundMode::Trunc))
        .unwrap_or(t)
        .to_string()
}

/// A compact duration: 12s, 5m, 3h, 2d.
pub fn short_duration(ms: i64) -> String {
    let s = ms.unsigned_abs() / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..172_800 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// `t` seen from `now`: "in 12s", "3m ago", or "now".
pub fn relative(t: Timestamp, now: Time) -> String {
    let diff = t.as_millisecond() - now.as_millis();
    if diff.abs() < 1000 {
        "now".to_owned()
    } else if diff > 0 {
        format!("in {}", short_duration(diff))
    } else {
        format!("{} ago", short_duration(diff))
    }
}

fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{v:.1} {} ({bytes} bytes)", UNITS[unit]) }
}

pub fn summary(v: &SummaryView, style: &Style) -> String {
    let mut t = table(style, &["FIELD", "VALUE"]);
    t.add_row(vec!["dir".to_owned(), v.dir.clone()]);
    t.add_row(vec![
        "schema".to_owned(),
        format!("{} (this build supports up to {})", v.schema_version, v.supported_schema_version),
    ]);
    t.add_row(vec!["cluster id".to_owned(), dash(v.cluster_id.as_deref())]);
    t.add_row(vec![
        "created at".to_owned(),
        v.created_at.map(|c| format!("{} ({})", time(c), relative(c, style.now))).unwrap_or_else(|| "-".into()),
    ]);
    t.add_row(vec!["size on disk".to_owned(), size(v.size_bytes)]);
    t.add_row(vec![
        "oldest pending".to_owned(),
        match &v.oldest_pending {
            Some(o) => format!(
                "#{} {}/{} ({}, waiting {})",
                o.id,
                o.kind,
                o.key,
                o.state,
                short_duration(style.now.as_millis() - o.waiting_since.as_millisecond())
            ),
            None => "-".to_owned(),
        },
    ]);
    let parked = Cell::new(v.parked);
    t.add_row(vec![Cell::new("parked"), if v.parked > 0 && style.color { parked.fg(Color::Red) } else { parked }]);
    t.add_row(vec![
        "event seq".to_owned(),
        match (v.first_event_seq, v.last_event_seq) {
            (Some(a), Some(b)) => format!("{a}..{b}"),
            _ => "- (no events)".to_owned(),
        },
    ]);
    let migrations: Vec<String> =
        v.migrations.iter().map(|m| format!("{} {} ({})", m.version, m.name, time(m.applied_at))).collect();
    t.add_row(vec!["migrations".to_owned(), if migrations.is_empty() { "-".into() } else { migrations.join(", ") }]);
    let mut out = finish(&t);

    let mut tables = table(style, &["TABLE", "ENTRIES"]);
    for (name, n) in &v.tables {
        tables.add_row(vec![name.clone(), n.to_string()]);
    }
    out.push('\n');
    out.push_str(&finish(&tables));

    out.push('\n');
    if v.queue.is_empty() {
        out.push_str("queue: empty\n");
    } else {
        let mut q = table(style, &["KIND", "PENDING", "IN-FLIGHT", "DONE", "PARKED"]);
        for (kind, counts) in &v.queue {
            let mut row = vec![Cell::new(kind)];
            for state in ["pending", "in-flight", "done", "parked"] {
                let n = counts.get(state).copied().unwrap_or(0);
                let cell = Cell::new(n);
                row.push(match state_color(state) {
                    Some(c) if style.color && n > 0 => cell.fg(c),
                    _ => cell,
                });
            }
            q.add_row(row);
        }
        out.push_str(&finish(&q));
    }
    out
}

pub fn records(v: &[RecordView], style: &Style) -> String {
    if v.is_empty() {
        return "no record sets\n".to_owned();
    }
    let mut t =
        table(style, &["ZONE", "NAME", "TYPE", "TTL", "DESIRED", "APPLIED", "ETAG", "OWNER", "STATUS", "APPLIED-AT"]);
    for r in v {
        let ttl = r.desired.as_ref().map(|d| d.ttl).or(r.applied.as_ref().map(|a| a.ttl));
        let owner = r.desired.as_ref().map(|d| d.owner.as_str()).or(r.applied.as_ref().map(|a| a.owner.as_str()));
        t.add_row(vec![
            Cell::new(&r.zone),
            Cell::new(&r.name),
            Cell::new(&r.record_type),
            Cell::new(ttl.map(|t| t.to_string()).unwrap_or_else(|| "-".into())),
            Cell::new(r.desired.as_ref().map(|d| d.targets.join(",")).unwrap_or_else(|| "-".into())),
            Cell::new(r.applied.as_ref().map(|a| a.targets.join(",")).unwrap_or_else(|| "-".into())),
            Cell::new(dash(r.applied.as_ref().map(|a| a.etag.as_str()))),
            Cell::new(dash(owner)),
            state_cell(r.status.as_str(), style),
            Cell::new(r.applied.as_ref().map(|a| time(a.applied_at)).unwrap_or_else(|| "-".into())),
        ]);
    }
    finish(&t)
}

pub fn certs(v: &CertsView, style: &Style) -> String {
    let mut out = String::from("BINDINGS\n");
    if v.bindings.is_empty() {
        out.push_str("no certificate bindings\n");
    } else {
        let mut t = table(style, &["NAMESPACE", "GATEWAY", "LISTENER", "VAULT", "OBJECT", "PINNED", "IDENTITY"]);
        for b in &v.bindings {
            t.add_row(vec![
                b.namespace.clone(),
                b.gateway.clone(),
                b.listener.clone(),
                b.vault.clone(),
                b.object.clone(),
                dash(b.pinned_version.as_deref()),
                b.identity.clone(),
            ]);
        }
        out.push_str(&finish(&t));
    }
    out.push_str("\nVERSIONS\n");
    if v.versions.is_empty() {
        out.push_str("no certificate versions seen\n");
    } else {
        let mut t = table(
            style,
            &["VAULT", "OBJECT", "VERSION", "X5T", "NOT-BEFORE", "NOT-AFTER", "OUTCOME", "REASON", "SEEN", "APPLIED"],
        );
        for c in &v.versions {
            t.add_row(vec![
                Cell::new(&c.vault),
                Cell::new(&c.object),
                Cell::new(&c.version),
                Cell::new(&c.x5t),
                Cell::new(time(c.not_before)),
                Cell::new(time(c.not_after)),
                state_cell(&c.outcome, style),
                Cell::new(dash(c.reason.as_deref())),
                Cell::new(time(c.seen_at)),
                Cell::new(c.applied_at.map(time).unwrap_or_else(|| "-".into())),
            ]);
        }
        out.push_str(&finish(&t));
    }
    out
}

/// A payload as a table shows it: its text, or its size when it is not text.
pub fn payload(item: &WorkItemView) -> String {
    match &item.payload {
        Some(text) => shorten(&text.replace('\n', " "), 60),
        None => format!("<{} bytes>", item.payload_bytes),
    }
}

pub fn queue(v: &[WorkItemView], style: &Style) -> String {
    if v.is_empty() {
        return "no work items\n".to_owned();
    }
    let mut t = table(style, &["ID", "KIND", "KEY", "STATE", "ATTEMPTS", "NEXT-ATTEMPT", "LAST-ERROR", "PAYLOAD"]);
    for i in v {
        let next = match i.state.as_str() {
            "pending" | "in-flight" => relative(i.next_attempt_at, style.now),
            _ => "-".to_owned(),
        };
        t.add_row(vec![
            Cell::new(i.id),
            Cell::new(&i.kind),
            Cell::new(&i.key),
            state_cell(&i.state, style),
            Cell::new(i.attempts),
            Cell::new(next),
            Cell::new(dash(i.last_error.as_deref().map(|e| shorten(e, 60)).as_deref())),
            Cell::new(payload(i)),
        ]);
    }
    finish(&t)
}

pub fn events(v: &[EventView], style: &Style) -> String {
    if v.is_empty() {
        return "no events\n".to_owned();
    }
    let mut t = table(style, &["SEQ", "TIME", "ACTION", "SUBJECT", "MESSAGE"]);
    for e in v {
        t.add_row(vec![e.seq.to_string(), time(e.at), e.action.clone(), e.subject.clone(), e.message.clone()]);
    }
    finish(&t)
}

/// The header `events --follow` prints before its first line.
pub fn event_header() -> String {
    format!("{:>8}  {:<20}  {:<24}  {:<40}  {}\n", "SEQ", "TIME", "ACTION", "SUBJECT", "MESSAGE")
}

/// One event as one fixed-width line, so a followed stream stays aligned without knowing what
/// comes next.
pub fn event_line(e: &EventView, _style: &Style) -> String {
    format!("{:>8}  {:<20}  {:<24}  {:<40}  {}\n", e.seq, time(e.at), e.action, e.subject, e.message.replace('\n', " "))
}

pub fn stale(v: &StaleView, style: &Style) -> String {
    if v.zones.is_empty() {
        return "no zone has been verified yet: the DNS verifier records a report per zone after its first pass\n"
            .to_owned();
    }
    let mut t = table(
        style,
        &["ZONE", "VERIFIED", "RECORD-SETS/LIMIT", "HEADROOM", "STALE", "FOREIGN-BLOCKING", "DRIFT-REPAIRED"],
    );
    for z in &v.zones {
        t.add_row(vec![
            z.zone.clone(),
            format!("{} ({})", time(z.verified_at), relative(z.verified_at, style.now)),
            format!("{}/{}", z.record_sets, z.limit),
            format!("{:.1}%", z.headroom_percent),
            z.stale.len().to_string(),
            z.foreign_blocking.len().to_string(),
            z.drift_repaired.to_string(),
        ]);
    }
    let mut out = finish(&t);
    let listed: usize = v.zones.iter().map(|z| z.stale.len() + z.foreign_blocking.len()).sum();
    if listed > 0 {
        let mut r = table(style, &["ZONE", "FINDING", "NAME", "TYPE", "OWNER", "DETAIL"]);
        for z in &v.zones {
            for (finding, list) in [("stale", &z.stale), ("foreign-blocking", &z.foreign_blocking)] {
                for rec in list {
                    r.add_row(vec![
                        z.zone.clone(),
                        finding.to_owned(),
                        rec.name.clone(),
                        rec.record_type.clone(),
                        dash(rec.owner.as_deref()),
                        rec.detail.clone(),
                    ]);
                }
            }
        }
        out.push('\n');
        out.push_str(&finish(&r));
    }
    out
}

pub fn compact(v: &CompactView, style: &Style) -> String {
    let mut t = table(style, &["FIELD", "VALUE"]);
    t.add_row(vec!["events pruned".to_owned(), v.events_pruned.to_string()]);
    t.add_row(vec!["done items pruned".to_owned(), v.done_items_pruned.to_string()]);
    t.add_row(vec!["certificate versions pruned".to_owned(), v.cert_versions_pruned.to_string()]);
    t.add_row(vec!["size before".to_owned(), size(v.size_before)]);
    t.add_row(vec!["size after".to_owned(), size(v.size_after)]);
    finish(&t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_as_in_or_ago() {
        let now = Time::from_millis(1_000_000_000);
        let at = |ms: i64| Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH);
        assert_eq!(relative(at(1_000_012_000), now), "in 12s");
        assert_eq!(relative(at(1_000_000_000 - 180_000), now), "3m ago");
        assert_eq!(relative(at(1_000_000_200), now), "now");
        assert_eq!(relative(at(1_000_000_000 + 3 * 86_400_000), now), "in 3d");
    }

    #[test]
    fn only_state_words_have_colours() {
        assert_eq!(state_color("pending"), Some(Color::Yellow));
        assert_eq!(state_color("in-flight"), Some(Color::Cyan));
        assert_eq!(state_color("applied"), Some(Color::Green));
        assert_eq!(state_color("rejected"), Some(Color::Red));
        assert_eq!(state_color("example.com"), None);
    }

    #[test]
    fn state_columns_are_coloured_only_when_asked() {
        use crate::view::WorkItemView;
        let t = Timestamp::UNIX_EPOCH;
        let item = WorkItemView {
            id: 1,
            kind: "dns.record".into(),
            key: "k".into(),
            state: "parked".into(),
            attempts: 3,
            next_attempt_at: t,
            last_error: None,
            payload: Some("p".into()),
            payload_bytes: 1,
            rerun: false,
            created_at: t,
            updated_at: t,
        };
        let now = Time::from_millis(0);
        assert!(queue(std::slice::from_ref(&item), &Style { color: true, now }).contains("\x1b["));
        assert!(!queue(std::slice::from_ref(&item), &Style::plain(now)).contains('\x1b'));
    }
}
