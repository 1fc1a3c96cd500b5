//! The crash suite: routewarden is killed with SIGKILL at random moments while it drains a queue
//! of record-set writes, and started again on the same journal, over and over. After the last
//! restart the zone holds exactly the desired record sets, the DNS resource reports them all
//! applied, no record set was committed in Azure more than once (a write in flight at the kill may
//! be sent again, and is then refused with 412 — never applied twice), and the journal opens
//! cleanly with nothing pending or parked.
//!
//! The CI version kills 8 times during a 400-item drain. The full suite (2,000 items, 50 kills):
//!
//! ```sh
//! ROUTEWARDEN_CRASH_ROUTES=2000 ROUTEWARDEN_CRASH_KILLS=50 cargo test -p routewarden-e2e --release --test crash -- --nocapture
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use rand::Rng;
use routewarden_e2e::dns::{self, gateway_addresses, http_gateway, ready_when, route, synced_with, zone_id};
use routewarden_e2e::*;
use routewarden_sandbox_azure::{FaultConfig, LatencyRule};
use std::collections::HashMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `routewarden run` as its own process, on `journal`, logging to `log`.
fn spawn(env: &Env, journal: &std::path::Path, log: &std::path::Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    env.daemon_command(env!("CARGO_BIN_EXE_routewarden-child"), journal)
        .args(["--no-leader-election", "--workers", "2"])
        // No client-side pacing: local Azure's limits are off too, so lives are bounded by the
        // write latency alone.
        .args(["--public-zone-write-limit", "100000/1s", "--arm-write-limit", "100000/1s"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_during_a_drain_it_converges_with_each_record_set_written_once() {
    let routes = setting("ROUTEWARDEN_CRASH_ROUTES", 400);
    let kills = setting("ROUTEWARDEN_CRASH_KILLS", 8);
    let env = Env::start(Options { daemon: false, ..Options::default() }).await.unwrap();
    let journal = env.dir.path().join("crash-journal");
    let log = env.dir.path().join("daemon.log");
    let mut feed = env.azure.admin().watch_record_sets();

    // The whole desired state exists before the first start: a Gateway, `routes` routes on it,
    // and a ClusterExternalDNS publishing them.
    env.apply_yaml(routewarden_sandbox::demo::NAMESPACES_YAML).await.unwrap();
    env.apply_yaml(&http_gateway("app-a", "crash-gw", None)).await.unwrap();
    let addresses = gateway_addresses(&env, "app-a", "crash-gw").await;
    for i in 0..routes {
        env.apply_yaml(&route("app-a", &format!("c{i}"), "crash-gw", &[&format!("c{i}.example.com")], None))
            .await
            .unwrap();
    }
    env.apply_yaml(&dns::cluster_dns("crash-dns", &[zone_id()], None)).await.unwrap();
    // Slow writes, so each life of the daemon drains only part of the queue.
    let mut slow = FaultConfig {
        latency: vec![LatencyRule {
            service: Some("arm".into()),
            operation: Some("RecordSets_CreateOrUpdate".into()),
            fixed_ms: 80,
            jitter_ms: 40,
        }],
        ..Default::default()
    };
    slow.rate_limits.enabled = false;
    env.azure.admin().set_faults(slow);

    let mut rng = rand::rng();
    let mut written: HashMap<String, usize> = HashMap::new();
    let count = |feed: &mut tokio::sync::mpsc::UnboundedReceiver<_>, written: &mut HashMap<String, usize>| {
        while let Ok(c) = feed.try_recv() {
            let c: routewarden_sandbox_azure::RecordSetChange = c;
            *written.entry(c.name).or_default() += 1;
        }
    };
    let started = Instant::now();
    let mut mid_drain = 0;
    for round in 0..kills {
        let mut child = spawn(&env, &journal, &log);
        // Anywhere from before the journal is open to well into the drain.
        let life = Duration::from_millis(rng.random_range(50..2500));
        tokio::time::sleep(life).await;
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success(), "round {round}: the daemon must have been killed, not have exited: {status}");
        count(&mut feed, &mut written);
        if written.len() < routes {
            mid_drain += 1;
        }
        println!("kill {:>2} after {life:>8?}: {:>4} of {routes} record sets written", round + 1, written.len());
    }
    assert!(mid_drain * 2 >= kills, "most kills must land during the drain ({mid_drain} of {kills} did)");

    // The last life: full speed, until everything is published.
    let mut fast = FaultConfig::default();
    fast.rate_limits.enabled = false;
    env.azure.admin().set_faults(fast);
    let mut child = spawn(&env, &journal, &log);
    let status = ready_when(&env, "clusterexternaldnses", None, "crash-dns", |s| synced_with(s, routes as u64)).await;
    assert!(synced_with(&status, routes as u64), "{status}");
    child.kill().unwrap();
    let _ = child.wait();
    count(&mut feed, &mut written);
    println!("converged {:?} after the first start, {kills} kills", started.elapsed());

    let sets = env.azure.admin().list_record_sets(seed000::ZONE).unwrap();
    let records = dns::a_records(&env, seed000::ZONE);
    assert_eq!(records.len(), routes, "exactly the desired record sets: {} listed", sets.len());
    for i in 0..routes {
        let (_, ips, _) = records.get(&format!("c{i}")).unwrap_or_else(|| panic!("c{i} missing"));
        assert_eq!(ips, &addresses, "c{i}");
    }
    let twice: Vec<_> = written.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "record sets committed more than once: {twice:?}");
    assert_eq!(written.len(), routes);
    // The documented allowance: a write in flight at a kill may be sent once more and refused.
    // A new process lists the zone before it writes, so in practice none is.
    let refused = env.azure.calls().get("arm", "RecordSets_CreateOrUpdate", 412);
    assert!(refused <= kills as u64, "{refused} conditional writes refused after {kills} kills");
    println!("record sets committed once each; {refused} writes refused as already applied");

    // The journal the killed processes left opens cleanly and has nothing left to do.
    let journal = routewarden_migrations::open(&journal, Default::default(), routewarden_store::Time::now()).unwrap();
    let items = journal.work_items().unwrap();
    let unfinished: Vec<_> =
        items.iter().filter(|i| i.state != routewarden_store::ItemState::Done).map(|i| (&i.key, i.state)).collect();
    assert!(unfinished.is_empty(), "{unfinished:?}");
    journal.close().unwrap();
    env.shutdown().await;
}
