//! The benchmark report: `cargo bench -p routewarden-e2e --bench report` runs every scenario
//! against the sandbox's Kubernetes API server and local Azure — with Azure's latency emulated
//! ([`routewarden_e2e::bench::azure_latency`]) and its documented rate limits enforced — and
//! prints one table, the machine's cores and memory at the top. Beside each of our figures it puts
//! the AKS operator's: its managed external-dns computed from its documented algorithm and
//! defaults ([`routewarden_e2e::anchor`]), and for certificates the Secrets Store CSI driver's
//! documented polling, so each row reads as a ratio. It exits non-zero when a must fails; a missed
//! target shows FAIL without failing the run.
//!
//! `cargo bench -p routewarden-e2e --bench report -- dns` (or `tls`, `incremental`, `cold`,
//! `rotation`, `shared`) runs only the phases whose name contains an argument.

mod dns;
mod tls;

use routewarden_e2e::bench::{Report, machine, phase};
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    println!("{}", machine());
    // Cargo passes `--bench`; every other argument selects phases.
    let only: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| name.contains(o.as_str()));
    let mut report = Report::default();
    // A phase that fails is a failed row; the phases after it still run and the table is printed.
    if wanted("dns incremental") {
        let outcome = phase(&mut report, dns::incremental);
        report.failed_phase("DNS: 1,000 routes", outcome);
    }
    if wanted("dns cold") {
        let outcome = phase(&mut report, dns::cold_start);
        report.failed_phase("DNS: cold start and 10,000 routes", outcome);
    }
    if wanted("tls rotation") {
        let outcome = phase(&mut report, tls::latency_and_rotation);
        report.failed_phase("certificates: listeners and rotations", outcome);
    }
    if wanted("tls shared") {
        let outcome = phase(&mut report, tls::shared_certificates);
        report.failed_phase("certificates: 1,000 listeners on 50 certificates", outcome);
    }
    report.finish(started);
    Ok(())
}
