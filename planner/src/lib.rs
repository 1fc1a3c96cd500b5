//! Planners: pure functions from a snapshot of the cluster to desired state. No I/O, no clock,
//! no Kubernetes or Azure types — the daemon's sources turn watched objects into the plain views
//! defined here, and the journal diffs what comes out against what was applied.
//!
//! - [`dns`]: ClusterExternalDNS / ExternalDNS resources + Gateways, HTTPRoutes, GRPCRoutes and
//!   Ingresses → desired record sets per zone, plus findings (hostnames outside every zone,
//!   conflicts between resources, bad annotations) for status and Events.
//! - [`tls`]: Gateways + ServiceAccounts → a certificate binding per listener that carries the
//!   Key Vault TLS options, or the reason it cannot have one.

pub mod dns;
pub mod hostname;
pub mod selector;
pub mod tls;
pub mod zone;

/// The first `bytes` bytes of the SHA-256 of `text`, as lower-case hex: short, stable identities
/// for names (hash-shortened object names) and for desired content (queue payloads).
pub fn hex_digest(text: &str, bytes: usize) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes()).iter().take(bytes).map(|b| format!("{b:02x}")).collect()
}
