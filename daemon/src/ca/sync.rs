//! The leader-only sync loop. Each IstioPluginCA is checked once per poll interval (sooner when
//! its spec changes, later with backoff when Key Vault or the API server fail): the four secrets'
//! current versions (one metadata request each), their values only when a version changed, the
//! checks of [`routewarden_certs::ca`], then `cacerts` and — when the trust bundle changed or
//! `cacerts` is new — istiod's restart. Status, Events, metrics and the journal follow every pass;
//! status and Events only when something changed.

use super::kube::{self as io, CaKubeError, Current};
use super::{CaSettings, GRACE_INTERVALS, Reason, Rotation, SECRET_NAME, bundle_digest, labels};
use crate::crd::conditions::{self, READY};
use crate::crd::istio::{CaConfig, IstioPluginCa, IstioPluginCaStatus};
use crate::metrics::{CaLabels, Metrics, ReasonLabels};
use kube::runtime::events::{Event, EventType};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use routewarden_azure::{AzureClient, AzureError, IdentityKey, Kind};
use routewarden_certs::ca::{CaBundle, CaObject, CaPems, root_fingerprints, validate};
use routewarden_store::{CertOutcome, CertVersion, CertVersionKey, Journal, NewEvent, Time};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The longest the loop sleeps without looking at the IstioPluginCAs again.
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// Why a pass did not leave `cacerts` current.
#[derive(Debug)]
struct Failure {
    reason: Reason,
    message: String,
    retryable: bool,
    retry_after: Option<Duration>,
}

impl Failure {
    fn new(reason: Reason, message: impl Into<String>) -> Self {
        Failure { reason, message: message.into(), retryable: false, retry_after: None }
    }
}

impl From<CaKubeError> for Failure {
    fn from(e: CaKubeError) -> Self {
        match e {
            e @ CaKubeError::NotOwned(_) => Failure::new(Reason::SecretNotOwned, e.to_string()),
            e @ CaKubeError::Api { .. } => Failure {
                retryable: true,
                ..Failure::new(Reason::KubernetesError, routewarden_azure::error::chain(&e))
            },
        }
    }
}

fn key_vault_failure(e: AzureError, object: &str) -> Failure {
    let reason = match e.kind {
        Kind::Authentication => Reason::AuthenticationFailed,
        Kind::Forbidden => Reason::Forbidden,
        Kind::NotFound | Kind::Disabled => Reason::SecretNotFound,
        _ => Reason::KeyVaultError,
    };
    Failure {
        reason,
        message: format!("Key Vault secret {object}: {e}"),
        retryable: e.kind.retryable(),
        retry_after: e.retry_after,
    }
}

/// What a successful pass found or did.
#[derive(Debug)]
struct Synced {
    versions: [String; 4],
    bundle: CaBundle,
    /// The trust-bundle change, when `cacerts` was written.
    written: Option<Rotation>,
    restarted: Vec<String>,
}

/// What the loop remembers per IstioPluginCA (by name).
#[derive(Default)]
struct State {
    uid: Option<String>,
    generation: Option<i64>,
    next_at: Option<Instant>,
    failures: u32,
    /// The values of the versions last read, by (object name, version). Never logged.
    values: HashMap<(String, String), routewarden_azure::SecretValue>,
    /// Since when these versions have failed a check a half-updated set explains.
    inconsistent: Option<(Instant, [String; 4])>,
    /// The versions whose failure was journaled last (one entry per set, not per poll).
    journaled: Option<[String; 4]>,
    /// The (reason, versions) last announced with an Event.
    announced: Option<(String, Option<[String; 4]>)>,
}

/// The loop and what it reads and writes with.
pub struct Controller {
    client: kube::Client,
    tls: crate::tls::kubeio::Kube,
    store: Store<IstioPluginCa>,
    azure: Arc<AzureClient>,
    journal: Journal,
    metrics: Arc<Metrics>,
    settings: CaSettings,
    changed: crate::watches::Changed,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller").finish_non_exhaustive()
    }
}

