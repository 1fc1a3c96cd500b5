//! Frozen fixture journals, one per schema version, as NDJSON of raw entries
//! (`{"table":…,"key":<hex>,"value":<hex>}`), so they outlive any storage engine. The fixture for
//! the current version is written by
//! `cargo run -p routewarden-migrations --bin routewarden-journal-fixture`; older ones are never
//! regenerated. The sample fills every table and every work-item state.

use routewarden_store::*;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

/// Where the fixture for `version` lives.
pub fn path(version: u32) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(format!("schema-{version:04}.ndjson"))
}

pub const CLUSTER_ID: &str = "00000000-0000-4000-8000-000000000001";
const T0: i64 = 1_790_000_000_000;

fn t(offset_s: i64) -> Time {
    Time::from_millis(T0 + offset_s * 1000)
}

/// Writes the deterministic sample into a journal at the current schema.
pub fn write_sample(j: &Journal) -> Result<()> {
    let zone = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Network/dnszones/contoso.com";
    let key = RecordSetKey { zone: zone.into(), name: "a".into(), record_type: RecordType::A };
    let owner = format!("{CLUSTER_ID}/clusterexternaldns/contoso");
    j.commit(|tx| {
        tx.put_desired_record(
            &key,
            &DesiredRecordSet {
                ttl: 300,
                targets: vec!["20.1.2.3".into()],
                owner: owner.clone(),
                sources: vec!["Gateway/app-a/gateway-a".into()],
                updated_at: t(0),
            },
        )?;
        tx.put_applied_record(
            &key,
            &AppliedRecordSet {
                etag: "etag-1".into(),
                owner: owner.clone(),
                ttl: 300,
                targets: vec!["20.1.2.3".into()],
                applied_at: t(1),
            },
        )?;
        tx.put_cert_binding(
            &CertBindingKey { namespace: "app-a".into(), gateway: "gateway-a".into(), listener: "https".into() },
            &CertBinding {
                vault: "https://kv-demo.vault.azure.net".into(),
                object: "wildcard".into(),
                pinned_version: None,
                identity: "app-a/approuting-demo-sa".into(),
                updated_at: t(0),
            },
        )?;
        tx.put_cert_version(
            &CertVersionKey {
                vault: "https://kv-demo.vault.azure.net".into(),
                object: "wildcard".into(),
                version: "0123456789abcdef".into(),
            },
            &CertVersion {
                x5t: "q1w2e3r4t5y6u7i8o9p0a1s2d3f".into(),
                not_before: t(-86_400),
                not_after: t(86_400 * 365),
                seen_at: t(2),
                applied_at: Some(t(3)),
                outcome: CertOutcome::Applied,
                reason: None,
            },
        )?;
        tx.put_zone_report(
            zone,
            &ZoneReport {
                verified_at: t(4),
                record_sets: 3,
                limit: 10_000,
                stale: vec![ReportedRecord {
                    name: "old".into(),
                    record_type: RecordType::A,
                    owner: Some(owner.clone()),
                    detail: "no live source".into(),
                }],
                foreign_blocking: vec![ReportedRecord {
                    name: "b".into(),
                    record_type: RecordType::Cname,
                    owner: None,
                    detail: "not owned".into(),
                }],
                drift_repaired: 1,
            },
        )?;
        tx.append_event(NewEvent::new(t(1), "record.applied", key.to_string(), "created with If-None-Match: *"))?;
        for k in ["pending", "in-flight", "done", "parked"] {
            tx.enqueue("dns.record", k, k.as_bytes(), t(5))?;
        }
        Ok(())
    })?;
    let lease = Duration::from_secs(30);
    for c in j.claim(t(5), 10, lease)? {
        match c.item.key.as_str() {
            "done" => j.commit(|tx| tx.complete(c.lease, t(6)).map(|_| ()))?,
            "parked" => j.commit(|tx| tx.park(c.lease, "403 AuthorizationFailed", t(6)))?,
            "pending" => j.commit(|tx| tx.retry(c.lease, t(60), "429 Too Many Requests", t(6)).map(|_| ()))?,
            _ => {}
        }
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

pub fn to_ndjson(entries: &[RawEntry]) -> String {
    entries
        .iter()
        .map(|e| serde_json::json!({"table": e.table, "key": hex(&e.key), "value": hex(&e.value)}).to_string() + "\n")
        .collect()
}

pub fn from_ndjson(text: &str) -> std::result::Result<Vec<RawEntry>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, line)| {
            let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1))?;
            let field =
                |f: &str| v.get(f).and_then(|x| x.as_str()).ok_or_else(|| format!("line {}: missing {f}", n + 1));
            let bytes =
                |f: &str| field(f).and_then(|s| unhex(s).ok_or_else(|| format!("line {}: {f} is not hex", n + 1)));
            Ok(RawEntry { table: field("table")?.to_owned(), key: bytes("key")?, value: bytes("value")? })
        })
        .collect()
}

/// The sample journal of this build, as fixture text.
pub fn current_fixture() -> std::result::Result<String, crate::Error> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("routewarden-fixture-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let options = crate::OpenOptions { journal: Options::default(), cluster_id: Some(CLUSTER_ID.into()) };
    let text = {
        let j = crate::open(&dir, options, t(0))?;
        write_sample(&j)?;
        let text = to_ndjson(&j.dump()?);
        j.close()?;
        text
    };
    let _ = std::fs::remove_dir_all(&dir);
    Ok(text)
}
