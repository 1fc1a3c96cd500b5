//! `routewarden journal` against a stopped journal (`--dir`): what each subcommand prints in
//! each format, the filters, and the exit codes of the documented failures.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;
use common::*;
use routewarden_store::{Options, RawJournal, SCHEMA_VERSION, Time};
use serde_json::Value;
use std::collections::BTreeMap;

fn by<'a>(items: &'a Value, field: &str) -> BTreeMap<String, &'a Value> {
    items.as_array().unwrap().iter().map(|i| (i[field].as_str().unwrap().to_owned(), i)).collect()
}

fn seqs(v: &Value) -> Vec<u64> {
    v.as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect()
}

#[test]
fn summary_counts_tables_queue_states_and_events() {
    let f = Fixture::filled();
    let s = json(&["journal", "--dir", f.dir(), "-o", "json", "summary"]);
    assert_eq!(s["schema_version"], SCHEMA_VERSION);
    assert_eq!(s["cluster_id"], CLUSTER_ID);
    assert_eq!(s["dir"], f.dir());
    assert!(s["size_bytes"].as_u64().unwrap() > 0);
    assert_eq!(s["tables"]["dns_desired"], 4);
    assert_eq!(s["tables"]["dns_applied"], 4);
    assert_eq!(s["tables"]["cert_bindings"], 2);
    assert_eq!(s["tables"]["cert_versions"], 3);
    assert_eq!(s["tables"]["queue_items"], 4);
    assert_eq!(s["tables"]["zone_reports"], 1);
    let dns = &s["queue"]["dns.record"];
    assert_eq!(
        (dns["pending"].as_u64(), dns["in-flight"].as_u64(), dns["done"].as_u64(), dns["parked"].as_u64()),
        (Some(1), Some(1), Some(1), Some(0))
    );
    assert_eq!(s["queue"]["tls.listener"]["parked"], 1);
    assert_eq!(s["parked"], 1);
    assert_eq!(s["oldest_pending"]["key"], "example.com/AAAA/new", "the in-flight item has waited longest");
    assert_eq!(s["oldest_pending"]["state"], "in-flight");
    assert_eq!((s["first_event_seq"].as_u64(), s["last_event_seq"].as_u64()), (Some(1), Some(4)));
    assert_eq!(s["migrations"][0]["version"], 1);
    assert_eq!(s["migrations"][0]["name"], "initial");
}

#[test]
fn records_are_joined_per_key_and_classified() {
    let f = Fixture::filled();
    let v = json(&["journal", "--dir", f.dir(), "records", "-o", "json"]);
    let r = by(&v, "name");
    let status = |n: &str| r[n]["status"].as_str().unwrap().to_owned();
    assert_eq!(status("www"), "in-sync");
    assert_eq!(status("api"), "pending", "applied targets differ from the desired ones");
    assert_eq!(status("new"), "not-applied");
    assert_eq!(status("old"), "orphaned", "applied but no longer desired");
    assert_eq!(status("db"), "in-sync");
    assert_eq!(r["www"]["zone"], "example.com", "the zone is shown by name");
    assert_eq!(r["www"]["zone_id"], ZONE);
    assert_eq!(r["www"]["record_type"], "A");
    assert_eq!(r["api"]["desired"]["targets"][0], "5.6.7.8");
    assert_eq!(r["api"]["applied"]["targets"][0], "5.6.7.9");
    assert_eq!(r["api"]["applied"]["etag"], "etag-api");
    assert!(r["old"]["desired"].is_null());
    assert!(r["new"]["applied"].is_null());
    assert_eq!(r["db"]["zone"], "internal.example");
}

#[test]
fn records_filter_by_zone_name_or_resource_id() {
    let f = Fixture::filled();
    for zone in ["internal.example", PRIVATE_ZONE] {
        let v = json(&["journal", "--dir", f.dir(), "-o", "json", "records", "--zone", zone]);
        let names: Vec<&str> = v.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["db"], "--zone {zone}");
    }
}

#[test]
fn certs_show_bindings_and_version_metadata_only() {
    let f = Fixture::filled();
    let v = json(&["journal", "--dir", f.dir(), "-o", "json", "certs"]);
    let bindings = v["bindings"].as_array().unwrap();
    assert_eq!(bindings.len(), 2);
    assert_eq!(bindings[0]["namespace"], "default");
    assert!(bindings[0]["pinned_version"].is_null());
    assert_eq!(bindings[1]["pinned_version"], "v1");
    assert_eq!(bindings[1]["identity"], "default/gateway-sa");
    let versions = by(&v["versions"], "version");
    assert_eq!(versions["v1"]["outcome"], "applied");
    assert!(versions["v1"]["applied_at"].is_string());
    assert_eq!(versions["v2"]["outcome"], "rejected");
    assert_eq!(versions["v2"]["reason"], "private key does not match the certificate");
    assert_eq!(versions["v3"]["x5t"], "x5t-v3");
    let fields: Vec<&str> = versions["v1"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        fields,
        ["applied_at", "not_after", "not_before", "object", "outcome", "reason", "seen_at", "vault", "version", "x5t"],
        "a certificate version shows metadata and nothing else"
    );
}