impl Controller {
    pub fn new(
        ctx: &crate::Context,
        settings: CaSettings,
        tls: crate::tls::kubeio::Kube,
        store: Store<IstioPluginCa>,
        changed: crate::watches::Changed,
    ) -> Self {
        Controller {
            client: ctx.client.clone(),
            tls,
            store,
            azure: ctx.azure.clone(),
            journal: ctx.journal.clone(),
            metrics: ctx.metrics.clone(),
            settings,
            changed,
        }
    }

    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        tokio::select! {
            _ = self.store.wait_until_ready() => {}
            _ = stop.changed() => return,
        }
        let mut states: HashMap<String, State> = HashMap::new();
        loop {
            let cas = self.store.state();
            states.retain(|name, _| {
                let kept = cas.iter().any(|c| c.name_any() == *name);
                if !kept {
                    self.metrics.forget_ca(name);
                }
                kept
            });
            let mut soonest = Instant::now() + MAX_SLEEP;
            for ca in &cas {
                let st = states.entry(ca.name_any()).or_default();
                let due = st.next_at.is_none_or(|t| t <= Instant::now())
                    || st.generation != ca.metadata.generation
                    || st.uid != ca.uid();
                if due {
                    st.uid = ca.uid();
                    st.generation = ca.metadata.generation;
                    let span = tracing::info_span!("ca.sync", ipca = %ca.name_any());
                    let delay = tracing::Instrument::instrument(self.pass(ca, &cas, st), span).await;
                    st.next_at = Some(Instant::now() + delay);
                }
                soonest = soonest.min(st.next_at.unwrap_or(soonest));
            }
            tokio::select! {
                _ = tokio::time::sleep_until(soonest.into()) => {}
                _ = self.changed.notified() => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// One pass over one IstioPluginCA; returns when to look again.
    async fn pass(&self, ca: &IstioPluginCa, all: &[Arc<IstioPluginCa>], st: &mut State) -> Duration {
        let name = ca.name_any();
        let config = ca.spec.check(&self.settings.key_vault_suffix);
        let interval = config.as_ref().ok().and_then(|c| c.poll_interval).unwrap_or(self.settings.poll_interval);
        let result = match &config {
            Ok(c) => self.sync(ca, c, all, st, interval).await,
            Err(e) => Err(Failure::new(Reason::InvalidSpec, e.to_string())),
        };
        let now = jiff::Timestamp::now();
        let mut status = ca.status.clone().unwrap_or_default();
        let generation = ca.metadata.generation;
        let labels = CaLabels { name: name.clone() };
        let delay;
        let announce: (String, Option<[String; 4]>);
        let (event_type, event_reason, note);
        match &result {
            Ok(s) => {
                st.failures = 0;
                st.inconsistent = None;
                st.journaled = None;
                delay = interval;
                let target = config.as_ref().map(|c| c.target_namespace.clone()).unwrap_or_default();
                let message = format!(
                    "Secret {target}/{SECRET_NAME} holds {} (CA {:?}, notAfter {}; {} root(s) in the trust bundle)",
                    versions_text(&s.versions),
                    s.bundle.ca_subject,
                    s.bundle.ca_not_after,
                    s.bundle.root_fingerprints.len()
                );
                update_synced_status(&mut status, s, now);
                conditions::set(
                    &mut status.conditions,
                    &conditions::Update {
                        type_: READY,
                        status: conditions::status::TRUE,
                        reason: Reason::Synced.as_str(),
                        message: message.clone(),
                    },
                    generation,
                    now,
                );
                self.metrics.ca_not_after.get_or_create(&labels).set(s.bundle.ca_not_after.as_second());
                self.metrics.ca_trust_bundle_roots.get_or_create(&labels).set(s.bundle.root_fingerprints.len() as i64);
                self.metrics.ca_last_sync.get_or_create(&labels).set(now.as_second());
                let first = !matches!(&st.announced, Some((r, _)) if r == Reason::Synced.as_str());
                announce = (Reason::Synced.as_str().to_owned(), Some(s.versions.clone()));
                (event_type, event_reason, note) =
                    (EventType::Normal, if first { "Synced" } else { "Updated" }, message);
            }
            Err(f) => {
                st.failures += 1;
                self.metrics
                    .ca_sync_failures
                    .get_or_create(&ReasonLabels { reason: f.reason.as_str().to_owned() })
                    .inc();
                let backoff = crate::backoff::Backoff {
                    min: self.settings.min_backoff,
                    // Retries never wait longer than a poll would (a Retry-After still may).
                    max: self.settings.max_backoff.min(interval),
                    wait_for_input: interval,
                };
                delay = backoff.delay(f.retryable, f.retry_after, st.failures);
                let message = match status.applied_versions.is_empty() {
                    true => f.message.clone(),
                    false => format!("{}; cacerts keeps the last good set", f.message),
                };
                conditions::set(
                    &mut status.conditions,
                    &conditions::Update {
                        type_: READY,
                        status: conditions::status::FALSE,
                        reason: f.reason.as_str(),
                        message: message.chars().take(2048).collect(),
                    },
                    generation,
                    now,
                );
                announce = (f.reason.as_str().to_owned(), None);
                (event_type, event_reason, note) = (EventType::Warning, f.reason.as_str(), message);
                tracing::info!(ipca = %name, reason = f.reason.as_str(), message = %f.message, "Istio CA not synced");
            }
        }
        if ca.status.as_ref() != Some(&status)
            && let Err(e) = io::apply_status(&self.client, &name, &status).await
        {
            tracing::warn!(ipca = %name, error = %e, "failed to write IstioPluginCA status");
        }
        if st.announced.as_ref() != Some(&announce) {
            self.event(ca, event_type, event_reason, note).await;
            st.announced = Some(announce);
        }
        if let Ok(s) = &result
            && !s.restarted.is_empty()
        {
            let note = format!(
                "restarted istiod Deployment(s) {} for the new trust bundle ({} root(s))",
                s.restarted.join(", "),
                s.bundle.root_fingerprints.len()
            );
            self.event(ca, EventType::Normal, "IstiodRestarted", note).await;
        }
        delay
    }

    async fn event(&self, ca: &IstioPluginCa, type_: EventType, reason: &str, note: String) {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note.chars().take(1024).collect()),
            action: "SyncIstioCA".into(),
            secondary: None,
        };
        self.tls.publish(&ca.object_ref(&()), event).await;
    }

