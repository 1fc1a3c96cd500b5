//! What the benchmarks share: latency histograms and their quantiles, the report they print (one
//! table of metric, value, target / must and verdict, then notes and phase times), the verdict
//! rules (a missed target is shown, a missed must fails the run), each phase on a runtime of its
//! own, and the machine and process figures at the top.

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

/// The rows, notes and phase times a benchmark prints.
#[derive(Debug, Default)]
pub struct Report {
    pub rows: Vec<[String; 4]>,
    pub notes: Vec<String>,
    pub phases: Vec<(String, Duration)>,
    pub failed: bool,
}

impl Report {
    pub fn row(&mut self, metric: impl Into<String>, value: impl Into<String>, target: impl Into<String>, v: Verdict) {
        self.failed |= v == Verdict::MustFail;
        let verdict = match v {
            Verdict::Pass => "PASS",
            Verdict::Fail | Verdict::MustFail => "FAIL",
            Verdict::Info => "—",
        };
        self.rows.push([metric.into(), value.into(), target.into(), verdict.into()]);
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
        table.load_preset(UTF8_FULL_CONDENSED).set_header(["metric", "value", "target / must", "verdict"]);
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
