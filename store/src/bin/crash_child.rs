//! Crash-test child (store/tests/crash.rs): opens the journal in `argv[1]`, then commits forever
//! from four threads and prints every commit once it is acknowledged, until it is killed.
//!   `a <n>`: item `k<n>` enqueued, desired record `k<n>` written and an event appended, atomically;
//!   `c <n>`: item `k<n>` completed and its applied record written, atomically.
use routewarden_store::{
    AppliedRecordSet, DesiredRecordSet, NewEvent, Options, RecordSetKey, RecordType, Time, testing,
};
use std::io::Write;
use std::time::Duration;

fn key(n: u64) -> RecordSetKey {
    RecordSetKey { zone: "zone".into(), name: format!("k{n}"), record_type: RecordType::A }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: crash-child DIR START")?;
    let start: u64 = args.next().ok_or("usage: crash-child DIR START")?.parse()?;
    let journal = testing::open_current(dir.as_ref(), Options::default())?;
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let j = journal.clone();
            std::thread::spawn(move || -> Result<(), routewarden_store::Error> {
                let mut n = start + t;
                loop {
                    let now = Time::now();
                    j.commit(|tx| {
                        tx.enqueue("crash", &format!("k{n}"), &n.to_be_bytes(), now)?;
                        let d = DesiredRecordSet {
                            ttl: 300,
                            targets: vec![n.to_string()],
                            owner: "o".into(),
                            sources: vec![],
                            updated_at: now,
                        };
                        tx.put_desired_record(&key(n), &d)?;
                        tx.append_event(NewEvent::new(now, "crash.added", format!("k{n}"), "x"))
                    })?;
                    println_flush(&format!("a {n}"));
                    for c in j.claim(now, 1, Duration::from_secs(3600))? {
                        let m: u64 = c.item.key[1..].parse().unwrap_or(0);
                        let a = AppliedRecordSet {
                            etag: "e".into(),
                            owner: "o".into(),
                            ttl: 300,
                            targets: vec![m.to_string()],
                            applied_at: now,
                        };
                        j.commit(|tx| {
                            tx.complete(c.lease, now)?;
                            tx.put_applied_record(&key(m), &a)
                        })?;
                        println_flush(&format!("c {m}"));
                    }
                    n += 4;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| "commit thread panicked")??;
    }
    Ok(())
}

fn println_flush(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
