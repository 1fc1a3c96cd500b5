//! The manifests under `deploy/`: every overlay renders with `kubectl kustomize` into what a
//! platform team expects; the sandbox overlay applies, re-applies without changes and deletes
//! with `kubectl -k` against the sandbox API server; and routewarden's RBAC is least privilege
//! yet sufficient. Sufficient: the whole e2e suite runs the daemon under exactly these rules
//! (see `Env`), and here a full TLS, DNS and Istio CA scenario makes no request they refuse. Least
//! privilege: that scenario uses every verb they grant. Enforced: without one rule the daemon
//! cannot write a listener's Secret and says so on the Gateway, and recovers once it is back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use routewarden_e2e::dns::{cluster_dns, ready_of, ready_when, zone_id};
use routewarden_e2e::*;
use routewarden_sandbox::demo::{C_GATEWAY_YAML, EXTERNALDNS_YAML, GATEWAYS_YAML, NAMESPACES_YAML};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::process::{Command, Output};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

fn kubectl(args: &[&str]) -> Output {
    let bin = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
    Command::new(&bin).args(args).current_dir(repo_root()).output().unwrap_or_else(|e| panic!("{bin}: {e}"))
}

fn succeeded(out: &Output, what: &str) -> String {
    assert!(out.status.success(), "{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// `kubectl kustomize DIR`, as objects.
fn render(dir: &str) -> Vec<Value> {
    let text = succeeded(&kubectl(&["kustomize", dir]), &format!("kubectl kustomize {dir}"));
    routewarden_sandbox::demo::yaml_objects(&text).unwrap()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {:?}", names(objects)))
}

fn names(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .map(|o| format!("{} {}", o["kind"].as_str().unwrap(), o["metadata"]["name"].as_str().unwrap()))
        .collect()
}

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

/// The facts every rendering shares: the Deployment runs locked down, is probed on its metrics
/// port, and reads the ConfigMap kustomize generated (by its hashed name).
fn assert_deployment_facts(objects: &[Value]) -> Value {
    let deployment = find(objects, "Deployment", "routewarden");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "routewarden");
    assert_eq!(pod["automountServiceAccountToken"], true);
    assert_eq!(pod["terminationGracePeriodSeconds"], 30);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 65532);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    assert!(pod["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname", "{pod}");

    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let security = &c["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    let args: Vec<&str> = c["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert_eq!(
        args,
        [
            "run",
            "--admin-addr",
            "127.0.0.1:9443",
            "--metrics-addr",
            "0.0.0.0:9402",
            "--journal-dir",
            "/var/lib/routewarden/journal"
        ]
    );
    assert_eq!(c["ports"], json!([{ "name": "http-metrics", "containerPort": 9402, "protocol": "TCP" }]));
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        assert_eq!(c[probe]["httpGet"], json!({ "path": path, "port": "http-metrics" }), "{probe}");
    }
    assert!(c["resources"]["requests"]["memory"].is_string() && c["resources"]["limits"]["memory"].is_string());
    let env: Vec<(&str, &str)> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["valueFrom"]["fieldRef"]["fieldPath"].as_str().unwrap()))
        .collect();
    assert_eq!(
        env,
        [
            ("POD_NAME", "metadata.name"),
            ("POD_NAMESPACE", "metadata.namespace"),
            ("ROUTEWARDEN_LEADER_ELECTION_NAMESPACE", "metadata.namespace"),
            ("ROUTEWARDEN_LEADER_ELECTION_IDENTITY", "metadata.name"),
        ]
    );
    let mount = &c["volumeMounts"][0];
    assert_eq!(mount["mountPath"], "/var/lib/routewarden");
    let volume = pod["volumes"].as_array().unwrap().iter().find(|v| v["name"] == mount["name"]).unwrap();
    assert!(volume["emptyDir"].is_object(), "{volume}");

    // The ConfigMap's name carries kustomize's content hash, and the Deployment refers to exactly
    // it: a config change rolls the pods.
    let maps = of_kind(objects, "ConfigMap");
    assert_eq!(maps.len(), 1, "{:?}", names(objects));
    let map_name = maps[0]["metadata"]["name"].as_str().unwrap();
    let suffix = map_name.strip_prefix("routewarden-config-").unwrap_or_else(|| panic!("{map_name}"));
    assert!(suffix.len() >= 8 && suffix.chars().all(|c| c.is_ascii_alphanumeric()), "{map_name}");
    assert_eq!(c["envFrom"], json!([{ "configMapRef": { "name": map_name } }]));
    // An empty flag value is a value (an empty --tenant-id stops `run`): only the OpenTelemetry
    // endpoint may be empty, which the OpenTelemetry convention reads as unset.
    for (key, value) in maps[0]["data"].as_object().unwrap() {
        assert!(!value.as_str().unwrap().is_empty() || key == "OTEL_EXPORTER_OTLP_ENDPOINT", "{key} is empty");
    }

    let pdb = find(objects, "PodDisruptionBudget", "routewarden");
    assert_eq!(pdb["apiVersion"], "policy/v1");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert_eq!(pdb["spec"]["selector"], deployment["spec"]["selector"]);
    let service = find(objects, "Service", "routewarden-metrics");
    assert_eq!(service["spec"]["ports"][0]["port"], 9402);
    assert_eq!(service["spec"]["selector"], deployment["spec"]["selector"]["matchLabels"]);
    for kind in ["CustomResourceDefinition", "Namespace", "ServiceAccount", "ClusterRole", "Role"] {
        assert!(!of_kind(objects, kind).is_empty(), "no {kind}");
    }
    for o in objects.iter().filter(|o| o["kind"] != "CustomResourceDefinition") {
        assert_eq!(o["metadata"]["labels"]["app.kubernetes.io/name"], "routewarden", "{}", o["metadata"]["name"]);
    }
    maps[0].clone()
}

