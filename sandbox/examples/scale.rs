//! Scale benchmark for the emulated API server (issue 3, requirement 11): creates 10,000
//! ConfigMaps, opens 50 concurrent watches, then prints the time to list all 10,000 objects, the
//! watch fan-out latency (p50/p99 from a write until all 50 watches saw it), and the store's
//! resident memory per 10,000 objects. Run with
//! `cargo run --release -p routewarden-sandbox --example scale`.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use routewarden_sandbox::kube::{KubeServer, KubeServerOptions};
use serde_json::json;

const OBJECTS: usize = 10_000;
const WATCHES: usize = 50;
const SAMPLES: usize = 200;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server = KubeServer::start(KubeServerOptions { watch_window: 20_000, ..KubeServerOptions::default() }).await?;
    let client = server.client().await?;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    let rss_before = rss_kib();
    let started = Instant::now();
    let mut creates = futures::stream::iter(0..OBJECTS)
        .map(|i| {
            let api = api.clone();
            async move {
                let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": format!("cm-{i:05}"), "labels": {"bench": "yes"}}, "data": {"payload": "x".repeat(200)}}))?;
                api.create(&PostParams::default(), &cm).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(32);
    while let Some(r) = creates.next().await {
        r?;
    }
    let create_time = started.elapsed();
    let rss_after = rss_kib();

    let started = Instant::now();
    let list = api.list(&ListParams::default()).await?;
    let list_time = started.elapsed();
    assert_eq!(list.items.len(), OBJECTS);
    let rv = list.metadata.resource_version.clone().unwrap_or_default();

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, String)>();
    for w in 0..WATCHES {
        let stream = api.watch(&WatchParams::default().timeout(290), &rv).await?;
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut stream = stream.boxed();
            while let Ok(Some(event)) = stream.try_next().await {
                if let WatchEvent::Modified(cm) = event {
                    let _ = tx.send((w, cm.data.and_then(|d| d.get("seq").cloned()).unwrap_or_default()));
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut latencies = Vec::with_capacity(SAMPLES);
    for seq in 0..SAMPLES {
        let started = Instant::now();
        api.patch("cm-00000", &PatchParams::default(), &Patch::Merge(json!({"data": {"seq": seq.to_string()}})))
            .await?;
        let mut seen = 0;
        while seen < WATCHES {
            let (_, got) = rx.recv().await.ok_or_else(|| anyhow::anyhow!("watch ended"))?;
            if got == seq.to_string() {
                seen += 1;
            }
        }
        latencies.push(started.elapsed());
    }
    latencies.sort();
    println!("routewarden-sandbox scale benchmark ({OBJECTS} ConfigMaps of ~200 B, {WATCHES} watches)");
    println!("  create {OBJECTS} (32 in flight):      {create_time:?}");
    println!("  list {OBJECTS}:                       {list_time:?}");
    println!(
        "  watch fan-out to {WATCHES} (write → all saw it): p50 {:?}  p99 {:?}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    println!(
        "  resident memory for {OBJECTS} objects:  {} KiB (process RSS growth, client included)",
        rss_after.saturating_sub(rss_before)
    );
    server.shutdown().await;
    Ok(())
}