    async fn sync(
        &self,
        ca: &IstioPluginCa,
        config: &CaConfig,
        all: &[Arc<IstioPluginCa>],
        st: &mut State,
        interval: Duration,
    ) -> Result<Synced, Failure> {
        let name = ca.name_any();
        let ns = &config.target_namespace;
        // One cacerts per namespace: the oldest IstioPluginCA targeting it wins.
        let winner = all
            .iter()
            .filter(|o| o.spec.target_namespace == *ns)
            .min_by_key(|o| (o.creation_timestamp().map(|t| t.0), o.name_any()));
        if let Some(w) = winner
            && w.name_any() != name
        {
            return Err(Failure::new(
                Reason::Conflict,
                format!(
                    "IstioPluginCA {:?} (older) already manages Secret {ns}/{SECRET_NAME}; only one may target a namespace",
                    w.name_any()
                ),
            ));
        }
        let id = self.identity(config)?;
        let mut versions: [String; 4] = Default::default();
        for (i, object) in config.objects.iter().enumerate() {
            let what = format!("{}/secrets/{object}", config.vault_url);
            versions[i] = match self.azure.current_secret_version(&id, &config.vault_url, object).await {
                Ok(Some(v)) => v.version,
                Ok(None) => return Err(Failure::new(Reason::SecretNotFound, format!("{what} has no enabled version"))),
                Err(e) => return Err(key_vault_failure(e, &what)),
            };
        }
        // Download only what changed; keep only the current four.
        let wanted: Vec<(String, String)> = config.objects.iter().cloned().zip(versions.iter().cloned()).collect();
        st.values.retain(|k, _| wanted.contains(k));
        for (object, version) in &wanted {
            if st.values.contains_key(&(object.clone(), version.clone())) {
                continue;
            }
            let what = format!("{}/secrets/{object}/{version}", config.vault_url);
            let secret = self
                .azure
                .certificate_secret(&id, &config.vault_url, object, version)
                .await
                .map_err(|e| key_vault_failure(e, &what))?;
            st.values.insert((object.clone(), version.clone()), secret);
        }
        let pem = |i: usize| st.values.get(&wanted[i]).map(|v| v.value.as_str()).unwrap_or_default();
        let pems = CaPems { root_cert: pem(0), ca_cert: pem(1), ca_key: pem(2), cert_chain: pem(3) };
        let bundle = match validate(&pems, jiff::Timestamp::now()) {
            Ok(b) => b,
            Err(e) => {
                let since = match &st.inconsistent {
                    Some((at, v)) if *v == versions => *at,
                    _ => Instant::now(),
                };
                st.inconsistent = Some((since, versions.clone()));
                let grace = interval * GRACE_INTERVALS;
                let waiting = e.explained_by_partial_update() && since.elapsed() < grace;
                let reason = if waiting { Reason::WaitingForConsistentSet } else { Reason::Invalid(e.check) };
                let message = if waiting {
                    format!(
                        "{} do not fit together yet ({e}: {}); waiting up to {grace:?} for the rest of the set to be updated in Key Vault",
                        versions_text(&versions),
                        e.check.reason()
                    )
                } else {
                    format!("{} was not used: {e} ({})", versions_text(&versions), e.check.reason())
                };
                if st.journaled.as_ref() != Some(&versions) || !waiting {
                    self.journal_failure(&name, config, &versions, &e, waiting).await;
                    st.journaled = Some(versions.clone());
                }
                return Err(Failure::new(reason, message));
            }
        };
        st.inconsistent = None;
        let current = io::read_cacerts(&self.client, ns).await?;
        let files: BTreeMap<String, String> =
            CaObject::ALL.iter().enumerate().map(|(i, o)| (o.file().to_owned(), pem(i).to_owned())).collect();
        let versions_annotation =
            CaObject::ALL.iter().zip(&versions).map(|(o, v)| format!("{o}={v}")).collect::<Vec<_>>().join(",");
        let digest = bundle_digest(&bundle.root_fingerprints);
        let annotation = |c: &Current, k: &str| c.annotations.get(k).cloned();
        // A new cacerts owes istiod a restart: istiod already running started without it.
        let restarted_for = current.as_ref().and_then(|c| annotation(c, labels::RESTARTED_FOR)).unwrap_or_default();
        let same = current.as_ref().is_some_and(|c| {
            c.files == files && annotation(c, labels::VERSIONS).as_ref() == Some(&versions_annotation)
        });
        let mut written = None;
        if !same {
            let mut annotations = BTreeMap::from([
                (labels::OWNER.to_owned(), name.clone()),
                (labels::VERSIONS.to_owned(), versions_annotation.clone()),
                (labels::ROOTS.to_owned(), bundle.root_fingerprints.iter().cloned().collect::<Vec<_>>().join(",")),
                (labels::RESTARTED_FOR.to_owned(), restarted_for.clone()),
            ]);
            if let Some(at) = current.as_ref().and_then(|c| annotation(c, labels::RESTARTED_AT)) {
                annotations.insert(labels::RESTARTED_AT.to_owned(), at);
            }
            io::write_cacerts(&self.client, ns, current.as_ref(), &files, &annotations).await?;
            let old_roots = current
                .as_ref()
                .and_then(|c| c.files.get(CaObject::RootCert.file()))
                .and_then(|p| root_fingerprints(p).ok())
                .unwrap_or_default();
            let rotation = match &current {
                Some(_) => Rotation::between(&old_roots, &bundle.root_fingerprints),
                None => Rotation::None,
            };
            written = Some(rotation);
            let previous = current.as_ref().and_then(|c| annotation(c, labels::VERSIONS)).unwrap_or_default();
            self.journal_applied(&name, config, &versions, &previous, &bundle, rotation).await;
            tracing::info!(ipca = %name, namespace = %ns, versions = %versions_annotation, rotation = rotation.as_str(), "cacerts written");
        }
        let mut restarted = Vec::new();
        if restarted_for != digest {
            let at = jiff::Timestamp::now();
            restarted = io::restart_istiod(&self.client, ns, &config.istiod, at).await?;
            let fresh = io::read_cacerts(&self.client, ns).await?;
            let mut marks = BTreeMap::from([(labels::RESTARTED_FOR.to_owned(), digest.clone())]);
            if !restarted.is_empty() {
                marks.insert(labels::RESTARTED_AT.to_owned(), at.to_string());
                self.metrics.ca_istiod_restarts.get_or_create(&CaLabels { name: name.clone() }).inc();
                self.journal_event(
                    "ca.istiod-restarted",
                    &name,
                    format!(
                        "restarted {} in {ns} for {} root(s)",
                        restarted.join(", "),
                        bundle.root_fingerprints.len()
                    ),
                )
                .await;
                tracing::info!(ipca = %name, deployments = ?restarted, "istiod restarted for a new trust bundle");
            }
            io::annotate_cacerts(&self.client, ns, fresh.and_then(|c| c.resource_version), &marks).await?;
        }
        Ok(Synced { versions, bundle, written, restarted })
    }

