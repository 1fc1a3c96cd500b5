//! Behaviour of the journal: queue semantics, atomic commits, and the guards at open.
#![allow(clippy::unwrap_used)]
mod common;
use common::*;
use routewarden_store::*;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

const LEASE: Duration = Duration::from_secs(30);

fn enqueue(j: &Journal, key: &str, payload: &str, now: Time) -> Enqueued {
    j.commit(|tx| tx.enqueue("dns.record", key, payload.as_bytes(), now)).unwrap()
}

#[test]
fn each_controller_claims_only_its_own_kinds_from_the_one_queue() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(dir.path());
    j.commit(|tx| tx.enqueue("tls.sync", "ns/gw/l", b"1", t(100))).unwrap();
    enqueue(&j, "a", "1", t(200));
    assert_eq!(j.next_due_kinds("dns.").unwrap().map(|i| i.key), Some("a".to_owned()));
    let dns: Vec<String> = j.claim_kinds(t(300), 10, LEASE, "dns.").unwrap().into_iter().map(|c| c.item.key).collect();
    assert_eq!(dns, vec!["a"]);
    let tls: Vec<String> = j.claim_kinds(t(300), 10, LEASE, "tls.").unwrap().into_iter().map(|c| c.item.key).collect();
    assert_eq!(tls, vec!["ns/gw/l"]);
}

#[test]
fn queue_depth_counts_pending_and_in_flight_items_only() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(dir.path());
    enqueue(&j, "a", "1", t(100));
    enqueue(&j, "b", "1", t(100));
    enqueue(&j, "c", "1", t(100));
    assert_eq!(j.queue_depth(), 3);
    let claimed = j.claim(t(200), 2, LEASE).unwrap();
    assert_eq!(j.queue_depth(), 3, "in flight still counts");
    j.commit(|tx| tx.complete(claimed[0].lease, t(300))).unwrap();
    j.commit(|tx| tx.park(claimed[1].lease, "broken", t(300))).unwrap();
    assert_eq!(j.queue_depth(), 1, "done and parked items do not");
    let pending = j
        .summary()
        .unwrap()
        .queue
        .values()
        .flat_map(|s| s.iter())
        .filter(|(s, _)| matches!(s, ItemState::Pending | ItemState::InFlight))
        .map(|(_, n)| *n)
        .sum::<u64>();
    assert_eq!(j.queue_depth(), pending, "the same count the summary gives");
}

#[test]
fn claims_due_items_in_due_order_and_not_before_they_are_due() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(dir.path());
    enqueue(&j, "b", "1", t(200));
    enqueue(&j, "a", "1", t(100));
    enqueue(&j, "c", "1", t(300));
    assert!(j.claim(t(50), 10, LEASE).unwrap().is_empty(), "nothing is due before its time");
    let claimed: Vec<String> = j.claim(t(250), 10, LEASE).unwrap().into_iter().map(|c| c.item.key).collect();
    assert_eq!(claimed, ["a", "b"]);
    assert!(j.claim(t(260), 10, LEASE).unwrap().is_empty(), "claimed items are leased");
    let rest: Vec<String> = j.claim(t(300), 1, LEASE).unwrap().into_iter().map(|c| c.item.key).collect();
    assert_eq!(rest, ["c"]);
}

#[test]
fn an_item_whose_worker_died_becomes_due_when_its_lease_runs_out() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(dir.path());
    enqueue(&j, "a", "1", t(0));
    let first = j.claim(t(0), 1, LEASE).unwrap().remove(0);
    assert!(j.claim(t(29_999), 1, LEASE).unwrap().is_empty());
    let second = j.claim(t(30_000), 1, LEASE).unwrap().remove(0);
    assert_eq!(second.item.attempts, 1, "an expired lease counts as a failed attempt");
    assert_ne!(first.lease.token, second.lease.token);
    // The first worker comes back late: its lease is gone, its completion is refused.
    let err = j.commit(|tx| tx.complete(first.lease, t(30_001))).unwrap_err();
    assert!(matches!(err, Error::LeaseLost { .. }), "{err}");
    assert_eq!(j.commit(|tx| tx.complete(second.lease, t(30_002))).unwrap(), ItemState::Done);
}

