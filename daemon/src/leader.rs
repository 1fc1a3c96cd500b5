//! Leader election over a `coordination.k8s.io/v1` Lease (kube-lease-manager: kube has none).
//! Every replica watches and plans, so its caches and its journal's desired state stay warm; only
//! the replica holding the Lease runs what writes to Azure or Kubernetes — the workers that drain
//! the journal, the certificate poller, the zone verifier and the status writers — each started
//! through [`while_leader`] when the Lease is won and stopped when it is lost.
//!
//! A new leader trusts no applied state it did not verify: its DNS workers take a zone's items
//! only after the zone has been listed in this term (see `dns::verify`), so record sets the old
//! leader wrote are recorded as applied instead of being written again. TLS needs nothing extra:
//! a listener's Secret already carrying the newest version is not written again.

use kube_lease_manager::{LeaseCreateMode, LeaseManagerBuilder};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// Whether this replica leads. Without election (`--no-leader-election`) it always does.
#[derive(Clone, Debug)]
pub struct Leadership {
    /// `None` until the Lease has been read once; then whether this replica holds it.
    state: watch::Receiver<Option<bool>>,
    /// How many times leadership was won: state verified in one term is not trusted in the next.
    term: Arc<AtomicU64>,
    /// Keeps a fixed state's channel open (see [`Leadership::always`]).
    _fixed: Option<Arc<watch::Sender<Option<bool>>>>,
}

/// Sets a [`Leadership`]'s state.
#[derive(Debug)]
pub struct LeadershipSender {
    tx: watch::Sender<Option<bool>>,
    term: Arc<AtomicU64>,
}

impl LeadershipSender {
    pub fn send(&self, state: Option<bool>) {
        self.tx.send_if_modified(|s| {
            if *s == state {
                return false;
            }
            if state == Some(true) {
                self.term.fetch_add(1, Ordering::SeqCst);
            }
            *s = state;
            true
        });
    }

    fn leading(&self) -> Option<bool> {
        *self.tx.borrow()
    }
}

impl Leadership {
    /// A replica that leads from the start (no election).
    pub fn always() -> Self {
        let (tx, rx) = watch::channel(Some(true));
        Leadership { state: rx, term: Arc::new(AtomicU64::new(1)), _fixed: Some(Arc::new(tx)) }
    }

    /// Leadership driven by the returned sender (tests, and [`elect`]).
    pub fn channel() -> (Self, LeadershipSender) {
        let (tx, rx) = watch::channel(None);
        let term = Arc::new(AtomicU64::new(0));
        (Leadership { state: rx, term: term.clone(), _fixed: None }, LeadershipSender { tx, term })
    }

    /// The current term: incremented each time leadership is won.
    pub fn term(&self) -> u64 {
        self.term.load(Ordering::SeqCst)
    }

    pub fn is_leader(&self) -> bool {
        *self.state.borrow() == Some(true)
    }

    /// Whether the Lease has been read at least once (readiness needs it).
    pub fn known(&self) -> bool {
        self.state.borrow().is_some()
    }

    /// A receiver of the raw state (for a metrics gauge).
    pub fn subscribe(&self) -> watch::Receiver<Option<bool>> {
        self.state.clone()
    }
}

/// Leader election settings.
#[derive(Clone, Debug)]
pub struct Election {
    pub namespace: String,
    pub lease: String,
    pub identity: String,
    pub duration: Duration,
    /// How long before expiry the holder renews.
    pub renew_before: Duration,
}

