//! Key Vault certificates on Gateway listeners, synced by the daemon itself — no pod per
//! certificate. The pieces, each in its own module:
//!
//! - [`sources`]: reflectors over Gateways, ServiceAccounts (metadata only) and the Secrets and
//!   SecretProviderClasses routewarden owns (metadata only, selected by label). Every change wakes
//!   the planner loop.
//! - [`controller`]: the planner loop. It turns the caches into the pure planner's input
//!   (`routewarden_planner::tls::plan`), then queues durable work in the journal: `tls.sync` for a
//!   listener whose binding changed or whose objects drifted, `tls.remove` for objects nothing
//!   wants any more. Refused listeners get their reason at once, without a queue round trip.
//! - [`worker`]: a pool draining the queue. A sync resolves the version (from the poller's cache
//!   or one metadata request), downloads the backing secret only when the listener's Secret does
//!   not already hold that version, validates it, and writes the SecretProviderClass, the Secret
//!   and the listener's certificateRefs. Each item has its own backoff, so one bad listener never
//!   holds up another.
//! - [`poller`]: one metadata request per distinct (vault, certificate, identity) per interval,
//!   however many listeners share it; a new version queues a sync for exactly those listeners.
//! - [`status`]: the listener condition `routewarden.io/CertificateReady`, Events on transitions,
//!   and the per-listener metrics.
//! - [`kubeio`]: every Kubernetes read and write the above need, and the TokenRequest-based client
//!   assertion for workload identity.

pub mod controller;
pub mod kubeio;
pub mod poller;
pub mod sources;
pub mod status;
pub mod worker;

use routewarden_certs::{HostnamePolicy, KeyFormat};
use routewarden_planner::tls::{PollKey, TlsPlan};
use routewarden_store::CertBindingKey;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Labels and annotations on the objects routewarden writes.
pub mod labels {
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    pub const MANAGED_BY_VALUE: &str = "routewarden";
    /// `MANAGED_BY=routewarden`, the selector of the owned-object watches.
    pub const SELECTOR: &str = "app.kubernetes.io/managed-by=routewarden";
    pub const COMPONENT: &str = "app.kubernetes.io/component";
    /// Which listener an object belongs to (annotations: names may exceed label limits).
    pub const GATEWAY: &str = "routewarden.io/gateway";
    pub const LISTENER: &str = "routewarden.io/listener";
    pub const VAULT: &str = "routewarden.io/certificate-vault";
    pub const CERTIFICATE: &str = "routewarden.io/certificate-name";
    pub const VERSION: &str = "routewarden.io/certificate-version";
    pub const X5T: &str = "routewarden.io/certificate-x5t";
    pub const NOT_AFTER: &str = "routewarden.io/certificate-not-after";
    /// How tls.crt / tls.key were encoded (root included, key format): a change rewrites the Secret.
    pub const FORMAT: &str = "routewarden.io/format";
}

/// The field manager of every routewarden write.
pub const FIELD_MANAGER: &str = "routewarden";
/// The per-listener condition routewarden owns in `status.listeners[].conditions`.
pub const CONDITION_TYPE: &str = "routewarden.io/CertificateReady";
/// Queue kinds; the TLS workers claim only kinds with [`KIND_PREFIX`].
pub const KIND_PREFIX: &str = "tls.";
pub const KIND_SYNC: &str = "tls.sync";
pub const KIND_REMOVE: &str = "tls.remove";

/// How the TLS controller behaves; from `routewarden run`'s flags.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    pub gateway_classes: Vec<String>,
    pub poll_interval: Duration,
    pub hostname_policy: HostnamePolicy,
    pub include_root: bool,
    pub key_format: KeyFormat,
    pub workers: usize,
    /// Key Vault DNS suffix of the configured cloud.
    pub key_vault_suffix: String,
    /// The SecretProviderClass `cloudName` (None for the public cloud).
    pub cloud_name: Option<String>,
    pub default_tenant: Option<String>,
    /// Transient failures back off from this ...
    pub min_backoff: Duration,
    /// ... to this.
    pub max_backoff: Duration,
}

impl TlsSettings {
    /// The value of the `routewarden.io/format` annotation for these settings.
    pub fn format(&self) -> String {
        let key = match self.key_format {
            KeyFormat::Pkcs8 => "pkcs8",
            KeyFormat::Traditional => "traditional",
        };
        format!("key={key};root={}", self.include_root)
    }

    pub fn planner_config(&self) -> routewarden_planner::tls::TlsConfig {
        routewarden_planner::tls::TlsConfig {
            gateway_classes: self.gateway_classes.clone(),
            key_vault_suffix: self.key_vault_suffix.clone(),
            default_tenant: self.default_tenant.clone(),
        }
    }
}

/// Why a listener has no current certificate — the condition and Event reason. Closed, so it
/// is also a bounded metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    Synced,
    InvalidInput,
    ServiceAccountNotFound,
    ServiceAccountNotAnnotated,
    AuthenticationFailed,
    Forbidden,
    CertificateNotFound,
    VersionDisabled,
    /// A check of the downloaded certificate failed (which one is in [`Outcome::Failed::check`]).
    ValidationFailed,
    SecretConflict,
    /// Key Vault or the API server kept failing transiently; still retrying.
    Unavailable,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Synced => "Synced",
            Reason::InvalidInput => "InvalidInput",
            Reason::ServiceAccountNotFound => "ServiceAccountNotFound",
            Reason::ServiceAccountNotAnnotated => "ServiceAccountNotAnnotated",
            Reason::AuthenticationFailed => "AuthenticationFailed",
            Reason::Forbidden => "Forbidden",
            Reason::CertificateNotFound => "CertificateNotFound",
            Reason::VersionDisabled => "VersionDisabled",
            Reason::ValidationFailed => "ValidationFailed",
            Reason::SecretConflict => "SecretConflict",
            Reason::Unavailable => "Unavailable",
        }
    }

    pub fn from_planner(r: routewarden_planner::tls::Reason) -> Self {
        use routewarden_planner::tls::Reason as P;
        match r {
            P::InvalidInput => Reason::InvalidInput,
            P::ServiceAccountNotFound => Reason::ServiceAccountNotFound,
            P::ServiceAccountNotAnnotated => Reason::ServiceAccountNotAnnotated,
        }
    }
}

