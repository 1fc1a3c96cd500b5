//! The Istio plug-in CA: each `IstioPluginCA` names four Key Vault secrets (`root-cert`,
//! `ca-cert`, `ca-key`, `cert-chain`) that routewarden keeps in istiod's Opaque Secret `cacerts`,
//! restarting istiod when the trust bundle (the set of roots) changes — what the AKS Istio
//! add-on does with a Secrets Store CSI mount and a CronJob.
//!
//! - The watch over IstioPluginCAs runs on every replica; the ServiceAccounts come from the TLS
//!   controller's cache and Key Vault is read through the same Azure client, credential cache and
//!   TokenRequest assertions as listener certificates.
//! - [`sync`] is the leader-only loop: per IstioPluginCA and poll interval, one metadata request
//!   per secret (its current version); a value is downloaded only when its version changed. The
//!   set is checked ([`routewarden_certs::ca::validate`]) before anything is written: a set caught
//!   between Key Vault's one-at-a-time updates waits (`WaitingForConsistentSet`) and `cacerts` keeps
//!   its last good content; after a grace period the specific reason is reported.
//! - [`kube`] writes `cacerts` (create, or a merge patch guarded by resourceVersion), patches
//!   istiod's pod template as `kubectl rollout restart` does, and writes the status.
//!
//! Whether istiod still owes a restart is kept on `cacerts` itself (the annotation
//! [`labels::RESTARTED_FOR`] holds the trust bundle istiod was last restarted for), so a
//! restart cut short by a crash or a lost leadership is done by the next leader.

pub mod kube;
pub mod sync;

use std::time::Duration;

/// Labels and annotations on `cacerts`.
pub mod labels {
    /// Which IstioPluginCA wrote it.
    pub const OWNER: &str = "routewarden.io/istio-plugin-ca";
    /// `root-cert=<version>,ca-cert=<version>,…`: the Key Vault versions it holds.
    pub const VERSIONS: &str = "routewarden.io/ca-versions";
    /// SHA-256 fingerprints of its roots, comma-separated.
    pub const ROOTS: &str = "routewarden.io/ca-root-fingerprints";
    /// The digest of the trust bundle istiod was last restarted for ("" = owed since creation).
    pub const RESTARTED_FOR: &str = "routewarden.io/istiod-restarted-for";
    /// When istiod was last restarted for it (RFC 3339).
    pub const RESTARTED_AT: &str = "routewarden.io/istiod-restarted-at";
    /// What `kubectl rollout restart` sets on the pod template.
    pub const KUBECTL_RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";
}

/// The Secret istiod reads its plug-in CA from.
pub const SECRET_NAME: &str = "cacerts";
/// A set that looks half-updated is waited for this many poll intervals before it is called by
/// its specific reason.
pub const GRACE_INTERVALS: u32 = 3;

/// How the CA controller behaves; from `routewarden run`'s flags.
#[derive(Clone, Debug)]
pub struct CaSettings {
    /// When an IstioPluginCA has no `pollInterval`.
    pub poll_interval: Duration,
    pub key_vault_suffix: String,
    pub default_tenant: Option<String>,
    /// Transient failures back off from this ...
    pub min_backoff: Duration,
    /// ... to this.
    pub max_backoff: Duration,
}

impl CaSettings {
    pub fn from_tls(tls: &crate::tls::TlsSettings) -> Self {
        CaSettings {
            poll_interval: tls.poll_interval,
            key_vault_suffix: tls.key_vault_suffix.clone(),
            default_tenant: tls.default_tenant.clone(),
            min_backoff: tls.min_backoff,
            max_backoff: tls.max_backoff,
        }
    }
}

/// The Ready condition's reason — also the Event reason and the failure metric's label. Closed,
/// so bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    Synced,
    /// A spec field is unusable (the message names it).
    InvalidSpec,
    /// An older IstioPluginCA targets the same namespace.
    Conflict,
    /// The ServiceAccount is missing or lacks the workload-identity annotations.
    IdentityInvalid,
    AuthenticationFailed,
    Forbidden,
    SecretNotFound,
    /// Key Vault failed transiently (retried with backoff).
    KeyVaultError,
    /// The four versions do not fit together yet; `cacerts` keeps its last good content.
    WaitingForConsistentSet,
    /// A check of [`routewarden_certs::ca`] failed (which one is the condition reason).
    Invalid(routewarden_certs::ca::CaCheck),
    /// `cacerts` exists and routewarden does not manage it.
    SecretNotOwned,
    /// The API server failed (retried with backoff).
    KubernetesError,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Synced => "Synced",
            Reason::InvalidSpec => "InvalidSpec",
            Reason::Conflict => "Conflict",
            Reason::IdentityInvalid => "IdentityInvalid",
            Reason::AuthenticationFailed => "AuthenticationFailed",
            Reason::Forbidden => "Forbidden",
            Reason::SecretNotFound => "SecretNotFound",
            Reason::KeyVaultError => "KeyVaultError",
            Reason::WaitingForConsistentSet => "WaitingForConsistentSet",
            Reason::Invalid(check) => check.reason(),
            Reason::SecretNotOwned => "SecretNotOwned",
            Reason::KubernetesError => "KubernetesError",
        }
    }

    /// Every failure reason, for metrics that start at 0.
    pub fn failures() -> Vec<Reason> {
        let mut all = vec![
            Reason::InvalidSpec,
            Reason::Conflict,
            Reason::IdentityInvalid,
            Reason::AuthenticationFailed,
            Reason::Forbidden,
            Reason::SecretNotFound,
            Reason::KeyVaultError,
            Reason::WaitingForConsistentSet,
            Reason::SecretNotOwned,
            Reason::KubernetesError,
        ];
        all.extend(routewarden_certs::ca::CaCheck::ALL.into_iter().map(Reason::Invalid));
        all
    }
}

