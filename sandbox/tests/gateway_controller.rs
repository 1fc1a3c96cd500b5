//! The Gateway controller stand-in seen through kube-rs: addresses from the pool, Accepted and
//! Programmed with observedGeneration, withheld addresses, route status.parents following the
//! attachment rules, attachedRoutes, and Ingress load-balancer addresses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use routewarden_sandbox::kube::KubeServerOptions;
use serde_json::{Value, json};

fn api(client: &kube::Client, ns: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", kind), plural);
    Api::namespaced_with(client.clone(), ns, &ar)
}

fn condition(obj: &Value, type_: &str) -> Value {
    obj.get("conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .cloned()
        .unwrap_or(Value::Null)
}

async fn create(api: &Api<DynamicObject>, obj: Value) {
    api.create(&PostParams::default(), &serde_json::from_value(obj).unwrap()).await.unwrap();
}

fn gateway(name: &str, hostname: &str, from: &str) -> Value {
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": name},
           "spec": {"gatewayClassName": "approuting-istio", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP", "hostname": hostname, "allowedRoutes": {"namespaces": {"from": from}}}]}})
}

#[tokio::test]
async fn gateways_get_pool_addresses_and_programmed_conditions_for_their_generation() {
    let options = KubeServerOptions {
        gateway_addresses: vec!["198.51.100.7".into(), "2001:db8::7".into()],
        ..KubeServerOptions::default()
    };
    let server = common::server_with(options).await;
    let client = server.client().await.unwrap();
    let gws = api(&client, "default", "Gateway", "gateways");
    create(&gws, gateway("one", "one.example.com", "Same")).await;
    create(&gws, gateway("two", "two.example.com", "Same")).await;
    let mut unmanaged = gateway("three", "three.example.com", "Same");
    unmanaged["spec"]["gatewayClassName"] = json!("someone-else");
    create(&gws, unmanaged).await;

    common::eventually("both gateways are programmed", || async {
        let mut programmed = true;
        for name in ["one", "two"] {
            programmed &= condition(&gws.get(name).await.unwrap().data["status"], "Programmed")["status"] == "True";
        }
        programmed
    })
    .await;
    let one = gws.get("one").await.unwrap().data;
    let two = gws.get("two").await.unwrap().data;
    let mut addresses = vec![one["status"]["addresses"][0].clone(), two["status"]["addresses"][0].clone()];
    addresses.sort_by_key(|a| a["value"].as_str().unwrap().to_string());
    assert_eq!(
        addresses,
        vec![
            json!({"type": "IPAddress", "value": "198.51.100.7"}),
            json!({"type": "IPAddress", "value": "2001:db8::7"})
        ]
    );
    assert_eq!(condition(&one["status"]["listeners"][0], "Programmed")["status"], "True");
    assert!(gws.get("three").await.unwrap().data.get("status").is_none(), "other classes are left alone");

    gws.patch(
        "one",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"listeners": [{"name": "http", "port": 8080, "protocol": "HTTP"}]}})),
    )
    .await
    .unwrap();
    common::eventually("conditions observe generation 2", || async {
        let one = gws.get("one").await.unwrap().data;
        condition(&one["status"], "Programmed")["observedGeneration"] == 2
    })
    .await;
    let address_after = gws.get("one").await.unwrap().data["status"]["addresses"].clone();
    assert_eq!(address_after[0], one["status"]["addresses"][0], "a Gateway keeps its address");

    server.gateway_controller().withhold_address("default", "one");
    common::eventually("the withheld gateway loses its address", || async {
        let one = gws.get("one").await.unwrap().data;
        one["status"].get("addresses").is_none()
            && condition(&one["status"], "Programmed")["reason"] == "AddressNotAssigned"
    })
    .await;
    server.gateway_controller().restore_address("default", "one");
    common::eventually("the address comes back", || async {
        gws.get("one").await.unwrap().data["status"]["addresses"] == address_after
    })
    .await;
}

