//! kubectl v1.32 against the emulated API server, with seed 000's manifests: client-side and
//! server-side apply, get (tables, yaml, json, wide), describe, wait for a condition and for
//! deletion, delete, create token, label, annotate. Each test has its own server, kubeconfig and
//! discovery cache, so tests are independent and need no network.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Kubectl, walkthrough, walkthrough_path};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use routewarden_sandbox::kube::{KubeServer, KubeServerOptions};
use serde_json::{Value, json};

async fn seeded() -> (KubeServer, Kubectl) {
    let server = common::server().await;
    let kubectl = Kubectl::new(&server);
    kubectl.ok(&["apply", "-f", &walkthrough_path("seed000-namespaces.yaml")]).await;
    kubectl.ok(&["apply", "-f", &walkthrough_path("seed000-gateways.yaml")]).await;
    (server, kubectl)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_side_apply_creates_then_reports_unchanged_then_configures() {
    let server = common::server().await;
    let kubectl = Kubectl::new(&server);
    let out = kubectl.ok(&["apply", "-f", &walkthrough_path("seed000-namespaces.yaml")]).await;
    assert!(
        out.contains("namespace/app-a created") && out.contains("serviceaccount/approuting-demo-sa created"),
        "{out}"
    );
    let out = kubectl.ok(&["apply", "-f", &walkthrough_path("seed000-gateways.yaml")]).await;
    assert!(out.contains("gateway.gateway.networking.k8s.io/a-gateway created"), "{out}");
    assert!(out.contains("httproute.gateway.networking.k8s.io/b-route created"), "{out}");
    let out = kubectl.ok(&["apply", "-f", &walkthrough_path("seed000-gateways.yaml")]).await;
    assert!(out.contains("gateway.gateway.networking.k8s.io/a-gateway unchanged"), "{out}");
    let other_port = walkthrough("seed000-gateways.yaml").replace("port: 443", "port: 8443");
    let diff = kubectl.run_with_timeout(&["diff", "-f", "-"], Some(&other_port), Duration::from_secs(30)).await;
    assert!(
        diff.stdout.contains("-    port: 443") && diff.stdout.contains("+    port: 8443"),
        "kubectl diff (server dry run): {} {}",
        diff.stdout,
        diff.stderr
    );
    let live_port =
        kubectl.ok(&["get", "gateway", "a-gateway", "-n", "app-a", "-o", "jsonpath={.spec.listeners[0].port}"]).await;
    assert_eq!(live_port, "443", "a dry run stores nothing");

    let changed = walkthrough("seed000-gateways.yaml")
        .replace("zone: a", "zone: a2")
        .replace("hostname: a.example.com", "hostname: a2.example.com");
    let result = kubectl.run_with_timeout(&["apply", "-f", "-"], Some(&changed), Duration::from_secs(30)).await;
    assert!(result.ok, "{}", result.stderr);
    assert!(result.stdout.contains("gateway.gateway.networking.k8s.io/a-gateway configured"), "{}", result.stdout);
    let live: Value =
        serde_json::from_str(&kubectl.ok(&["get", "gateway", "a-gateway", "-n", "app-a", "-o", "json"]).await).unwrap();
    assert_eq!(live["metadata"]["labels"]["zone"], "a2");
    assert_eq!(live["spec"]["listeners"][0]["hostname"], "a2.example.com");
    assert_eq!(live["metadata"]["generation"], 2);

    let sa_changed = walkthrough("seed000-namespaces.yaml")
        .replace("00000000-0000-0000-0000-0000000000aa", "00000000-0000-0000-0000-0000000000bb");
    let result = kubectl.run_with_timeout(&["apply", "-f", "-"], Some(&sa_changed), Duration::from_secs(30)).await;
    assert!(
        result.stdout.contains("serviceaccount/approuting-demo-sa configured"),
        "strategic merge patch on a built-in kind: {} {}",
        result.stdout,
        result.stderr
    );
    let sa: Value =
        serde_json::from_str(&kubectl.ok(&["get", "sa", "approuting-demo-sa", "-n", "app-b", "-o", "json"]).await)
            .unwrap();
    assert_eq!(
        sa["metadata"]["annotations"]["azure.workload.identity/client-id"],
        "00000000-0000-0000-0000-0000000000bb"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_prints_server_side_tables_yaml_json_and_wide() {
    let options = KubeServerOptions {
        gateway_addresses: vec!["10.0.0.10".into(), "fd00::10".into()],
        ..KubeServerOptions::default()
    };
    let server = common::server_with(options).await;
    let kubectl = Kubectl::new(&server);
    kubectl.ok(&["apply", "-f", &walkthrough_path("seed000-namespaces.yaml")]).await;
    kubectl.ok(&["apply", "-f", &walkthrough_path("seed000-gateways.yaml")]).await;
    kubectl.ok(&["wait", "-n", "app-a", "--for=condition=programmed", "gateway", "a-gateway", "--timeout=20s"]).await;

    let table = kubectl.ok(&["get", "gateways", "-n", "app-a"]).await;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, vec!["NAME", "CLASS", "ADDRESS", "PROGRAMMED", "AGE"]);
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..4], &["a-gateway", "approuting-istio", "10.0.0.10", "True"]);

    let by_category = kubectl.ok(&["get", "gateway-api", "-n", "app-a", "-o", "name"]).await;
    for expected in ["gateway.gateway.networking.k8s.io/a-gateway", "httproute.gateway.networking.k8s.io/a-route"] {
        assert!(by_category.lines().any(|l| l == expected), "category gateway-api: {by_category}");
    }
    let all = kubectl.ok(&["get", "gtw", "-A"]).await;
    assert!(all.contains("app-b") && all.contains("b-gateway"), "{all}");
    let routes = kubectl.ok(&["get", "httproutes", "-n", "app-b", "-o", "wide"]).await;
    assert!(routes.lines().next().unwrap().contains("HOSTNAMES") && routes.contains("b.example.com"), "{routes}");
    let namespaces = kubectl.ok(&["get", "namespaces"]).await;
    assert!(namespaces.lines().any(|l| l.starts_with("app-a") && l.contains("Active")), "{namespaces}");

    let yaml: Value =
        serde_yaml_ng::from_str(&kubectl.ok(&["get", "httproute", "a-route", "-n", "app-a", "-o", "yaml"]).await)
            .unwrap();
    assert_eq!(yaml["spec"]["hostnames"], json!(["a.example.com"]));
    assert_eq!(yaml["spec"]["parentRefs"][0]["name"], "a-gateway");
    let list: Value = serde_json::from_str(&kubectl.ok(&["get", "sa", "-n", "app-a", "-o", "json"]).await).unwrap();
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"][0]["metadata"]["name"], "approuting-demo-sa");
    let names = kubectl.ok(&["get", "gatewayclass", "-o", "name"]).await;
    assert_eq!(names.trim(), "gatewayclass.gateway.networking.k8s.io/approuting-istio");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_errors_are_printed_as_the_real_server_words_them() {
    let server = common::server().await;
    let kubectl = Kubectl::new(&server);
    let out = kubectl.run(&["get", "gateway", "nope"]).await;
    assert!(!out.ok);
    assert_eq!(
        out.stderr.trim(),
        "Error from server (NotFound): gateways.gateway.networking.k8s.io \"nope\" not found"
    );
    let out = kubectl.run(&["get", "widgets"]).await;
    assert!(out.stderr.contains("the server doesn't have a resource type \"widgets\""), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_conflicts_until_forced() {
    let server = common::server().await;
    let kubectl = Kubectl::new(&server);
    kubectl.ok(&["apply", "--server-side", "-f", &walkthrough_path("seed000-namespaces.yaml")]).await;
    let out = kubectl.ok(&["apply", "--server-side", "-f", &walkthrough_path("seed000-gateways.yaml")]).await;
    assert!(out.contains("gateway.gateway.networking.k8s.io/a-gateway serverside-applied"), "{out}");
    let live: Value = serde_json::from_str(
        &kubectl.ok(&["get", "gateway", "a-gateway", "-n", "app-a", "-o", "json", "--show-managed-fields"]).await,
    )
    .unwrap();
    let managers: Vec<(&str, &str, &str)> = live["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (m["manager"].as_str().unwrap(), m["operation"].as_str().unwrap(), m["subresource"].as_str().unwrap_or(""))
        })
        .filter(|m| m.0 != "routewarden-sandbox-gateway-controller" || m.2 != "status")
        .collect();
    assert_eq!(managers, vec![("kubectl", "Apply", "")], "only the status writer shares the object");

    kubectl
        .ok(&[
            "patch",
            "gateway",
            "a-gateway",
            "-n",
            "app-a",
            "--type",
            "merge",
            "--field-manager",
            "someone-else",
            "-p",
            r#"{"spec":{"gatewayClassName":"other"}}"#,
        ])
        .await;
    let out = kubectl.run(&["apply", "--server-side", "-f", &walkthrough_path("seed000-gateways.yaml")]).await;
    assert!(!out.ok);
    assert!(
        out.stderr.contains("conflict with \"someone-else\"") && out.stderr.contains(".spec.gatewayClassName"),
        "{}",
        out.stderr
    );
    kubectl
        .ok(&["apply", "--server-side", "--force-conflicts", "-f", &walkthrough_path("seed000-gateways.yaml")])
        .await;
    let class =
        kubectl.ok(&["get", "gateway", "a-gateway", "-n", "app-a", "-o", "jsonpath={.spec.gatewayClassName}"]).await;
    assert_eq!(class, "approuting-istio");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_000_wait_for_programmed_follows_the_gateway_controller() {
    let (server, kubectl) = seeded().await;
    for (ns, gw) in [("app-a", "a-gateway"), ("app-b", "b-gateway")] {
        let out = kubectl.ok(&["wait", "-n", ns, "--for=condition=programmed", "gateway", gw, "--timeout=20s"]).await;
        assert_eq!(out.trim(), format!("gateway.gateway.networking.k8s.io/{gw} condition met"));
    }

    // Hold-down: withdraw a-gateway's address; the wait now times out until it is restored.
    server.gateway_controller().withhold_address("app-a", "a-gateway");
    let gws = {
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "Gateway"),
            "gateways",
        );
        Api::<DynamicObject>::namespaced_with(server.client().await.unwrap(), "app-a", &ar)
    };
    common::eventually("the controller reports the withheld address", || async {
        let gw = gws.get("a-gateway").await.unwrap().data;
        gw["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "Programmed" && c["status"] == "False"))
    })
    .await;
    let not_yet = kubectl
        .run(&["wait", "-n", "app-a", "--for=condition=programmed", "gateway", "a-gateway", "--timeout=2s"])
        .await;
    assert!(!not_yet.ok, "a Gateway without an address is not programmed");
    let waiter = kubectl.run_with_timeout(
        &["wait", "-n", "app-a", "--for=condition=programmed", "gateway", "a-gateway", "--timeout=20s"],
        None,
        Duration::from_secs(30),
    );
    let restorer = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        server.gateway_controller().restore_address("app-a", "a-gateway");
    };
    let (out, ()) = tokio::join!(waiter, restorer);
    assert!(out.ok, "{}", out.stderr);

    // A spec change bumps the generation; the controller's conditions follow it.
    kubectl.ok(&["label", "gateway", "a-gateway", "-n", "app-a", "x=y"]).await;
    kubectl
        .ok(&[
            "patch",
            "gateway",
            "a-gateway",
            "-n",
            "app-a",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"listeners":[{"name":"https","hostname":"a.example.com","port":8443,"protocol":"HTTPS"}]}}"#,
        ])
        .await;
    kubectl.ok(&["wait", "-n", "app-a", "--for=condition=programmed", "gateway", "a-gateway", "--timeout=20s"]).await;
    let observed = kubectl
        .ok(&[
            "get",
            "gateway",
            "a-gateway",
            "-n",
            "app-a",
            "-o",
            r#"jsonpath={.metadata.generation} {.status.conditions[?(@.type=="Programmed")].observedGeneration}"#,
        ])
        .await;
    assert_eq!(observed, "2 2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_delete_sees_the_object_go_when_its_finalizer_is_removed() {
    let (server, kubectl) = seeded().await;
    kubectl
        .ok(&[
            "patch",
            "httproute",
            "a-route",
            "-n",
            "app-a",
            "--type",
            "merge",
            "-p",
            r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
        ])
        .await;
    let out = kubectl.ok(&["delete", "httproute", "a-route", "-n", "app-a", "--wait=false"]).await;
    assert!(out.contains("httproute.gateway.networking.k8s.io \"a-route\" deleted"), "{out}");
    let api = {
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
            "httproutes",
        );
        Api::<DynamicObject>::namespaced_with(server.client().await.unwrap(), "app-a", &ar)
    };
    let waiter = kubectl.run_with_timeout(
        &["wait", "-n", "app-a", "--for=delete", "httproute/a-route", "--timeout=20s"],
        None,
        Duration::from_secs(30),
    );
    let remover = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        api.patch("a-route", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}})))
            .await
            .unwrap();
    };
    let (out, ()) = tokio::join!(waiter, remover);
    assert!(out.ok, "{}", out.stderr);
    assert!(out.stdout.contains("httproute.gateway.networking.k8s.io/a-route condition met"), "{}", out.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_f_removes_everything_the_manifest_created() {
    let (_server, kubectl) = seeded().await;
    let out = kubectl.ok(&["delete", "-f", &walkthrough_path("seed000-gateways.yaml")]).await;
    assert!(out.contains("gateway.gateway.networking.k8s.io \"a-gateway\" deleted"), "{out}");
    let left = kubectl.ok(&["get", "gateways,httproutes", "-A", "-o", "name"]).await;
    assert_eq!(left.trim(), "");
    let out = kubectl.ok(&["delete", "-f", &walkthrough_path("seed000-namespaces.yaml")]).await;
    assert!(out.contains("namespace \"app-a\" deleted"), "{out}");
    let gone = kubectl.run(&["get", "namespace", "app-a"]).await;
    assert_eq!(gone.stderr.trim(), "Error from server (NotFound): namespaces \"app-a\" not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_token_sends_protobuf_and_gets_a_workload_identity_jwt() {
    let (server, kubectl) = seeded().await;
    let token = kubectl
        .ok(&["create", "token", "approuting-demo-sa", "-n", "app-a", "--audience", "api://AzureADTokenExchange"])
        .await;
    let token = token.trim();
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(server.token_issuer().jwks()).unwrap();
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["api://AzureADTokenExchange"]);
    let claims = jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_jwk(jwks.find(&kid).unwrap()).unwrap(),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["sub"], "system:serviceaccount:app-a:approuting-demo-sa");
    assert_eq!(claims["iss"], server.url());
    assert_eq!(claims["kubernetes.io"]["namespace"], "app-a");
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 3600);

    let longer = kubectl
        .ok(&[
            "create",
            "token",
            "approuting-demo-sa",
            "-n",
            "app-a",
            "--audience",
            "api://AzureADTokenExchange",
            "--duration",
            "2h",
        ])
        .await;
    let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(longer.trim()).unwrap().claims;
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        7200,
        "--duration travels as protobuf field 4"
    );
    let missing = kubectl.run(&["create", "token", "nobody", "-n", "app-a"]).await;
    assert_eq!(missing.stderr.trim(), "error: failed to create token: serviceaccounts \"nobody\" not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_annotate_and_describe() {
    let (_server, kubectl) = seeded().await;
    let out = kubectl.ok(&["label", "gateway", "a-gateway", "-n", "app-a", "tier=edge"]).await;
    assert_eq!(out.trim(), "gateway.gateway.networking.k8s.io/a-gateway labeled");
    let out = kubectl.ok(&["annotate", "gateway", "a-gateway", "-n", "app-a", "example.com/owner=team-a"]).await;
    assert_eq!(out.trim(), "gateway.gateway.networking.k8s.io/a-gateway annotated");
    let selected = kubectl.ok(&["get", "gateways", "-A", "-l", "tier=edge", "-o", "name"]).await;
    assert_eq!(selected.trim(), "gateway.gateway.networking.k8s.io/a-gateway");
    let relabel = kubectl.run(&["label", "gateway", "a-gateway", "-n", "app-a", "tier=core"]).await;
    assert!(
        !relabel.ok && relabel.stderr.contains("'tier' already has a value (edge), and --overwrite is false"),
        "{}",
        relabel.stderr
    );
    kubectl.ok(&["label", "gateway", "a-gateway", "-n", "app-a", "tier-"]).await;
    let described = kubectl.ok(&["describe", "gateway", "a-gateway", "-n", "app-a"]).await;
    assert!(described.contains("Name:         a-gateway"), "{described}");
    let uid = kubectl.ok(&["get", "gateway", "a-gateway", "-n", "app-a", "-o", "jsonpath={.metadata.uid}"]).await;
    assert!(described.contains("example.com/owner: team-a"), "{described}");
    assert!(described.contains("Gateway Class Name:  approuting-istio"), "{described}");
    assert!(!described.contains("tier=edge"), "{described}");
    let event = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "a-gateway.1", "namespace": "app-a"},
        "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "routewarden", "reportingInstance": "routewarden-0",
        "action": "Publish", "reason": "RecordsPublished", "note": "published A a.example.com", "type": "Normal",
        "regarding": {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "name": "a-gateway", "namespace": "app-a", "uid": uid}});
    let created =
        kubectl.run_with_timeout(&["create", "-f", "-"], Some(&event.to_string()), Duration::from_secs(30)).await;
    assert!(created.ok, "{}", created.stderr);
    let described = kubectl.ok(&["describe", "gateway", "a-gateway", "-n", "app-a"]).await;
    assert!(
        described.contains("RecordsPublished") && described.contains("published A a.example.com"),
        "events.k8s.io events show in describe: {described}"
    );
    let events = kubectl.ok(&["get", "events", "-n", "app-a"]).await;
    assert!(events.contains("RecordsPublished"), "{events}");
    let sa = kubectl.ok(&["describe", "sa", "approuting-demo-sa", "-n", "app-a"]).await;
    assert!(sa.contains("azure.workload.identity/use=true"), "{sa}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_kubeconfig_is_subject_to_rbac() {
    let (server, admin) = seeded().await;
    let token = admin.ok(&["create", "token", "approuting-demo-sa", "-n", "app-a"]).await;
    let robot = Kubectl::with_kubeconfig(&server.kubeconfig_for_token(token.trim()));
    let denied = robot.run(&["get", "gateways", "-n", "app-a"]).await;
    assert_eq!(
        denied.stderr.trim(),
        "Error from server (Forbidden): gateways.gateway.networking.k8s.io is forbidden: User \"system:serviceaccount:app-a:approuting-demo-sa\" cannot list resource \"gateways\" in API group \"gateway.networking.k8s.io\" in the namespace \"app-a\""
    );
    admin
        .ok(&[
            "create",
            "role",
            "gw-reader",
            "-n",
            "app-a",
            "--verb=get,list,watch",
            "--resource=gateways.gateway.networking.k8s.io",
        ])
        .await;
    admin
        .ok(&[
            "create",
            "rolebinding",
            "gw-reader",
            "-n",
            "app-a",
            "--role=gw-reader",
            "--serviceaccount=app-a:approuting-demo-sa",
        ])
        .await;
    let allowed = robot.ok(&["get", "gateways", "-n", "app-a", "-o", "name"]).await;
    assert_eq!(allowed.trim(), "gateway.gateway.networking.k8s.io/a-gateway");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_sends_protobuf_for_built_in_kinds() {
    let server = common::server().await;
    let kubectl = Kubectl::new(&server);
    assert_eq!(kubectl.ok(&["create", "namespace", "app-a"]).await.trim(), "namespace/app-a created");
    kubectl.ok(&["create", "serviceaccount", "approuting-demo-sa", "-n", "app-a"]).await;
    kubectl.ok(&["create", "configmap", "settings", "-n", "app-a", "--from-literal=zone=example.com"]).await;
    kubectl.ok(&["create", "secret", "generic", "creds", "-n", "app-a", "--from-literal=password=s3cret"]).await;
    kubectl
        .ok(&["create", "clusterrole", "gw-reader", "--verb=get,list", "--resource=gateways.gateway.networking.k8s.io"])
        .await;
    kubectl
        .ok(&[
            "create",
            "clusterrolebinding",
            "gw-reader",
            "--clusterrole=gw-reader",
            "--serviceaccount=app-a:approuting-demo-sa",
        ])
        .await;
    let cm: Value =
        serde_json::from_str(&kubectl.ok(&["get", "configmap", "settings", "-n", "app-a", "-o", "json"]).await)
            .unwrap();
    assert_eq!(cm["data"], json!({"zone": "example.com"}));
    let secret: Value =
        serde_json::from_str(&kubectl.ok(&["get", "secret", "creds", "-n", "app-a", "-o", "json"]).await).unwrap();
    assert_eq!((secret["type"].as_str(), secret["data"]["password"].as_str()), (Some("Opaque"), Some("czNjcmV0")));
    let table = kubectl.ok(&["get", "secretproviderclass,secret", "-n", "app-a"]).await;
    assert!(table.contains("No resources found") || table.contains("NAME"), "{table}");
    let secrets: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
    assert!(
        secrets
            .iter()
            .any(|row| row.first() == Some(&"NAME") && row.get(1) == Some(&"TYPE") && row.get(2) == Some(&"DATA")),
        "{table}"
    );
    assert!(
        secrets.iter().any(|row| row.first() == Some(&"secret/creds")
            && row.get(1) == Some(&"Opaque")
            && row.get(2) == Some(&"1")),
        "{table}"
    );
    let crb: Value =
        serde_json::from_str(&kubectl.ok(&["get", "clusterrolebinding", "gw-reader", "-o", "json"]).await).unwrap();
    assert_eq!(
        crb["subjects"],
        json!([{"kind": "ServiceAccount", "name": "approuting-demo-sa", "namespace": "app-a"}])
    );
    let role: Value =
        serde_json::from_str(&kubectl.ok(&["get", "clusterrole", "gw-reader", "-o", "json"]).await).unwrap();
    assert_eq!(
        role["rules"],
        json!([{"apiGroups": ["gateway.networking.k8s.io"], "resources": ["gateways"], "verbs": ["get", "list"]}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_rejects_unknown_and_invalid_fields_like_the_real_server() {
    let server = common::server().await;
    let kubectl = Kubectl::new(&server);
    let manifest = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: typo\nspec:\n  gatewayClassName: approuting-istio\n  listners: []\n  listeners:\n  - name: http\n    port: 80\n    protocol: HTTP\n";
    let out = kubectl.run_with_timeout(&["apply", "-f", "-"], Some(manifest), Duration::from_secs(30)).await;
    assert!(!out.ok);
    assert_eq!(
        out.stderr.trim(),
        "Error from server (BadRequest): error when creating \"STDIN\": Gateway in version \"v1\" cannot be handled as a Gateway: strict decoding error: unknown field \"spec.listners\""
    );
    let lenient = kubectl
        .run_with_timeout(&["apply", "--validate=false", "-f", "-"], Some(manifest), Duration::from_secs(30))
        .await;
    assert!(lenient.ok, "--validate=false sends fieldValidation=Ignore: {}", lenient.stderr);
    let bad_port =
        manifest.replace("name: typo", "name: port").replace("  listners: []\n", "").replace("port: 80", "port: 0");
    let out = kubectl.run_with_timeout(&["apply", "-f", "-"], Some(&bad_port), Duration::from_secs(30)).await;
    assert!(out.stderr.contains("The Gateway \"port\" is invalid: spec.listeners[0].port: Invalid value: 0: spec.listeners[0].port in body should be greater than or equal to 1"), "{}", out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_restart_patches_the_pod_template() {
    let server = common::server().await;
    let kubectl = Kubectl::new(&server);
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: external-dns\nspec:\n  selector:\n    matchLabels:\n      app: external-dns\n  template:\n    metadata:\n      labels:\n        app: external-dns\n    spec:\n      containers:\n      - name: external-dns\n        image: registry.k8s.io/external-dns/external-dns:v0.15.0\n";
    let out = kubectl.run_with_timeout(&["apply", "-f", "-"], Some(deployment), Duration::from_secs(30)).await;
    assert!(out.ok, "{}", out.stderr);
    let dry = kubectl
        .run_with_timeout(
            &["apply", "--dry-run=server", "-f", "-"],
            Some(&deployment.replace("v0.15.0", "v0.16.0")),
            Duration::from_secs(30),
        )
        .await;
    assert!(dry.ok && dry.stdout.contains("(server dry run)"), "{} {}", dry.stdout, dry.stderr);
    let out = kubectl.ok(&["rollout", "restart", "deployment/external-dns"]).await;
    assert_eq!(out.trim(), "deployment.apps/external-dns restarted");
    let live: Value =
        serde_json::from_str(&kubectl.ok(&["get", "deployment", "external-dns", "-o", "json"]).await).unwrap();
    assert!(
        live["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"].is_string(),
        "{live}"
    );
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"][0]["image"], "registry.k8s.io/external-dns/external-dns:v0.15.0",
        "the dry run stored nothing"
    );
    assert_eq!(live["metadata"]["generation"], 2);
    let table = kubectl.ok(&["get", "deployments"]).await;
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, vec!["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    assert!(table.lines().nth(1).unwrap().starts_with("external-dns   0/1"), "{table}");
}

/// routewarden's own CRDs (`deploy/crds`, generated by the daemon) installed at start, and seed
/// 000's ClusterExternalDNS and ExternalDNS applied to them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routewardens_own_crds_serve_seed_000_externaldns_objects() {
    let crd_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds");
    if !crd_dir.is_dir() {
        eprintln!("SKIPPED: {} does not exist yet", crd_dir.display());
        return;
    }
    let extra_crds = routewarden_sandbox::kube::crd::load_dir(&crd_dir).unwrap();
    assert!(!extra_crds.is_empty(), "deploy/crds holds CRDs");
    let server = common::server_with(KubeServerOptions { extra_crds, ..KubeServerOptions::default() }).await;
    let kubectl = Kubectl::new(&server);
    kubectl.ok(&["apply", "-f", &walkthrough_path("seed000-namespaces.yaml")]).await;
    let out = kubectl.ok(&["apply", "-f", &walkthrough_path("seed000-externaldns.yaml")]).await;
    assert!(out.contains("clusterexternaldns.approuting.kubernetes.azure.com/demo-cluster-dns created"), "{out}");
    assert!(out.contains("externaldns.approuting.kubernetes.azure.com/demo-ns-dns created"), "{out}");
    let table = kubectl.ok(&["get", "clusterexternaldns"]).await;
    assert!(table.lines().next().unwrap().starts_with("NAME"), "{table}");
    assert!(table.contains("demo-cluster-dns"), "{table}");
    kubectl.ok(&["get", "edns", "-n", "app-a", "demo-ns-dns"]).await;

    let zone = |sub: &str| {
        format!(
            "/subscriptions/{sub}/resourceGroups/approuting-demo-rg/providers/Microsoft.Network/dnsZones/example.com"
        )
    };
    let two_subscriptions =
        walkthrough("seed000-externaldns.yaml").split("---").nth(1).unwrap().replace("demo-ns-dns", "mixed").replace(
            &format!("  - {}\n", zone("00000000-0000-0000-0000-0000000000f1")),
            &format!(
                "  - {}\n  - {}\n",
                zone("00000000-0000-0000-0000-0000000000f1"),
                zone("00000000-0000-0000-0000-000000000002")
            ),
        );
    let out = kubectl.run_with_timeout(&["apply", "-f", "-"], Some(&two_subscriptions), Duration::from_secs(30)).await;
    assert!(
        out.stderr
            .contains("spec.dnsZoneResourceIDs: Invalid value: \"array\": all zones must be in the same subscription"),
        "CEL rule: {}",
        out.stderr
    );
    let no_sa = walkthrough("seed000-externaldns.yaml")
        .split("---")
        .nth(1)
        .unwrap()
        .replace("demo-ns-dns", "no-sa")
        .replace("    serviceAccount: approuting-demo-sa\n", "");
    let out = kubectl.run_with_timeout(&["apply", "-f", "-"], Some(&no_sa), Duration::from_secs(30)).await;
    assert!(
        out.stderr.contains(
            "spec.identity.serviceAccount: Required value: serviceAccount is required when type is workloadIdentity"
        ),
        "CEL rule with reason and fieldPath: {}",
        out.stderr
    );
    let out = kubectl.ok(&["delete", "clusterexternaldns", "demo-cluster-dns"]).await;
    assert_eq!(out.trim(), "clusterexternaldns.approuting.kubernetes.azure.com \"demo-cluster-dns\" deleted");
}

/// How the e2e suite can prove routewarden's RBAC: `kubectl auth can-i` (SelfSubjectAccessReview
/// and SelfSubjectRulesReview, protobuf bodies) and `--as` impersonation by the admin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_can_i_and_impersonation_answer_from_rbac() {
    let server = common::server().await;
    let kubectl = Kubectl::new(&server);
    let sa = "system:serviceaccount:default:routewarden";
    assert_eq!(kubectl.ok(&["auth", "can-i", "delete", "gateways"]).await.trim(), "yes", "the admin can do anything");
    let no = kubectl.run(&["auth", "can-i", "list", "gateways", "--as", sa]).await;
    assert!(!no.ok && no.stdout.trim() == "no", "{} {}", no.stdout, no.stderr);
    kubectl
        .ok(&[
            "create",
            "clusterrole",
            "gw-status",
            "--verb=list,watch",
            "--resource=gateways.gateway.networking.k8s.io",
        ])
        .await;
    kubectl
        .ok(&[
            "create",
            "clusterrolebinding",
            "gw-status",
            "--clusterrole=gw-status",
            "--serviceaccount=default:routewarden",
        ])
        .await;
    assert_eq!(kubectl.ok(&["auth", "can-i", "list", "gateways", "--as", sa]).await.trim(), "yes");
    let delete = kubectl.run(&["auth", "can-i", "delete", "gateways", "--as", sa]).await;
    assert_eq!(delete.stdout.trim(), "no");
    let rules = kubectl.ok(&["auth", "can-i", "--list", "--as", sa]).await;
    assert!(
        rules.lines().any(|l| l.starts_with("gateways.gateway.networking.k8s.io") && l.contains("[list watch]")),
        "{rules}"
    );
    assert_eq!(kubectl.ok(&["get", "gateways", "-A", "--as", sa, "-o", "name"]).await.trim(), "");
    let denied = kubectl.run(&["get", "configmaps", "--as", sa]).await;
    assert_eq!(
        denied.stderr.trim(),
        "Error from server (Forbidden): configmaps is forbidden: User \"system:serviceaccount:default:routewarden\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"default\""
    );
    let as_group = kubectl
        .run(&["auth", "can-i", "list", "gateways", "--as", "jane", "--as-group", "system:serviceaccounts:default"])
        .await;
    assert_eq!(as_group.stdout.trim(), "no", "ClusterRoleBinding names the ServiceAccount, not the group");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_watch_prints_table_rows_for_each_event() {
    let (_server, kubectl) = seeded().await;
    kubectl.ok(&["wait", "-n", "app-a", "--for=condition=programmed", "gateway", "a-gateway", "--timeout=20s"]).await;
    let watcher = kubectl.run_with_timeout(
        &["get", "gateways", "-A", "-w", "--output-watch-events"],
        None,
        Duration::from_secs(4),
    );
    let labeller = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        kubectl.ok(&["label", "gateway", "a-gateway", "-n", "app-a", "watched=yes"]).await;
    };
    let (out, ()) = tokio::join!(watcher, labeller);
    let lines: Vec<Vec<&str>> = out.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], vec!["EVENT", "NAMESPACE", "NAME", "CLASS", "ADDRESS", "PROGRAMMED", "AGE"], "{}", out.stdout);
    assert!(
        lines.iter().any(|l| l.len() > 5 && l[0] == "MODIFIED" && l[2] == "a-gateway" && l[5] == "True"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(lines.iter().filter(|l| l.first() == Some(&"EVENT")).count(), 1, "one header: {}", out.stdout);
}
