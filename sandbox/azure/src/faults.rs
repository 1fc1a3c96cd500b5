//! Fidelity knobs: per-operation latency, random faults, Azure's rate limits, and the call counter.
//!
//! Every request passes through here before its service sees it: the server asks [`Faults::decide`]
//! for the latency to add and whether to fail the call (500, 503, a connection reset, or a
//! timeout that holds the request and then drops the connection). Services ask
//! [`Faults::check_limit`] for the documented token buckets (ARM per subscription and principal,
//! Azure DNS per zone, Key Vault per vault); a refusal carries the wait that becomes `Retry-After`.
//! Every call ends in [`CallCounter::record`] with its service, operation and status, so tests and
//! benchmarks can assert exact call counts. All knobs live in one serde [`FaultConfig`], settable
//! from the scenario, the Rust admin handle, or the admin HTTP endpoint.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use serde::{Deserialize, Serialize};

/// Latency, faults and rate limits.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultConfig {
    /// Added latency; the first rule matching a call applies.
    #[serde(default)]
    pub latency: Vec<LatencyRule>,
    /// Random failures; the first rule matching a call applies.
    #[serde(default)]
    pub faults: Vec<FaultRule>,
    /// Rate limits (the documented ones by default).
    #[serde(default)]
    pub rate_limits: RateLimits,
}

/// Latency added to matching calls: `fixed_ms` plus a uniform random `0..=jitter_ms`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LatencyRule {
    /// `entra`, `imds`, `arm` or `keyvault`; absent matches all.
    #[serde(default)]
    pub service: Option<String>,
    /// An operation name as the call counter shows it; absent matches all.
    #[serde(default)]
    pub operation: Option<String>,
    /// Fixed delay.
    #[serde(default)]
    pub fixed_ms: u64,
    /// Random extra delay, up to this.
    #[serde(default)]
    pub jitter_ms: u64,
}

/// Random failures for matching calls; each rate is a probability in `0.0..=1.0`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultRule {
    /// `entra`, `imds`, `arm` or `keyvault`; absent matches all.
    #[serde(default)]
    pub service: Option<String>,
    /// An operation name; absent matches all.
    #[serde(default)]
    pub operation: Option<String>,
    /// Rate of 500 InternalServerError answers.
    #[serde(default)]
    pub error_500: f64,
    /// Rate of 503 ServiceUnavailable answers (with `Retry-After: 1`).
    #[serde(default)]
    pub error_503: f64,
    /// Rate of connections closed without an answer.
    #[serde(default)]
    pub reset: f64,
    /// Rate of requests held for `timeout_ms` and then dropped.
    #[serde(default)]
    pub timeout: f64,
    /// How long a timed-out request is held (default 30 s).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    30_000
}

/// A token bucket: `limit` calls at once, refilled at `limit` per `period_seconds`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Bucket {
    /// Burst size.
    pub limit: u32,
    /// Seconds to refill the whole bucket.
    pub period_seconds: f64,
}

const fn bucket(limit: u32, period_seconds: f64) -> Bucket {
    Bucket { limit, period_seconds }
}

