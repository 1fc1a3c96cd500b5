//! Seed 000's TLS walkthrough end to end, and every way a listener can go wrong, each with its
//! own reason and without disturbing the other listeners.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use routewarden_e2e::*;
use routewarden_sandbox_azure::Scenario;
use std::time::Duration;

use routewarden_sandbox::demo::{GATEWAYS_YAML as GATEWAYS, NAMESPACES_YAML as NAMESPACES};
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

    // What `routewarden-sandbox demo` prints: every listener found complete.
    let report = routewarden_sandbox::demo::wait_and_report(&env.client, WAIT).await.unwrap();
    assert!(report.missing().is_empty(), "{report}");
    let shown = report.to_string();
    assert!(shown.contains("kv-gw-cert-a-gateway-https") && shown.contains("CN=*.example.com"), "{shown}");

    // Metrics: expiry, readiness and the version served, per listener; nothing secret.
    let admin = env.daemon.as_ref().unwrap().admin.clone();
    let metrics = reqwest::get(format!("{admin}/metrics")).await.unwrap().text().await.unwrap();
    let not_after = metrics
        .lines()
        .find(|l| {
            l.starts_with("routewarden_certificate_not_after_timestamp_seconds{")
                && l.contains("namespace=\"app-a\"")
                && l.contains("gateway=\"a-gateway\"")
        })
        .unwrap_or_else(|| panic!("{metrics}"));
    let value: i64 = not_after.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(value > jiff::Timestamp::now().as_second(), "{not_after}");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("routewarden_certificate_ready{") && l.contains("b-gateway") && l.ends_with(" 1")),
        "{metrics}"
    );
    assert!(
        metrics.contains("routewarden_certificate_info{") && metrics.contains("certificate=\"approuting-demo-cert\""),
        "{metrics}"
    );
    assert!(!metrics.contains("PRIVATE KEY"));
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
    wait_for("the condition names the new version", WAIT, || async {
        env.listener_condition("app-a", "a-gateway", "https")
            .await
            .filter(|c| c.1 == "Synced" && c.2.contains(&rotated))
    })
    .await
    .unwrap();

    env.stop_daemon().await.unwrap();
    let journal = routewarden_store::testing::open_current(&env.journal_dir(), Default::default()).unwrap();
    let versions = journal.cert_versions().unwrap();
    for v in [&first, &rotated] {
        let (_, cv) = versions.iter().find(|(k, _)| &k.version == v).unwrap_or_else(|| panic!("{v} journaled"));
        assert_eq!(cv.outcome, routewarden_store::CertOutcome::Applied, "{v}");
        assert!(cv.applied_at.is_some() && cv.not_after.0 > 0 && cv.x5t.len() == 27, "{cv:?}");
    }
    // No key material anywhere in the journal: not the PEM, not the base64 the Secret holds.
    let key_b64 = {
        let s = env.secrets("app-a").get(name).await.unwrap();
        let pem = String::from_utf8(s.data.unwrap()["tls.key"].0.clone()).unwrap();
        pem.lines().nth(2).unwrap().to_owned()
    };
    let dump = format!("{:?}", journal.dump().unwrap());
    let raw: Vec<u8> = journal.dump().unwrap().iter().flat_map(|e| e.value.clone()).collect();
    assert!(!dump.contains("PRIVATE KEY") && !dump.contains(&key_b64));
    assert!(!raw.windows(key_b64.len()).any(|w| w == key_b64.as_bytes()));
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

/// PEM of a certificate for `*.example.com` and a key: expired, or with a key of its own.
fn bad_pem(expired: bool) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["*.example.com".to_string()]).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "*.example.com");
    if expired {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let cert = params.self_signed(&key).unwrap();
    let served_key = if expired { key } else { rcgen::KeyPair::generate().unwrap() };
    format!("{}{}", served_key.serialize_pem(), cert.pem())
}

fn failure_scenario() -> Scenario {
    use routewarden_sandbox_azure::scenario::*;
    let mut s = Scenario::seed000();
    let rg = &mut s.tenants[0].subscriptions[0].resource_groups[0];
    let fic = |sa: &str| FederatedCredentialSpec {
        name: format!("fail-{sa}"),
        issuer: None,
        subject: format!("system:serviceaccount:fail:{sa}"),
        audiences: vec!["api://AzureADTokenExchange".into()],
    };
    rg.identities[0].federated_credentials.push(fic(seed000::SERVICE_ACCOUNT));
    rg.identities.push(IdentitySpec {
        name: "no-access".into(),
        client_id: "00000000-0000-0000-0000-0000000000cc".into(),
        principal_id: "00000000-0000-0000-0000-0000000000cd".into(),
        federated_credentials: vec![fic("no-access-sa")],
    });
    let vault = &mut rg.vaults[0];
    let mut pinned = vault.certificates[0].clone();
    pinned.name = "pinned-cert".into();
    vault.certificates.push(pinned);
    for (name, expired) in [("expired-cert", true), ("mismatched-cert", false)] {
        vault.secrets.push(SecretSpec {
            name: name.into(),
            value: bad_pem(expired),
            content_type: Some("application/x-pem-file".into()),
        });
    }
    s
}

