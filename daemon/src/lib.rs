//! routewarden: the daemon library — the journal's keeper and the operator's window into it.
//!
//! - [`cli`] parses arguments (clap, with environment fallbacks) and dispatches: `run` goes to
//!   [`daemon`], `journal …` reads [`view`]s from a stopped journal or from a running daemon's
//!   [`admin`] endpoint and renders them (table, JSON, YAML).
//! - [`view`] is the one place journal contents become operator-facing structs; the admin
//!   endpoint serves exactly these and the CLI deserialises them, so both sources print alike.
//! - [`crd`] holds the ClusterExternalDNS / ExternalDNS types, generates their CRDs
//!   (`routewarden crd`), and converts watched objects into the planner's input.
//! - [`tls`] and [`dns`] are the two controllers: watches and a planner on every replica, and
//!   the writers (workers, poller, verifier, status) on the [`leader`] only. [`ca`] keeps an
//!   Istio plug-in CA from Key Vault in istiod's `cacerts`, with the TLS controller's identity
//!   and Key Vault plumbing.
//! - [`metrics`], [`health`] and [`telemetry`] are what operators see: `/metrics`, `/healthz`,
//!   `/readyz`, logs with a filter changeable at runtime, and OpenTelemetry traces.

pub mod admin;
pub mod backoff;
pub mod ca;
pub mod cli;
pub mod config;
pub mod crd;
pub mod daemon;
pub mod dns;
pub mod health;
pub mod leader;
pub mod metrics;
pub mod telemetry;
pub mod tls;
pub mod view;
pub mod watches;

/// Locks a mutex, taking over a poisoned one: every mutex here guards plain data that a panicking
/// holder cannot leave half-updated in a way a later reader would misread.
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What both controllers are started with.
#[derive(Clone)]
pub struct Context {
    pub client: kube::Client,
    pub journal: routewarden_store::Journal,
    pub azure: std::sync::Arc<routewarden_azure::AzureClient>,
    pub metrics: std::sync::Arc<metrics::Metrics>,
    pub leadership: leader::Leadership,
    pub health: std::sync::Arc<health::Health>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("leadership", &self.leadership).finish_non_exhaustive()
    }
}