/// The rate limits, defaulting to the documented ones (see `anchors-dns.md` (b), `anchors-tls.md` (b)).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RateLimits {
    /// Off switch for every bucket.
    pub enabled: bool,
    /// ARM reads per subscription and principal: 250 burst, 25/s.
    pub arm_reads: Bucket,
    /// ARM writes per subscription and principal: 200 burst, 10/s.
    pub arm_writes: Bucket,
    /// ARM deletes per subscription and principal: 200 burst, 10/s.
    pub arm_deletes: Bucket,
    /// Public zone record create/update/delete: 200/min per zone.
    pub public_zone_writes: Bucket,
    /// Public zone record get: 2,000/min per zone.
    pub public_zone_gets: Bucket,
    /// Public zone record list: 60/min per zone.
    pub public_zone_lists: Bucket,
    /// Public zone list by resource group: 60/min.
    pub public_zone_list_by_rg: Bucket,
    /// Private zone record create/update/delete: 60/min per zone.
    pub private_zone_writes: Bucket,
    /// Private zone record get: 200/min per zone.
    pub private_zone_gets: Bucket,
    /// Private zone record list: 100/min per zone.
    pub private_zone_lists: Bucket,
    /// Private zone list by resource group: 100/min.
    pub private_zone_list_by_rg: Bucket,
    /// Key Vault, all transactions: 4,000 per 10 s per vault.
    pub key_vault_all: Bucket,
    /// Key Vault secret set and certificate create/import: 300 per 10 s per vault.
    pub key_vault_writes: Bucket,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            enabled: true,
            arm_reads: bucket(250, 10.0),
            arm_writes: bucket(200, 20.0),
            arm_deletes: bucket(200, 20.0),
            public_zone_writes: bucket(200, 60.0),
            public_zone_gets: bucket(2_000, 60.0),
            public_zone_lists: bucket(60, 60.0),
            public_zone_list_by_rg: bucket(60, 60.0),
            private_zone_writes: bucket(60, 60.0),
            private_zone_gets: bucket(200, 60.0),
            private_zone_lists: bucket(100, 60.0),
            private_zone_list_by_rg: bucket(100, 60.0),
            key_vault_all: bucket(4_000, 10.0),
            key_vault_writes: bucket(300, 10.0),
        }
    }
}

/// Which bucket a call draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// ARM reads.
    ArmRead,
    /// ARM writes.
    ArmWrite,
    /// ARM deletes.
    ArmDelete,
    /// Public zone writes.
    PublicZoneWrite,
    /// Public zone gets.
    PublicZoneGet,
    /// Public zone lists.
    PublicZoneList,
    /// Public zones listed by resource group.
    PublicZoneListByRg,
    /// Private zone writes.
    PrivateZoneWrite,
    /// Private zone gets.
    PrivateZoneGet,
    /// Private zone lists.
    PrivateZoneList,
    /// Private zones listed by resource group.
    PrivateZoneListByRg,
    /// Key Vault, any call.
    KeyVaultAll,
    /// Key Vault secret set / certificate create and import.
    KeyVaultWrite,
}

impl RateLimits {
    fn bucket(&self, limit: Limit) -> Bucket {
        match limit {
            Limit::ArmRead => self.arm_reads,
            Limit::ArmWrite => self.arm_writes,
            Limit::ArmDelete => self.arm_deletes,
            Limit::PublicZoneWrite => self.public_zone_writes,
            Limit::PublicZoneGet => self.public_zone_gets,
            Limit::PublicZoneList => self.public_zone_lists,
            Limit::PublicZoneListByRg => self.public_zone_list_by_rg,
            Limit::PrivateZoneWrite => self.private_zone_writes,
            Limit::PrivateZoneGet => self.private_zone_gets,
            Limit::PrivateZoneList => self.private_zone_lists,
            Limit::PrivateZoneListByRg => self.private_zone_list_by_rg,
            Limit::KeyVaultAll => self.key_vault_all,
            Limit::KeyVaultWrite => self.key_vault_writes,
        }
    }
}

/// What to do to one call.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Delay before answering.
    pub latency: Duration,
    /// A failure to inject instead of the real answer.
    pub fault: Option<Fault>,
}

/// An injected failure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Answer 500.
    Error500,
    /// Answer 503.
    Error503,
    /// Close the connection without answering.
    Reset,
    /// Hold the request this long, then close the connection.
    Timeout(Duration),
}

/// The live knobs.
pub struct Faults {
    config: RwLock<FaultConfig>,
    limiters: Mutex<HashMap<Limit, KeyedLimiter>>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults").field("config", &self.config()).finish_non_exhaustive()
    }
}

fn rule_matches(rule_service: &Option<String>, rule_op: &Option<String>, service: &str, operation: &str) -> bool {
    rule_service.as_deref().is_none_or(|s| s.eq_ignore_ascii_case(service))
        && rule_op.as_deref().is_none_or(|o| o.eq_ignore_ascii_case(operation))
}