#[test]
fn a_new_process_takes_over_the_items_a_killed_one_held_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(dir.path());
    enqueue(&j, "a", "1", t(0));
    enqueue(&j, "b", "1", t(0));
    let held = j.claim(t(0), 1, LEASE).unwrap().remove(0);
    assert_eq!(j.release_leases(t(10)).unwrap(), 1, "only the item in flight");
    let claimed: Vec<_> = j.claim(t(10), 10, LEASE).unwrap();
    let again = claimed.iter().find(|c| c.item.key == held.item.key).expect("due at once, not in 30 s");
    assert_eq!(again.item.attempts, 1, "the killed attempt counts");
    assert_eq!(j.release_leases(t(20)).unwrap(), 2, "both are in flight now");
    assert_eq!(j.release_leases(t(20)).unwrap(), 0, "released leases are due already");
}

#[test]
fn retry_honours_the_callers_time_and_parks_after_max_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let j = open_with(dir.path(), Options { max_attempts: 3, ..Options::default() });
    enqueue(&j, "a", "1", t(0));
    let mut now = 0;
    for attempt in 1..=2 {
        let c = j.claim(t(now), 1, LEASE).unwrap().remove(0);
        let r = j.commit(|tx| tx.retry(c.lease, t(now + 1000), "429 Too Many Requests", t(now))).unwrap();
        assert_eq!(r, Retried::Scheduled(t(now + 1000)));
        assert!(j.claim(t(now + 999), 1, LEASE).unwrap().is_empty(), "attempt {attempt}: not before the retry time");
        now += 1000;
    }
    let c = j.claim(t(now), 1, LEASE).unwrap().remove(0);
    assert_eq!(j.commit(|tx| tx.retry(c.lease, t(now + 1000), "500 Internal", t(now))).unwrap(), Retried::Parked);
    let item = j.work_item(c.lease.id).unwrap().unwrap();
    assert_eq!((item.state, item.attempts, item.last_error.as_deref()), (ItemState::Parked, 3, Some("500 Internal")));
    assert!(j.claim(t(i64::MAX / 2), 10, LEASE).unwrap().is_empty(), "parked items are never claimed");
    let last = j.last_event().unwrap().unwrap();
    assert_eq!((last.action.as_str(), last.subject.as_str()), ("item.parked", "dns.record/a"));
    assert!(last.message.contains("500 Internal"));
}

#[test]
fn a_deferred_item_waits_without_using_up_an_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let j = open_with(dir.path(), Options { max_attempts: 2, ..Options::default() });
    enqueue(&j, "a", "1", t(0));
    for round in 0..5 {
        let now = round * 1000;
        let c = j.claim(t(now), 1, LEASE).unwrap().remove(0);
        j.commit(|tx| tx.defer(c.lease, t(now + 1000), t(now))).unwrap();
        assert!(j.claim(t(now + 999), 1, LEASE).unwrap().is_empty(), "round {round}: not before the deferred time");
    }
    let item = j.work_items().unwrap().remove(0);
    assert_eq!((item.state, item.attempts), (ItemState::Pending, 0), "deferring five times parks nothing");
}

#[test]
fn claims_pass_over_items_the_caller_does_not_want_now() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(dir.path());
    enqueue(&j, "zone-1/a", "1", t(100));
    enqueue(&j, "zone-2/b", "1", t(200));
    let claimed = j.claim_where(t(300), 1, LEASE, "dns.", |key| !key.starts_with("zone-1/")).unwrap();
    assert_eq!(claimed.into_iter().map(|c| c.item.key).collect::<Vec<_>>(), vec!["zone-2/b"]);
    assert_eq!(j.claim(t(300), 10, LEASE).unwrap().remove(0).item.key, "zone-1/a", "the skipped item stays due");
}

