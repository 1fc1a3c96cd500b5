//! The worker pool: claims due `tls.sync` / `tls.remove` items from the journal and carries
//! them out. A sync is idempotent and cheap when nothing changed: it downloads the backing secret
//! only when the listener's Secret does not already hold the wanted version in the wanted format,
//! and every Kubernetes write it makes is skipped when the cache shows it is already in place.

use super::kubeio::{Kube, KubeError, owner_reference};
use super::{
    KIND_REMOVE, KIND_SYNC, KnownVersion, Outcome, Reason, SharedState, TlsSettings, identity_key, labels, lock,
    parse_key, poll_key,
};
use crate::metrics::{ListenerLabels, Metrics};
use routewarden_azure::{AzureClient, AzureError, IdentityKey, Kind};
use routewarden_certs::{CheckFailure, ContentType, Expectations, Material, assemble, decode_secret};
use routewarden_planner::tls::{Binding, PollKey};
use routewarden_store::{
    CertBinding, CertBindingKey, CertOutcome, CertVersion, CertVersionKey, Journal, NewEvent, Time,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};
use tracing::Instrument;

/// How long a claimed item is ours before another worker may take it over.
const LEASE: Duration = Duration::from_secs(120);
/// How long a downloaded certificate is reused for other listeners of the same version.
const MATERIAL_TTL: Duration = Duration::from_secs(60);

/// Why a sync did not produce a current Secret.
#[derive(Debug)]
pub struct SyncError {
    pub reason: Reason,
    pub check: Option<&'static str>,
    pub message: String,
    pub retryable: bool,
    pub retry_after: Option<Duration>,
    /// The Key Vault version the sync was after, when known.
    pub version: Option<String>,
}

impl SyncError {
    fn terminal(reason: Reason, message: impl Into<String>) -> Self {
        SyncError { reason, check: None, message: message.into(), retryable: false, retry_after: None, version: None }
    }
}

impl From<AzureError> for SyncError {
    fn from(e: AzureError) -> Self {
        let reason = match e.kind {
            Kind::Authentication => Reason::AuthenticationFailed,
            Kind::Forbidden => Reason::Forbidden,
            Kind::Disabled => Reason::VersionDisabled,
            Kind::NotFound => Reason::CertificateNotFound,
            _ => Reason::Unavailable,
        };
        SyncError {
            reason,
            check: None,
            message: e.to_string(),
            retryable: e.kind.retryable(),
            retry_after: e.retry_after,
            version: None,
        }
    }
}

impl From<KubeError> for SyncError {
    fn from(e: KubeError) -> Self {
        match e {
            KubeError::Conflict(m) => SyncError::terminal(Reason::SecretConflict, m),
            e @ KubeError::Api { .. } => SyncError {
                reason: Reason::Unavailable,
                check: None,
                message: routewarden_azure::error::chain(&e),
                retryable: true,
                retry_after: None,
                version: None,
            },
        }
    }
}

type MaterialKey = (PollKey, String);
type Flight<T> = Arc<tokio::sync::Mutex<T>>;
/// A download shared by concurrent syncs of one version, and when it was started.
type MaterialSlot = (Instant, Flight<Option<Arc<Material>>>);

/// Everything a worker needs; shared by the pool, the planner loop and the poller.
pub struct Workers {
    pub kube: Kube,
    pub azure: Arc<AzureClient>,
    pub journal: Journal,
    pub shared: SharedState,
    pub settings: Arc<TlsSettings>,
    pub metrics: Arc<Metrics>,
    /// Notified when work is queued.
    pub wake: Arc<Notify>,
    /// Notified when an outcome changed (the status writer publishes it).
    pub reported: Arc<Notify>,
    version_flights: Mutex<HashMap<PollKey, Flight<()>>>,
    materials: Mutex<HashMap<MaterialKey, MaterialSlot>>,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers").finish_non_exhaustive()
    }
}

fn guard<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn time_of(t: jiff::Timestamp) -> Time {
    Time::from_millis(t.as_millisecond())
}