impl Faults {
    /// Knobs from a configuration.
    pub fn new(config: FaultConfig) -> Self {
        Self { config: RwLock::new(config), limiters: Mutex::new(HashMap::new()) }
    }

    /// The configuration in force.
    pub fn config(&self) -> FaultConfig {
        self.config.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Replaces the configuration; rate-limit buckets start full again.
    pub fn set_config(&self, config: FaultConfig) {
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = config;
        self.limiters.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// Latency and fault for one call.
    pub fn decide(&self, service: &str, operation: &str) -> Decision {
        let config = self.config.read().unwrap_or_else(PoisonError::into_inner);
        let latency = config
            .latency
            .iter()
            .find(|r| rule_matches(&r.service, &r.operation, service, operation))
            .map(|r| {
                let jitter = if r.jitter_ms > 0 { rand::random_range(0..=r.jitter_ms) } else { 0 };
                Duration::from_millis(r.fixed_ms + jitter)
            })
            .unwrap_or_default();
        let fault =
            config.faults.iter().find(|r| rule_matches(&r.service, &r.operation, service, operation)).and_then(|r| {
                // One draw, split into bands, so the rates add up the way they read.
                let draw: f64 = rand::random();
                let mut edge = 0.0;
                for (rate, fault) in [
                    (r.error_500, Fault::Error500),
                    (r.error_503, Fault::Error503),
                    (r.reset, Fault::Reset),
                    (r.timeout, Fault::Timeout(Duration::from_millis(r.timeout_ms))),
                ] {
                    edge += rate;
                    if draw < edge {
                        return Some(fault);
                    }
                }
                None
            });
        Decision { latency, fault }
    }

    /// Takes one token from `limit`'s bucket for `key`: `Ok(Some(tokens left))`, `Ok(None)` when
    /// the limit is off, `Err(wait)` when the bucket is empty.
    pub fn check_limit(&self, limit: Limit, key: &str) -> Result<Option<u32>, Duration> {
        let bucket = {
            let config = self.config.read().unwrap_or_else(PoisonError::into_inner);
            if !config.rate_limits.enabled {
                return Ok(None);
            }
            config.rate_limits.bucket(limit)
        };
        let mut limiters = self.limiters.lock().unwrap_or_else(PoisonError::into_inner);
        let limiter = match limiters.entry(limit) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let Some(quota) = quota(bucket) else { return Ok(None) };
                v.insert(RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>())
            }
        };
        limiter
            .check_key(&key.to_string())
            .map(|snapshot| Some(snapshot.remaining_burst_capacity()))
            .map_err(|not_until| not_until.wait_time_from(limiter.clock().now()))
    }
}

fn quota(bucket: Bucket) -> Option<Quota> {
    let limit = NonZeroU32::new(bucket.limit)?;
    let per_cell = Duration::from_secs_f64((bucket.period_seconds / f64::from(bucket.limit)).max(1e-9));
    Some(Quota::with_period(per_cell)?.allow_burst(limit))
}

/// A keyed token bucket that reports what is left after each call (for ARM's remaining headers).
type KeyedLimiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, governor::clock::DefaultClock, StateInformationMiddleware>;

/// `Retry-After` seconds for a wait: rounded up, at least 1.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// One counted outcome: service, operation, and HTTP status (0 when the connection was dropped
/// by an injected reset or timeout).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CallKey {
    /// `entra`, `arm` or `keyvault` (admin calls are not counted).
    pub service: String,
    /// Operation name (e.g. `RecordSets_CreateOrUpdate`, `GetSecret`, `Token`).
    pub operation: String,
    /// HTTP status, 0 for a dropped connection.
    pub status: u16,
}

/// A counter row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallCount {
    /// What was called and how it ended.
    #[serde(flatten)]
    pub key: CallKey,
    /// How many times.
    pub count: u64,
}