#[tokio::test]
async fn routes_get_parent_status_following_attachment_rules() {
    let server = common::server().await;
    let client = server.client().await.unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "other"}})).unwrap())
        .await
        .unwrap();
    create(&api(&client, "default", "Gateway", "gateways"), gateway("gw", "*.example.com", "Same")).await;
    let route = |name: &str, host: &str| {
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": name},
               "spec": {"parentRefs": [{"name": "gw", "namespace": "default"}], "hostnames": [host]}})
    };
    let local = api(&client, "default", "HTTPRoute", "httproutes");
    let foreign = api(&client, "other", "HTTPRoute", "httproutes");
    create(&local, route("ok", "www.example.com")).await;
    create(&local, route("wrong-host", "www.example.org")).await;
    create(&foreign, route("cross-namespace", "www.example.com")).await;
    let grpc = api(&client, "default", "GRPCRoute", "grpcroutes");
    create(&grpc, json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute", "metadata": {"name": "rpc"}, "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["rpc.example.com"]}})).await;

    let accepted = |obj: &DynamicObject| condition(&obj.data["status"]["parents"][0], "Accepted");
    common::eventually("every route has parent status", || async {
        !accepted(&local.get("ok").await.unwrap()).is_null()
            && !accepted(&foreign.get("cross-namespace").await.unwrap()).is_null()
            && !accepted(&local.get("wrong-host").await.unwrap()).is_null()
    })
    .await;
    assert_eq!(accepted(&local.get("ok").await.unwrap())["status"], "True");
    assert_eq!(accepted(&local.get("wrong-host").await.unwrap())["reason"], "NoMatchingListenerHostname");
    assert_eq!(accepted(&foreign.get("cross-namespace").await.unwrap())["reason"], "NotAllowedByListeners");
    let parent = local.get("ok").await.unwrap().data["status"]["parents"][0].clone();
    assert_eq!(parent["controllerName"], "approuting.kubernetes.azure.com/gateway-controller");
    assert_eq!(parent["parentRef"]["name"], "gw");
    common::eventually("the listener counts two attached routes (HTTPRoute ok + GRPCRoute rpc)", || async {
        api(&client, "default", "Gateway", "gateways").get("gw").await.unwrap().data["status"]["listeners"][0]["attachedRoutes"] == 2
    })
    .await;
}

#[tokio::test]
async fn ingresses_of_the_sandbox_class_get_a_load_balancer_address() {
    let server = common::server().await;
    let ingresses: Api<Ingress> = Api::namespaced(server.client().await.unwrap(), "default");
    let ingress = |name: &str, class: &str| -> Ingress {
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"ingressClassName": class, "rules": [{"host": "web.example.com"}]}})).unwrap()
    };
    ingresses.create(&PostParams::default(), &ingress("ours", "webapprouting.kubernetes.azure.com")).await.unwrap();
    ingresses.create(&PostParams::default(), &ingress("theirs", "nginx")).await.unwrap();
    common::eventually("the sandbox-class ingress gets an IP", || async {
        ingresses
            .get("ours")
            .await
            .unwrap()
            .status
            .and_then(|s| s.load_balancer)
            .and_then(|lb| lb.ingress)
            .is_some_and(|i| i[0].ip.as_deref() == Some("203.0.113.10"))
    })
    .await;
    assert!(
        ingresses.get("theirs").await.unwrap().status.and_then(|s| s.load_balancer).and_then(|lb| lb.ingress).is_none()
    );
}

#[tokio::test]
async fn route_backends_resolve_once_their_service_exists() {
    use k8s_openapi::api::core::v1::Service;
    let server = common::server().await;
    let client = server.client().await.unwrap();
    create(&api(&client, "default", "Gateway", "gateways"), gateway("gw", "*.example.com", "Same")).await;
    let routes = api(&client, "default", "HTTPRoute", "httproutes");
    create(&routes, json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "r"},
        "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["www.example.com"], "rules": [{"backendRefs": [{"name": "httpbin", "port": 8000}]}]}})).await;
    let resolved = || async { condition(&routes.get("r").await.unwrap().data["status"]["parents"][0], "ResolvedRefs") };
    common::eventually("the missing Service is reported", || async { resolved().await["reason"] == "BackendNotFound" })
        .await;
    assert_eq!(condition(&routes.get("r").await.unwrap().data["status"]["parents"][0], "Accepted")["status"], "True");
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let svc: Service = serde_json::from_value(
        json!({"metadata": {"name": "httpbin"}, "spec": {"ports": [{"name": "http", "port": 8000}]}}),
    )
    .unwrap();
    services.create(&PostParams::default(), &svc).await.unwrap();
    common::eventually("the route resolves", || async { resolved().await["status"] == "True" }).await;
    let patched = services
        .patch(
            "httpbin",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"ports": [{"name": "https", "port": 8443}]}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.spec.unwrap().ports.unwrap().len(), 2, "Service ports merge by port");
}

#[tokio::test]
async fn a_restarted_sandbox_keeps_gateway_addresses_and_reuses_freed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let options = || KubeServerOptions { state_dir: Some(dir.path().to_path_buf()), ..KubeServerOptions::default() };
    let address = |obj: &DynamicObject| obj.data["status"]["addresses"][0]["value"].as_str().map(str::to_string);
    let first = common::server_with(options()).await;
    let gws = api(&first.client().await.unwrap(), "default", "Gateway", "gateways");
    create(&gws, gateway("g1", "one.example.com", "Same")).await;
    common::eventually("g1 has an address", || async { address(&gws.get("g1").await.unwrap()).is_some() }).await;
    create(&gws, gateway("g2", "two.example.com", "Same")).await;
    common::eventually("g2 has an address", || async { address(&gws.get("g2").await.unwrap()).is_some() }).await;
    let g2_address = address(&gws.get("g2").await.unwrap());
    assert_eq!(g2_address.as_deref(), Some("203.0.113.11"));
    gws.delete("g1", &Default::default()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    first.shutdown().await;

    let second = common::server_with(options()).await;
    let gws = api(&second.client().await.unwrap(), "default", "Gateway", "gateways");
    create(&gws, gateway("g3", "three.example.com", "Same")).await;
    common::eventually("g3 has an address", || async { address(&gws.get("g3").await.unwrap()).is_some() }).await;
    assert_eq!(address(&gws.get("g2").await.unwrap()), g2_address, "g2 keeps its address across the restart");
    assert_eq!(address(&gws.get("g3").await.unwrap()).as_deref(), Some("203.0.113.10"), "g1's freed address is reused");
}

