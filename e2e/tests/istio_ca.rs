//! Seed 004's Istio plug-in CA end to end: four Key Vault secrets become istiod's `cacerts`;
//! intermediate and root rotations (the article's two-step procedure) with istiod restarted only
//! when the trust bundle changes; and the sets that must never reach `cacerts` — half-updated,
//! a key of another certificate, an expired intermediate — each with its reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use routewarden::crd::istio::IstioPluginCa;
use routewarden_e2e::*;
use routewarden_sandbox::demo::istio_ca::{self, Authority, CaSet, NAMESPACE};
use std::collections::BTreeMap;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
const NAME: &str = "mesh-ca";

fn vault_url() -> String {
    format!("https://{}.vault.azure.net", seed000::VAULT)
}

/// The environment with the reader identity federated, the namespace, its ServiceAccount and
/// the istiod Deployments `istiods` (all labelled app=istiod).
async fn start(istiods: &[&str]) -> Env {
    let env = Env::start(Options::default()).await.unwrap();
    istio_ca::federate(&env.azure.admin()).unwrap();
    env.apply_yaml(&istio_ca::cluster_yaml(seed000::CLIENT_ID, istiods[0])).await.unwrap();
    for name in &istiods[1..] {
        env.apply_yaml(&istio_ca::istiod_yaml(name)).await.unwrap();
    }
    env
}

fn set_all(env: &Env, set: &CaSet) -> Vec<String> {
    istio_ca::set_secrets(&env.azure.admin(), seed000::VAULT, set).unwrap()
}

async fn apply_ca(env: &Env) {
    env.apply_yaml(&istio_ca::plugin_ca_yaml(NAME, &vault_url(), "  pollInterval: 1s\n")).await.unwrap();
}

/// `cacerts` in the target namespace: its files as text.
async fn cacerts(env: &Env) -> Option<BTreeMap<String, String>> {
    let s = env.secrets(NAMESPACE).get_opt("cacerts").await.ok()??;
    Some(s.data?.into_iter().map(|(k, v)| (k, String::from_utf8(v.0).unwrap())).collect())
}

fn files_of(set: &CaSet) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("root-cert.pem".to_owned(), set.root_cert.clone()),
        ("ca-cert.pem".to_owned(), set.ca_cert.clone()),
        ("ca-key.pem".to_owned(), set.ca_key.clone()),
        ("cert-chain.pem".to_owned(), set.cert_chain.clone()),
    ])
}

async fn plugin_ca(env: &Env) -> Option<IstioPluginCa> {
    Api::<IstioPluginCa>::all(env.client.clone()).get(NAME).await.ok()
}

/// The Ready condition: (status, reason, message, observedGeneration).
async fn ready(env: &Env) -> Option<(String, String, String, Option<i64>)> {
    let ca = plugin_ca(env).await?;
    let c = ca.status?.conditions.into_iter().find(|c| c.type_ == "Ready")?;
    Some((c.status, c.reason, c.message, c.observed_generation))
}

async fn wait_reason(env: &Env, reason: &str) -> (String, String, String, Option<i64>) {
    match wait_for(&format!("Ready reason {reason}"), WAIT, || async { ready(env).await.filter(|c| c.1 == reason) })
        .await
    {
        Ok(c) => c,
        Err(e) => panic!("{e}; Ready is {:?}", ready(env).await),
    }
}

/// Waits until `cacerts` holds exactly `set`.
async fn wait_synced(env: &Env, set: &CaSet) {
    let want = files_of(set);
    let found = wait_for("cacerts holding the set", WAIT, || async {
        let synced = ready(env).await.is_some_and(|c| c.1 == "Synced");
        cacerts(env).await.filter(|f| synced && *f == want)
    })
    .await;
    if let Err(e) = found {
        panic!("{e}; Ready is {:?}", ready(env).await);
    }
}

async fn restarted_at(env: &Env, deployment: &str) -> Option<String> {
    let d = Api::<Deployment>::namespaced(env.client.clone(), NAMESPACE).get(deployment).await.ok()?;
    d.spec?.template.metadata?.annotations?.get("kubectl.kubernetes.io/restartedAt").cloned()
}

async fn metric(env: &Env, series: &str) -> f64 {
    let admin = env.daemon.as_ref().unwrap().metrics.clone();
    let text = reqwest::get(format!("{admin}/metrics")).await.unwrap().text().await.unwrap();
    text.lines().find(|l| l.starts_with(series)).and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0.0)
}

async fn restarts(env: &Env) -> f64 {
    metric(env, &format!("routewarden_ca_istiod_restarts_total{{name=\"{NAME}\"}}")).await
}

