//! Rotation detection. Each distinct (vault, certificate, identity) that a rotation-following
//! listener uses is checked once per interval with one metadata request — the certificate's
//! current version and thumbprint — however many listeners share it. A new version queues a sync
//! for exactly the listeners that do not serve it yet; the download happens there, once.

use super::worker::Workers;
use super::{Outcome, Reason, identity_key, lock};
use routewarden_planner::tls::{PollKey, poll_groups};
use routewarden_store::{CertBindingKey, CertOutcome, CertVersion, CertVersionKey, NewEvent, Time};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, watch};

/// Metadata requests in flight at once.
const CONCURRENCY: usize = 16;

pub async fn run(w: Arc<Workers>, mut stop: watch::Receiver<bool>) {
    let mut next: HashMap<PollKey, Instant> = HashMap::new();
    let limit = Arc::new(Semaphore::new(CONCURRENCY));
    loop {
        let groups: Vec<(PollKey, Vec<CertBindingKey>, Duration)> = {
            let s = lock(&w.shared);
            poll_groups(&s.plan)
                .into_iter()
                .map(|(pk, keys)| {
                    let interval = keys
                        .iter()
                        .filter_map(|k| s.plan.bindings.get(k).and_then(|b| b.poll_interval))
                        .min()
                        .unwrap_or(w.settings.poll_interval);
                    (pk, keys, interval)
                })
                .collect()
        };
        next.retain(|pk, _| groups.iter().any(|(g, _, _)| g == pk));
        let now = Instant::now();
        let mut soonest = now + Duration::from_secs(1);
        for (pk, keys, interval) in groups {
            // The first check is one interval after the group appears: its first sync just read
            // the current version.
            let due = next.entry(pk.clone()).or_insert(now + interval);
            if *due <= now {
                *due = now + interval;
                let w = w.clone();
                let limit = limit.clone();
                tokio::spawn(async move {
                    let Ok(_permit) = limit.acquire().await else { return };
                    poll(&w, &pk, &keys).await;
                });
            }
            soonest = soonest.min(*due);
        }
        tokio::select! {
            _ = tokio::time::sleep_until(soonest.into()) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One check of one certificate.
pub async fn poll(w: &Workers, pk: &PollKey, keys: &[CertBindingKey]) {
    let id = identity_key(&pk.identity);
    let known = match w.current_version(pk, &id, true).await {
        Ok(k) => k,
        Err(e) => {
            tracing::debug!(vault = %pk.vault_url, certificate = %pk.certificate, error = %e.message, "rotation check failed");
            return;
        }
    };
    journal_seen(w, pk, &known.version, known.x5t.as_deref()).await;
    let stale: Vec<CertBindingKey> = {
        let s = lock(&w.shared);
        keys.iter()
            .filter(|key| {
                let up_to_date = match s.outcomes.get(*key) {
                    Some(Outcome::Ready { version, .. }) => *version == known.version,
                    // A version that failed validation stays failed; wait for the next one.
                    Some(Outcome::Failed { reason: Reason::ValidationFailed, attempted: Some(v), .. }) => {
                        *v == known.version
                    }
                    _ => false,
                };
                !up_to_date
            })
            .cloned()
            .collect()
    };
    if !stale.is_empty() {
        tracing::info!(vault = %pk.vault_url, certificate = %pk.certificate, version = %known.version, listeners = stale.len(), "new certificate version; syncing");
        // One commit for the whole group: a certificate shared by hundreds of listeners reaches
        // all of their workers at once.
        super::controller::queue_rotation(w, &stale, &known.version).await;
    }
}

/// Journals a version the first time it is seen.
async fn journal_seen(w: &Workers, pk: &PollKey, version: &str, x5t: Option<&str>) {
    let journal = w.journal.clone();
    let vkey =
        CertVersionKey { vault: pk.vault_url.clone(), object: pk.certificate.clone(), version: version.to_owned() };
    let x5t = x5t.unwrap_or_default().to_owned();
    let _ = tokio::task::spawn_blocking(move || {
        journal.commit(|tx| {
            if tx.cert_version(&vkey)?.is_some() {
                return Ok(());
            }
            let now = Time::now();
            tx.put_cert_version(
                &vkey,
                &CertVersion {
                    x5t: x5t.clone(),
                    not_before: Time(0),
                    not_after: Time(0),
                    seen_at: now,
                    applied_at: None,
                    outcome: CertOutcome::Seen,
                    reason: None,
                },
            )?;
            tx.append_event(NewEvent::new(
                now,
                "cert.seen",
                format!("{}/certificates/{}/{}", vkey.vault, vkey.object, vkey.version),
                "new version in Key Vault",
            ))?;
            Ok(())
        })
    })
    .await;
}