#[test]
fn enqueue_is_idempotent_per_key_and_the_newest_payload_wins() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(dir.path());
    let id = enqueue(&j, "a", "v1", t(0)).id();
    assert_eq!(enqueue(&j, "a", "v1", t(1)), Enqueued::Unchanged(id));
    assert_eq!(enqueue(&j, "a", "v2", t(2)), Enqueued::Updated(id));
    assert_eq!(j.work_items().unwrap().len(), 1);
    let c = j.claim(t(5), 10, LEASE).unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].item.payload, b"v2");
}

#[test]
fn a_new_payload_while_in_flight_runs_again_after_completion() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(dir.path());
    enqueue(&j, "a", "v1", t(0));
    let c = j.claim(t(0), 1, LEASE).unwrap().remove(0);
    assert!(matches!(enqueue(&j, "a", "v2", t(1)), Enqueued::Updated(_)));
    assert_eq!(j.commit(|tx| tx.complete(c.lease, t(2))).unwrap(), ItemState::Pending);
    let again = j.claim(t(2), 1, LEASE).unwrap().remove(0);
    assert_eq!(again.item.payload, b"v2");
    assert_eq!(j.commit(|tx| tx.complete(again.lease, t(3))).unwrap(), ItemState::Done);
    assert_eq!(enqueue(&j, "a", "v2", t(4)), Enqueued::Unchanged(c.lease.id), "done with the same payload stays done");
}

#[test]
fn a_parked_item_waits_for_its_input_to_change() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(dir.path());
    enqueue(&j, "a", "bad", t(0));
    let c = j.claim(t(0), 1, LEASE).unwrap().remove(0);
    j.commit(|tx| tx.park(c.lease, "certificate not found", t(1))).unwrap();
    assert!(matches!(enqueue(&j, "a", "bad", t(2)), Enqueued::Unchanged(_)));
    assert!(j.claim(t(3), 1, LEASE).unwrap().is_empty());
    assert!(matches!(enqueue(&j, "a", "fixed", t(4)), Enqueued::Updated(_)));
    let again = j.claim(t(4), 1, LEASE).unwrap().remove(0);
    assert_eq!((again.item.attempts, again.item.payload.as_slice()), (0, &b"fixed"[..]));
}

#[test]
fn a_multi_table_change_commits_atomically_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(dir.path());
    let key = rs("/zones/example.com", "www");
    enqueue(&j, "www", "put", t(0));
    let c = j.claim(t(0), 1, LEASE).unwrap().remove(0);
    let applied = AppliedRecordSet {
        etag: "e1".into(),
        owner: "o".into(),
        ttl: 300,
        targets: vec!["1.2.3.4".into()],
        applied_at: t(1),
    };
    // An abort after writing to three tables leaves all of them untouched.
    let err = j
        .commit(|tx| {
            tx.complete(c.lease, t(1))?;
            tx.put_applied_record(&key, &applied)?;
            tx.append_event(NewEvent::new(t(1), "record.applied", key.to_string(), "created"))?;
            Err::<(), _>(TxError::abort(Error::Aborted("Azure answered 412".into())))
        })
        .unwrap_err();
    assert_eq!(err.to_string(), "Azure answered 412");
    assert_eq!(j.work_item(c.lease.id).unwrap().unwrap().state, ItemState::InFlight);
    assert!(j.applied_record(&key).unwrap().is_none());
    assert!(j.last_event().unwrap().is_none());
    let seq = j
        .commit(|tx| {
            tx.complete(c.lease, t(1))?;
            tx.put_applied_record(&key, &applied)?;
            tx.append_event(NewEvent::new(t(1), "record.applied", key.to_string(), "created"))
        })
        .unwrap();
    assert_eq!(seq, 1);
    assert_eq!(j.applied_record(&key).unwrap(), Some(applied));
    assert_eq!(j.work_item(c.lease.id).unwrap().unwrap().state, ItemState::Done);
}