/// How the set of roots changed with the last write of `cacerts`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rotation {
    None,
    RootsAdded,
    RootsRemoved,
    RootsReplaced,
}

impl Rotation {
    pub fn between(old: &std::collections::BTreeSet<String>, new: &std::collections::BTreeSet<String>) -> Self {
        match (new.is_superset(old), old.is_superset(new)) {
            (true, true) => Rotation::None,
            (true, false) => Rotation::RootsAdded,
            (false, true) => Rotation::RootsRemoved,
            (false, false) => Rotation::RootsReplaced,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Rotation::None => "None",
            Rotation::RootsAdded => "RootsAdded",
            Rotation::RootsRemoved => "RootsRemoved",
            Rotation::RootsReplaced => "RootsReplaced",
        }
    }
}

/// A digest of a trust bundle (its sorted fingerprints), for the restart bookkeeping.
pub fn bundle_digest(roots: &std::collections::BTreeSet<String>) -> String {
    let joined: Vec<&str> = roots.iter().map(String::as_str).collect();
    routewarden_planner::hex_digest(&joined.join(","), 16)
}

/// Starts the CA controller: the IstioPluginCA watch (every replica) and the sync loop (leader
/// only). `tls` lends its ServiceAccount cache, Events recorder and client.
pub fn start(
    ctx: &crate::Context,
    settings: CaSettings,
    tls: crate::tls::kubeio::Kube,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    use ::kube::api::Api;
    use ::kube::runtime::{reflector, watcher};
    let changed = crate::watches::Changed::new(ctx.metrics.clone());
    let writer = reflector::store::Writer::<crate::crd::istio::IstioPluginCa>::default();
    let store = writer.as_reader();
    let api = Api::<crate::crd::istio::IstioPluginCa>::all(ctx.client.clone());
    crate::watches::spawn_when_served(
        "istioplugincas",
        ctx.client.clone(),
        "routewarden.io/v1alpha1",
        "istioplugincas",
        writer,
        move |w| reflector::reflector(w, watcher(api, watcher::Config::default())),
        &changed,
        &stop,
        None,
    );
    for reason in Reason::failures() {
        let _ = ctx
            .metrics
            .ca_sync_failures
            .get_or_create(&crate::metrics::ReasonLabels { reason: reason.as_str().to_owned() });
    }
    let controller = std::sync::Arc::new(sync::Controller::new(ctx, settings, tls, store, changed));
    vec![crate::leader::while_leader("Istio CA sync", &ctx.leadership, &stop, move |stop| controller.clone().run(stop))]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_rotation_is_named_by_how_the_set_of_roots_changed() {
        assert_eq!(Rotation::between(&set(&["a"]), &set(&["a"])), Rotation::None);
        assert_eq!(Rotation::between(&set(&["a"]), &set(&["a", "b"])), Rotation::RootsAdded);
        assert_eq!(Rotation::between(&set(&["a", "b"]), &set(&["b"])), Rotation::RootsRemoved);
        assert_eq!(Rotation::between(&set(&["a"]), &set(&["b"])), Rotation::RootsReplaced);
    }

    #[test]
    fn the_bundle_digest_ignores_order_and_tells_sets_apart() {
        assert_eq!(bundle_digest(&set(&["a", "b"])), bundle_digest(&set(&["b", "a"])));
        assert_ne!(bundle_digest(&set(&["a"])), bundle_digest(&set(&["a", "b"])));
    }

    #[test]
    fn every_reason_is_a_valid_condition_reason_and_distinct() {
        let reasons: BTreeSet<&str> = Reason::failures().into_iter().map(Reason::as_str).collect();
        assert_eq!(reasons.len(), Reason::failures().len());
        for r in reasons {
            assert!(r.chars().all(|c| c.is_ascii_alphanumeric()) && r.starts_with(|c: char| c.is_ascii_uppercase()));
        }
    }
}