/// Counts every call by service, operation and status. Cloning shares the counts.
#[derive(Debug, Clone, Default)]
pub struct CallCounter(Arc<Mutex<BTreeMap<CallKey, u64>>>);

impl CallCounter {
    /// Counts one call.
    pub fn record(&self, service: &str, operation: &str, status: u16) {
        let key = CallKey { service: service.to_string(), operation: operation.to_string(), status };
        *self.0.lock().unwrap_or_else(PoisonError::into_inner).entry(key).or_default() += 1;
    }

    /// Calls of one operation that ended with `status`.
    pub fn get(&self, service: &str, operation: &str, status: u16) -> u64 {
        let key = CallKey { service: service.to_string(), operation: operation.to_string(), status };
        self.0.lock().unwrap_or_else(PoisonError::into_inner).get(&key).copied().unwrap_or(0)
    }

    /// Calls of one operation, any status.
    pub fn total(&self, service: &str, operation: &str) -> u64 {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(k, _)| k.service == service && k.operation == operation)
            .map(|(_, n)| n)
            .sum()
    }

    /// Calls to one service, any operation and status.
    pub fn service_total(&self, service: &str) -> u64 {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(k, _)| k.service == service)
            .map(|(_, n)| n)
            .sum()
    }

    /// Every row, sorted.
    pub fn snapshot(&self) -> Vec<CallCount> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, n)| CallCount { key: k.clone(), count: *n })
            .collect()
    }

    /// Forgets every count.
    pub fn reset(&self) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refuses_once_empty_and_names_the_wait() {
        let mut config = FaultConfig::default();
        config.rate_limits.key_vault_all = bucket(2, 10.0);
        let faults = Faults::new(config);
        assert!(faults.check_limit(Limit::KeyVaultAll, "v").is_ok());
        assert!(faults.check_limit(Limit::KeyVaultAll, "v").is_ok());
        let wait = faults.check_limit(Limit::KeyVaultAll, "v").expect_err("empty");
        assert!(wait > Duration::from_secs(3) && wait <= Duration::from_secs(5), "{wait:?}");
        assert!(faults.check_limit(Limit::KeyVaultAll, "other").is_ok(), "buckets are per key");
    }

    #[test]
    fn disabled_limits_never_refuse() {
        let mut config = FaultConfig::default();
        config.rate_limits.enabled = false;
        config.rate_limits.key_vault_all = bucket(1, 10.0);
        let faults = Faults::new(config);
        for _ in 0..10 {
            assert!(faults.check_limit(Limit::KeyVaultAll, "v").is_ok());
        }
    }

    #[test]
    fn fault_rules_match_by_service_and_operation() {
        let faults = Faults::new(FaultConfig {
            faults: vec![FaultRule {
                service: Some("keyvault".into()),
                operation: Some("GetSecret".into()),
                error_503: 1.0,
                ..FaultRule::default()
            }],
            latency: vec![LatencyRule { service: Some("arm".into()), operation: None, fixed_ms: 5, jitter_ms: 0 }],
            ..FaultConfig::default()
        });
        assert_eq!(faults.decide("keyvault", "GetSecret").fault, Some(Fault::Error503));
        assert_eq!(faults.decide("keyvault", "SetSecret").fault, None);
        assert_eq!(faults.decide("arm", "RecordSets_Get").latency, Duration::from_millis(5));
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(4000)), 4);
        assert_eq!(retry_after_seconds(Duration::from_millis(4001)), 5);
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
    }

    #[test]
    fn the_counter_counts_by_status() {
        let c = CallCounter::default();
        c.record("arm", "RecordSets_Get", 200);
        c.record("arm", "RecordSets_Get", 200);
        c.record("arm", "RecordSets_Get", 404);
        assert_eq!(c.get("arm", "RecordSets_Get", 200), 2);
        assert_eq!(c.total("arm", "RecordSets_Get"), 3);
        c.reset();
        assert_eq!(c.service_total("arm"), 0);
    }
}
