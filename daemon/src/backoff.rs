//! When to try a failed work item again, shared by every controller's workers: transient
//! failures back off exponentially with full jitter (never sooner than the server's Retry-After),
//! so many items failing together do not retry in lockstep; failures that need their input to
//! change wait a fixed interval, long enough not to hammer and short enough to notice a fix.

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
