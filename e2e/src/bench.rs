//! What the benchmark report shares: latency histograms and their quantiles, the report it
//! prints (one table of metric, routewarden's value, the anchor's value, their ratio, target /
//! must and verdict, then notes and phase times), the verdict rules (a missed target is shown, a
//! missed must fails the run), each phase on a runtime of its own, the emulated Azure latency, and
//! the machine and process figures.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

/// A latency histogram in microseconds; auto-resizing, so no sample is ever refused.
pub fn histogram() -> Histogram<u64> {
    Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant figures is valid"))
}

pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let _ = h.record(u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1));
}

/// `12.3 ms`, `4.56 s`, `1 min 44 s`.
pub fn human(d: Duration) -> String {
    match d.as_secs_f64() {
        s if s >= 60.0 => format!("{:.0} min {:.0} s", (s / 60.0).floor(), s % 60.0),
        s if s >= 1.0 => format!("{s:.2} s"),
        s => format!("{:.1} ms", s * 1e3),
    }
}

/// `p50 …  p99 …  max …  (n=…)` of a histogram filled by [`record`].
pub fn quantiles(h: &Histogram<u64>) -> String {
    let q = |v: u64| human(Duration::from_micros(v));
    format!(
        "p50 {}  p99 {}  max {}  (n={})",
        q(h.value_at_quantile(0.5)),
        q(h.value_at_quantile(0.99)),
        q(h.max()),
        h.len()
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// A target missed: shown, but the run still succeeds.
    Fail,
    /// A must missed: the run fails.
    MustFail,
    Info,
}

pub fn target(ok: bool) -> Verdict {
    if ok { Verdict::Pass } else { Verdict::Fail }
}

pub fn must(ok: bool) -> Verdict {
    if ok { Verdict::Pass } else { Verdict::MustFail }
}

/// The system routewarden replaces, on one row: its figure, and how many times ours it is.
#[derive(Debug, Clone, Default)]
pub struct Anchor {
    pub value: String,
    pub ratio: String,
}

impl Anchor {
    /// A row the anchor has no figure for, and why.
    pub fn none(why: impl Into<String>) -> Self {
        Anchor { value: why.into(), ratio: "—".into() }
    }

    /// `value`, with the ratio `anchor ÷ ours` (lower is better for both).
    pub fn vs(value: impl Into<String>, anchor: f64, ours: f64) -> Self {
        let ratio = match (anchor, ours) {
            (a, o) if a == o => "1×".into(),
            (_, o) if o <= 0.0 => "∞".into(),
            (a, o) if a / o >= 10.0 => format!("{:.0}×", a / o),
            (a, o) => format!("{:.1}×", a / o),
        };
        Anchor { value: value.into(), ratio }
    }

    /// The anchor's latency quantiles beside ours, the ratio at p50 and at p99.
    pub fn quantiles(anchor: &Histogram<u64>, ours: &Histogram<u64>) -> Self {
        let at = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64;
        let q = |v: u64| human(Duration::from_micros(v));
        let ratio = |p: f64| Anchor::vs("", at(anchor, p), at(ours, p).max(1.0)).ratio;
        Anchor {
            value: format!(
                "p50 {}  p99 {}  max {}",
                q(anchor.value_at_quantile(0.5)),
                q(anchor.value_at_quantile(0.99)),
                q(anchor.max())
            ),
            ratio: format!("p50 {}, p99 {}", ratio(0.5), ratio(0.99)),
        }
    }
}

/// The rows, notes and phase times a benchmark prints.
#[derive(Debug, Default)]
pub struct Report {
    /// metric, routewarden, anchor, anchor ÷ routewarden, target / must, verdict.
    pub rows: Vec<[String; 6]>,
    pub notes: Vec<String>,
    pub phases: Vec<(String, Duration)>,
    pub failed: bool,
}

impl Report {
    pub fn row(&mut self, metric: impl Into<String>, value: impl Into<String>, target: impl Into<String>, v: Verdict) {
        self.compare(metric, value, Anchor::none(""), target, v);
    }

    /// A row with the anchor's figure beside ours.
    pub fn compare(
        &mut self,
        metric: impl Into<String>,
        value: impl Into<String>,
        anchor: Anchor,
        target: impl Into<String>,
        v: Verdict,
    ) {
        self.failed |= v == Verdict::MustFail;
        let verdict = match v {
            Verdict::Pass => "PASS",
            Verdict::Fail | Verdict::MustFail => "FAIL",
            Verdict::Info => "—",
        };
        let ratio = if anchor.value.is_empty() { String::new() } else { anchor.ratio };
        self.rows.push([metric.into(), value.into(), anchor.value, ratio, target.into(), verdict.into()]);
    }

    /// A phase that ended with an error: a failing row naming it (the run exits 1).
    pub fn failed_phase(&mut self, name: &str, outcome: anyhow::Result<()>) {
        if let Err(e) = outcome {
            eprintln!("{name}: {e:#}");
            self.row(format!("phase failed: {name}"), format!("{e:#}"), "must: completes", Verdict::MustFail);
        }
    }

    /// Records how long a phase took, from `since`, and starts the next one.
    pub fn phase(&mut self, name: &str, since: &mut Instant) {
        eprintln!("{name}: {}", human(since.elapsed()));
        self.phases.push((name.to_owned(), since.elapsed()));
        *since = Instant::now();
    }

    /// Prints the table, the notes, the phases and the run time since `started`; exits 1 when a
    /// must failed.
    pub fn finish(&self, started: Instant) {
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED).set_header([
            "metric",
            "routewarden",
            "AKS operator (model)",
            "AKS ÷ ours",
            "target / must",
            "verdict",
        ]);
        for row in &self.rows {
            table.add_row(row);
        }
        println!("{table}");
        for note in &self.notes {
            println!("{note}");
        }
        if !self.phases.is_empty() {
            let phases: Vec<String> = self.phases.iter().map(|(n, d)| format!("{n} {}", human(*d))).collect();
            println!("phases: {}", phases.join(", "));
        }
        println!("total run time {}", human(started.elapsed()));
        if self.failed {
            std::process::exit(1);
        }
    }
}