/// What the last attempt for a listener came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ready {
        version: String,
        x5t: String,
        not_before: jiff::Timestamp,
        not_after: jiff::Timestamp,
        /// Checks that failed under the warn policy.
        warnings: Vec<String>,
        pinned: bool,
    },
    Failed {
        reason: Reason,
        /// The failed validation check (`Expired`, `KeyMismatch`, ...), the condition's reason.
        check: Option<&'static str>,
        message: String,
        /// The version the Secret still serves, if any (last known good).
        serving: Option<String>,
        /// A transient failure that is being retried.
        retrying: bool,
        /// The version that was tried, when the failure is about one version.
        attempted: Option<String>,
    },
}

impl Outcome {
    pub fn is_ready(&self) -> bool {
        matches!(self, Outcome::Ready { .. })
    }
}

/// The newest version known for a polled certificate.
#[derive(Clone, Debug)]
pub struct KnownVersion {
    pub version: String,
    pub x5t: Option<String>,
    pub enabled: bool,
    pub checked_at: std::time::Instant,
}

/// What the planner loop, the workers, the poller and the status writer share.
#[derive(Debug, Default)]
pub struct Shared {
    pub plan: TlsPlan,
    /// Set once the planner loop has planned from synced caches; until then nothing may be
    /// judged unmanaged.
    pub planned: bool,
    pub outcomes: HashMap<CertBindingKey, Outcome>,
    pub versions: HashMap<PollKey, KnownVersion>,
    /// When each listener was last found or made current (drift checks wait for the caches).
    pub synced_at: HashMap<CertBindingKey, std::time::Instant>,
    /// Certificate metadata answered 403 for this identity: poll secret versions instead.
    pub certificate_metadata_denied: std::collections::HashSet<PollKey>,
}

pub type SharedState = std::sync::Arc<Mutex<Shared>>;

pub use crate::lock;

/// The poll key of a binding (pinned bindings have one too; they are just not polled).
pub fn poll_key(b: &routewarden_planner::tls::Binding) -> PollKey {
    PollKey { vault_url: b.uri.vault_url.clone(), certificate: b.uri.name.clone(), identity: b.identity.clone() }
}

pub fn identity_key(i: &routewarden_planner::tls::Identity) -> routewarden_azure::IdentityKey {
    routewarden_azure::IdentityKey {
        tenant_id: i.tenant_id.clone(),
        client_id: i.client_id.clone(),
        namespace: i.namespace.clone(),
        service_account: i.service_account.clone(),
    }
}

/// `namespace/gateway/listener` (the queue key) back into its parts.
pub fn parse_key(key: &str) -> Option<CertBindingKey> {
    let mut parts = key.splitn(3, '/');
    Some(CertBindingKey {
        namespace: parts.next()?.to_owned(),
        gateway: parts.next()?.to_owned(),
        listener: parts.next()?.to_owned(),
    })
}

/// Starts the TLS controller: watches, the planner loop, the workers, the poller and the status
/// writer. Every task ends when `stop` turns true. Returns the tasks and the controller's
/// Kubernetes side (caches, Events recorder), which the Istio CA controller shares.
pub fn start(
    ctx: &crate::Context,
    settings: TlsSettings,
    stop: tokio::sync::watch::Receiver<bool>,
) -> (Vec<tokio::task::JoinHandle<()>>, kubeio::Kube) {
    use crate::leader::while_leader;
    let crate::Context { client, journal, azure, metrics, leadership, health } = ctx.clone();
    let leadership = &leadership;
    use std::sync::Arc;
    let changed = crate::watches::Changed::new(metrics.clone());
    let caches = sources::start(client.clone(), changed.clone(), stop.clone());
    let n = settings.workers;
    let workers = Arc::new(worker::Workers::new(
        kubeio::Kube::new(client, caches),
        azure,
        journal,
        SharedState::default(),
        Arc::new(settings),
        metrics,
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(tokio::sync::Notify::new()),
    ));
    let shared = workers.shared.clone();
    let kube = workers.kube.clone();
    health.require("TLS caches synced and planned", move || crate::lock(&shared).planned);
    // The planner runs on every replica; what reads Key Vault or writes runs on the leader only.
    let mut tasks = vec![tokio::spawn(controller::run(workers.clone(), changed, stop.clone()))];
    let w = workers.clone();
    tasks.push(crate::leader::pool_while_leader("TLS workers", n, leadership, &stop, move |stop| w.clone().run(stop)));
    let w = workers.clone();
    tasks.push(while_leader("TLS poller", leadership, &stop, move |stop| poller::run(w.clone(), stop)));
    tasks.push(while_leader("TLS status", leadership, &stop, move |stop| status::run(workers.clone(), stop)));
    (tasks, kube)
}