#[test]
fn event_sequence_numbers_are_monotonic_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let j = open(dir.path());
        for i in 0..3 {
            j.commit(|tx| tx.append_event(NewEvent::new(t(i), "a", "s", "m"))).unwrap();
        }
        j.close().unwrap();
    }
    let j = open(dir.path());
    let seq = j.commit(|tx| tx.append_event(NewEvent::new(t(9), "a", "s", "m"))).unwrap();
    assert_eq!(seq, 4);
    let seqs: Vec<u64> = j.events_after(0, 100).unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(j.events_after(2, 1).unwrap()[0].seq, 3);
}

#[test]
fn the_event_log_is_bounded_by_count_and_age() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        event_max_entries: 100,
        prune_interval: 10,
        event_max_age: Duration::from_secs(60),
        ..Options::default()
    };
    let j = open_with(dir.path(), options);
    for i in 0..1000 {
        j.commit(|tx| tx.append_event(NewEvent::new(t(i), "a", "s", "x".repeat(5000)))).unwrap();
        let n = j.events_after(0, usize::MAX).unwrap().len();
        assert!(n <= 110, "after {i} appends the log holds {n} entries, over 100 + one prune interval");
    }
    let e = j.last_event().unwrap().unwrap();
    assert!(e.message.len() <= MAX_MESSAGE_LEN + '…'.len_utf8(), "messages are truncated");
    // Age: everything older than 60 s before "now" goes at the next prune.
    j.commit(|tx| tx.append_event(NewEvent::new(t(1000 + 61_000), "a", "s", "m"))).unwrap();
    j.prune_events(t(1000 + 61_000)).unwrap();
    assert_eq!(j.events_after(0, usize::MAX).unwrap().len(), 1);
}

#[test]
fn a_second_opener_gets_a_clear_error_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let _j = open(dir.path());
    let err = RawJournal::open(dir.path(), Options::default()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Locked { pid: Some(p), .. } if p == std::process::id()), "{msg}");
    assert!(msg.contains("in use by another process") && msg.contains("--admin"), "{msg}");
}

#[test]
fn a_lock_this_process_is_letting_go_of_is_waited_for() {
    // As when a child forked by another thread still shares the lock file until it execs.
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path());
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        drop(first);
    });
    let second = RawJournal::open(dir.path(), Options::default());
    release.join().unwrap();
    assert!(second.is_ok(), "{:?}", second.err());
}

#[test]
fn a_journal_from_a_newer_schema_is_refused_naming_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    {
        let raw = RawJournal::open(dir.path(), Options::default()).unwrap();
        raw.record_migration(SCHEMA_VERSION + 1, "from the future", t(0)).unwrap();
    }
    let err = testing::open_current(dir.path(), Options::default()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::NewerSchema { .. }), "{msg}");
    assert!(msg.contains(&format!("schema version {}", SCHEMA_VERSION + 1)), "{msg}");
    assert!(msg.contains(&format!("up to {SCHEMA_VERSION}")), "{msg}");
}

#[test]
fn the_journal_directory_is_private_to_its_owner() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("journal");
    let j = open(&dir);
    for i in 0..200 {
        j.commit(|tx| tx.put_desired_record(&rs("z", &format!("n{i}")), &desired("1.1.1.1"))).unwrap();
    }
    j.close().unwrap();
    fn check(p: &std::path::Path) {
        for e in std::fs::read_dir(p).unwrap() {
            let e = e.unwrap();
            let mode = e.metadata().unwrap().permissions().mode() & 0o777;
            if e.file_type().unwrap().is_dir() {
                assert_eq!(mode, 0o700, "{}", e.path().display());
                check(&e.path());
            } else {
                assert_eq!(mode, 0o600, "{}", e.path().display());
            }
        }
    }
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    check(&dir);
}

