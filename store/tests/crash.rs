//! Crash test: a child process commits in a loop from four threads and prints each acknowledged
//! commit; we `kill -9` it at a random moment, reopen the journal, and check that it opens cleanly,
//! that every acknowledged commit is there, and that every commit is all-or-nothing.
//! CI runs 12 rounds; `ROUTEWARDEN_CRASH_ROUNDS=200 cargo test -p routewarden-store --test crash`
//! runs the long version.
#![allow(clippy::unwrap_used)]
mod common;
use rand::Rng;
use routewarden_store::*;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[test]
fn every_acknowledged_commit_survives_kill_9() {
    let rounds: u64 = std::env::var("ROUTEWARDEN_CRASH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(12);
    let dir = tempfile::tempdir().unwrap();
    let mut added = BTreeSet::new();
    let mut completed = BTreeSet::new();
    let mut rng = rand::rng();
    for round in 0..rounds {
        let mut child = Command::new(env!("CARGO_BIN_EXE_routewarden-store-crash-child"))
            .arg(dir.path())
            .arg((round * 1_000_000).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let acks = Arc::new(Mutex::new(Vec::<String>::new()));
        let reader = {
            let acks = acks.clone();
            let out = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    acks.lock().unwrap().push(line);
                }
            })
        };
        // Wait until the loop is running, then kill at a random point within it.
        let deadline = Instant::now() + Duration::from_secs(30);
        while acks.lock().unwrap().is_empty() {
            assert!(Instant::now() < deadline, "round {round}: the child never acknowledged a commit");
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(5..250)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        for line in acks.lock().unwrap().iter() {
            match line.split_once(' ') {
                Some(("a", n)) => added.insert(format!("k{n}")),
                Some(("c", n)) => completed.insert(format!("k{n}")),
                _ => panic!("round {round}: unexpected child output {line:?}"),
            };
        }

        let j = common::open(dir.path());
        let desired: BTreeSet<String> = j.desired_records(None).unwrap().into_iter().map(|(k, _)| k.name).collect();
        let applied: BTreeSet<String> = j.applied_records(None).unwrap().into_iter().map(|(k, _)| k.name).collect();
        let items: Vec<WorkItem> = j.work_items().unwrap();
        let item_keys: BTreeSet<String> = items.iter().map(|i| i.key.clone()).collect();
        let event_subjects: BTreeSet<String> =
            j.events_after(0, usize::MAX).unwrap().into_iter().map(|e| e.subject).collect();
        let lost: Vec<&String> = added.difference(&desired).collect();
        assert!(lost.is_empty(), "round {round}: acknowledged commits lost: {lost:?}");
        // All-or-nothing: each commit's three writes are present together or not at all.
        assert_eq!(desired, item_keys, "round {round}: desired records and work items disagree");
        assert_eq!(desired, event_subjects, "round {round}: desired records and events disagree");
        for key in &completed {
            let item = items.iter().find(|i| &i.key == key).unwrap();
            assert_eq!(item.state, ItemState::Done, "round {round}: acknowledged completion of {key} lost");
        }
        for item in &items {
            assert_eq!(
                item.state == ItemState::Done,
                applied.contains(&item.key),
                "round {round}: {} half-completed",
                item.key
            );
        }
        j.close().unwrap();
    }
    assert!(added.len() as u64 >= rounds, "the child made progress in every round");
}