/// Contends for the Lease until `stop`; the returned [`Leadership`] follows the outcome. On stop
/// a held Lease is released, so the other replica takes over at once instead of after expiry.
pub fn elect(
    client: kube::Client,
    election: Election,
    mut stop: watch::Receiver<bool>,
) -> (Leadership, tokio::task::JoinHandle<()>) {
    let (leadership, tx) = Leadership::channel();
    let task = tokio::spawn(async move {
        let mut backoff = Duration::from_secs(1);
        let manager = loop {
            let built = LeaseManagerBuilder::new(client.clone(), &election.lease)
                .with_namespace(&election.namespace)
                .with_identity(&election.identity)
                .with_create_mode(LeaseCreateMode::AutoCreate)
                .with_duration(election.duration.as_secs().max(2))
                .with_grace(election.renew_before.as_secs().clamp(1, election.duration.as_secs().max(2) - 1))
                .with_field_manager("routewarden")
                .build()
                .await;
            match built {
                Ok(m) => break m,
                Err(e) => {
                    tracing::warn!(namespace = %election.namespace, lease = %election.lease, error = %e, retry_in = ?backoff, "cannot reach the leader Lease; not leading until it can be read");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        };
        tracing::info!(namespace = %election.namespace, lease = %election.lease, identity = %election.identity, "contending for leadership");
        tx.send(Some(false));
        let (mut state, watcher) = manager.watch().await;
        loop {
            let leading = *state.borrow_and_update();
            if tx.leading().is_some_and(|was| was != leading) {
                if leading {
                    tracing::info!(identity = %election.identity, "became the leader");
                } else {
                    tracing::warn!(identity = %election.identity, "lost leadership; stopping writers");
                }
            }
            tx.send(Some(leading));
            tokio::select! {
                changed = state.changed() => if changed.is_err() { break },
                _ = stop.changed() => break,
            }
        }
        // Dropping the receiver makes the manager release the Lease and end.
        tx.send(Some(false));
        drop(state);
        match tokio::time::timeout(Duration::from_secs(5), watcher).await {
            Ok(Ok(Ok(_))) => tracing::info!("leader Lease released"),
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "failed to release the leader Lease"),
            Ok(Err(e)) => tracing::warn!(error = %e, "leader election task failed"),
            Err(_) => tracing::warn!("leader Lease not released within 5s"),
        }
    });
    (leadership, task)
}

/// Runs `run(stop)` while this replica leads: started when leadership is won, told to stop (and
/// awaited, up to 5 s) when it is lost or `stop` turns true, started again on the next win.
pub fn while_leader<F, Fut>(
    what: &'static str,
    leadership: &Leadership,
    stop: &watch::Receiver<bool>,
    run: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn(watch::Receiver<bool>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut state = leadership.state.clone();
    let mut stop = stop.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                won = state.wait_for(|s| *s == Some(true)) => if won.is_err() { return },
                _ = stop.wait_for(|s| *s) => return,
            }
            if *stop.borrow() {
                return;
            }
            let (term_stop, term_stopped) = watch::channel(false);
            let mut task = tokio::spawn(run(term_stopped));
            // A closed channel (the election ended) changes nothing: only stop ends the term then.
            let lost = async {
                if state.wait_for(|s| *s != Some(true)).await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            let finished = tokio::select! {
                _ = lost => false,
                _ = stop.wait_for(|s| *s) => false,
                _ = &mut task => true,
            };
            if !finished {
                let _ = term_stop.send(true);
                if tokio::time::timeout(Duration::from_secs(5), &mut task).await.is_err() {
                    tracing::warn!(task = what, "did not stop within 5s of losing leadership; aborting it");
                    task.abort();
                }
            }
            if *stop.borrow() {
                return;
            }
        }
    })
}

/// [`while_leader`] for a pool: `n` copies of `run`, all started on each win and stopped together.
pub fn pool_while_leader<F, Fut>(
    what: &'static str,
    n: usize,
    leadership: &Leadership,
    stop: &watch::Receiver<bool>,
    run: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn(watch::Receiver<bool>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let run = Arc::new(run);
    while_leader(what, leadership, stop, move |stop| {
        let pool = crate::backoff::spawn_workers(n, &stop, |stop| run(stop));
        async move {
            futures::future::join_all(pool).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test]
    async fn a_writer_runs_only_while_leading_and_restarts_on_each_win() {
        let (leadership, tx) = Leadership::channel();
        let (stop_tx, stop) = watch::channel(false);
        let starts = Arc::new(AtomicUsize::new(0));
        let running = Arc::new(AtomicUsize::new(0));
        let task = {
            let (starts, running) = (starts.clone(), running.clone());
            while_leader("test", &leadership, &stop, move |mut stop| {
                let (starts, running) = (starts.clone(), running.clone());
                async move {
                    starts.fetch_add(1, Ordering::SeqCst);
                    running.fetch_add(1, Ordering::SeqCst);
                    let _ = stop.wait_for(|s| *s).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                }
            })
        };
        let settle = || tokio::time::sleep(Duration::from_millis(50));
        settle().await;
        assert_eq!(starts.load(Ordering::SeqCst), 0, "unknown leadership starts nothing");
        tx.send(Some(false));
        settle().await;
        assert_eq!(starts.load(Ordering::SeqCst), 0, "a follower starts nothing");
        assert_eq!(leadership.term(), 0);
        tx.send(Some(true));
        settle().await;
        assert_eq!((starts.load(Ordering::SeqCst), running.load(Ordering::SeqCst)), (1, 1));
        assert_eq!(leadership.term(), 1);
        tx.send(Some(false));
        settle().await;
        assert_eq!(running.load(Ordering::SeqCst), 0, "losing the lease stops the writer");
        tx.send(Some(true));
        settle().await;
        assert_eq!((starts.load(Ordering::SeqCst), running.load(Ordering::SeqCst)), (2, 1));
        assert_eq!(leadership.term(), 2, "each win is a new term");
        stop_tx.send(true).expect("send");
        tokio::time::timeout(Duration::from_secs(2), task).await.expect("stops").expect("joins");
        assert_eq!(running.load(Ordering::SeqCst), 0);
    }
}