/// Runs one phase on a runtime of its own. Dropping the runtime ends every task the phase
/// started, including the daemon's watch tasks, which do not all end when the daemon stops; left
/// running, they would retry against a stopped API server and compete with the next phase.
pub fn phase<'a>(
    report: &'a mut Report,
    run: impl AsyncFnOnce(&'a mut Report) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(run(report))
}

/// A field of `/proc/self/status` (`VmHWM`, `VmRSS`), in bytes.
pub fn proc_status(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub fn mib(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "unknown".into(), |b| format!("{:.0} MiB", b as f64 / (1024.0 * 1024.0)))
}

/// `machine: N cores, M GiB memory`, for the top of a report.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let memory = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        let kb: u64 = m.lines().find(|l| l.starts_with("MemTotal:"))?.split_whitespace().nth(1)?.parse().ok()?;
        Some(format!("{:.1} GiB", kb as f64 / (1024.0 * 1024.0)))
    });
    format!("machine: {cores} cores, {} memory", memory.unwrap_or_else(|| "unknown".into()))
}

/// Latency the emulated Azure adds to each call: fixed plus uniform jitter, in the range Azure's
/// public endpoints answer from inside the region (assumed, not measured here: this machine
/// reaches no Azure). Record-set writes are the slowest; token exchanges and Key Vault reads fast.
pub fn azure_latency() -> Vec<routewarden_sandbox_azure::LatencyRule> {
    let rule = |service: &str, operation: Option<&str>, fixed_ms, jitter_ms| routewarden_sandbox_azure::LatencyRule {
        service: Some(service.into()),
        operation: operation.map(Into::into),
        fixed_ms,
        jitter_ms,
    };
    vec![
        rule("arm", Some("RecordSets_CreateOrUpdate"), 120, 80),
        rule("arm", Some("RecordSets_Update"), 120, 80),
        rule("arm", Some("RecordSets_Delete"), 120, 80),
        rule("arm", None, 40, 40),
        rule("keyvault", None, 15, 20),
        rule("entra", None, 60, 40),
        rule("imds", None, 5, 5),
    ]
}

/// The mean latency [`azure_latency`] adds to `service`'s `operation`.
pub fn mean_latency(service: &str, operation: &str) -> Duration {
    azure_latency()
        .iter()
        .find(|r| {
            r.service.as_deref().is_none_or(|s| s == service) && r.operation.as_deref().is_none_or(|o| o == operation)
        })
        .map_or(Duration::ZERO, |r| Duration::from_micros(r.fixed_ms * 1000 + r.jitter_ms * 500))
}

/// CPU time and peak memory of a process, from `/proc/PID`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessStats {
    pub cpu: Duration,
    /// Peak resident set (VmHWM), bytes.
    pub peak: u64,
}