/// Events on the IstioPluginCA, as (type, reason, message, how many times: the recorder folds a
/// repeat into a series).
async fn events(env: &Env) -> Vec<(String, String, String, i32)> {
    let api: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(env.client.clone(), "default");
    api.list(&Default::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.involved_object.kind.as_deref() == Some("IstioPluginCA"))
        .map(|e| {
            let count = e.series.as_ref().and_then(|s| s.count).or(e.count).unwrap_or(1);
            (e.type_.unwrap_or_default(), e.reason.unwrap_or_default(), e.message.unwrap_or_default(), count)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotations_reach_cacerts_and_restart_istiod_only_when_the_roots_change() {
    let env = start(&["istiod-asm-1-24", "istiod-asm-1-25"]).await;
    let root_a = Authority::root("Root A").unwrap();
    let a1 = root_a.intermediate("Intermediate CA - A1", false).unwrap();
    let first = CaSet::new(&[&root_a], &a1, &root_a);
    let versions = set_all(&env, &first);
    apply_ca(&env).await;

    // Initial sync: the four keys hold what Key Vault holds. istiod was already running without
    // cacerts (on a self-signed CA), so it is restarted once to pick the plug-in CA up.
    wait_synced(&env, &first).await;
    let ca = plugin_ca(&env).await.unwrap();
    let status = ca.status.clone().unwrap();
    assert_eq!(status.applied_versions.get("ca-key"), Some(&versions[2]));
    assert_eq!(status.root_fingerprints.len(), 1);
    assert_eq!(status.conditions[0].observed_generation, ca.metadata.generation);
    let secret = env.secrets(NAMESPACE).get("cacerts").await.unwrap();
    assert_eq!(secret.type_.as_deref(), Some("Opaque"));
    assert_eq!(secret.metadata.labels.unwrap()["app.kubernetes.io/managed-by"], "routewarden");
    wait_for("the restart for the new cacerts", WAIT, || async { (restarts(&env).await == 1.0).then_some(()) })
        .await
        .unwrap();
    let initial = restarted_at(&env, "istiod-asm-1-24").await.expect("istiod restarted once");
    assert!(initial.parse::<jiff::Timestamp>().is_ok(), "RFC 3339: {initial}");
    assert_eq!(metric(&env, &format!("routewarden_ca_trust_bundle_roots{{name=\"{NAME}\"}}")).await, 1.0);

    // Intermediate rotation under the same root: cacerts follows, istiod is not restarted.
    let a2 = root_a.intermediate("Intermediate CA - A2", false).unwrap();
    let second = CaSet::new(&[&root_a], &a2, &root_a);
    set_all(&env, &second);
    wait_synced(&env, &second).await;
    assert_eq!(restarts(&env).await, 1.0, "an intermediate-only change restarts nothing");
    assert_eq!(plugin_ca(&env).await.unwrap().status.unwrap().rotation.as_deref(), Some("None"));

    // Root rotation, step 1: root-cert = Root A + Root B, signing with B's intermediate.
    let root_b = Authority::root("Root B").unwrap();
    let b1 = root_b.intermediate("Intermediate CA - B1", false).unwrap();
    let both = CaSet::new(&[&root_a, &root_b], &b1, &root_b);
    set_all(&env, &both);
    wait_synced(&env, &both).await;
    wait_for("a restart for the added root", WAIT, || async { (restarts(&env).await == 2.0).then_some(()) })
        .await
        .unwrap();
    let status = plugin_ca(&env).await.unwrap().status.unwrap();
    assert_eq!((status.root_fingerprints.len(), status.rotation.as_deref()), (2, Some("RootsAdded")));
    for d in ["istiod-asm-1-24", "istiod-asm-1-25"] {
        let at = wait_for("restartedAt moved", WAIT, || async {
            restarted_at(&env, d).await.filter(|at| at.as_str() != initial.as_str())
        })
        .await
        .unwrap();
        assert!(at >= initial, "{d}: {at} < {initial}");
    }

    // Step 2: root-cert = Root B only.
    let only_b = CaSet::new(&[&root_b], &b1, &root_b);
    set_all(&env, &only_b);
    wait_synced(&env, &only_b).await;
    wait_for("a restart for the removed root", WAIT, || async { (restarts(&env).await == 3.0).then_some(()) })
        .await
        .unwrap();
    let status = plugin_ca(&env).await.unwrap().status.unwrap();
    assert_eq!((status.root_fingerprints.len(), status.rotation.as_deref()), (1, Some("RootsRemoved")));
    tokio::time::sleep(Duration::from_secs(3)).await; // three more polls: nothing else happens
    assert_eq!(restarts(&env).await, 3.0);

    let events = events(&env).await;
    let restarted: i32 = events.iter().filter(|e| e.1 == "IstiodRestarted").map(|e| e.3).sum();
    assert_eq!(restarted, 3, "{events:?}");
    assert!(events.iter().any(|e| e.1 == "Synced") && events.iter().any(|e| e.1 == "Updated"), "{events:?}");
    assert!(events.iter().all(|e| !e.2.contains("PRIVATE KEY")), "{events:?}");
    // The journal has every applied version and the restarts, never a key.
    let journal = reqwest::get(format!("{}/v1/journal/events", env.daemon.as_ref().unwrap().admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(journal.contains("ca.applied") && journal.contains("ca.istiod-restarted"), "{journal}");
    assert!(!journal.contains("PRIVATE KEY"));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_created_after_the_plugin_ca_is_used_within_seconds_not_at_the_next_poll() {
    let env = Env::start(Options::default()).await.unwrap();
    istio_ca::federate(&env.azure.admin()).unwrap();
    let root = Authority::root("Root A").unwrap();
    let a1 = root.intermediate("Intermediate CA - A1", false).unwrap();
    let set = CaSet::new(&[&root], &a1, &root);
    set_all(&env, &set);
    // The IstioPluginCA first, polling only every 10 minutes; its ServiceAccount does not exist.
    env.apply_yaml(&istio_ca::plugin_ca_yaml(NAME, &vault_url(), "  pollInterval: 10m\n")).await.unwrap();
    let (_, _, message, _) = wait_reason(&env, "IdentityInvalid").await;
    assert!(message.contains("does not exist"), "{message}");
    // Then the namespace, the ServiceAccount and istiod: synced well before the next poll.
    env.apply_yaml(&istio_ca::cluster_yaml(seed000::CLIENT_ID, "istiod")).await.unwrap();
    wait_synced(&env, &set).await;
    env.shutdown().await;
}

/// One istiod, and cacerts synced from Root A and Intermediate CA - A1.
async fn synced_once() -> (Env, Authority, CaSet) {
    let env = start(&["istiod"]).await;
    let root = Authority::root("Root A").unwrap();
    let a1 = root.intermediate("Intermediate CA - A1", false).unwrap();
    let first = CaSet::new(&[&root], &a1, &root);
    set_all(&env, &first);
    apply_ca(&env).await;
    wait_synced(&env, &first).await;
    (env, root, first)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_updated_set_waits_and_keeps_the_last_good_cacerts() {
    let (env, root, first) = synced_once().await;

    // Key Vault is updated one object at a time: only ca-cert so far.
    let a2 = root.intermediate("Intermediate CA - A2", false).unwrap();
    let second = CaSet::new(&[&root], &a2, &root);
    env.azure.admin().set_secret(seed000::VAULT, "ca-cert", &second.ca_cert).unwrap();
    let (status, _, message, _) = wait_reason(&env, "WaitingForConsistentSet").await;
    assert_eq!(status, "False");
    assert!(message.contains("waiting"), "{message}");
    assert_eq!(cacerts(&env).await.unwrap(), files_of(&first), "the last good cacerts stays");

    // The rest arrives: synced.
    env.azure.admin().set_secret(seed000::VAULT, "ca-key", &second.ca_key).unwrap();
    env.azure.admin().set_secret(seed000::VAULT, "cert-chain", &second.cert_chain).unwrap();
    wait_synced(&env, &second).await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_does_not_match_is_refused_after_the_grace_and_cacerts_is_unchanged() {
    let (env, root, first) = synced_once().await;

    let other = root.intermediate("Someone else", false).unwrap();
    env.azure.admin().set_secret(seed000::VAULT, "ca-key", &other.key_pem()).unwrap();
    // First it may be a set caught mid-update; after three intervals it is a mismatch.
    let (_, _, message, _) = wait_reason(&env, "KeyMismatch").await;
    assert!(message.contains("ca-key") && message.contains("Intermediate CA - A1"), "{message}");
    assert!(!message.contains("PRIVATE KEY"));
    assert_eq!(cacerts(&env).await.unwrap(), files_of(&first));
    assert!(metric(&env, "routewarden_ca_sync_failures_total{reason=\"KeyMismatch\"}").await >= 1.0);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_intermediate_is_refused_naming_the_certificate() {
    let env = start(&["istiod"]).await;
    let root = Authority::root("Root A").unwrap();
    let expired = root.intermediate("Intermediate CA - Old", true).unwrap();
    set_all(&env, &CaSet::new(&[&root], &expired, &root));
    apply_ca(&env).await;
    let (status, _, message, _) = wait_reason(&env, "Expired").await;
    assert_eq!(status, "False");
    assert!(message.contains("Intermediate CA - Old") && message.contains("expired"), "{message}");
    assert!(cacerts(&env).await.is_none(), "nothing is written");
    assert_eq!(restarts(&env).await, 0.0);
    env.shutdown().await;
}
