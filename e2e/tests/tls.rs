//! Seed 000's TLS walkthrough end to end, and every way a listener can go wrong, each with its
//! own reason and without disturbing the other listeners.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use routewarden_e2e::*;
use std::time::Duration;

const NAMESPACES: &str = include_str!("../../sandbox/tests/data/seed000-namespaces.yaml");
const GATEWAYS: &str = include_str!("../../sandbox/tests/data/seed000-gateways.yaml");
const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_walkthrough_produces_the_seeds_objects() {
    let env = Env::start(Options::default()).await.unwrap();
    env.apply_yaml(NAMESPACES).await.unwrap();
    env.apply_yaml(GATEWAYS).await.unwrap();
    for (ns, gw) in [("app-a", "a-gateway"), ("app-b", "b-gateway")] {
        let name = format!("kv-gw-cert-{gw}-https");
        let secret = wait_for(&format!("Secret {ns}/{name}"), WAIT, || async {
            env.secrets(ns).get_opt(&name).await.ok().flatten()
        })
        .await
        .unwrap();
        assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
        let data = secret.data.as_ref().unwrap();
        assert!(data.contains_key("tls.crt") && data.contains_key("tls.key"));
        let (subject, sans, _) = leaf_of(&secret).unwrap();
        assert_eq!(subject, "CN=*.example.com");
        assert!(sans.contains(&"*.example.com".to_string()));
        let owner = &secret.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("Gateway", gw));

        let spc = env.spcs(ns).get(&name).await.unwrap();
        assert_eq!(spc.data["spec"]["provider"], "azure");
        assert_eq!(spc.data["spec"]["parameters"]["clientID"], seed000::CLIENT_ID);
        assert_eq!(spc.data["spec"]["parameters"]["keyvaultName"], seed000::VAULT);
        assert_eq!(spc.data["spec"]["secretObjects"][0]["secretName"], name.as_str());

        let refs = wait_for("certificateRefs", WAIT, || async {
            let gw = env.gateways(ns).get(gw).await.ok()?;
            let refs = gw.data["spec"]["listeners"][0]["tls"]["certificateRefs"].clone();
            refs.as_array().filter(|a| !a.is_empty()).cloned()
        })
        .await
        .unwrap();
        assert_eq!(refs, vec![serde_json::json!({"group": "", "kind": "Secret", "name": name})]);

        let (status, reason, message) = wait_for("condition", WAIT, || async {
            env.listener_condition(ns, gw, "https").await.filter(|c| c.0 == "True")
        })
        .await
        .unwrap();
        assert_eq!((status.as_str(), reason.as_str()), ("True", "Synced"), "{message}");
        let events = wait_for("Synced event", WAIT, || async {
            let e = env.gateway_events(ns, gw).await.ok()?;
            e.iter().any(|e| e.1 == "Synced").then_some(e)
        })
        .await
        .unwrap();
        assert_eq!(events.iter().filter(|e| e.1 == "Synced").count(), 1, "{events:?}");
    }
    env.shutdown().await;
}

/// A Gateway with one HTTPS listener per (name, uri, service account).
fn gateway(ns: &str, name: &str, listeners: &[(&str, &str, &str)]) -> String {
    let mut y = format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  gatewayClassName: approuting-istio\n  listeners:\n"
    );
    for (i, (l, uri, sa)) in listeners.iter().enumerate() {
        y.push_str(&format!(
            "  - name: {l}\n    hostname: {name}-{l}.example.com\n    port: {}\n    protocol: HTTPS\n    tls:\n      mode: Terminate\n      options:\n        kubernetes.azure.com/tls-cert-keyvault-uri: {uri}\n        kubernetes.azure.com/tls-cert-service-account: {sa}\n",
            443 + i
        ));
    }
    y
}

fn namespace(ns: &str, sa_annotations: &[(&str, &str)]) -> String {
    let mut y = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {}\n  namespace: {ns}\n  annotations:\n",
        seed000::SERVICE_ACCOUNT
    );
    for (k, v) in sa_annotations {
        y.push_str(&format!("    {k}: \"{v}\"\n"));
    }
    if sa_annotations.is_empty() {
        y.push_str("    note: none\n");
    }
    y
}

async fn secret_version(env: &Env, ns: &str, name: &str) -> Option<String> {
    let s = env.secrets(ns).get_opt(name).await.ok()??;
    s.metadata.annotations?.get("routewarden.io/certificate-version").cloned()
}