    /// The workload identity of the spec's ServiceAccount, which must live in the target
    /// namespace (as a listener's must live in its Gateway's).
    fn identity(&self, config: &CaConfig) -> Result<IdentityKey, Failure> {
        use routewarden_planner::tls::{ANNOTATION_CLIENT_ID, ANNOTATION_TENANT_ID};
        let (ns, sa) = (&config.target_namespace, &config.service_account);
        // A ServiceAccount created or annotated after the IstioPluginCA is not a change the
        // controller is woken for: look again with backoff, not only at the next poll.
        let invalid = |m: String| Failure { retryable: true, ..Failure::new(Reason::IdentityInvalid, m) };
        let account = self.tls.caches.service_accounts.get(&ObjectRef::new(sa).within(ns)).ok_or_else(|| {
            invalid(format!(
                "ServiceAccount {ns}/{sa} does not exist; the identity must live in targetNamespace {ns:?}"
            ))
        })?;
        let annotation = |k: &str| {
            account
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(k))
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        let client_id = annotation(ANNOTATION_CLIENT_ID)
            .ok_or_else(|| invalid(format!("ServiceAccount {ns}/{sa} has no {ANNOTATION_CLIENT_ID} annotation")))?;
        let tenant_id = annotation(ANNOTATION_TENANT_ID).or_else(|| self.settings.default_tenant.clone()).ok_or_else(|| {
            invalid(format!("ServiceAccount {ns}/{sa} has no {ANNOTATION_TENANT_ID} annotation and routewarden has no default tenant"))
        })?;
        Ok(IdentityKey { tenant_id, client_id, namespace: ns.clone(), service_account: sa.clone() })
    }

