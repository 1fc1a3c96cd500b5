//! How every controller's workers run ([`spawn_workers`]), take their next work item
//! ([`claim_next`]) and when they try a failed one again ([`Backoff`]): transient failures back
//! off exponentially with full jitter (never sooner than the server's Retry-After), so many items
//! failing together do not retry in lockstep; failures that need their input to change wait a
//! fixed interval, long enough not to hammer and short enough to notice a fix.

use std::time::Duration;

/// The bounds of a controller's retries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Transient failures back off from this ...
    pub min: Duration,
    /// ... to this.
    pub max: Duration,
    /// Failures that wait for their input to change try again after this.
    pub wait_for_input: Duration,
}

impl Backoff {
    /// The delay before attempt `attempts + 1` of an item whose last attempt failed.
    pub fn delay(&self, retryable: bool, retry_after: Option<Duration>, attempts: u32) -> Duration {
        use backon::BackoffBuilder;
        if !retryable {
            return self.wait_for_input;
        }
        let backoff = backon::ExponentialBuilder::default()
            .with_min_delay(self.min)
            .with_max_delay(self.max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
            .nth(attempts.saturating_sub(1) as usize)
            .unwrap_or(self.max);
        backoff.max(retry_after.unwrap_or_default())
    }
}

/// The next due work item of one controller (`kind_prefix`, e.g. `tls.`), claimed with `lease`;
/// when none is due, waits until one may be (the soonest due time, at most a second), until
/// `wake` is notified or until `stop` changes, and returns `None`. Journal failures are logged
/// and count as nothing due, so a worker never spins on them.
pub async fn claim_next(
    journal: &routewarden_store::Journal,
    kind_prefix: &'static str,
    lease: Duration,
    wake: &tokio::sync::Notify,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<routewarden_store::Claimed> {
    claim(journal, kind_prefix, lease, wake, stop, std::sync::Arc::new(|_| true), false).await
}

/// Which due items (by key) a worker takes now; others stay due for later.
pub type Wanted = std::sync::Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// [`claim_next`], passing by due items `wanted` refuses.
pub async fn claim_next_where(
    journal: &routewarden_store::Journal,
    kind_prefix: &'static str,
    lease: Duration,
    wake: &tokio::sync::Notify,
    stop: &mut tokio::sync::watch::Receiver<bool>,
    wanted: Wanted,
) -> Option<routewarden_store::Claimed> {
    claim(journal, kind_prefix, lease, wake, stop, wanted, true).await
}

async fn claim(
    journal: &routewarden_store::Journal,
    kind_prefix: &'static str,
    lease: Duration,
    wake: &tokio::sync::Notify,
    stop: &mut tokio::sync::watch::Receiver<bool>,
    wanted: Wanted,
    filtered: bool,
) -> Option<routewarden_store::Claimed> {
    use routewarden_store::Time;
    let j = journal.clone();
    match tokio::task::spawn_blocking(move || j.claim_where(Time::now(), 1, lease, kind_prefix, |key| wanted(key)))
        .await
    {
        Ok(Ok(mut items)) if !items.is_empty() => return items.pop(),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(kinds = kind_prefix, error = %e, "failed to claim work from the journal"),
        Err(e) => tracing::error!(kinds = kind_prefix, error = %e, "claim task failed"),
    }
    let j = journal.clone();
    let next =
        tokio::task::spawn_blocking(move || j.next_due_kinds(kind_prefix)).await.ok().and_then(Result::ok).flatten();
    let until = next.map(|item| item.next_attempt_at.as_millis() - Time::now().as_millis()).unwrap_or(1000);
    // At least a few milliseconds, so an item another worker holds is not spun on; longer when
    // due items were passed by on purpose (a zone waiting for its rate limit), so they are not
    // rescanned in a tight loop.
    let floor = if filtered { 100 } else { 5 };
    let wait = Duration::from_millis(u64::try_from(until.clamp(floor, 1000)).unwrap_or(1000));
    tokio::select! {
        _ = wake.notified() => {}
        _ = tokio::time::sleep(wait) => {}
        _ = stop.changed() => {}
    }
    None
}

/// Runs `n` copies of a worker loop (`run(stop)`), each until `stop` turns true.
pub fn spawn_workers<F, Fut>(
    n: usize,
    stop: &tokio::sync::watch::Receiver<bool>,
    run: F,
) -> Vec<tokio::task::JoinHandle<()>>
where
    F: Fn(tokio::sync::watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    (0..n).map(|_| tokio::spawn(run(stop.clone()))).collect()
}