fn container(objects: &[Value]) -> Value {
    find(objects, "Deployment", "routewarden")["spec"]["template"]["spec"]["containers"][0].clone()
}

#[test]
fn the_base_and_every_overlay_render_with_kubectl_kustomize() {
    let base = render("deploy/base");
    assert_deployment_facts(&base);

    let production = render("deploy/overlays/production");
    let config = assert_deployment_facts(&production);
    assert_eq!(find(&production, "Deployment", "routewarden")["spec"]["replicas"], 2);
    let image = container(&production)["image"].as_str().unwrap().to_owned();
    let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or_default();
    assert!(!tag.is_empty() && tag != "latest" && !tag.contains('/'), "production pins its image: {image}");
    assert_eq!(config["data"]["ROUTEWARDEN_LOG_FORMAT"], "json");

    let sandbox = render("deploy/overlays/sandbox");
    let config = assert_deployment_facts(&sandbox);
    assert_eq!(find(&sandbox, "Deployment", "routewarden")["spec"]["replicas"], 1);
    assert_eq!(container(&sandbox)["image"], "routewarden:dev");
    assert_eq!(config["data"]["ROUTEWARDEN_TENANT_ID"], seed000::TENANT);
    // The sandbox has no prometheus-operator: nothing of monitoring.coreos.com in its overlay.
    assert!(sandbox.iter().all(|o| !o["apiVersion"].as_str().unwrap().starts_with("monitoring.coreos.com")));
}

/// An object without what kustomize adds (labels), for comparing the rendered RBAC with the files.
fn without_labels(o: &Value) -> Value {
    let mut o = o.clone();
    if let Some(m) = o["metadata"].as_object_mut() {
        m.remove("labels");
    }
    o
}

#[test]
fn the_e2e_suite_runs_under_exactly_the_rbac_that_ships() {
    let rendered: Vec<Value> = render("deploy/base")
        .iter()
        .filter(|o| RBAC_KINDS.contains(&o["kind"].as_str().unwrap()))
        .map(without_labels)
        .collect();
    let read: Vec<Value> = deploy_rbac_objects().unwrap().iter().map(without_labels).collect();
    let key = |o: &Value| (o["kind"].to_string(), o["metadata"]["name"].to_string());
    let mut rendered_sorted = rendered.clone();
    rendered_sorted.sort_by_key(key);
    let mut read_sorted = read.clone();
    read_sorted.sort_by_key(key);
    assert_eq!(rendered_sorted, read_sorted);
    // No wildcard anywhere: every grant names its verbs, groups and resources.
    for role in read.iter().filter(|o| o["kind"] == "ClusterRole" || o["kind"] == "Role") {
        for rule in role["rules"].as_array().unwrap() {
            for field in ["verbs", "apiGroups", "resources"] {
                assert!(rule[field].as_array().unwrap().iter().all(|v| v != "*"), "{rule}");
            }
        }
    }
}