    /// Journals the versions just written (those that changed): metadata and fingerprints only.
    async fn journal_applied(
        &self,
        name: &str,
        config: &CaConfig,
        versions: &[String; 4],
        previous: &str,
        bundle: &CaBundle,
        rotation: Rotation,
    ) {
        let time = |t: jiff::Timestamp| Time::from_millis(t.as_millisecond());
        let rows: Vec<(CertVersionKey, CertVersion)> = CaObject::ALL
            .iter()
            .zip(versions)
            .zip(&config.objects)
            .filter(|((o, v), _)| !previous.split(',').any(|p| p == format!("{o}={v}")))
            .map(|((o, v), object)| {
                let facts = bundle.objects.get(o);
                let key =
                    CertVersionKey { vault: config.vault_url.clone(), object: object.clone(), version: v.clone() };
                let value = CertVersion {
                    x5t: facts.map(|f| f.x5t.clone()).unwrap_or_default(),
                    not_before: facts.map(|f| time(f.not_before)).unwrap_or(Time(0)),
                    not_after: facts.map(|f| time(f.not_after)).unwrap_or(Time(0)),
                    seen_at: Time::now(),
                    applied_at: Some(Time::now()),
                    outcome: CertOutcome::Applied,
                    reason: None,
                };
                (key, value)
            })
            .collect();
        let message = format!(
            "Secret {}/{SECRET_NAME}: {} ({} root(s), rotation {})",
            config.target_namespace,
            versions_text(versions),
            bundle.root_fingerprints.len(),
            rotation.as_str()
        );
        self.commit(rows, NewEvent::new(Time::now(), "ca.applied", subject(name), message)).await;
    }

