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