impl Workers {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kube: Kube,
        azure: Arc<AzureClient>,
        journal: Journal,
        shared: SharedState,
        settings: Arc<TlsSettings>,
        metrics: Arc<Metrics>,
        wake: Arc<Notify>,
        reported: Arc<Notify>,
    ) -> Self {
        Workers {
            kube,
            azure,
            journal,
            shared,
            settings,
            metrics,
            wake,
            reported,
            version_flights: Mutex::new(HashMap::new()),
            materials: Mutex::new(HashMap::new()),
        }
    }

    /// One worker: claims and carries out this controller's items until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            let Some(claimed) =
                crate::backoff::claim_next(&self.journal, super::KIND_PREFIX, LEASE, &self.wake, &mut stop).await
            else {
                continue;
            };
            let item = claimed.item;
            let lease = claimed.lease;
            let span =
                tracing::info_span!("tls.work", kind = %item.kind, listener = %item.key, attempt = item.attempts + 1);
            crate::telemetry::parents().adopt(&item.kind, &item.key, &span);
            self.work(item, lease).instrument(span).await;
        }
    }

    /// Runs one claimed item and records its outcome in the journal.
    async fn work(&self, item: routewarden_store::WorkItem, lease: routewarden_store::Lease) {
        let started = Instant::now();
        let result = match item.kind.as_str() {
            KIND_SYNC => self.sync_item(&item.key).await,
            KIND_REMOVE => self.remove_item(&item.key, &item.payload).await,
            other => Err(SyncError::terminal(Reason::InvalidInput, format!("unknown work kind {other:?}"))),
        };
        tracing::debug!(kind = %item.kind, key = %item.key, elapsed = ?started.elapsed(), ok = result.is_ok(), "work item done");
        let journal = self.journal.clone();
        let settings = self.settings.clone();
        let key = item.key.clone();
        let attempts = item.attempts;
        let finished = crate::telemetry::journal(move || {
            let now = Time::now();
            journal.commit(|tx| match &result {
                Ok(()) => tx.complete(lease, now).map(|_| ()),
                // A rejected version stays rejected: wait for a new one (or a changed listener).
                Err(e) if e.reason == Reason::ValidationFailed => tx.complete(lease, now).map(|_| ()),
                Err(e) => {
                    let at = now.plus(retry_delay(&settings, e, attempts));
                    tx.retry(lease, at, &format!("{}: {}", e.reason.as_str(), e.message), now).map(|_| ())
                }
            })
        })
        .await;
        match finished {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(key = %key, error = %e, "failed to record a work item's result"),
            Err(e) => tracing::error!(error = %e, "record task failed"),
        }
    }

    /// Brings one listener's objects to the plan.
    async fn sync_item(&self, key: &str) -> Result<(), SyncError> {
        let Some(key) = parse_key(key) else { return Ok(()) };
        let binding = lock(&self.shared).plan.bindings.get(&key).cloned();
        // Refused or removed since it was queued: the planner loop has dealt with it.
        let Some(binding) = binding else { return Ok(()) };
        let result = self.sync(&key, &binding).await;
        let outcome = match &result {
            Ok(o) => o.clone(),
            Err(e) => {
                self.metrics
                    .certificate_sync_errors
                    .get_or_create(&crate::metrics::ReasonLabels {
                        reason: e.check.unwrap_or(e.reason.as_str()).to_owned(),
                    })
                    .inc();
                Outcome::Failed {
                    reason: e.reason,
                    check: e.check,
                    message: e.message.clone(),
                    serving: self.serving_version(&key, &binding),
                    retrying: e.retryable,
                    attempted: e.version.clone(),
                }
            }
        };
        self.record(&key, outcome);
        result.map(|_| ())
    }

    /// Stores an outcome and wakes the status writer when it changed.
    pub fn record(&self, key: &CertBindingKey, outcome: Outcome) {
        let changed = {
            let mut s = lock(&self.shared);
            if outcome.is_ready() {
                s.synced_at.insert(key.clone(), Instant::now());
            }
            s.outcomes.insert(key.clone(), outcome.clone()).as_ref() != Some(&outcome)
        };
        let labels = ListenerLabels::from(key);
        self.metrics.certificate_ready.get_or_create(&labels).set(i64::from(outcome.is_ready()));
        if changed {
            self.reported.notify_one();
        }
    }

    fn serving_version(&self, key: &CertBindingKey, b: &Binding) -> Option<String> {
        self.kube.caches.secret(&key.namespace, &b.object_name).and_then(|s| {
            use kube::ResourceExt;
            s.annotations().get(labels::VERSION).cloned()
        })
    }

    async fn sync(&self, key: &CertBindingKey, b: &Binding) -> Result<Outcome, SyncError> {
        let Some(gw) = self.kube.caches.gateway(&key.namespace, &key.gateway) else {
            return Err(SyncError {
                retryable: true,
                ..SyncError::terminal(Reason::Unavailable, "Gateway not in cache yet")
            });
        };
        let owner = owner_reference(&gw)
            .ok_or_else(|| SyncError::terminal(Reason::InvalidInput, "the Gateway has no name or uid"))?;
        self.ensure_spc(key, b, &owner).await?;

        let pk = poll_key(b);
        let id = identity_key(&b.identity);
        let (version, known) = match &b.uri.version {
            Some(v) => (v.clone(), None),
            None => {
                let known = self.current_version(&pk, &id, false).await?;
                (known.version.clone(), Some(known))
            }
        };
        let existing = self.kube.caches.secret(&key.namespace, &b.object_name).map(|s| {
            use kube::ResourceExt;
            s.annotations().clone()
        });
        let serving = existing.as_ref().and_then(|a| a.get(labels::VERSION).cloned());
        if known.as_ref().is_some_and(|k| !k.enabled) {
            return Err(SyncError::terminal(
                Reason::VersionDisabled,
                format!(
                    "the newest version {version} of {}/certificates/{} is disabled in Key Vault{}",
                    b.uri.vault_url,
                    b.uri.name,
                    serving.as_deref().map(|s| format!("; still serving version {s}")).unwrap_or_default()
                ),
            ));
        }
        let current = existing.as_ref().is_some_and(|a| {
            a.get(labels::VERSION) == Some(&version)
                && a.get(labels::FORMAT) == Some(&self.settings.format())
                && a.get(labels::VAULT) == Some(&b.uri.vault_url)
                && a.get(labels::CERTIFICATE) == Some(&b.uri.name)
        });
        if current && let Some(a) = &existing {
            self.kube.set_certificate_ref(key, &b.object_name).await?;
            let not_after = a.get(labels::NOT_AFTER).and_then(|t| t.parse::<jiff::Timestamp>().ok());
            self.metrics
                .certificate_last_sync
                .get_or_create(&ListenerLabels::from(key))
                .set(Time::now().as_millis() / 1000);
            self.metrics.certificate_newer_version.get_or_create(&ListenerLabels::from(key)).set(0);
            let previous = lock(&self.shared).outcomes.get(key).cloned();
            return Ok(match previous {
                Some(o @ Outcome::Ready { .. }) if matches!(&o, Outcome::Ready { version: v, .. } if *v == version) => {
                    o
                }
                _ => Outcome::Ready {
                    version: version.clone(),
                    x5t: a.get(labels::X5T).cloned().unwrap_or_default(),
                    not_before: jiff::Timestamp::UNIX_EPOCH,
                    not_after: not_after.unwrap_or(jiff::Timestamp::UNIX_EPOCH),
                    warnings: Vec::new(),
                    pinned: b.uri.is_pinned(),
                },
            });
        }

        let material = self.material(&pk, &id, &version).await?;
        let now = jiff::Timestamp::now();
        let expect =
            Expectations { now, hostname: b.hostname.as_deref(), hostname_policy: self.settings.hostname_policy };
        let bundle = match assemble((*material).clone(), &expect) {
            Ok(bundle) => bundle,
            Err(CheckFailure { check, message }) => {
                let reason = format!("{}: {message}", check.reason());
                let subject = format!("{}/certificates/{}/{version}", b.uri.vault_url, b.uri.name);
                let event = NewEvent::new(Time::now(), "cert.rejected", subject, reason.clone());
                self.journal(key, b, &version, material.certs.first(), Some(reason), event).await;
                // Key Vault has a version the listener does not serve: the expiry alert must not
                // wait for a rotation that will not come, and the refusal has its own alert.
                let newer = serving.as_ref().is_some_and(|s| *s != version);
                self.metrics.certificate_newer_version.get_or_create(&ListenerLabels::from(key)).set(i64::from(newer));
                return Err(SyncError {
                    reason: Reason::ValidationFailed,
                    check: Some(check.reason()),
                    message: format!(
                        "version {version} of {}/certificates/{} was not used: {message}{}",
                        b.uri.vault_url,
                        b.uri.name,
                        serving.as_deref().map(|s| format!("; still serving version {s}")).unwrap_or_default()
                    ),
                    retryable: false,
                    retry_after: None,
                    version: Some(version.clone()),
                });
            }
        };
        let leaf = bundle.leaf().clone();
        let tls_key = bundle.tls_key(self.settings.key_format).map_err(|e| {
            SyncError::terminal(Reason::ValidationFailed, format!("the private key cannot be encoded: {e}"))
        })?;
        let annotations = BTreeMap::from([
            (labels::VAULT.to_owned(), b.uri.vault_url.clone()),
            (labels::CERTIFICATE.to_owned(), b.uri.name.clone()),
            (labels::VERSION.to_owned(), version.clone()),
            (labels::X5T.to_owned(), leaf.x5t()),
            (labels::NOT_AFTER.to_owned(), leaf.not_after.to_string()),
            (labels::FORMAT.to_owned(), self.settings.format()),
        ]);
        self.kube
            .write_secret(
                key,
                &b.object_name,
                &owner,
                &annotations,
                &bundle.tls_crt(self.settings.include_root),
                &tls_key,
            )
            .await?;
        drop(tls_key);
        self.kube.set_certificate_ref(key, &b.object_name).await?;

        let rotated = serving.as_ref().is_some_and(|s| *s != version);
        let labels_ = ListenerLabels::from(key);
        self.metrics.certificate_syncs.inc();
        if rotated {
            self.metrics.certificate_rotations.inc();
            self.metrics.certificate_last_rotation.get_or_create(&labels_).set(now.as_second());
        }
        self.metrics.certificate_newer_version.get_or_create(&labels_).set(0);
        self.metrics.certificate_not_after.get_or_create(&labels_).set(leaf.not_after.as_second());
        self.metrics.certificate_not_before.get_or_create(&labels_).set(leaf.not_before.as_second());
        self.metrics.certificate_last_sync.get_or_create(&labels_).set(now.as_second());
        self.metrics.set_info(key, &b.uri.vault_url, &b.uri.name, &version);
        let event = if rotated {
            let previous = serving.as_deref().unwrap_or("-");
            NewEvent::new(
                Time::now(),
                "cert.rotated",
                key.to_string(),
                format!("{} version {previous} → {version}", b.object_name),
            )
        } else {
            NewEvent::new(Time::now(), "cert.applied", key.to_string(), format!("{} version {version}", b.object_name))
        };
        self.journal(key, b, &version, Some(&leaf), None, event).await;
        tracing::info!(listener = %key, version = %version, rotated, "certificate synced");
        Ok(Outcome::Ready {
            version,
            x5t: leaf.x5t(),
            not_before: leaf.not_before,
            not_after: leaf.not_after,
            warnings: bundle.warnings.iter().map(|w| w.to_string()).collect(),
            pinned: b.uri.is_pinned(),
        })
    }

    async fn ensure_spc(&self, key: &CertBindingKey, b: &Binding, owner: &serde_json::Value) -> Result<(), SyncError> {
        if !self.kube.caches.spc_available.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(());
        }
        let spec = routewarden_planner::tls::secret_provider_class_spec(b, self.settings.cloud_name.as_deref());
        let cached = self
            .kube
            .caches
            .spcs
            .get(
                &kube::runtime::reflector::ObjectRef::new_with(&b.object_name, super::sources::spc_resource())
                    .within(&key.namespace),
            )
            .map(|o| o.data.get("spec").cloned());
        if cached.flatten().as_ref() == Some(&spec) {
            return Ok(());
        }
        Ok(self.kube.apply_spc(key, &b.object_name, owner, spec).await?)
    }

    /// The newest version of a polled certificate: from the poller's cache when it checked within
    /// the poll interval (or `force` is false and a concurrent request is answering), else one
    /// metadata request. Concurrent callers for one certificate share a single request.
    pub async fn current_version(
        &self,
        pk: &PollKey,
        id: &IdentityKey,
        force: bool,
    ) -> Result<KnownVersion, SyncError> {
        let flight = guard(&self.version_flights).entry(pk.clone()).or_default().clone();
        let asked = Instant::now();
        let _one = flight.lock().await;
        let fresh = lock(&self.shared).versions.get(pk).cloned().filter(|k| {
            if force { k.checked_at >= asked } else { k.checked_at.elapsed() < self.settings.poll_interval }
        });
        if let Some(known) = fresh {
            return Ok(known);
        }
        let known = self.fetch_version(pk, id).await?;
        lock(&self.shared).versions.insert(pk.clone(), known.clone());
        Ok(known)
    }

    async fn fetch_version(&self, pk: &PollKey, id: &IdentityKey) -> Result<KnownVersion, SyncError> {
        let denied = lock(&self.shared).certificate_metadata_denied.contains(pk);
        if !denied {
            match self.azure.certificate(id, &pk.vault_url, &pk.certificate, None).await {
                Ok(meta) => {
                    return Ok(KnownVersion {
                        version: meta.version,
                        x5t: Some(meta.x5t).filter(|x| !x.is_empty()),
                        enabled: meta.enabled,
                        checked_at: Instant::now(),
                    });
                }
                // Reading certificate metadata needs Key Vault Certificate User (or Reader); the
                // seed's identities have Secrets User only. The secret's versions are metadata too.
                Err(e) if e.kind == Kind::Forbidden => {
                    tracing::info!(vault = %pk.vault_url, certificate = %pk.certificate, identity = %format!("{}/{}", pk.identity.namespace, pk.identity.service_account), "certificate metadata is forbidden to this identity; watching the backing secret's versions instead");
                    lock(&self.shared).certificate_metadata_denied.insert(pk.clone());
                }
                Err(e) => return Err(e.into()),
            }
        }
        match self.azure.current_secret_version(id, &pk.vault_url, &pk.certificate).await? {
            Some(v) => {
                Ok(KnownVersion { version: v.version, x5t: None, enabled: v.enabled, checked_at: Instant::now() })
            }
            None => Err(SyncError::terminal(
                Reason::VersionDisabled,
                format!("{}/certificates/{} has no enabled version", pk.vault_url, pk.certificate),
            )),
        }
    }

    /// The decoded backing secret of one version; one download serves every listener that asks
    /// for the same version as the same identity within a minute.
    async fn material(&self, pk: &PollKey, id: &IdentityKey, version: &str) -> Result<Arc<Material>, SyncError> {
        let flight = {
            let mut cache = guard(&self.materials);
            cache.retain(|_, (at, _)| at.elapsed() < MATERIAL_TTL);
            cache.entry((pk.clone(), version.to_owned())).or_insert_with(|| (Instant::now(), Arc::default())).1.clone()
        };
        let mut slot = flight.lock().await;
        if let Some(m) = slot.as_ref() {
            return Ok(m.clone());
        }
        let secret = self.azure.certificate_secret(id, &pk.vault_url, &pk.certificate, version).await?;
        let material =
            decode_secret(&secret.value, ContentType::from_key_vault(secret.content_type.as_deref(), &secret.value))
                .map_err(|e| SyncError {
                    reason: Reason::ValidationFailed,
                    check: Some("Undecodable"),
                    message: format!("version {version} of {}/certificates/{}: {e}", pk.vault_url, pk.certificate),
                    retryable: false,
                    retry_after: None,
                    version: Some(version.to_owned()),
                })?;
        let material = Arc::new(material);
        *slot = Some(material.clone());
        Ok(material)
    }

    /// Journals what became of one version: applied (no `rejected` reason; the binding is
    /// recorded too) or rejected with its reason — metadata only, never key material.
    async fn journal(
        &self,
        key: &CertBindingKey,
        b: &Binding,
        version: &str,
        leaf: Option<&routewarden_certs::Cert>,
        rejected: Option<String>,
        event: NewEvent,
    ) {
        let journal = self.journal.clone();
        let key = key.clone();
        let binding = CertBinding {
            vault: b.uri.vault_url.clone(),
            object: b.uri.name.clone(),
            pinned_version: b.uri.version.clone(),
            identity: format!("{}/{}", b.identity.namespace, b.identity.service_account),
            updated_at: Time::now(),
        };
        let vkey =
            CertVersionKey { vault: b.uri.vault_url.clone(), object: b.uri.name.clone(), version: version.to_owned() };
        let x5t = leaf.map(|l| l.x5t()).unwrap_or_default();
        let (nb, na) = leaf.map(|l| (time_of(l.not_before), time_of(l.not_after))).unwrap_or((Time(0), Time(0)));
        let result = tokio::task::spawn_blocking(move || {
            let now = Time::now();
            journal.commit(|tx| {
                let applied = rejected.is_none();
                if applied {
                    tx.put_cert_binding(&key, &binding)?;
                }
                let seen_at = tx.cert_version(&vkey)?.map(|v| v.seen_at).unwrap_or(now);
                tx.put_cert_version(
                    &vkey,
                    &CertVersion {
                        x5t: x5t.clone(),
                        not_before: nb,
                        not_after: na,
                        seen_at,
                        applied_at: applied.then_some(now),
                        outcome: if applied { CertOutcome::Applied } else { CertOutcome::Rejected },
                        reason: rejected.clone(),
                    },
                )?;
                tx.append_event(event.clone())?;
                Ok(())
            })
        })
        .await;
        if let Ok(Err(e)) = result {
            tracing::warn!(error = %e, "failed to journal a certificate version");
        }
    }

    /// Removes what routewarden made for a listener that no longer asks for a certificate: first
    /// its certificateRef (so the listener never points at a Secret that is gone), then the
    /// Secret and the SecretProviderClass.
    async fn remove_item(&self, key: &str, payload: &[u8]) -> Result<(), SyncError> {
        let Some(key) = parse_key(key) else { return Ok(()) };
        let Ok(name) = String::from_utf8(payload.to_vec()) else { return Ok(()) };
        // Planned again meanwhile (options restored): the sync item owns it now.
        if lock(&self.shared).plan.bindings.get(&key).is_some_and(|b| b.object_name == name) {
            return Ok(());
        }
        self.kube.remove_certificate_ref(&key, &name).await?;
        self.kube.delete_owned(&key, &name).await?;
        let journal = self.journal.clone();
        let k = key.clone();
        let _ = tokio::task::spawn_blocking(move || {
            journal.commit(|tx| {
                tx.delete_cert_binding(&k)?;
                tx.append_event(NewEvent::new(Time::now(), "cert.removed", k.to_string(), format!("deleted {name}")))?;
                Ok(())
            })
        })
        .await;
        lock(&self.shared).outcomes.remove(&key);
        self.metrics.forget_listener(&key);
        self.reported.notify_one();
        tracing::info!(listener = %key, "certificate objects removed");
        Ok(())
    }
}

