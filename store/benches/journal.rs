//! Journal benchmark: `cargo bench -p routewarden-store --bench journal` prints one table.
//! Rows: single-commit latency, batched commits, concurrent committers (group commit), queue
//! claim + complete throughput over 100,000 queued items, and open time with 1,000,000 events.
//! `ROUTEWARDEN_BENCH_SCALE=0.1` shrinks every count for a quick run.
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use hdrhistogram::Histogram;
use routewarden_store::*;
use std::time::{Duration, Instant};

fn scale(n: u64) -> u64 {
    let s: f64 = std::env::var("ROUTEWARDEN_BENCH_SCALE").ok().and_then(|v| v.parse().ok()).unwrap_or(1.0);
    ((n as f64 * s) as u64).max(1)
}

fn options() -> Options {
    Options { event_max_entries: 2_000_000, prune_interval: u64::MAX, ..Options::default() }
}

fn fresh() -> (tempfile::TempDir, Journal) {
    let dir = tempfile::tempdir().expect("tempdir");
    let j = testing::open_current(dir.path(), options()).expect("open");
    (dir, j)
}

fn key(n: u64) -> RecordSetKey {
    RecordSetKey {
        zone: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/dnszones/contoso.com".into(),
        name: format!("host-{n}"),
        record_type: RecordType::A,
    }
}

fn desired(n: u64, now: Time) -> DesiredRecordSet {
    DesiredRecordSet {
        ttl: 300,
        targets: vec![format!("10.0.{}.{}", n / 256 % 256, n % 256)],
        owner: "cluster/cedns".into(),
        sources: vec![format!("HTTPRoute/app/r{n}")],
        updated_at: now,
    }
}

/// One planner-sized change: desired record + work item + event.
fn plan(tx: &Tx<'_>, n: u64, now: Time) -> TxResult<()> {
    tx.put_desired_record(&key(n), &desired(n, now))?;
    tx.enqueue("dns.record", &key(n).to_string(), &n.to_be_bytes(), now)?;
    tx.append_event(NewEvent::new(now, "record.planned", key(n).to_string(), "route hostname added"))?;
    Ok(())
}

fn micros(h: &Histogram<u64>, q: f64) -> String {
    format!("{:.0} µs", h.value_at_quantile(q) as f64)
}

fn main() {
    let mut rows: Vec<[String; 3]> = Vec::new();
    let now = Time::from_millis(1_790_000_000_000);

    // 1. Single-item commits, one after another: each waits for its own flush.
    {
        let (_d, j) = fresh();
        let n = scale(2_000);
        let mut h = Histogram::<u64>::new(3).expect("histogram");
        for i in 0..n {
            let t = Instant::now();
            j.commit(|tx| plan(tx, i, now)).expect("commit");
            h.record(t.elapsed().as_micros() as u64).expect("record");
        }
        rows.push([
            "single commit (record + item + event), latency".into(),
            format!("p50 {}  p99 {}", micros(&h, 0.5), micros(&h, 0.99)),
            format!("{n} commits"),
        ]);
    }

    // 2. Batched commits: 100 changes per commit.
    {
        let (_d, j) = fresh();
        let batches = scale(200);
        let t = Instant::now();
        for b in 0..batches {
            j.commit(|tx| (0..100).try_for_each(|i| plan(tx, b * 100 + i, now))).expect("commit");
        }
        let el = t.elapsed();
        rows.push([
            "batched commits, 100 changes each".into(),
            format!("{:.0} changes/s", (batches * 100) as f64 / el.as_secs_f64()),
            format!("{:.2} ms per batch", el.as_secs_f64() * 1e3 / batches as f64),
        ]);
    }

    // 3. Concurrent single-item committers share flushes (group commit).
    {
        let (_d, j) = fresh();
        let per = scale(1_000);
        let threads = 8u64;
        let t = Instant::now();
        std::thread::scope(|s| {
            for th in 0..threads {
                let j = j.clone();
                s.spawn(move || {
                    for i in 0..per {
                        j.commit(|tx| plan(tx, th * 1_000_000 + i, now)).expect("commit");
                    }
                });
            }
        });
        let el = t.elapsed();
        rows.push([
            format!("{threads} concurrent committers (group commit)"),
            format!("{:.0} commits/s", (threads * per) as f64 / el.as_secs_f64()),
            format!("{} commits", threads * per),
        ]);
    }

    // 4. Queue: 100,000 items queued, then claim + complete until drained.
    {
        let (_d, j) = fresh();
        let total = scale(100_000);
        for b in 0..total.div_ceil(1_000) {
            j.commit(|tx| {
                for i in (b * 1_000)..((b + 1) * 1_000).min(total) {
                    tx.enqueue("dns.record", &format!("item-{i}"), &i.to_be_bytes(), now)?;
                }
                Ok(())
            })
            .expect("enqueue");
        }
        // Workers complete one item per commit (each completion records an applied state), 4 at once.
        let t = Instant::now();
        let done = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    loop {
                        let claimed = j.claim(now, 16, Duration::from_secs(60)).expect("claim");
                        if claimed.is_empty() {
                            break;
                        }
                        for c in claimed {
                            j.commit(|tx| {
                                tx.complete(c.lease, now)?;
                                tx.put_applied_record(
                                    &key(c.item.id),
                                    &AppliedRecordSet {
                                        etag: "e".into(),
                                        owner: "o".into(),
                                        ttl: 300,
                                        targets: vec![],
                                        applied_at: now,
                                    },
                                )
                            })
                            .expect("complete");
                            done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        let el = t.elapsed();
        let n = done.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(n, total, "every item completed exactly once");
        rows.push([
            format!("queue claim + complete, {total} queued, 4 workers"),
            format!("{:.0} items/s", n as f64 / el.as_secs_f64()),
            format!("drained in {:.1} s", el.as_secs_f64()),
        ]);
    }

    // 5. Open time with 1,000,000 event-log entries.
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let total = scale(1_000_000);
        {
            let j = testing::open_current(dir.path(), options()).expect("open");
            for b in 0..total.div_ceil(10_000) {
                j.commit(|tx| {
                    for i in (b * 10_000)..((b + 1) * 10_000).min(total) {
                        tx.append_event(NewEvent::new(
                            now,
                            "record.applied",
                            key(i).to_string(),
                            "created with If-None-Match: *",
                        ))?;
                    }
                    Ok(())
                })
                .expect("append");
            }
            j.close().expect("close");
        }
        let mut h = Histogram::<u64>::new(3).expect("histogram");
        let mut size = 0;
        for _ in 0..5 {
            let t = Instant::now();
            let j = testing::open_current(dir.path(), options()).expect("open");
            h.record(t.elapsed().as_micros() as u64).expect("record");
            size = j.size_on_disk();
            assert_eq!(j.last_event().expect("read").map(|e| e.seq), Some(total));
        }
        rows.push([
            format!("open with {total} events"),
            format!("p50 {:.0} ms  max {:.0} ms", h.value_at_quantile(0.5) as f64 / 1e3, h.max() as f64 / 1e3),
            format!("{:.0} MiB on disk", size as f64 / (1 << 20) as f64),
        ]);
    }

    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(["journal benchmark", "result", "detail"]);
    for r in rows {
        table.add_row(r);
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    println!(
        "routewarden-store {} — {cores} cores — every commit durable (flushed) before it returns",
        env!("CARGO_PKG_VERSION")
    );
    println!("{table}");
}