#[test]
fn compact_drops_old_done_items_and_excess_certificate_versions() {
    let dir = tempfile::tempdir().unwrap();
    let j = open_with(dir.path(), Options { cert_versions_per_object: 2, ..Options::default() });
    enqueue(&j, "old", "1", t(0));
    enqueue(&j, "live", "1", t(0));
    for c in j.claim(t(0), 10, LEASE).unwrap() {
        if c.item.key == "old" {
            j.commit(|tx| tx.complete(c.lease, t(0))).unwrap();
        }
    }
    for v in 0..5 {
        let key = CertVersionKey {
            vault: "https://kv.vault.azure.net".into(),
            object: "cert".into(),
            version: format!("v{v}"),
        };
        let value = CertVersion {
            x5t: "x".into(),
            not_before: t(0),
            not_after: t(1),
            seen_at: t(v),
            applied_at: None,
            outcome: CertOutcome::Seen,
            reason: None,
        };
        j.commit(|tx| tx.put_cert_version(&key, &value)).unwrap();
    }
    let report = j.compact(t(8 * 24 * 3600 * 1000)).unwrap();
    assert_eq!((report.done_items_pruned, report.cert_versions_pruned), (1, 3));
    let keys: Vec<String> = j.work_items().unwrap().into_iter().map(|i| i.key).collect();
    assert_eq!(keys, ["live"], "in-flight items are kept");
    let versions: Vec<String> = j.cert_versions().unwrap().into_iter().map(|(k, _)| k.version).collect();
    assert_eq!(versions, ["v3", "v4"], "the newest versions are kept");
}

#[test]
fn keys_with_nul_bytes_are_refused_not_mangled() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(dir.path());
    let err = j.commit(|tx| tx.put_desired_record(&rs("z\0", "a"), &desired("1.1.1.1"))).unwrap_err();
    assert!(matches!(err, Error::InvalidKey { .. }), "{err}");
}

#[test]
fn a_watch_sees_events_appended_after_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(dir.path());
    j.commit(|tx| tx.append_event(NewEvent::new(t(0), "before", "s", "m"))).unwrap();
    let mut w = j.watch_events();
    let j2 = j.clone();
    let h =
        std::thread::spawn(move || j2.commit(|tx| tx.append_event(NewEvent::new(t(1), "after", "s", "m"))).unwrap());
    let e = w.next_timeout(Duration::from_secs(5)).expect("an event").unwrap();
    assert_eq!((e.seq, e.action.as_str()), (2, "after"));
    h.join().unwrap();
    assert!(w.next_timeout(Duration::from_millis(50)).is_none());
}

#[test]
fn concurrent_workers_never_claim_the_same_item_twice() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(dir.path());
    j.commit(|tx| {
        for i in 0..2000 {
            tx.enqueue("dns.record", &format!("k{i}"), b"p", t(0))?;
        }
        Ok(())
    })
    .unwrap();
    let claimed = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                loop {
                    let batch = j.claim(t(0), 8, LEASE).unwrap();
                    if batch.is_empty() {
                        break;
                    }
                    for c in batch {
                        j.commit(|tx| tx.complete(c.lease, t(1))).unwrap();
                        claimed.lock().unwrap().push(c.lease.id);
                    }
                }
            });
        }
    });
    let mut ids = claimed.into_inner().unwrap();
    ids.sort_unstable();
    let total = ids.len();
    ids.dedup();
    assert_eq!((total, ids.len()), (2000, 2000), "every item claimed exactly once");
    assert!(j.work_items().unwrap().iter().all(|i| i.state == ItemState::Done));
}

#[test]
fn work_enqueued_for_later_waits_until_it_is_due() {
    let dir = tempfile::tempdir().unwrap();
    let j = open(dir.path());
    // A deletion held down for five minutes.
    j.commit(|tx| tx.enqueue_at("dns.record", "a", b"delete", t(300_000), t(0))).unwrap();
    assert!(j.claim(t(299_999), 10, LEASE).unwrap().is_empty());
    // The source comes back: the new payload replaces the deletion and is due at once.
    j.commit(|tx| tx.enqueue("dns.record", "a", b"upsert", t(1_000))).unwrap();
    let c = j.claim(t(1_000), 10, LEASE).unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].item.payload, b"upsert");
}