fn tls_gateway(name: &str, secret: &str) -> Value {
    json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": name},
           "spec": {"gatewayClassName": "approuting-istio", "listeners": [{"name": "https", "port": 443, "protocol": "HTTPS",
               "hostname": "a.example.com", "tls": {"mode": "Terminate", "certificateRefs": [{"name": secret}]}}]}})
}

fn resource_version(obj: &DynamicObject) -> String {
    obj.metadata.resource_version.clone().unwrap_or_default()
}

/// Polls until the object's resourceVersion stays the same for half a second.
async fn settled(api: &Api<DynamicObject>, name: &str) -> DynamicObject {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut last = api.get(name).await.unwrap();
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let now = api.get(name).await.unwrap();
        if resource_version(&now) == resource_version(&last) {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} keeps being rewritten: {:?}",
            now.metadata.managed_fields
        );
        last = now;
    }
}

#[tokio::test]
async fn another_managers_listener_condition_survives_the_controllers_rewrites() {
    use k8s_openapi::api::core::v1::Secret;
    let server = common::server().await;
    let client = server.client().await.unwrap();
    let gws = api(&client, "default", "Gateway", "gateways");
    create(&gws, tls_gateway("gw", "gw-cert")).await;
    let listener = |obj: &DynamicObject| obj.data["status"]["listeners"][0].clone();
    common::eventually("the missing Secret is reported", || async {
        condition(&listener(&gws.get("gw").await.unwrap()), "ResolvedRefs")["reason"] == "InvalidCertificateRef"
    })
    .await;

    // What routewarden applies on a cluster: its own condition on the listener, under its own manager.
    let ours = json!({"type": "routewarden.io/CertificateReady", "status": "False", "reason": "SecretMissing",
        "message": "waiting for the first certificate version", "observedGeneration": 1,
        "lastTransitionTime": "2025-01-01T00:00:00Z"});
    let applied = json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "status": {"listeners": [{"name": "https", "conditions": [ours]}]}});
    gws.patch_status("gw", &PatchParams::apply("routewarden").force(), &Patch::Apply(applied)).await.unwrap();
    let before = settled(&gws, "gw").await;
    assert_eq!(condition(&listener(&before), "routewarden.io/CertificateReady"), ours, "merged into the listener");
    assert_eq!(condition(&listener(&before), "ResolvedRefs")["status"], "False", "the controller's own are kept");

    // The Secret appears: the controller flips ResolvedRefs and Programmed and writes again.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let secret: Secret = serde_json::from_value(json!({"metadata": {"name": "gw-cert"}, "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": "", "tls.key": ""}}))
    .unwrap();
    secrets.create(&PostParams::default(), &secret).await.unwrap();
    common::eventually("the listener resolves its certificate", || async {
        condition(&listener(&gws.get("gw").await.unwrap()), "ResolvedRefs")["status"] == "True"
    })
    .await;
    let after = settled(&gws, "gw").await;
    let l = listener(&after);
    assert_eq!(condition(&l, "routewarden.io/CertificateReady"), ours, "another manager's condition survives: {l}");
    assert_eq!(condition(&l, "Programmed")["status"], "True");
    let managers: Vec<(String, String)> = after
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.subresource.as_deref() == Some("status"))
        .map(|m| (m.manager.clone().unwrap_or_default(), m.operation.clone().unwrap_or_default()))
        .collect();
    assert!(
        managers.contains(&("routewarden".into(), "Apply".into()))
            && managers.contains(&("routewarden-sandbox-gateway-controller".into(), "Apply".into())),
        "both write status by apply: {managers:?}"
    );

    // routewarden's next apply (its condition flips) is not undone either, and nobody loops.
    let mut ready = ours.clone();
    ready["status"] = json!("True");
    ready["reason"] = json!("CertificateReady");
    let applied = json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "status": {"listeners": [{"name": "https", "conditions": [ready]}]}});
    gws.patch_status("gw", &PatchParams::apply("routewarden").force(), &Patch::Apply(applied)).await.unwrap();
    let last = settled(&gws, "gw").await;
    assert_eq!(condition(&listener(&last), "routewarden.io/CertificateReady"), ready);
    assert_eq!(
        condition(&listener(&last), "ResolvedRefs")["lastTransitionTime"],
        condition(&l, "ResolvedRefs")["lastTransitionTime"],
        "transition times are kept while the status holds"
    );
}
