//! The DNS publisher routewarden replaces — the AKS app-routing operator's managed external-dns —
//! as a model computed from its documented algorithm and defaults (`anchors-dns.md`, section (b)),
//! so the benchmark report can put its figures beside ours under the same emulated Azure latency
//! and rate limits.
//!
//! What the model does, per sync (one every [`AKS_INTERVAL`], timed from the previous start, or
//! at once when the previous one ran longer):
//!
//! 1. lists the resource group's zones (one call per 100 zones) and every record set of every
//!    zone, one call per page of 100 — foreign record sets, the apex SOA and NS, and each owned
//!    record's TXT ownership record included;
//! 2. takes the hostnames whose routes are `Accepted` by then (sources are read after the
//!    registry);
//! 3. writes, one call at a time, each new hostname's record, zone after zone, then that zone's
//!    TXT ownership records (the TXT registry appends them after the endpoints).
//!
//! The model is generous to the anchor: every call waits exactly as long as the rate-limit
//! buckets require and is then answered, where the real client receives a 429, retries three
//! times on the SDK's schedule and leaves the rest for the next sync. So its figures are lower
//! bounds.

use routewarden_sandbox_azure::{Bucket, RateLimits};
use std::time::Duration;

/// The AKS operator's `--interval` for its managed external-dns (`pkg/config/config.go`).
pub const AKS_INTERVAL: Duration = Duration::from_secs(180);
/// Azure's default page size for record-set and zone lists.
pub const PAGE_SIZE: usize = 100;
/// Record sets every zone starts with: the apex SOA and NS.
pub const APEX_RECORD_SETS: usize = 2;
/// Calls external-dns makes per published hostname: its record and its TXT ownership record.
pub const WRITES_PER_HOSTNAME: u64 = 2;

/// A token bucket in simulated seconds: `limit` tokens, refilled continuously over `period`, as
/// local Azure's limiter does.
#[derive(Debug, Clone)]
struct SimBucket {
    capacity: f64,
    rate: f64,
    tokens: f64,
    at: f64,
}

impl SimBucket {
    fn new(b: Bucket) -> Self {
        let capacity = f64::from(b.limit);
        SimBucket { capacity, rate: capacity / b.period_seconds, tokens: capacity, at: 0.0 }
    }

    /// Takes a token at `t` or, when none is left, at the moment one has refilled; returns when.
    fn take(&mut self, t: f64) -> f64 {
        let t = t.max(self.at);
        self.tokens = (self.tokens + (t - self.at) * self.rate).min(self.capacity);
        self.at = t;
        if self.tokens < 1.0 {
            self.at = t + (1.0 - self.tokens) / self.rate;
            self.tokens = 1.0;
        }
        self.tokens -= 1.0;
        self.at
    }
}

/// One hostname to publish: its zone (an index) and when its route became `Accepted`, from the
/// start of the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    pub zone: usize,
    pub ready: Duration,
}

/// Calls to list `n` items, one page each (an empty list is still one call).
fn pages(n: usize) -> u64 {
    n.div_ceil(PAGE_SIZE).max(1) as u64
}

/// Calls to list every record set of zones holding `record_sets` record sets each.
pub fn record_pages(record_sets: &[usize]) -> u64 {
    record_sets.iter().map(|&n| pages(n)).sum()
}

/// What one modelled run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Run {
    /// Per change, when its record became visible (`None` if not by the end of the run).
    pub visible: Vec<Option<Duration>>,
    pub reads: u64,
    pub writes: u64,
    pub syncs: u64,
}

impl Run {
    /// When the last change became visible, if all did.
    pub fn all_visible(&self) -> Option<Duration> {
        self.visible.iter().copied().collect::<Option<Vec<_>>>().map(|v| v.into_iter().max().unwrap_or_default())
    }
}

/// The managed external-dns of the AKS operator: one instance over public zones in one resource
/// group, through one principal.
#[derive(Debug, Clone)]
pub struct ExternalDns {
    pub interval: Duration,
    pub read_latency: Duration,
    pub write_latency: Duration,
    pub limits: RateLimits,
}