#[test]
fn queue_lists_items_in_every_state_with_payload_as_text_or_size() {
    let f = Fixture::filled();
    let v = json(&["journal", "--dir", f.dir(), "-o", "json", "queue"]);
    let items = by(&v, "key");
    assert_eq!(items.len(), 4);
    assert_eq!(items["example.com/A/api"]["state"], "done");
    assert_eq!(items["example.com/AAAA/new"]["state"], "in-flight");
    let old = items["example.com/CNAME/old"];
    assert_eq!((old["state"].as_str(), old["attempts"].as_u64()), (Some("pending"), Some(1)));
    assert_eq!(old["last_error"], "429 Too Many Requests");
    assert_eq!(old["payload"], "{\"op\":\"delete\"}");
    let parked = items["team/gw2/tls"];
    assert_eq!(parked["state"], "parked");
    assert!(parked["payload"].is_null(), "a binary payload is not shown");
    assert_eq!(parked["payload_bytes"], 3);

    let only_parked = json(&["journal", "--dir", f.dir(), "-o", "json", "queue", "--state", "parked"]);
    assert_eq!(by(&only_parked, "key").into_keys().collect::<Vec<_>>(), ["team/gw2/tls"]);
    let in_flight = json(&["journal", "--dir", f.dir(), "-o", "json", "queue", "--state", "in-flight"]);
    assert_eq!(by(&in_flight, "key").into_keys().collect::<Vec<_>>(), ["example.com/AAAA/new"]);
    let dns = json(&["journal", "--dir", f.dir(), "-o", "json", "queue", "--kind", "dns.record"]);
    assert_eq!(dns.as_array().unwrap().len(), 3);
    let both = json(&["journal", "--dir", f.dir(), "-o", "json", "queue", "--kind", "dns.record", "--state", "done"]);
    assert_eq!(by(&both, "key").into_keys().collect::<Vec<_>>(), ["example.com/A/api"]);
}