impl ProcessStats {
    pub fn of(pid: u32) -> Option<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // utime and stime are fields 14 and 15 (1-based, command name = 2), in USER_HZ = 100 ticks.
        let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kb: u64 = status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()?;
        Some(ProcessStats { cpu: Duration::from_millis(ticks * 10), peak: kb * 1024 })
    }
}

/// The `q` quantile of a Prometheus histogram in `/metrics` text (summed over its series),
/// interpolated within the bucket as `histogram_quantile` does; with the count and the mean.
pub fn histogram_quantile(text: &str, name: &str, q: f64) -> Option<(f64, u64, f64)> {
    let mut buckets: std::collections::BTreeMap<u64, (f64, f64)> = Default::default();
    let (mut sum, mut count) = (0.0, 0.0);
    for line in text.lines().filter(|l| l.starts_with(name)) {
        let (series, value) = line.split_once(' ')?;
        let value: f64 = value.split_whitespace().next()?.parse().ok()?;
        if series.starts_with(&format!("{name}_bucket")) {
            let le = series.split("le=\"").nth(1)?.split('"').next()?;
            let le: f64 = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            buckets.entry(le.to_bits()).or_insert((le, 0.0)).1 += value;
        } else if series.starts_with(&format!("{name}_sum")) {
            sum += value;
        } else if series.starts_with(&format!("{name}_count")) {
            count += value;
        }
    }
    let mut ordered: Vec<(f64, f64)> = buckets.into_values().collect();
    ordered.sort_by(|a, b| a.0.total_cmp(&b.0));
    let rank = q * count;
    let mut below = (0.0, 0.0);
    for (le, cumulative) in ordered {
        if cumulative >= rank && count > 0.0 {
            let value = if le.is_infinite() {
                below.0
            } else {
                below.0 + (le - below.0) * (rank - below.1) / (cumulative - below.1).max(f64::MIN_POSITIVE)
            };
            return Some((value, count as u64, sum / count));
        }
        below = (le, cumulative);
    }
    None
}

/// The seed scenario's resource group, which the benchmark scenarios add zones and vault objects to.
pub fn resource_group(
    s: &mut routewarden_sandbox_azure::Scenario,
) -> anyhow::Result<&mut routewarden_sandbox_azure::scenario::ResourceGroupSpec> {
    use anyhow::Context;
    s.tenants
        .first_mut()
        .and_then(|t| t.subscriptions.first_mut())
        .and_then(|s| s.resource_groups.first_mut())
        .context("the seed scenario has a resource group")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quantile_is_interpolated_within_its_bucket_over_all_series() {
        let text = "\
x_bucket{kind=\"a\",le=\"0.001\"} 10
x_bucket{kind=\"a\",le=\"0.002\"} 20
x_bucket{kind=\"a\",le=\"+Inf\"} 20
x_bucket{kind=\"b\",le=\"0.001\"} 0
x_bucket{kind=\"b\",le=\"0.002\"} 20
x_bucket{kind=\"b\",le=\"+Inf\"} 20
x_sum{kind=\"a\"} 0.03
x_count{kind=\"a\"} 20
x_sum{kind=\"b\"} 0.03
x_count{kind=\"b\"} 20
";
        let (p50, count, mean) = histogram_quantile(text, "x", 0.5).unwrap();
        assert_eq!(count, 40);
        assert!((mean - 0.0015).abs() < 1e-12, "{mean}");
        // 10 of 40 are ≤ 1 ms, all 40 ≤ 2 ms: the 20th lies a third of the way into (1, 2] ms.
        assert!((p50 - (0.001 + 0.001 * 10.0 / 30.0)).abs() < 1e-12, "{p50}");
        let (p99, ..) = histogram_quantile(text, "x", 0.99).unwrap();
        assert!(p99 <= 0.002 && p99 > 0.0019, "{p99}");
        assert!(histogram_quantile(text, "y", 0.5).is_none());
    }

    #[test]
    fn a_ratio_reads_as_how_many_times_ours_the_anchor_is() {
        assert_eq!(Anchor::vs("", 90.0, 1.5).ratio, "60×");
        assert_eq!(Anchor::vs("", 3.0, 2.0).ratio, "1.5×");
        assert_eq!(Anchor::vs("", 4.0, 0.0).ratio, "∞");
        assert_eq!(Anchor::vs("", 0.0, 0.0).ratio, "1×");
    }

    #[test]
    fn the_mean_latency_is_the_first_matching_rule() {
        assert_eq!(mean_latency("arm", "RecordSets_CreateOrUpdate"), Duration::from_millis(160));
        assert_eq!(mean_latency("arm", "RecordSets_ListAllByDnsZone"), Duration::from_millis(60));
    }
}