impl ExternalDns {
    /// With the operator's interval, the mean latency of the emulated Azure and its limits.
    pub fn aks(read_latency: Duration, write_latency: Duration, limits: RateLimits) -> Self {
        ExternalDns { interval: AKS_INTERVAL, read_latency, write_latency, limits }
    }

    /// Reads one sync makes over zones holding `record_sets` record sets each: the zone list and
    /// [`record_pages`].
    pub fn reads_per_sync(record_sets: &[usize]) -> u64 {
        pages(record_sets.len()) + record_pages(record_sets)
    }

    /// Syncs in an hour with nothing changing.
    pub fn syncs_per_hour(&self) -> f64 {
        3600.0 / self.interval.as_secs_f64()
    }

    /// Publishes `changes` into zones that already hold `record_sets[z]` record sets, with the
    /// first sync at `first_sync`, until every change is visible or a sync would start after
    /// `until`.
    pub fn run(&self, record_sets: &[usize], changes: &[Change], first_sync: Duration, until: Duration) -> Run {
        let l = &self.limits;
        let (mut arm_reads, mut arm_writes) = (SimBucket::new(l.arm_reads), SimBucket::new(l.arm_writes));
        let mut zone_lists = SimBucket::new(l.public_zone_list_by_rg);
        let mut record_lists: Vec<SimBucket> =
            record_sets.iter().map(|_| SimBucket::new(l.public_zone_lists)).collect();
        let mut zone_writes: Vec<SimBucket> =
            record_sets.iter().map(|_| SimBucket::new(l.public_zone_writes)).collect();
        let mut sizes = record_sets.to_vec();
        let (read, write) = (self.read_latency.as_secs_f64(), self.write_latency.as_secs_f64());
        let mut run = Run { visible: vec![None; changes.len()], ..Run::default() };
        let mut start = first_sync.as_secs_f64();
        while start <= until.as_secs_f64() && run.visible.iter().any(Option::is_none) {
            run.syncs += 1;
            let mut t = start;
            for _ in 0..pages(sizes.len()) {
                t = zone_lists.take(arm_reads.take(t)) + read;
                run.reads += 1;
            }
            for (z, &n) in sizes.iter().enumerate() {
                for _ in 0..pages(n) {
                    t = record_lists[z].take(arm_reads.take(t)) + read;
                    run.reads += 1;
                }
            }
            let taken = Duration::from_secs_f64(t);
            for (z, zone_write) in zone_writes.iter_mut().enumerate() {
                let batch: Vec<usize> = (0..changes.len())
                    .filter(|&i| changes[i].zone == z && changes[i].ready <= taken && run.visible[i].is_none())
                    .collect();
                for &i in &batch {
                    t = zone_write.take(arm_writes.take(t)) + write;
                    run.visible[i] = Some(Duration::from_secs_f64(t));
                }
                for _ in &batch {
                    t = zone_write.take(arm_writes.take(t)) + write;
                }
                run.writes += WRITES_PER_HOSTNAME * batch.len() as u64;
                sizes[z] += WRITES_PER_HOSTNAME as usize * batch.len();
            }
            start = t.max(start + self.interval.as_secs_f64());
        }
        run
    }