#[test]
fn queue_table_shows_relative_next_attempt_and_payload() {
    let f = Fixture::filled();
    let o = run(&["journal", "--dir", f.dir(), "queue"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let row = text.lines().find(|l| l.contains("example.com/CNAME/old")).expect(&text);
    assert!(row.contains("in 9m") || row.contains("in 10m"), "{row}");
    assert!(row.contains("429 Too Many Requests") && row.contains("{\"op\":\"delete\"}"), "{row}");
    let parked = text.lines().find(|l| l.contains("team/gw2/tls")).expect(&text);
    assert!(parked.contains("<3 bytes>"), "{parked}");
}

#[test]
fn events_filter_by_since_after_and_limit() {
    let f = Fixture::filled();
    let ev = |extra: &[&str]| {
        let mut args = vec!["journal", "--dir", f.dir(), "-o", "json", "events"];
        args.extend_from_slice(extra);
        seqs(&json(&args))
    };
    assert_eq!(ev(&[]), [1, 2, 3, 4]);
    assert_eq!(ev(&["--since", "10m"]), [3, 4], "events of the last ten minutes");
    assert_eq!(ev(&["--since", "1h"]), [2, 3, 4]);
    let rfc3339 = at(f.now, 45).to_timestamp().to_string();
    assert_eq!(ev(&["--since", &rfc3339]), [2, 3, 4]);
    assert_eq!(ev(&["--after", "2"]), [3, 4]);
    assert_eq!(ev(&["--limit", "2"]), [3, 4], "a limit alone keeps the newest");
    assert_eq!(ev(&["--after", "1", "--limit", "1"]), [2], "with --after a limit pages forward");
    assert_eq!(ev(&["--since", "1h", "--limit", "2"]), [2, 3]);
    assert_eq!(ev(&["--after", "4"]), Vec::<u64>::new());

    let all = json(&["journal", "--dir", f.dir(), "-o", "json", "events"]);
    assert_eq!(all[2]["action"], "item.parked");
    assert_eq!(all[2]["subject"], "tls.listener/team/gw2/tls");
    assert!(all[2]["message"].as_str().unwrap().contains("certificate web-cert not found"));
}

#[test]
fn a_bad_since_is_a_usage_error() {
    let f = Fixture::filled();
    let o = run(&["journal", "--dir", f.dir(), "events", "--since", "yesterday-ish"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--since"), "{}", stderr(&o));
}

#[test]
fn stale_lists_zone_headroom_and_findings() {
    let f = Fixture::filled();
    let v = json(&["journal", "--dir", f.dir(), "-o", "json", "stale"]);
    let z = &v["zones"][0];
    assert_eq!(z["zone"], "example.com");
    assert_eq!((z["record_sets"].as_u64(), z["limit"].as_u64()), (Some(9000), Some(10000)));
    assert_eq!(z["headroom_percent"].as_f64(), Some(10.0));
    assert_eq!(z["stale"][0]["name"], "legacy");
    assert_eq!(z["foreign_blocking"][0]["name"], "blog");
    assert!(z["foreign_blocking"][0]["owner"].is_null());

    let o = run(&["journal", "--dir", f.dir(), "stale"]);
    let text = stdout(&o);
    for needle in ["ZONE", "HEADROOM", "example.com", "9000/10000", "10.0%", "legacy", "blog", "foreign-blocking"] {
        assert!(text.contains(needle), "{needle:?} missing from\n{text}");
    }
}

#[test]
fn stale_without_reports_says_no_zone_was_verified_and_succeeds() {
    let f = Fixture::empty();
    let o = run(&["journal", "--dir", f.dir(), "stale"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("no zone has been verified yet"), "{}", stdout(&o));
    let v = json(&["journal", "--dir", f.dir(), "-o", "json", "stale"]);
    assert_eq!(v["zones"].as_array().map(Vec::len), Some(0));
}

#[test]
fn export_is_ndjson_of_every_table_with_the_meta_line_first() {
    let f = Fixture::filled();
    // -o is ignored: export is always NDJSON.
    let o = run(&["journal", "--dir", f.dir(), "-o", "yaml", "export"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["table"], "meta");
    assert_eq!(lines[0]["summary"]["cluster_id"], CLUSTER_ID);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for l in &lines {
        *counts.entry(l["table"].as_str().unwrap()).or_default() += 1;
    }
    let expected: BTreeMap<&str, usize> = [
        ("meta", 1),
        ("record", 5),
        ("cert_binding", 2),
        ("cert_version", 3),
        ("work_item", 4),
        ("zone_report", 1),
        ("event", 4),
    ]
    .into_iter()
    .collect();
    assert_eq!(counts, expected);
    let event = lines.iter().find(|l| l["table"] == "event" && l["seq"] == 3).unwrap();
    assert_eq!(event["action"], "item.parked");
}

#[test]
fn compact_reports_what_it_removed() {
    let f = Fixture::filled();
    let v = json(&["journal", "--dir", f.dir(), "-o", "json", "compact"]);
    for field in ["events_pruned", "done_items_pruned", "cert_versions_pruned", "size_before", "size_after"] {
        assert!(v[field].is_u64(), "{field} in {v}");
    }
    assert_eq!(v["done_items_pruned"], 0, "the done item is younger than the retention");
    let after = json(&["journal", "--dir", f.dir(), "-o", "json", "queue"]);
    assert_eq!(after.as_array().unwrap().len(), 4);
}

#[test]
fn every_command_prints_parseable_yaml() {
    let f = Fixture::filled();
    for cmd in ["summary", "records", "certs", "queue", "events", "stale", "compact"] {
        let o = run(&["journal", "--dir", f.dir(), "-o", "yaml", cmd]);
        assert!(o.status.success(), "{cmd}: {}", stderr(&o));
        let v: serde_yaml_ng::Value =
            serde_yaml_ng::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{cmd}: {e}\n{}", stdout(&o)));
        assert!(!v.is_null(), "{cmd} printed nothing");
    }
    let o = run(&["journal", "--dir", f.dir(), "-o", "yaml", "records"]);
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_sequence().map(Vec::len), Some(5));
}

#[test]
fn tables_have_headers_and_values_and_no_colour_when_not_a_terminal() {
    let f = Fixture::filled();
    let cases: &[(&str, &[&str])] = &[
        (
            "summary",
            &[
                "FIELD",
                "schema",
                CLUSTER_ID,
                "oldest pending",
                "example.com/AAAA/new",
                "KIND",
                "IN-FLIGHT",
                "tls.listener",
                "1..4",
            ],
        ),
        (
            "records",
            &[
                "ZONE",
                "NAME",
                "TYPE",
                "TTL",
                "DESIRED",
                "APPLIED",
                "ETAG",
                "OWNER",
                "STATUS",
                "APPLIED-AT",
                "example.com",
                "orphaned",
                "not-applied",
                "in-sync",
                "etag-api",
                "5.6.7.9",
            ],
        ),
        (
            "certs",
            &[
                "NAMESPACE",
                "LISTENER",
                "PINNED",
                "IDENTITY",
                "VERSION",
                "X5T",
                "NOT-AFTER",
                "OUTCOME",
                "rejected",
                "x5t-v2",
                "default/gateway-sa",
            ],
        ),
        (
            "queue",
            &[
                "ID",
                "KIND",
                "KEY",
                "STATE",
                "ATTEMPTS",
                "NEXT-ATTEMPT",
                "LAST-ERROR",
                "PAYLOAD",
                "in-flight",
                "parked",
                "done",
                "pending",
            ],
        ),
        ("events", &["SEQ", "TIME", "ACTION", "SUBJECT", "MESSAGE", "item.parked", "record.applied"]),
        ("stale", &["ZONE", "VERIFIED", "HEADROOM", "legacy"]),
        ("compact", &["events pruned", "size after"]),
    ];
    for (cmd, needles) in cases {
        let o = run(&["journal", "--dir", f.dir(), cmd]);
        assert!(o.status.success(), "{cmd}: {}", stderr(&o));
        let text = stdout(&o);
        assert!(!text.contains('\x1b'), "{cmd}: ANSI escape in non-terminal output:\n{text}");
        for needle in *needles {
            assert!(text.contains(needle), "{cmd}: {needle:?} missing from\n{text}");
        }
    }
}

#[test]
fn tables_are_aligned_in_columns() {
    let f = Fixture::filled();
    let text = stdout(&run(&["journal", "--dir", f.dir(), "records"]));
    let lines: Vec<&str> = text.lines().collect();
    let status_col = lines[0].find("STATUS").unwrap();
    for l in &lines[1..] {
        let word = l[status_col..].split_whitespace().next().unwrap();
        assert!(["in-sync", "pending", "not-applied", "orphaned"].contains(&word), "column misaligned in {l:?}");
    }
}

#[test]
fn a_journal_held_by_another_process_exits_3_naming_the_pid_and_admin() {
    let f = Fixture::filled();
    let _held = f.open();
    let o = run(&["journal", "--dir", f.dir(), "summary"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(&std::process::id().to_string()), "{err}");
    assert!(err.contains("--admin") && err.contains(f.dir()), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

#[test]
fn a_journal_from_a_newer_schema_exits_4_naming_both_versions() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("journal");
    {
        let raw = RawJournal::open(&dir, Options::default()).unwrap();
        raw.record_migration(SCHEMA_VERSION + 1, "from the future", Time::now()).unwrap();
    }
    let o = run(&["journal", "--dir", dir.to_str().unwrap(), "summary"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains(&format!("schema version {}", SCHEMA_VERSION + 1)), "{err}");
    assert!(err.contains(&format!("up to {SCHEMA_VERSION}")), "{err}");
}

#[test]
fn a_missing_directory_exits_1_and_is_not_created() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nope");
    let o = run(&["journal", "--dir", dir.to_str().unwrap(), "summary"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains(dir.to_str().unwrap()), "{}", stderr(&o));
    assert!(!dir.exists(), "the CLI must not create a journal");
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = run(&["journal", "--dir", empty.to_str().unwrap(), "summary"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0, "nothing written into a non-journal directory");
}

#[test]
fn follow_with_dir_is_a_usage_error() {
    let f = Fixture::filled();
    let o = run(&["journal", "--dir", f.dir(), "events", "--follow"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--admin"), "{}", stderr(&o));
}

#[test]
fn dir_and_admin_together_are_a_usage_error() {
    let f = Fixture::filled();
    let o = run(&["journal", "--dir", f.dir(), "--admin", "http://127.0.0.1:1", "summary"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn the_journal_dir_comes_from_the_environment_when_not_given() {
    let f = Fixture::filled();
    let o = bin().args(["journal", "-o", "json", "summary"]).env("ROUTEWARDEN_JOURNAL_DIR", f.dir()).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["cluster_id"], CLUSTER_ID);
}

#[test]
fn help_documents_the_exit_codes() {
    let o = run(&["journal", "--help"]);
    assert!(o.status.success());
    let text = stdout(&o);
    for needle in [
        "Exit codes",
        "0  ok",
        "1  error",
        "2  usage",
        "3  journal in use",
        "4  journal written by a newer schema",
        "5  admin endpoint unreachable",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from\n{text}");
    }
}

#[test]
fn a_usage_mistake_exits_2() {
    let o = run(&["journal", "queue", "--state", "sleeping"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}
