//! TLS planner table tests: seed 000's listeners get bindings; every bad input gets its own
//! reason naming the field, and never affects another listener.
#![allow(clippy::unwrap_used)]
use routewarden_planner::selector::Labels;
use routewarden_planner::tls::*;
use routewarden_store::CertBindingKey;
use std::time::Duration;

const URI: &str = "https://kv-demo.vault.azure.net/certificates/wildcard";
const CLIENT: &str = "11111111-2222-3333-4444-555555555555";

fn map(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn https(name: &str, options: &[(&str, &str)]) -> TlsListener {
    TlsListener {
        name: name.into(),
        hostname: Some(format!("{name}.contoso.com")),
        protocol: "HTTPS".into(),
        tls_mode: Some("Terminate".into()),
        options: map(options),
    }
}

fn seed_options() -> Vec<(&'static str, &'static str)> {
    vec![(OPTION_URI, URI), (OPTION_SERVICE_ACCOUNT, "approuting-demo-sa")]
}

fn gateway(ns: &str, name: &str, listeners: Vec<TlsListener>) -> TlsGateway {
    TlsGateway {
        namespace: ns.into(),
        name: name.into(),
        class: "approuting-istio".into(),
        annotations: Labels::new(),
        listeners,
    }
}

fn sa(ns: &str, name: &str, annotations: &[(&str, &str)]) -> ServiceAccount {
    ServiceAccount { namespace: ns.into(), name: name.into(), annotations: map(annotations) }
}

fn cfg() -> TlsConfig {
    TlsConfig { default_tenant: Some("tenant-0".into()), ..TlsConfig::default() }
}

fn key(ns: &str, gw: &str, l: &str) -> CertBindingKey {
    CertBindingKey { namespace: ns.into(), gateway: gw.into(), listener: l.into() }
}

#[test]
fn seed_000_listeners_get_bindings_named_like_the_operator_does() {
    let gateways = vec![
        gateway("app-a", "a-gateway", vec![https("https", &seed_options())]),
        gateway("app-b", "b-gateway", vec![https("https", &seed_options())]),
    ];
    let accounts = vec![
        sa("app-a", "approuting-demo-sa", &[(ANNOTATION_CLIENT_ID, CLIENT)]),
        sa("app-b", "approuting-demo-sa", &[(ANNOTATION_CLIENT_ID, CLIENT), (ANNOTATION_TENANT_ID, "tenant-b")]),
    ];
    let plan = plan(&gateways, &accounts, &cfg());
    assert!(plan.refused.is_empty(), "{:?}", plan.refused);
    let a = &plan.bindings[&key("app-a", "a-gateway", "https")];
    assert_eq!(a.object_name, "kv-gw-cert-a-gateway-https");
    assert_eq!((a.uri.vault.as_str(), a.uri.name.as_str(), a.uri.version.as_deref()), ("kv-demo", "wildcard", None));
    assert_eq!(
        a.identity,
        Identity {
            tenant_id: "tenant-0".into(),
            client_id: CLIENT.into(),
            namespace: "app-a".into(),
            service_account: "approuting-demo-sa".into()
        }
    );
    assert_eq!(
        plan.bindings[&key("app-b", "b-gateway", "https")].identity.tenant_id,
        "tenant-b",
        "the ServiceAccount's tenant wins"
    );
    // Two listeners, one certificate, two identities (one per namespace): two polls, not one per listener.
    assert_eq!(poll_groups(&plan).len(), 2);
}

#[test]
fn each_bad_listener_gets_its_own_reason_and_the_good_one_still_binds() {
    let accounts = vec![
        sa("app-a", "approuting-demo-sa", &[(ANNOTATION_CLIENT_ID, CLIENT)]),
        sa("app-a", "bare-sa", &[]),
        sa("app-b", "other-ns-sa", &[(ANNOTATION_CLIENT_ID, CLIENT)]),
    ];
    let cases: Vec<(&str, TlsListener, Reason, &str)> = vec![
        (
            "no URI",
            https("l1", &[(OPTION_SERVICE_ACCOUNT, "approuting-demo-sa")]),
            Reason::InvalidInput,
            "kubernetes.azure.com/tls-cert-keyvault-uri is missing",
        ),
        (
            "no ServiceAccount",
            https("l2", &[(OPTION_URI, URI)]),
            Reason::InvalidInput,
            "kubernetes.azure.com/tls-cert-service-account is missing",
        ),
        (
            "a secrets/ URI",
            https(
                "l3",
                &[
                    (OPTION_URI, "https://kv-demo.vault.azure.net/secrets/wildcard"),
                    (OPTION_SERVICE_ACCOUNT, "approuting-demo-sa"),
                ],
            ),
            Reason::InvalidInput,
            "points at secrets/",
        ),
        (
            "a foreign host",
            https(
                "l4",
                &[
                    (OPTION_URI, "https://kv-demo.evil.example/certificates/c"),
                    (OPTION_SERVICE_ACCOUNT, "approuting-demo-sa"),
                ],
            ),
            Reason::InvalidInput,
            "\"https://kv-demo.evil.example/certificates/c\"",
        ),
        (
            "a namespaced ServiceAccount reference",
            https("l5", &[(OPTION_URI, URI), (OPTION_SERVICE_ACCOUNT, "app-b/other-ns-sa")]),
            Reason::InvalidInput,
            "must be the name of a ServiceAccount in the Gateway's namespace",
        ),
        (
            "a ServiceAccount of another namespace",
            https("l6", &[(OPTION_URI, URI), (OPTION_SERVICE_ACCOUNT, "other-ns-sa")]),
            Reason::ServiceAccountNotFound,
            "app-a/other-ns-sa",
        ),
        (
            "a ServiceAccount without the client-id annotation",
            https("l7", &[(OPTION_URI, URI), (OPTION_SERVICE_ACCOUNT, "bare-sa")]),
            Reason::ServiceAccountNotAnnotated,
            "azure.workload.identity/client-id",
        ),
        (
            "passthrough",
            TlsListener { tls_mode: Some("Passthrough".into()), ..https("l8", &seed_options()) },
            Reason::InvalidInput,
            "tls.mode",
        ),
        (
            "plain HTTP",
            TlsListener { protocol: "HTTP".into(), ..https("l9", &seed_options()) },
            Reason::InvalidInput,
            "protocol",
        ),
    ];
    let mut listeners: Vec<TlsListener> = cases.iter().map(|(_, l, _, _)| l.clone()).collect();
    listeners.push(https("good", &seed_options()));
    let plan = plan(&[gateway("app-a", "gw", listeners)], &accounts, &cfg());
    for (what, l, reason, words) in &cases {
        let r = plan.refused.get(&key("app-a", "gw", &l.name)).unwrap_or_else(|| panic!("{what}: not refused"));
        assert_eq!(r.reason, *reason, "{what}: {}", r.message);
        assert!(r.message.contains(words), "{what}: {}", r.message);
        assert!(
            r.message.contains(&l.name) || r.message.contains("app-a/"),
            "{what}: the message names the listener: {}",
            r.message
        );
    }
    assert_eq!(plan.bindings.keys().map(|k| k.listener.as_str()).collect::<Vec<_>>(), ["good"]);
}

#[test]
fn no_tenant_anywhere_is_reported_on_the_service_account() {
    let plan = plan(
        &[gateway("app-a", "gw", vec![https("https", &seed_options())])],
        &[sa("app-a", "approuting-demo-sa", &[(ANNOTATION_CLIENT_ID, CLIENT)])],
        &TlsConfig::default(),
    );
    let r = &plan.refused[&key("app-a", "gw", "https")];
    assert_eq!(r.reason, Reason::ServiceAccountNotAnnotated);
    assert!(r.message.contains(ANNOTATION_TENANT_ID));
}

#[test]
fn listeners_without_the_options_and_unmanaged_classes_are_left_alone() {
    let plain = TlsListener { options: Labels::new(), ..https("plain", &[]) };
    let mut istio = gateway("app-a", "istio-gw", vec![https("https", &seed_options())]);
    istio.class = "istio".into();
    let plan = plan(&[gateway("app-a", "gw", vec![plain]), istio], &[], &cfg());
    assert_eq!(plan, TlsPlan::default());
}

#[test]
fn pinned_versions_bind_but_are_not_polled() {
    let pinned = format!("{URI}/0123456789abcdef0123456789abcdef");
    let plan = plan(
        &[gateway(
            "app-a",
            "gw",
            vec![https("https", &[(OPTION_URI, &pinned), (OPTION_SERVICE_ACCOUNT, "approuting-demo-sa")])],
        )],
        &[sa("app-a", "approuting-demo-sa", &[(ANNOTATION_CLIENT_ID, CLIENT)])],
        &cfg(),
    );
    assert!(plan.bindings[&key("app-a", "gw", "https")].uri.is_pinned());
    assert!(poll_groups(&plan).is_empty());
}

#[test]
fn listeners_sharing_a_certificate_and_identity_share_one_poll() {
    let listeners = (0..50).map(|i| https(&format!("l{i}"), &seed_options())).collect();
    let plan = plan(
        &[gateway("app-a", "gw", listeners)],
        &[sa("app-a", "approuting-demo-sa", &[(ANNOTATION_CLIENT_ID, CLIENT)])],
        &cfg(),
    );
    let groups = poll_groups(&plan);
    assert_eq!(groups.len(), 1);
    assert_eq!(groups.values().next().unwrap().len(), 50);
}

#[test]
fn the_poll_interval_annotation_overrides_per_gateway_and_bad_values_warn() {
    let accounts = [sa("app-a", "approuting-demo-sa", &[(ANNOTATION_CLIENT_ID, CLIENT)])];
    let mut fast = gateway("app-a", "fast", vec![https("https", &seed_options())]);
    fast.annotations = map(&[(ANNOTATION_POLL_INTERVAL, "30s")]);
    let mut bad = gateway("app-a", "bad", vec![https("https", &seed_options())]);
    bad.annotations = map(&[(ANNOTATION_POLL_INTERVAL, "1s")]);
    let plan = plan(&[fast, bad], &accounts, &cfg());
    assert_eq!(plan.bindings[&key("app-a", "fast", "https")].poll_interval, Some(Duration::from_secs(30)));
    assert_eq!(plan.bindings[&key("app-a", "bad", "https")].poll_interval, None);
    assert_eq!(plan.warnings.len(), 1);
    assert!(plan.warnings[0].1.contains("\"1s\""));
}

#[test]
fn long_names_are_shortened_deterministically_and_stay_distinct() {
    let gw = "g".repeat(200);
    let a = object_name(&gw, &"a".repeat(60));
    let b = object_name(&gw, &format!("{}b", "a".repeat(59)));
    assert!(a.len() <= MAX_NAME && b.len() <= MAX_NAME);
    assert_ne!(a, b, "distinct inputs stay distinct");
    assert_eq!(a, object_name(&gw, &"a".repeat(60)), "stable");
    assert!(a.starts_with("kv-gw-cert-ggg"));
    assert!(a.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
    assert_eq!(object_name("a-gateway", "https"), "kv-gw-cert-a-gateway-https", "short names are untouched");
    let s = shorten(&"x".repeat(30), 20);
    assert_eq!((s.len(), &s[..10]), (20, "xxxxxxxxx-"), "prefix, hyphen, 10 hex characters");
}

#[test]
fn the_secret_provider_class_matches_the_operators_shape_with_workload_identity() {
    let plan = plan(
        &[gateway("app-a", "a-gateway", vec![https("https", &seed_options())])],
        &[sa("app-a", "approuting-demo-sa", &[(ANNOTATION_CLIENT_ID, CLIENT)])],
        &cfg(),
    );
    let b = &plan.bindings[&key("app-a", "a-gateway", "https")];
    let spec = secret_provider_class_spec(b, None);
    assert_eq!(
        spec,
        serde_json::json!({
            "provider": "azure",
            "parameters": {
                "usePodIdentity": "false",
                "clientID": CLIENT,
                "keyvaultName": "kv-demo",
                "tenantId": "tenant-0",
                "objects": "{\"array\":[\"{\\\"objectName\\\":\\\"wildcard\\\",\\\"objectType\\\":\\\"secret\\\"}\"]}",
            },
            "secretObjects": [{
                "secretName": "kv-gw-cert-a-gateway-https",
                "type": "kubernetes.io/tls",
                "data": [{"objectName": "wildcard", "key": "tls.key"}, {"objectName": "wildcard", "key": "tls.crt"}],
            }],
        })
    );
    let mut pinned = b.clone();
    pinned.uri.version = Some("0123456789abcdef0123456789abcdef".into());
    let spec = secret_provider_class_spec(&pinned, Some("AzureChinaCloud"));
    assert_eq!(spec["parameters"]["cloudName"], "AzureChinaCloud");
    let objects: serde_json::Value = serde_json::from_str(spec["parameters"]["objects"].as_str().unwrap()).unwrap();
    let object: serde_json::Value = serde_json::from_str(objects["array"][0].as_str().unwrap()).unwrap();
    assert_eq!(object["objectVersion"], "0123456789abcdef0123456789abcdef");
}