    /// Journals a set that was not used: waiting (an event) or rejected (the versions too).
    async fn journal_failure(
        &self,
        name: &str,
        config: &CaConfig,
        versions: &[String; 4],
        e: &routewarden_certs::ca::CaError,
        waiting: bool,
    ) {
        let index = CaObject::ALL.iter().position(|o| *o == e.object).unwrap_or(0);
        let rows = match waiting {
            true => Vec::new(),
            false => vec![(
                CertVersionKey {
                    vault: config.vault_url.clone(),
                    object: config.objects[index].clone(),
                    version: versions[index].clone(),
                },
                CertVersion {
                    x5t: String::new(),
                    not_before: Time(0),
                    not_after: Time(0),
                    seen_at: Time::now(),
                    applied_at: None,
                    outcome: CertOutcome::Rejected,
                    reason: Some(format!("{}: {e}", e.check.reason())),
                },
            )],
        };
        let (action, message) = match waiting {
            true => ("ca.waiting", format!("{}: {e}; waiting for a consistent set", versions_text(versions))),
            false => ("ca.rejected", format!("{}: {e} ({})", versions_text(versions), e.check.reason())),
        };
        self.commit(rows, NewEvent::new(Time::now(), action, subject(name), message)).await;
    }

    async fn journal_event(&self, action: &str, name: &str, message: String) {
        self.commit(Vec::new(), NewEvent::new(Time::now(), action, subject(name), message)).await;
    }

    async fn commit(&self, rows: Vec<(CertVersionKey, CertVersion)>, event: NewEvent) {
        let journal = self.journal.clone();
        let result = tokio::task::spawn_blocking(move || {
            journal.commit(|tx| {
                for (key, value) in &rows {
                    let seen_at = tx.cert_version(key)?.map(|v| v.seen_at).unwrap_or(value.seen_at);
                    tx.put_cert_version(key, &CertVersion { seen_at, ..value.clone() })?;
                }
                tx.append_event(event.clone())?;
                Ok(())
            })
        })
        .await;
        if let Ok(Err(e)) = result {
            tracing::warn!(error = %e, "failed to journal an Istio CA change");
        }
    }
}

/// The journal subject of an IstioPluginCA.
fn subject(name: &str) -> String {
    format!("istioplugincas/{name}")
}

/// `root-cert <v>, ca-cert <v>, ca-key <v>, cert-chain <v>`.
fn versions_text(versions: &[String; 4]) -> String {
    CaObject::ALL.iter().zip(versions).map(|(o, v)| format!("{o} {v}")).collect::<Vec<_>>().join(", ")
}

fn update_synced_status(status: &mut IstioPluginCaStatus, s: &Synced, now: jiff::Timestamp) {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time as K8sTime;
    status.root_fingerprints = s.bundle.root_fingerprints.iter().cloned().collect();
    status.ca_not_after = Some(K8sTime(s.bundle.ca_not_after));
    status.applied_versions =
        CaObject::ALL.iter().zip(&s.versions).map(|(o, v)| (o.default_name().to_owned(), v.clone())).collect();
    if let Some(rotation) = s.written {
        status.last_sync_time = Some(K8sTime(now));
        status.rotation = Some(rotation.as_str().to_owned());
    }
    if status.last_sync_time.is_none() {
        status.last_sync_time = Some(K8sTime(now));
    }
    if !s.restarted.is_empty() {
        status.last_restart_time = Some(K8sTime(now));
    }
}