const FAILURE_ACCOUNTS: &str = "\
apiVersion: v1
kind: Namespace
metadata:
  name: fail
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: approuting-demo-sa
  namespace: fail
  annotations:
    azure.workload.identity/client-id: 00000000-0000-0000-0000-0000000000aa
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: plain-sa
  namespace: fail
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: no-fic-sa
  namespace: fail
  annotations:
    azure.workload.identity/client-id: 00000000-0000-0000-0000-0000000000aa
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: no-access-sa
  namespace: fail
  annotations:
    azure.workload.identity/client-id: 00000000-0000-0000-0000-0000000000cc
---
apiVersion: v1
kind: Secret
metadata:
  name: kv-gw-cert-broken-conflict
  namespace: fail
type: Opaque
stringData:
  mine: do not touch
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failure_has_its_own_reason_and_leaves_other_listeners_working() {
    let env = Env::start(Options { scenario: Some(failure_scenario()), ..Options::default() }).await.unwrap();
    let vault = format!("https://{}.vault.azure.net", seed000::VAULT);
    let disabled = env.azure.admin().rotate_certificate(seed000::VAULT, "pinned-cert").unwrap();
    env.azure.admin().set_version_enabled(seed000::VAULT, "pinned-cert", &disabled, false).unwrap();
    let pinned = env.azure.admin().rotate_certificate(seed000::VAULT, "pinned-cert").unwrap();
    env.apply_yaml(FAILURE_ACCOUNTS).await.unwrap();
    let seed = seed_certificate_uri();
    let sa = seed000::SERVICE_ACCOUNT;
    let cases: Vec<(&str, String, &str, &str)> = vec![
        ("other-namespace", seed.clone(), "app-a/approuting-demo-sa", "InvalidInput"),
        ("not-a-certificate", format!("{vault}/secrets/{}", seed000::CERTIFICATE), sa, "InvalidInput"),
        ("no-account", seed.clone(), "missing-sa", "ServiceAccountNotFound"),
        ("unannotated", seed.clone(), "plain-sa", "ServiceAccountNotAnnotated"),
        ("no-fic", seed.clone(), "no-fic-sa", "AuthenticationFailed"),
        ("no-role", seed.clone(), "no-access-sa", "Forbidden"),
        ("missing", format!("{vault}/certificates/does-not-exist"), sa, "CertificateNotFound"),
        ("disabled", format!("{vault}/certificates/pinned-cert/{disabled}"), sa, "VersionDisabled"),
        ("expired", format!("{vault}/certificates/expired-cert"), sa, "Expired"),
        ("mismatch", format!("{vault}/certificates/mismatched-cert"), sa, "KeyMismatch"),
        ("conflict", seed.clone(), sa, "SecretConflict"),
        ("good", seed.clone(), sa, "Synced"),
        ("pinned", format!("{vault}/certificates/pinned-cert/{pinned}"), sa, "Synced"),
    ];
    let listeners: Vec<(&str, &str, &str)> = cases.iter().map(|(l, uri, sa, _)| (*l, uri.as_str(), *sa)).collect();
    env.apply_yaml(&gateway("fail", "broken", &listeners)).await.unwrap();
    // A Gateway of its own next to the broken one is not held up either.
    env.apply_yaml(&gateway("fail", "neighbour", &[("https", &seed, sa)])).await.unwrap();

    for (listener, _, _, reason) in &cases {
        let (status, _, message) = wait_condition(&env, "fail", "broken", listener, reason).await;
        assert_eq!(status == "True", *reason == "Synced", "{listener}: {message}");
        assert!(!message.contains("PRIVATE KEY"), "{listener}: {message}");
    }
    wait_condition(&env, "fail", "neighbour", "https", "Synced").await;
    // A pinned version says so.
    let (_, _, message) = wait_condition(&env, "fail", "broken", "pinned", "Synced").await;
    assert!(message.contains(&pinned) && message.contains("pins this version"), "{message}");
    // Refusals quote the value they refuse.
    let (_, _, message) = wait_condition(&env, "fail", "broken", "not-a-certificate", "InvalidInput").await;
    assert!(message.contains("/secrets/"), "{message}");

    // The foreign Secret is untouched; failed listeners got no Secret; the good one did.
    let foreign = env.secrets("fail").get("kv-gw-cert-broken-conflict").await.unwrap();
    assert_eq!(foreign.type_.as_deref(), Some("Opaque"));
    assert!(foreign.metadata.labels.unwrap_or_default().is_empty());
    for (listener, _, _, reason) in &cases {
        let secret = env.secrets("fail").get_opt(&format!("kv-gw-cert-broken-{listener}")).await.unwrap();
        match *reason {
            "Synced" => assert!(secret.is_some(), "{listener}"),
            "SecretConflict" => {}
            _ => assert!(secret.is_none(), "{listener} has no Secret"),
        }
    }
    // One Warning per broken listener, not one per retry; validation failures say which check.
    let events = env.gateway_events("fail", "broken").await.unwrap();
    for (listener, _, _, reason) in &cases {
        let event_reason = match *reason {
            "Expired" | "KeyMismatch" => "ValidationFailed",
            r => r,
        };
        let mine: Vec<_> = events.iter().filter(|e| e.2.contains(&format!("listener \"{listener}\""))).collect();
        assert_eq!(mine.len(), 1, "{listener}: {mine:?}");
        assert_eq!(mine[0].1, event_reason, "{listener}: {mine:?}");
        assert_eq!(mine[0].0 == "Normal", *reason == "Synced", "{listener}: {mine:?}");
    }
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_nothing_changed_downloads_and_writes_nothing() {
    let mut env = Env::start(Options::default()).await.unwrap();
    env.apply_yaml(NAMESPACES).await.unwrap();
    env.apply_yaml(GATEWAYS).await.unwrap();
    for ns in ["app-a", "app-b"] {
        let gw = if ns == "app-a" { "a-gateway" } else { "b-gateway" };
        wait_condition(&env, ns, gw, "https", "Synced").await;
    }
    async fn observed(env: &Env) -> (String, String, usize) {
        (
            env.secrets("app-a").get("kv-gw-cert-a-gateway-https").await.unwrap().metadata.resource_version.unwrap(),
            env.gateways("app-a").get("a-gateway").await.unwrap().metadata.resource_version.unwrap(),
            env.gateway_events("app-a", "a-gateway").await.unwrap().len(),
        )
    }
    let before = observed(&env).await;
    let downloaded = env.azure.calls().get("keyvault", "GetSecret", 200);
    assert_eq!(downloaded, 2, "one download per (version, identity): app-a's and app-b's");

    env.stop_daemon().await.unwrap();
    env.start_daemon().await.unwrap();
    // The restarted daemon checks each certificate once (metadata) and finds everything current.
    let metadata = || env.azure.calls().get("keyvault", "GetSecretVersions", 200);
    let checked = metadata();
    wait_for("the restarted daemon's checks", WAIT, || async { (metadata() >= checked + 2).then_some(()) })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = observed(&env).await;
    assert_eq!(
        before,
        after,
        "no Secret, Gateway or Event written after a restart with nothing changed: {:?} {:?}",
        env.gateway_events("app-a", "a-gateway").await.unwrap(),
        env.listener_condition("app-a", "a-gateway", "https").await
    );
    assert_eq!(env.azure.calls().get("keyvault", "GetSecret", 200), downloaded, "nothing downloaded again");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_server_errors_are_retried_until_every_listener_is_synced() {
    let env = Env::start(Options::default()).await.unwrap();
    let mut faults = env.azure.admin().faults();
    faults.faults.push(routewarden_sandbox_azure::FaultRule {
        service: Some("keyvault".into()),
        error_500: 0.2,
        error_503: 0.2,
        ..Default::default()
    });
    // A vault that takes one request per second: the daemon's first burst (challenge, metadata,
    // download) is certainly throttled, and it must pace itself by Retry-After.
    faults.rate_limits.key_vault_all = routewarden_sandbox_azure::Bucket { limit: 1, period_seconds: 1.0 };
    env.azure.admin().set_faults(faults);
    env.apply_yaml(NAMESPACES).await.unwrap();
    let uri = seed_certificate_uri();
    for i in 0..6 {
        env.apply_yaml(&gateway("app-a", &format!("g{i}"), &[("https", &uri, seed000::SERVICE_ACCOUNT)]))
            .await
            .unwrap();
    }
    for i in 0..6 {
        let gw = format!("g{i}");
        wait_for(&format!("{gw} synced"), Duration::from_secs(60), || async {
            env.listener_condition("app-a", &gw, "https").await.filter(|c| c.1 == "Synced")
        })
        .await
        .unwrap();
    }
    let calls = env.azure.calls();
    let throttled: u64 =
        ["GetSecretVersions", "GetSecret", "GetCertificate"].iter().map(|op| calls.get("keyvault", op, 429)).sum();
    let failed: u64 = ["GetSecretVersions", "GetSecret"]
        .iter()
        .map(|op| calls.get("keyvault", op, 500) + calls.get("keyvault", op, 503))
        .sum();
    assert!(throttled + failed > 0, "the faults were exercised");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_secret_provider_class_crd_listeners_still_get_their_secrets() {
    let mut env = Env::start(Options { daemon: false, ..Options::default() }).await.unwrap();
    let crds: kube::Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        kube::Api::all(env.client.clone());
    crds.delete("secretproviderclasses.secrets-store.csi.x-k8s.io", &Default::default()).await.unwrap();
    wait_for("the CRD is gone", WAIT, || async {
        crds.get_opt("secretproviderclasses.secrets-store.csi.x-k8s.io").await.ok()?.is_none().then_some(())
    })
    .await
    .unwrap();
    env.start_daemon().await.unwrap();
    env.apply_yaml(NAMESPACES).await.unwrap();
    env.apply_yaml(GATEWAYS).await.unwrap();
    wait_for("a's Secret", WAIT, || secret_version(&env, "app-a", "kv-gw-cert-a-gateway-https")).await.unwrap();
    wait_condition(&env, "app-a", "a-gateway", "https", "Synced").await;
    env.shutdown().await;
}