/// The resourceVersion of each object `kubectl apply` reported, by its `kind/name` as printed.
async fn resource_versions(client: &kube::Client, printed: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in printed.lines() {
        let object = line.split_whitespace().next().unwrap().trim_matches('"');
        let got = kubectl_get(client, object).await;
        out.push((object.to_owned(), got.unwrap_or_else(|| panic!("{object} does not exist"))));
    }
    out
}

/// `kind.group/name` as kubectl prints it → the object's resourceVersion, through kube-rs.
async fn kubectl_get(client: &kube::Client, printed: &str) -> Option<String> {
    let (kind, name) = printed.split_once('/')?;
    let (plural, group) = kind.split_once('.').unwrap_or((kind, ""));
    let discovery = kube::Discovery::new(client.clone()).run().await.ok()?;
    for g in discovery.groups() {
        for (ar, caps) in g.recommended_resources() {
            let singular = ar.kind.to_ascii_lowercase();
            if (singular == plural || ar.plural == plural) && ar.group == group {
                let api: Api<DynamicObject> = match caps.scope {
                    kube::discovery::Scope::Namespaced => {
                        Api::namespaced_with(client.clone(), "routewarden-system", &ar)
                    }
                    kube::discovery::Scope::Cluster => Api::all_with(client.clone(), &ar),
                };
                return api.get_opt(name).await.ok()?.and_then(|o| o.metadata.resource_version);
            }
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_overlay_applies_reapplies_without_changes_and_deletes() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let server = routewarden_sandbox::kube::KubeServer::start(routewarden_sandbox::kube::KubeServerOptions {
        gc_delay: Duration::from_millis(50),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    server.write_files(dir.path()).unwrap();
    let kubeconfig = dir.path().join("kubeconfig").display().to_string();
    let client = server.client().await.unwrap();
    let apply = || {
        succeeded(
            &kubectl(&["apply", "-k", "deploy/overlays/sandbox", "--kubeconfig", &kubeconfig]),
            "kubectl apply -k",
        )
    };

    let first = apply();
    let rendered = render("deploy/overlays/sandbox");
    assert_eq!(first.lines().count(), rendered.len(), "one line per object:\n{first}");
    let namespace = "routewarden-system";
    assert!(Api::<Namespace>::all(client.clone()).get_opt(namespace).await.unwrap().is_some());
    assert!(
        Api::<ServiceAccount>::namespaced(client.clone(), namespace).get_opt("routewarden").await.unwrap().is_some()
    );
    let deployment = kube::Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), namespace)
        .get("routewarden")
        .await
        .unwrap();
    assert_eq!(deployment.spec.as_ref().unwrap().replicas, Some(1));
    let map_name = of_kind(&rendered, "ConfigMap")[0]["metadata"]["name"].as_str().unwrap().to_owned();
    let map = Api::<ConfigMap>::namespaced(client.clone(), namespace).get(&map_name).await.unwrap();
    assert_eq!(map.data.unwrap()["ROUTEWARDEN_CLUSTER_ID"], "sandbox");
    let pdb = kube::Api::<k8s_openapi::api::policy::v1::PodDisruptionBudget>::namespaced(client.clone(), namespace)
        .get("routewarden")
        .await
        .unwrap();
    assert_eq!(
        pdb.spec.unwrap().min_available,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
    );
    let before = resource_versions(&client, &first).await;

    // Applying again changes nothing on the server. kubectl still prints `configured` for the
    // PodDisruptionBudget: its selector's patch strategy is `replace`, so kubectl's three-way
    // patch is never empty (as on any cluster); the server finds nothing to change.
    let second = apply();
    for line in second.lines() {
        assert!(
            line.ends_with(" unchanged") || line.starts_with("poddisruptionbudget.policy/"),
            "re-apply changed something: {line}"
        );
    }
    assert_eq!(resource_versions(&client, &second).await, before, "a re-apply wrote an object");

    let deleted = succeeded(
        &kubectl(&["delete", "-k", "deploy/overlays/sandbox", "--kubeconfig", &kubeconfig]),
        "kubectl delete -k",
    );
    assert!(
        deleted.lines().count() <= rendered.len() && deleted.contains("namespace \"routewarden-system\" deleted"),
        "{deleted}"
    );
    wait_for("everything deleted", WAIT, || async {
        let left = resource_versions_left(&client, &first).await;
        left.is_empty().then_some(())
    })
    .await
    .unwrap();
    server.shutdown().await;
}

async fn resource_versions_left(client: &kube::Client, printed: &str) -> Vec<String> {
    let mut left = Vec::new();
    for line in printed.lines() {
        let object = line.split_whitespace().next().unwrap();
        if kubectl_get(client, object).await.is_some() {
            left.push(object.to_owned());
        }
    }
    left
}

/// `deploy/base`'s RBAC with `verbs` taken off the rule for `resource`.
fn without_verbs(resource: &str, verbs: &[&str]) -> Vec<Value> {
    let mut objects = deploy_rbac_objects().unwrap();
    let mut found = false;
    for role in objects.iter_mut().filter(|o| o["kind"] == "ClusterRole") {
        for rule in role["rules"].as_array_mut().unwrap() {
            if rule["resources"].as_array().unwrap().iter().any(|r| r == resource) {
                let kept: Vec<Value> = rule["verbs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|v| !verbs.contains(&v.as_str().unwrap()))
                    .cloned()
                    .collect();
                rule["verbs"] = Value::Array(kept);
                found = true;
            }
        }
    }
    assert!(found, "no rule for {resource}");
    objects
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_its_secret_write_rule_the_daemon_cannot_write_a_listener_secret_and_says_so() {
    let env = Env::start(Options {
        rbac: Rbac::Objects(without_verbs("secrets", &["create", "patch"])),
        ..Options::default()
    })
    .await
    .unwrap();
    env.apply_yaml(NAMESPACES_YAML).await.unwrap();
    env.apply_yaml(GATEWAYS_YAML).await.unwrap();

    let (status, reason, message) = wait_for("the listener's condition", WAIT, || async {
        env.listener_condition("app-a", "a-gateway", "https").await.filter(|c| c.0 == "False")
    })
    .await
    .unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("False", "Unavailable"));
    assert!(
        message.contains(r#"cannot create resource "secrets" in API group "" in the namespace "app-a""#)
            && message.contains("system:serviceaccount:routewarden-system:routewarden"),
        "{message}"
    );
    let events = wait_for("a Warning Event", WAIT, || async {
        let e = env.gateway_events("app-a", "a-gateway").await.ok()?;
        e.iter().any(|e| e.0 == "Warning" && e.1 == "Unavailable").then_some(e)
    })
    .await
    .unwrap();
    assert!(events.iter().any(|e| e.2.contains("forbidden")), "{events:?}");
    assert!(env.secrets("app-a").get_opt("kv-gw-cert-a-gateway-https").await.unwrap().is_none());
    // The SecretProviderClass rule is intact: that write went through.
    assert!(env.spcs("app-a").get_opt("kv-gw-cert-a-gateway-https").await.unwrap().is_some());
    // The API server refused exactly that: creating Secrets.
    let refused: Vec<_> = env.refused().into_iter().map(|a| (a.verb, a.resource, a.namespace)).collect();
    assert!(refused.contains(&("create".into(), "secrets".into(), Some("app-a".into()))), "{refused:?}");
    assert!(refused.iter().all(|(verb, resource, _)| verb == "create" && resource == "secrets"), "{refused:?}");

    // The rule back, the retry goes through: the failure was that rule and nothing else.
    routewarden_sandbox::demo::apply_objects(&env.client, &deploy_rbac_objects().unwrap(), "e2e").await.unwrap();
    wait_for("the Secret", Duration::from_secs(60), || async {
        env.secrets("app-a").get_opt("kv-gw-cert-a-gateway-https").await.ok().flatten()
    })
    .await
    .unwrap();
    let (status, reason, _) = wait_for("Synced", WAIT, || async {
        env.listener_condition("app-a", "a-gateway", "https").await.filter(|c| c.0 == "True")
    })
    .await
    .unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Synced"));
    env.shutdown().await;
}

/// Each (verb, group, resource[/subresource]) a role grants, with the namespace it is granted in
/// (None: cluster-wide).
fn grants(objects: &[Value]) -> BTreeSet<(String, String, String, Option<String>)> {
    let mut out = BTreeSet::new();
    for role in objects.iter().filter(|o| o["kind"] == "ClusterRole" || o["kind"] == "Role") {
        let namespace = role["metadata"]["namespace"].as_str().map(str::to_owned);
        for rule in role["rules"].as_array().unwrap() {
            let strings = |k: &str| -> Vec<String> {
                rule[k].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
            };
            for verb in strings("verbs") {
                for group in strings("apiGroups") {
                    for resource in strings("resources") {
                        out.insert((verb.clone(), group.clone(), resource, namespace.clone()));
                    }
                }
            }
        }
    }
    out
}

/// Grants a scenario may leave unused, each with why it cannot reach it.
const NOT_REACHED: &[(&str, &str, &str, &str)] = &[(
    "patch",
    "events.k8s.io",
    "events",
    "the recorder patches an Event only when the same transition repeats within its cache window",
)];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_scenario_is_never_refused_and_uses_every_granted_verb() {
    let env = Env::start(Options::default()).await.unwrap();
    // TLS: the seed's two listeners get their Secrets and SecretProviderClasses.
    env.apply_yaml(NAMESPACES_YAML).await.unwrap();
    env.apply_yaml(GATEWAYS_YAML).await.unwrap();
    for (ns, gw) in [("app-a", "a-gateway"), ("app-b", "b-gateway")] {
        wait_for("Synced", WAIT, || async { env.listener_condition(ns, gw, "https").await.filter(|c| c.0 == "True") })
            .await
            .unwrap();
    }
    // A SecretProviderClass edited by hand is put back at the listener's next sync (server-side
    // apply); a rotation rewrites the Secret routewarden already owns.
    let spc = "kv-gw-cert-a-gateway-https";
    let tamper = json!({ "spec": { "parameters": { "keyvaultName": "tampered" } } });
    env.spcs("app-a").patch(spc, &PatchParams::default(), &Patch::Merge(&tamper)).await.unwrap();
    let rotated = env.azure.admin().rotate_certificate(seed000::VAULT, seed000::CERTIFICATE).unwrap();
    wait_for("the rotated version", WAIT, || async {
        env.listener_condition("app-a", "a-gateway", "https").await.filter(|c| c.2.contains(&rotated))
    })
    .await
    .unwrap();
    let restored = env.spcs("app-a").get(spc).await.unwrap();
    assert_eq!(restored.data["spec"]["parameters"]["keyvaultName"], seed000::VAULT);
    // Taking the options off a listener deletes what routewarden made for it.
    let options = "      options:\n        kubernetes.azure.com/tls-cert-keyvault-uri: https://kv-demo.vault.azure.net/certificates/approuting-demo-cert\n        kubernetes.azure.com/tls-cert-service-account: approuting-demo-sa\n";
    let without = GATEWAYS_YAML.split("---").next().unwrap().replace(options, "");
    assert!(!without.contains("options:"), "{without}");
    env.apply_yaml(&without).await.unwrap();
    wait_for("a-gateway's objects deleted", WAIT, || async {
        let secret = env.secrets("app-a").get_opt("kv-gw-cert-a-gateway-https").await.ok()?;
        let spc = env.spcs("app-a").get_opt("kv-gw-cert-a-gateway-https").await.ok()?;
        (secret.is_none() && spc.is_none()).then_some(())
    })
    .await
    .unwrap();

    // DNS: the walkthrough's ClusterExternalDNS and namespaced ExternalDNS, and one whose
    // records go with it (a finalizer, added and removed).
    env.apply_yaml(EXTERNALDNS_YAML).await.unwrap();
    env.apply_yaml(C_GATEWAY_YAML).await.unwrap();
    ready_when(&env, "externaldnses", Some("app-a"), "demo-ns-dns", |s| ready_of(s).0 == "True").await;
    let cluster = format!("{}  deletionPolicy: Delete\n", cluster_dns("deleting", &[zone_id()], None));
    let namespaced = cluster
        .replace("kind: ClusterExternalDNS\nmetadata:\n", "kind: ExternalDNS\nmetadata:\n  namespace: app-a\n")
        .replace("  resourceNamespace: app-a\n", "");
    for (yaml, plural, ns) in [(cluster, "clusterexternaldnses", None), (namespaced, "externaldnses", Some("app-a"))] {
        env.apply_yaml(&yaml).await.unwrap();
        let api = routewarden_e2e::dns::dns_api(&env, plural, ns);
        wait_for("the finalizer", WAIT, || async {
            api.get("deleting").await.ok()?.metadata.finalizers.filter(|f| !f.is_empty())
        })
        .await
        .unwrap();
        api.delete("deleting", &Default::default()).await.unwrap();
        wait_for("the resource gone", WAIT, || async { api.get_opt("deleting").await.ok()?.is_none().then_some(()) })
            .await
            .unwrap();
    }

    // Istio plug-in CA: cacerts created, istiod (selected by label) restarted, status written.
    use routewarden_sandbox::demo::istio_ca::{self, Authority, CaSet};
    istio_ca::federate(&env.azure.admin()).unwrap();
    env.apply_yaml(&istio_ca::cluster_yaml(seed000::CLIENT_ID, istio_ca::ISTIOD)).await.unwrap();
    let root = Authority::root("Root A").unwrap();
    let intermediate = root.intermediate("Intermediate CA - A1", false).unwrap();
    istio_ca::set_secrets(&env.azure.admin(), seed000::VAULT, &CaSet::new(&[&root], &intermediate, &root)).unwrap();
    let vault = format!("https://{}.vault.azure.net", seed000::VAULT);
    env.apply_yaml(&istio_ca::plugin_ca_yaml(istio_ca::NAME, &vault, "  pollInterval: 1s\n")).await.unwrap();
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(env.client.clone(), istio_ca::NAMESPACE);
    wait_for("istiod restarted for the new cacerts", WAIT, || async {
        let d = deployments.get(istio_ca::ISTIOD).await.ok()?;
        d.spec?.template.metadata?.annotations?.get("kubectl.kubernetes.io/restartedAt").cloned()
    })
    .await
    .unwrap();
    let plugin_cas: Api<routewarden::crd::istio::IstioPluginCa> = Api::all(env.client.clone());
    wait_for("IstioPluginCA Ready", WAIT, || async {
        let status = plugin_cas.get(istio_ca::NAME).await.ok()?.status?;
        status.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True").then_some(())
    })
    .await
    .unwrap();

    let log = env.kube.access_log();
    let (namespace, name) = SERVICE_ACCOUNT;
    let user = format!("system:serviceaccount:{namespace}:{name}");
    assert!(env.refused().is_empty(), "deploy/base's RBAC refused: {:#?}", env.refused());
    let used: BTreeSet<(String, String, String)> = log
        .iter()
        .filter(|a| a.user == user)
        .map(|a| {
            let resource = match &a.subresource {
                Some(sub) => format!("{}/{sub}", a.resource),
                None => a.resource.clone(),
            };
            (a.verb.clone(), a.group.clone(), resource)
        })
        .collect();
    let unused: Vec<_> = grants(&deploy_rbac_objects().unwrap())
        .into_iter()
        .filter(|(verb, group, resource, _)| !used.contains(&(verb.clone(), group.clone(), resource.clone())))
        .filter(|(verb, group, resource, _)| {
            !NOT_REACHED.iter().any(|(v, g, r, _)| v == verb && g == group && r == resource)
        })
        .collect();
    assert!(
        unused.is_empty(),
        "granted but never used (remove, or say why in NOT_REACHED): {unused:#?}\nused: {used:#?}"
    );
    env.shutdown().await;
}
