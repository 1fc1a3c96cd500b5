//! Client-side token buckets for Azure DNS, sized from Azure's documented limits so that
//! throttling is avoided rather than hit: ARM's per subscription and principal (reads, writes,
//! deletes) and Azure DNS's per zone (record-set writes and lists; public and private zones have
//! different limits). Every DNS resource writing to a zone shares that zone's bucket, so API
//! usage stays flat however many resources point at it.
//!
//! A worker asks [`Limits::acquire`] before each call. A zone bucket that is spent answers with
//! the wait instead of blocking: the worker defers the item and passes by that zone's other items
//! until then ([`Limits::zone_ready`]), so one busy zone never holds workers the others need. The
//! subscription bucket is shared by all zones of the subscription, so waiting for it in place is
//! fair and costs nothing the others could use.

use crate::lock;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token bucket: `burst` calls at once, refilled at `burst` per `period`. Written `200/20s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub burst: u32,
    pub period: Duration,
}

impl Rate {
    pub const fn new(burst: u32, secs: u64) -> Rate {
        Rate { burst, period: Duration::from_secs(secs) }
    }

    fn quota(self) -> Quota {
        let burst = NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN);
        let per_token = (self.period / burst.get()).max(Duration::from_nanos(1));
        Quota::with_period(per_token).unwrap_or_else(|| Quota::per_second(burst)).allow_burst(burst)
    }

    /// Calls per second at the refill rate.
    pub fn per_second(self) -> f64 {
        f64::from(self.burst) / self.period.as_secs_f64()
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.burst, humantime::format_duration(self.period))
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Rate, String> {
        let (burst, period) = s.split_once('/').ok_or_else(|| format!("{s:?} is not BURST/PERIOD, e.g. 200/1m"))?;
        let burst: u32 = burst.trim().parse().map_err(|_| format!("{s:?}: {burst:?} is not a whole number"))?;
        let period = humantime::parse_duration(period.trim()).map_err(|e| format!("{s:?}: {e}"))?;
        if burst == 0 || period.is_zero() {
            return Err(format!("{s:?}: both the burst and the period must be above zero"));
        }
        Ok(Rate { burst, period })
    }
}

/// The buckets' sizes. Defaults: Azure's documented limits (`anchors-dns.md` (b)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    pub arm_reads: Rate,
    pub arm_writes: Rate,
    pub arm_deletes: Rate,
    pub public_zone_writes: Rate,
    pub public_zone_lists: Rate,
    pub private_zone_writes: Rate,
    pub private_zone_lists: Rate,
}

impl RateLimits {
    /// Each limit with its `routewarden_azure_rate_limit` label.
    pub fn named(&self) -> [(&'static str, Rate); 7] {
        [
            ("arm_reads", self.arm_reads),
            ("arm_writes", self.arm_writes),
            ("arm_deletes", self.arm_deletes),
            ("public_zone_writes", self.public_zone_writes),
            ("public_zone_lists", self.public_zone_lists),
            ("private_zone_writes", self.private_zone_writes),
            ("private_zone_lists", self.private_zone_lists),
        ]
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            arm_reads: Rate::new(250, 10),
            arm_writes: Rate::new(200, 20),
            arm_deletes: Rate::new(200, 20),
            public_zone_writes: Rate::new(200, 60),
            public_zone_lists: Rate::new(60, 60),
            private_zone_writes: Rate::new(60, 60),
            private_zone_lists: Rate::new(100, 60),
        }
    }
}

/// What a call is, for the buckets it draws on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// PUT of a record set: a zone write and an ARM write.
    Write,
    /// DELETE of a record set: a zone write and an ARM delete.
    Delete,
    /// GET of one record set: an ARM read.
    Get,
    /// One page of a zone's record-set list: a zone list and an ARM read.
    ListPage,
}

type Keyed = DefaultKeyedRateLimiter<String>;

/// The live buckets.
pub struct Limits {
    config: RateLimits,
    arm_reads: Keyed,
    arm_writes: Keyed,
    arm_deletes: Keyed,
    public_zone_writes: Keyed,
    public_zone_lists: Keyed,
    private_zone_writes: Keyed,
    private_zone_lists: Keyed,
    /// Zones whose write bucket is spent, until when.
    blocked: Mutex<HashMap<String, Instant>>,
}

impl fmt::Debug for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limits").field("config", &self.config).finish_non_exhaustive()
    }
}

/// The subscription segment of an ARM id (`/subscriptions/<id>/...`), lower-cased.
fn subscription_of(zone_id: &str) -> String {
    zone_id.split('/').nth(2).unwrap_or_default().to_ascii_lowercase()
}

impl Limits {
    pub fn new(config: RateLimits) -> Limits {
        let keyed = |r: Rate| Keyed::keyed(r.quota());
        Limits {
            config,
            arm_reads: keyed(config.arm_reads),
            arm_writes: keyed(config.arm_writes),
            arm_deletes: keyed(config.arm_deletes),
            public_zone_writes: keyed(config.public_zone_writes),
            public_zone_lists: keyed(config.public_zone_lists),
            private_zone_writes: keyed(config.private_zone_writes),
            private_zone_lists: keyed(config.private_zone_lists),
            blocked: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &RateLimits {
        &self.config
    }

    fn zone_bucket(&self, call: Call, private: bool) -> Option<&Keyed> {
        match (call, private) {
            (Call::Write | Call::Delete, false) => Some(&self.public_zone_writes),
            (Call::Write | Call::Delete, true) => Some(&self.private_zone_writes),
            (Call::ListPage, false) => Some(&self.public_zone_lists),
            (Call::ListPage, true) => Some(&self.private_zone_lists),
            (Call::Get, _) => None,
        }
    }

    fn arm_bucket(&self, call: Call) -> &Keyed {
        match call {
            Call::Write => &self.arm_writes,
            Call::Delete => &self.arm_deletes,
            Call::Get | Call::ListPage => &self.arm_reads,
        }
    }

    /// Takes the zone's token for `call` if there is one; otherwise says how long until there is,
    /// and marks the zone's writes blocked until then. Then waits in place for the subscription's
    /// token (shared by everything in it). `principal` keys the ARM bucket with the subscription,
    /// as ARM counts per subscription and principal.
    pub async fn acquire(&self, call: Call, zone_id: &str, private: bool, principal: &str) -> Result<(), Duration> {
        if let Some(bucket) = self.zone_bucket(call, private) {
            let key = zone_id.to_ascii_lowercase();
            if let Err(not_until) = bucket.check_key(&key) {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                if matches!(call, Call::Write | Call::Delete) {
                    lock(&self.blocked).insert(key, Instant::now() + wait);
                }
                return Err(wait);
            }
        }
        let arm_key = format!("{}|{principal}", subscription_of(zone_id));
        self.arm_bucket(call).until_key_ready(&arm_key).await;
        Ok(())
    }

    /// Azure throttled the zone anyway (its limits are shared with other clients): pass its
    /// writes by for `wait`, the server's Retry-After.
    pub fn hold_zone(&self, zone_id: &str, wait: Duration) {
        let until = Instant::now() + wait;
        let mut blocked = lock(&self.blocked);
        let entry = blocked.entry(zone_id.to_ascii_lowercase()).or_insert(until);
        *entry = (*entry).max(until);
    }

    /// Whether a write to the zone may be tried now (its bucket was not found spent lately).
    pub fn zone_ready(&self, zone_id: &str) -> bool {
        let key = zone_id.to_ascii_lowercase();
        let mut blocked = lock(&self.blocked);
        match blocked.get(&key) {
            Some(until) if *until > Instant::now() => false,
            Some(_) => {
                blocked.remove(&key);
                true
            }
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZONE: &str = "/subscriptions/S1/resourceGroups/rg/providers/Microsoft.Network/dnszones/example.com";
    const OTHER: &str = "/subscriptions/S1/resourceGroups/rg/providers/Microsoft.Network/dnszones/example.org";

    #[test]
    fn rates_parse_as_burst_over_period_and_bad_ones_say_why() {
        assert_eq!("200/20s".parse::<Rate>(), Ok(Rate::new(200, 20)));
        assert_eq!("60/1m".parse::<Rate>(), Ok(Rate::new(60, 60)));
        assert!("60".parse::<Rate>().unwrap_err().contains("BURST/PERIOD"));
        assert!("0/1m".parse::<Rate>().unwrap_err().contains("above zero"));
        assert!("x/1m".parse::<Rate>().unwrap_err().contains("whole number"));
        assert_eq!(Rate::new(200, 20).to_string(), "200/20s");
    }

    #[tokio::test]
    async fn a_spent_zone_answers_with_its_wait_and_leaves_other_zones_alone() {
        let limits = Limits::new(RateLimits { public_zone_writes: Rate::new(2, 60), ..RateLimits::default() });
        for _ in 0..2 {
            limits.acquire(Call::Write, ZONE, false, "p").await.unwrap();
        }
        let wait = limits.acquire(Call::Write, ZONE, false, "p").await.unwrap_err();
        assert!(wait > Duration::from_secs(25) && wait <= Duration::from_secs(30), "one token per 30 s: {wait:?}");
        assert!(!limits.zone_ready(ZONE), "the zone's writes are passed by until then");
        assert!(limits.zone_ready(OTHER));
        limits.acquire(Call::Write, OTHER, false, "p").await.unwrap();
        // Azure's own 429 holds a zone the same way.
        limits.hold_zone(OTHER, Duration::from_secs(10));
        assert!(!limits.zone_ready(OTHER));
        // Lists have their own bucket.
        limits.acquire(Call::ListPage, ZONE, false, "p").await.unwrap();
    }

    #[tokio::test]
    async fn private_zones_have_their_own_smaller_write_bucket() {
        let limits = Limits::new(RateLimits::default());
        let private = ZONE.replace("dnszones", "privateDnsZones");
        for _ in 0..60 {
            limits.acquire(Call::Write, &private, true, "p").await.unwrap();
        }
        assert!(limits.acquire(Call::Write, &private, true, "p").await.is_err(), "60 per minute");
        limits.acquire(Call::Write, ZONE, false, "p").await.unwrap();
    }
}