async fn wait_condition(env: &Env, ns: &str, gw: &str, listener: &str, reason: &str) -> (String, String, String) {
    let found = wait_for(&format!("{ns}/{gw}/{listener} reason {reason}"), WAIT, || async {
        env.listener_condition(ns, gw, listener).await.filter(|c| c.1 == reason)
    })
    .await;
    match found {
        Ok(c) => c,
        Err(e) => panic!("{e}; the condition is {:?}", env.listener_condition(ns, gw, listener).await),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_in_key_vault_reaches_the_secret_and_is_journaled() {
    let mut env = Env::start(Options::default()).await.unwrap();
    env.apply_yaml(NAMESPACES).await.unwrap();
    env.apply_yaml(GATEWAYS).await.unwrap();
    let name = "kv-gw-cert-a-gateway-https";
    let first = wait_for("first version", WAIT, || secret_version(&env, "app-a", name)).await.unwrap();
    let rotated = env.azure.admin().rotate_certificate(seed000::VAULT, seed000::CERTIFICATE).unwrap();
    assert_ne!(first, rotated);
    // The poll interval is 10 s: the new version arrives within one interval.
    for (ns, secret) in [("app-a", name), ("app-b", "kv-gw-cert-b-gateway-https")] {
        wait_for("rotated version", Duration::from_secs(25), || async {
            secret_version(&env, ns, secret).await.filter(|v| *v == rotated)
        })
        .await
        .unwrap();
    }
    wait_for("Rotated event", WAIT, || async {
        env.gateway_events("app-a", "a-gateway").await.ok()?.iter().any(|e| e.1 == "Rotated").then_some(())
    })
    .await
    .unwrap();
    let (_, _, message) = wait_condition(&env, "app-a", "a-gateway", "https", "Synced").await;
    assert!(message.contains(&rotated), "{message}");

    env.stop_daemon().await.unwrap();
    let journal = routewarden_store::testing::open_current(&env.journal_dir(), Default::default()).unwrap();
    let versions = journal.cert_versions().unwrap();
    for v in [&first, &rotated] {
        let (_, cv) = versions.iter().find(|(k, _)| &k.version == v).unwrap_or_else(|| panic!("{v} journaled"));
        assert_eq!(cv.outcome, routewarden_store::CertOutcome::Applied, "{v}");
        assert!(cv.applied_at.is_some() && cv.not_after.0 > 0 && cv.x5t.len() == 27, "{cv:?}");
        let text = format!("{cv:?}");
        assert!(!text.contains("PRIVATE KEY"), "no key material in the journal");
    }
    drop(journal);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_removal_deletion_rename_and_a_late_service_account() {
    let env = Env::start(Options::default()).await.unwrap();
    env.apply_yaml(NAMESPACES).await.unwrap();
    env.apply_yaml(GATEWAYS).await.unwrap();
    let a = "kv-gw-cert-a-gateway-https";
    wait_for("a synced", WAIT, || secret_version(&env, "app-a", a)).await.unwrap();
    wait_for("b synced", WAIT, || secret_version(&env, "app-b", "kv-gw-cert-b-gateway-https")).await.unwrap();

    // Options removed: our objects go, and so does the certificateRef we added.
    let without = GATEWAYS.split("---").next().unwrap().replace(
        "      options:\n        kubernetes.azure.com/tls-cert-keyvault-uri: https://kv-demo.vault.azure.net/certificates/approuting-demo-cert\n        kubernetes.azure.com/tls-cert-service-account: approuting-demo-sa\n",
        "",
    );
    assert!(!without.contains("options"), "{without}");
    env.apply_yaml(&without).await.unwrap();
    wait_for("a's objects removed", WAIT, || async {
        let secret = env.secrets("app-a").get_opt(a).await.ok()?;
        let spc = env.spcs("app-a").get_opt(a).await.ok()?;
        let gw = env.gateways("app-a").get("a-gateway").await.ok()?;
        let refs = gw.data.pointer("/spec/listeners/0/tls/certificateRefs").cloned();
        (secret.is_none() && spc.is_none() && refs.is_none()).then_some(())
    })
    .await
    .unwrap();
    wait_for("condition gone", WAIT, || async {
        env.listener_condition("app-a", "a-gateway", "https").await.is_none().then_some(())
    })
    .await
    .unwrap();

    // Gateway deleted: everything made for it goes.
    env.gateways("app-b").delete("b-gateway", &Default::default()).await.unwrap();
    wait_for("b's objects removed", WAIT, || async {
        let secret = env.secrets("app-b").get_opt("kv-gw-cert-b-gateway-https").await.ok()?;
        let spc = env.spcs("app-b").get_opt("kv-gw-cert-b-gateway-https").await.ok()?;
        (secret.is_none() && spc.is_none()).then_some(())
    })
    .await
    .unwrap();

    // Listener renamed: the old objects go, new ones come.
    let uri = seed_certificate_uri();
    env.apply_yaml(&gateway("app-a", "r", &[("one", &uri, seed000::SERVICE_ACCOUNT)])).await.unwrap();
    wait_for("r/one synced", WAIT, || secret_version(&env, "app-a", "kv-gw-cert-r-one")).await.unwrap();
    env.apply_yaml(&gateway("app-a", "r", &[("two", &uri, seed000::SERVICE_ACCOUNT)])).await.unwrap();
    wait_for("r/two synced, r/one gone", WAIT, || async {
        let two = secret_version(&env, "app-a", "kv-gw-cert-r-two").await;
        let one = env.secrets("app-a").get_opt("kv-gw-cert-r-one").await.ok()?;
        let spc = env.spcs("app-a").get_opt("kv-gw-cert-r-one").await.ok()?;
        (two.is_some() && one.is_none() && spc.is_none()).then_some(())
    })
    .await
    .unwrap();

    // A ServiceAccount created, then annotated, after its Gateway: retried at once each time,
    // not at the next poll (the interval is 10 s).
    env.azure
        .admin()
        .add_federated_credential(
            seed000::IDENTITY,
            "late",
            None,
            &format!("system:serviceaccount:late:{}", seed000::SERVICE_ACCOUNT),
            None,
        )
        .unwrap();
    env.apply_yaml("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: late\n").await.unwrap();
    env.apply_yaml(&gateway("late", "g", &[("https", &uri, seed000::SERVICE_ACCOUNT)])).await.unwrap();
    wait_condition(&env, "late", "g", "https", "ServiceAccountNotFound").await;
    env.apply_yaml(&namespace("late", &[])).await.unwrap();
    wait_condition(&env, "late", "g", "https", "ServiceAccountNotAnnotated").await;
    let annotated = std::time::Instant::now();
    env.apply_yaml(&namespace("late", &[("azure.workload.identity/client-id", seed000::CLIENT_ID)])).await.unwrap();
    wait_condition(&env, "late", "g", "https", "Synced").await;
    assert!(annotated.elapsed() < Duration::from_secs(5), "synced {:?} after the annotation", annotated.elapsed());
    env.shutdown().await;
}