/// When to try a failed item again (see [`crate::backoff`]); failures that need the input to
/// change wait one poll interval.
pub fn retry_delay(settings: &TlsSettings, e: &SyncError, attempts: u32) -> Duration {
    let backoff = crate::backoff::Backoff {
        min: settings.min_backoff,
        max: settings.max_backoff,
        wait_for_input: settings.poll_interval,
    };
    backoff.delay(e.retryable, e.retry_after, attempts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> TlsSettings {
        TlsSettings {
            gateway_classes: vec![],
            poll_interval: Duration::from_secs(120),
            hostname_policy: Default::default(),
            include_root: false,
            key_format: routewarden_certs::KeyFormat::Pkcs8,
            workers: 1,
            key_vault_suffix: "vault.azure.net".into(),
            cloud_name: None,
            default_tenant: None,
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
        }
    }

    fn error(retryable: bool, retry_after: Option<Duration>) -> SyncError {
        SyncError { retryable, retry_after, ..SyncError::terminal(Reason::Unavailable, "x") }
    }

    #[test]
    fn transient_failures_back_off_with_jitter_within_bounds_and_honour_retry_after() {
        let s = settings();
        for attempt in 1..20 {
            let d = retry_delay(&s, &error(true, None), attempt);
            let ceiling = Duration::from_secs(1 << attempt.min(9)).min(Duration::from_secs(300));
            assert!(d <= ceiling * 2, "attempt {attempt}: {d:?} > {ceiling:?}");
        }
        // Jitter: the same attempt does not always wait the same time.
        let delays: std::collections::HashSet<Duration> =
            (0..20).map(|_| retry_delay(&s, &error(true, None), 4)).collect();
        assert!(delays.len() > 1, "{delays:?}");
        // Retry-After is a floor.
        assert!(retry_delay(&s, &error(true, Some(Duration::from_secs(90))), 1) >= Duration::from_secs(90));
        // Waiting for the input to change: one poll interval, no backoff growth.
        assert_eq!(retry_delay(&s, &error(false, None), 7), Duration::from_secs(120));
    }
}