    /// [`ExternalDns::run`] with the first sync at each of `offsets` evenly spread points of an
    /// interval (where it falls relative to the changes is chance): every (change, latency), pooled.
    pub fn latencies(
        &self,
        record_sets: &[usize],
        changes: &[Change],
        offsets: u32,
        until: Duration,
    ) -> Vec<(usize, Duration)> {
        (0..offsets)
            .flat_map(|k| {
                let run = self.run(record_sets, changes, self.interval * k / offsets, until);
                let visible: Vec<(usize, Duration)> = run
                    .visible
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| v.map(|v| (i, v.saturating_sub(changes[i].ready))))
                    .collect();
                visible
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unlimited() -> RateLimits {
        let mut l = RateLimits::default();
        for b in [
            &mut l.arm_reads,
            &mut l.arm_writes,
            &mut l.public_zone_lists,
            &mut l.public_zone_list_by_rg,
            &mut l.public_zone_writes,
        ] {
            *b = Bucket { limit: 1_000_000, period_seconds: 1.0 };
        }
        l
    }

    fn model(limits: RateLimits) -> ExternalDns {
        ExternalDns::aks(Duration::from_millis(100), Duration::from_millis(200), limits)
    }

    #[test]
    fn a_sync_reads_every_page_of_every_zone_and_the_zone_list() {
        // 7 zones of 2,000 record sets: 20 pages each, and one page of zones.
        assert_eq!(ExternalDns::reads_per_sync(&[2_000; 7]), 141);
        // A page that is not full is still a call; an empty zone still answers one page.
        assert_eq!(ExternalDns::reads_per_sync(&[101, 0]), 1 + 2 + 1);
    }

    #[test]
    fn a_hostname_waits_for_the_next_sync_then_for_the_reads_and_its_own_write() {
        let m = model(unlimited());
        let changes = [Change { zone: 0, ready: Duration::from_secs(10) }];
        // The first sync at 0 s misses it; the second, at 180 s, reads 2 pages (zones, records).
        let run = m.run(&[2], &changes, Duration::ZERO, Duration::from_secs(600));
        assert_eq!(run.syncs, 2);
        assert_eq!(run.reads, 4);
        assert_eq!(run.writes, 2, "the record and its TXT");
        let visible = run.visible[0].unwrap().as_secs_f64();
        assert!((visible - (180.0 + 0.2 + 0.2)).abs() < 1e-6, "{visible}");
    }

    #[test]
    fn writes_are_sequential_with_records_before_their_ownership_records() {
        let m = model(unlimited());
        let changes: Vec<Change> = (0..3).map(|_| Change { zone: 0, ready: Duration::ZERO }).collect();
        let run = m.run(&[2], &changes, Duration::ZERO, Duration::from_secs(1));
        let v: Vec<f64> = run.visible.iter().map(|v| v.unwrap().as_secs_f64()).collect();
        // Two reads, then the three records one after another; the TXTs come after them.
        for (i, at) in v.iter().enumerate() {
            assert!((at - (0.2 + 0.2 * (i + 1) as f64)).abs() < 1e-6, "{v:?}");
        }
        assert_eq!(run.writes, 6);
    }

    #[test]
    fn a_zone_write_limit_paces_the_writes() {
        let mut limits = unlimited();
        limits.public_zone_writes = Bucket { limit: 10, period_seconds: 10.0 };
        let mut m = model(limits);
        m.write_latency = Duration::ZERO;
        m.read_latency = Duration::ZERO;
        // 20 hostnames = 40 writes: 10 at once, then one per second.
        let changes: Vec<Change> = (0..20).map(|_| Change { zone: 0, ready: Duration::ZERO }).collect();
        let run = m.run(&[2], &changes, Duration::ZERO, Duration::from_secs(1));
        let last = run.all_visible().unwrap().as_secs_f64();
        assert!((last - 10.0).abs() < 1e-6, "the 20th record is the 20th write: {last}");
        assert_eq!(run.syncs, 1, "one sync published them all");
    }

    #[test]
    fn the_next_sync_starts_at_once_when_the_last_one_overran_the_interval() {
        let mut m = model(unlimited());
        m.interval = Duration::from_secs(1);
        m.write_latency = Duration::from_secs(2);
        let changes =
            [Change { zone: 0, ready: Duration::ZERO }, Change { zone: 0, ready: Duration::from_millis(500) }];
        let run = m.run(&[2], &changes, Duration::ZERO, Duration::from_secs(60));
        // Sync 1: 0.2 s of reads, 2 writes (4 s); sync 2 starts at 4.2 s, not 1 s.
        let second = run.visible[1].unwrap().as_secs_f64();
        assert!((second - (4.2 + 0.2 + 2.0)).abs() < 1e-6, "{second}");
    }

    #[test]
    fn latencies_pool_every_offset_of_the_first_sync() {
        let m = model(unlimited());
        let changes = [Change { zone: 0, ready: Duration::from_secs(1) }];
        let l = m.latencies(&[2], &changes, 4, Duration::from_secs(1_000));
        assert_eq!(l.len(), 4);
        // Offsets 0, 45, 90, 135 s: the change waits for 180, 45, 90 and 135 s.
        let mut waits: Vec<u64> = l.iter().map(|(_, d)| d.as_secs()).collect();
        waits.sort();
        assert_eq!(waits, vec![44, 89, 134, 179]);
    }
}
