//! The emulated API server driven by kube-rs: CRUD, conflicts, selectors, pagination, watches
//! (bookmarks, 410), patches, server-side apply, finalizers, garbage collection, CRDs, tokens.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, Error};
use routewarden_sandbox::kube::KubeServerOptions;
use serde_json::json;

fn api_error(result: Result<impl std::fmt::Debug, Error>) -> kube::core::Status {
    match result {
        Err(Error::Api(e)) => *e,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn cm(name: &str, data: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": data})).unwrap()
}

async fn namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    api.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap())
        .await
        .unwrap();
}

fn gateways(client: &Client, ns: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "Gateway"),
        "gateways",
    );
    Api::namespaced_with(client.clone(), ns, &ar)
}

fn gateway(name: &str, port: i64) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": name},
        "spec": {"gatewayClassName": "unmanaged", "listeners": [{"name": "https", "port": port, "protocol": "HTTPS", "hostname": "a.example.com"}]}
    }))
    .unwrap()
}

#[tokio::test]
async fn requests_without_a_valid_token_get_401_status() {
    let server = common::server().await;
    let client = server.client_for_token("not-a-token").await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let err = api_error(api.list(&ListParams::default()).await);
    assert_eq!((err.code, err.reason.as_str(), err.message.as_str()), (401, "Unauthorized", "Unauthorized"));
}

#[tokio::test]
async fn configmap_crud_uses_resource_versions_and_real_error_wording() {
    let server = common::server().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().await.unwrap(), "default");
    let created = api.create(&PostParams::default(), &cm("settings", json!({"a": "1"}))).await.unwrap();
    let uid = created.metadata.uid.clone().unwrap();
    assert!(created.metadata.creation_timestamp.is_some());
    let rv1: u64 = created.metadata.resource_version.clone().unwrap().parse().unwrap();

    let dup = api_error(api.create(&PostParams::default(), &cm("settings", json!({}))).await);
    assert_eq!((dup.code, dup.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(dup.message, "configmaps \"settings\" already exists");

    let mut changed = created.clone();
    changed.data = Some([("a".to_string(), "2".to_string())].into());
    let updated = api.replace("settings", &PostParams::default(), &changed).await.unwrap();
    let rv2: u64 = updated.metadata.resource_version.clone().unwrap().parse().unwrap();
    assert!(rv2 > rv1, "resourceVersion is monotonic");
    assert_eq!(updated.metadata.uid.as_deref(), Some(uid.as_str()));

    let stale = api_error(api.replace("settings", &PostParams::default(), &changed).await);
    assert_eq!((stale.code, stale.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        stale.message,
        "Operation cannot be fulfilled on configmaps \"settings\": the object has been modified; please apply your changes to the latest version and try again"
    );

    api.delete("settings", &DeleteParams::default()).await.unwrap();
    let gone = api_error(api.get("settings").await);
    assert_eq!(
        (gone.code, gone.reason.as_str(), gone.message.as_str()),
        (404, "NotFound", "configmaps \"settings\" not found")
    );
}

#[tokio::test]
async fn secret_string_data_is_folded_into_data_and_not_stored() {
    use k8s_openapi::api::core::v1::Secret;
    let server = common::server().await;
    let secrets: Api<Secret> = Api::namespaced(server.client().await.unwrap(), "default");
    let secret: Secret = serde_json::from_value(json!({"metadata": {"name": "s"},
        "data": {"a": "b2xk", "b": "a2VwdA=="}, "stringData": {"a": "new", "c": "plain"}}))
    .unwrap();
    secrets.create(&PostParams::default(), &secret).await.unwrap();
    let stored = secrets.get("s").await.unwrap();
    let data = stored.data.unwrap();
    let text = |k: &str| String::from_utf8(data[k].0.clone()).unwrap();
    assert_eq!((text("a"), text("b"), text("c")), ("new".into(), "kept".into(), "plain".into()), "stringData wins");
    assert!(stored.string_data.is_none());
    assert_eq!(stored.type_.as_deref(), Some("Opaque"));
}

#[tokio::test]
async fn invalid_names_and_missing_namespaces_are_rejected_like_the_real_server() {
    let server = common::server().await;
    let client = server.client().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let bad = api_error(api.create(&PostParams::default(), &cm("Bad_Name", json!({}))).await);
    assert_eq!((bad.code, bad.reason.as_str()), (422, "Invalid"));
    assert!(bad.message.starts_with("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"), "{}", bad.message);
    let missing: Api<ConfigMap> = Api::namespaced(client, "nowhere");
    let err = api_error(missing.create(&PostParams::default(), &cm("x", json!({}))).await);
    assert_eq!((err.code, err.message.as_str()), (404, "namespaces \"nowhere\" not found"));
}

#[tokio::test]
async fn custom_resource_errors_name_the_group() {
    let server = common::server().await;
    let api = gateways(&server.client().await.unwrap(), "default");
    let err = api_error(api.get("nope").await);
    assert_eq!(err.message, "gateways.gateway.networking.k8s.io \"nope\" not found");
}

#[tokio::test]
async fn generation_moves_with_spec_only_and_status_is_a_separate_subresource() {
    let server = common::server().await;
    let api = gateways(&server.client().await.unwrap(), "default");
    let created = api.create(&PostParams::default(), &gateway("gw", 443)).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.data.get("status").is_none(), "status is dropped on create");

    let pp = PatchParams::default();
    let labelled = api.patch("gw", &pp, &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}}))).await.unwrap();
    assert_eq!(labelled.metadata.generation, Some(1), "metadata changes keep the generation");

    let status = json!({"status": {"conditions": [{"type": "Programmed", "status": "True", "reason": "Programmed", "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}]}});
    let with_status = api.patch_status("gw", &pp, &Patch::Merge(status.clone())).await.unwrap();
    assert_eq!(with_status.metadata.generation, Some(1), "status writes keep the generation");
    assert_eq!(with_status.data["status"]["conditions"][0]["type"], "Programmed");

    let spec_and_status = json!({"spec": {"gatewayClassName": "other"}, "status": {"conditions": []}});
    let after = api.patch("gw", &pp, &Patch::Merge(spec_and_status)).await.unwrap();
    assert_eq!(after.metadata.generation, Some(2), "spec changes bump the generation");
    assert_eq!(after.data["status"]["conditions"][0]["type"], "Programmed", "the main resource ignores status");

    let status_with_spec = json!({"spec": {"gatewayClassName": "third"}, "status": {"addresses": [{"type": "IPAddress", "value": "10.0.0.1"}]}});
    let after_status = api.patch_status("gw", &pp, &Patch::Merge(status_with_spec)).await.unwrap();
    assert_eq!(after_status.data["spec"]["gatewayClassName"], "other", "/status ignores spec");
    assert_eq!(after_status.data["status"]["addresses"][0]["value"], "10.0.0.1");
}

#[tokio::test]
async fn crd_schema_violations_are_422_with_field_causes_and_defaults_apply() {
    let server = common::server().await;
    let api = gateways(&server.client().await.unwrap(), "default");
    let err = api_error(api.create(&PostParams::default(), &gateway("gw", 70000)).await);
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert!(err.message.starts_with("Gateway.gateway.networking.k8s.io \"gw\" is invalid: "), "{}", err.message);
    assert!(err.message.contains("spec.listeners[0].port"), "{}", err.message);

    let no_class: DynamicObject = serde_json::from_value(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "gw"}, "spec": {"listeners": []}})).unwrap();
    let err = api_error(api.create(&PostParams::default(), &no_class).await);
    assert!(err.message.contains("spec.gatewayClassName: Required value"), "{}", err.message);
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists() {
    let server = common::server().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().await.unwrap(), "default");
    for (name, zone) in [("a", "east"), ("b", "west"), ("c", "north")] {
        let mut obj = cm(name, json!({}));
        obj.metadata.labels = Some([("zone".to_string(), zone.to_string())].into());
        api.create(&PostParams::default(), &obj).await.unwrap();
    }
    let names = |list: kube::core::ObjectList<ConfigMap>| {
        list.items.into_iter().map(|c| c.metadata.name.unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(names(api.list(&ListParams::default().labels("zone=east")).await.unwrap()), vec!["a"]);
    assert_eq!(names(api.list(&ListParams::default().labels("zone in (east,west)")).await.unwrap()), vec!["a", "b"]);
    assert_eq!(names(api.list(&ListParams::default().labels("zone notin (east),zone")).await.unwrap()), vec!["b", "c"]);
    assert_eq!(names(api.list(&ListParams::default().fields("metadata.name=c")).await.unwrap()), vec!["c"]);
    assert_eq!(
        names(api.list(&ListParams::default().fields("metadata.name!=c,metadata.namespace=default")).await.unwrap()),
        vec!["a", "b"]
    );
    let err = api_error(api.list(&ListParams::default().fields("spec.zone=east")).await);
    assert_eq!((err.code, err.message.as_str()), (400, "field label not supported: spec.zone"));
}

#[tokio::test]
async fn lists_paginate_with_limit_and_continue() {
    let server = common::server().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().await.unwrap(), "default");
    for i in 0..7 {
        api.create(&PostParams::default(), &cm(&format!("cm-{i}"), json!({}))).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut lp = ListParams::default().limit(3);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = api.list(&lp).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 3);
        seen.extend(page.items.into_iter().map(|c| c.metadata.name.unwrap()));
        token = page.metadata.continue_.filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
        if pages == 1 {
            assert_eq!(page.metadata.remaining_item_count, Some(4));
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, (0..7).map(|i| format!("cm-{i}")).collect::<Vec<_>>());
}

#[tokio::test]
async fn watch_replays_from_a_resource_version_and_sends_bookmarks() {
    let server = common::server().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().await.unwrap(), "default");
    let before = api.create(&PostParams::default(), &cm("before", json!({}))).await.unwrap();
    let rv = before.metadata.resource_version.unwrap();
    api.create(&PostParams::default(), &cm("after", json!({}))).await.unwrap();
    api.patch("after", &PatchParams::default(), &Patch::Merge(json!({"data": {"k": "v"}}))).await.unwrap();
    api.delete("after", &DeleteParams::default()).await.unwrap();

    let stream = api.watch(&WatchParams::default().timeout(10), &rv).await.unwrap();
    let events: Vec<_> = tokio::time::timeout(Duration::from_secs(10), stream.take(4).try_collect::<Vec<_>>())
        .await
        .expect("events in time")
        .unwrap();
    let kinds: Vec<String> = events
        .iter()
        .map(|e| match e {
            WatchEvent::Added(o) => format!("ADDED {}", o.metadata.name.clone().unwrap()),
            WatchEvent::Modified(o) => format!("MODIFIED {}", o.metadata.name.clone().unwrap()),
            WatchEvent::Deleted(o) => format!("DELETED {}", o.metadata.name.clone().unwrap()),
            WatchEvent::Bookmark(_) => "BOOKMARK".into(),
            WatchEvent::Error(e) => format!("ERROR {}", e.code),
        })
        .collect();
    assert_eq!(kinds, vec!["ADDED after", "MODIFIED after", "DELETED after", "BOOKMARK"]);
}

#[tokio::test]
async fn watch_ends_at_timeout_seconds() {
    let server = common::server().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().await.unwrap(), "default");
    let rv = api.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();
    let stream = api.watch(&WatchParams::default().timeout(1), &rv).await.unwrap();
    let started = std::time::Instant::now();
    let events: Vec<_> =
        tokio::time::timeout(Duration::from_secs(5), stream.collect::<Vec<_>>()).await.expect("stream ends");
    assert!(events.iter().all(|e| matches!(e, Ok(WatchEvent::Bookmark(_)))), "only bookmarks: {events:?}");
    assert!(started.elapsed() >= Duration::from_millis(500), "the stream lasted about timeoutSeconds");
}

#[tokio::test]
async fn watch_from_a_compacted_version_is_a_410_error_event() {
    let server = common::server_with(KubeServerOptions { watch_window: 3, ..KubeServerOptions::default() }).await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().await.unwrap(), "default");
    let first = api.create(&PostParams::default(), &cm("c0", json!({}))).await.unwrap();
    for i in 1..6 {
        api.create(&PostParams::default(), &cm(&format!("c{i}"), json!({}))).await.unwrap();
    }
    let old = first.metadata.resource_version.unwrap();
    let mut stream = api.watch(&WatchParams::default().timeout(5), &old).await.unwrap().boxed();
    let event = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("event in time")
        .expect("one event")
        .unwrap();
    match event {
        WatchEvent::Error(e) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert!(e.message.starts_with(&format!("too old resource version: {old} (")), "{}", e.message);
        }
        other => panic!("expected ERROR, got {other:?}"),
    }
}

#[tokio::test]
async fn kube_runtime_watcher_follows_changes() {
    use kube::runtime::{WatchStreamExt, watcher};
    let server = common::server().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().await.unwrap(), "default");
    let mut applied = watcher(api.clone(), watcher::Config::default().labels("app=w")).applied_objects().boxed();
    let mut obj = cm("watched", json!({"v": "1"}));
    obj.metadata.labels = Some([("app".to_string(), "w".to_string())].into());
    api.create(&PostParams::default(), &obj).await.unwrap();
    let seen =
        tokio::time::timeout(Duration::from_secs(10), applied.try_next()).await.expect("in time").unwrap().unwrap();
    assert_eq!(seen.metadata.name.as_deref(), Some("watched"));
    api.patch("watched", &PatchParams::default(), &Patch::Merge(json!({"data": {"v": "2"}}))).await.unwrap();
    let seen =
        tokio::time::timeout(Duration::from_secs(10), applied.try_next()).await.expect("in time").unwrap().unwrap();
    assert_eq!(seen.data.unwrap()["v"], "2");
}

#[tokio::test]
async fn json_merge_and_strategic_patches_apply_to_built_in_kinds() {
    let server = common::server().await;
    let client = server.client().await.unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "app:1"}, {"name": "sidecar", "image": "side:1"}]}}}
    }))
    .unwrap();
    deployments.create(&PostParams::default(), &deployment).await.unwrap();
    let restart = json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}}, "spec": {"containers": [{"name": "app", "image": "app:2"}]}}}});
    let patched = deployments.patch("web", &PatchParams::default(), &Patch::Strategic(restart)).await.unwrap();
    let containers = patched.spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers.clone();
    assert_eq!(
        containers.iter().map(|c| (c.name.as_str(), c.image.as_deref().unwrap())).collect::<Vec<_>>(),
        vec![("app", "app:2"), ("sidecar", "side:1")]
    );
    assert_eq!(patched.metadata.generation, Some(2));

    let configmaps: Api<ConfigMap> = Api::namespaced(client, "default");
    configmaps.create(&PostParams::default(), &cm("p", json!({"a": "1", "b": "2"}))).await.unwrap();
    let json_patch: json_patch::Patch = serde_json::from_value(
        json!([{"op": "replace", "path": "/data/a", "value": "9"}, {"op": "remove", "path": "/data/b"}]),
    )
    .unwrap();
    let after = configmaps.patch("p", &PatchParams::default(), &Patch::<()>::Json(json_patch)).await.unwrap();
    assert_eq!(after.data.unwrap(), [("a".to_string(), "9".to_string())].into());
    let failing: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/data/a", "value": "nope"}])).unwrap();
    let err = api_error(configmaps.patch("p", &PatchParams::default(), &Patch::<()>::Json(failing)).await);
    assert_eq!(err.code, 422);
    let merged = configmaps
        .patch("p", &PatchParams::default(), &Patch::Merge(json!({"data": {"a": null, "c": "3"}})))
        .await
        .unwrap();
    assert_eq!(merged.data.unwrap(), [("c".to_string(), "3".to_string())].into());
}

#[tokio::test]
async fn server_side_apply_creates_tracks_managers_and_reports_conflicts() {
    let server = common::server().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().await.unwrap(), "default");
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"owned": "1", "shared": "x"}});
    let created = api.patch("ssa", &PatchParams::apply("alice"), &Patch::Apply(&applied)).await.unwrap();
    assert_eq!(created.data.as_ref().unwrap()["owned"], "1");
    let managers: Vec<_> = created
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .map(|m| (m.manager.unwrap(), m.operation.unwrap()))
        .collect();
    assert_eq!(managers, vec![("alice".to_string(), "Apply".to_string())]);

    let bob = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"shared": "y"}});
    let err = api_error(api.patch("ssa", &PatchParams::apply("bob"), &Patch::Apply(&bob)).await);
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert_eq!(err.message, "Apply failed with 1 conflict: conflict with \"alice\": .data.shared");
    let forced = api.patch("ssa", &PatchParams::apply("bob").force(), &Patch::Apply(&bob)).await.unwrap();
    assert_eq!(forced.data.as_ref().unwrap()["shared"], "y");

    let alice_again =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": {"shared": "y"}});
    let after = api.patch("ssa", &PatchParams::apply("alice"), &Patch::Apply(&alice_again)).await.unwrap();
    assert!(!after.data.as_ref().unwrap().contains_key("owned"), "a field alice stops applying is removed");
    assert_eq!(after.data.as_ref().unwrap()["shared"], "y");
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let server = common::server().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().await.unwrap(), "default");
    let mut obj = cm("held", json!({}));
    obj.metadata.finalizers = Some(vec!["example.com/cleanup".into()]);
    api.create(&PostParams::default(), &obj).await.unwrap();
    api.delete("held", &DeleteParams::default()).await.unwrap();
    let held = api.get("held").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    let err = api_error(
        api.patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/cleanup", "example.com/new"]}})),
        )
        .await,
    );
    assert_eq!(err.code, 422);
    api.patch("held", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}}))).await.unwrap();
    assert_eq!(api_error(api.get("held").await).code, 404);
}

fn owned_by(name: &str, owner: &ConfigMap) -> ConfigMap {
    let mut obj = cm(name, json!({}));
    obj.metadata.owner_references = Some(vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: owner.metadata.name.clone().unwrap(),
        uid: owner.metadata.uid.clone().unwrap(),
        block_owner_deletion: Some(true),
        controller: Some(true),
    }]);
    obj
}

#[tokio::test]
async fn owner_references_are_garbage_collected_in_background_foreground_and_orphan_modes() {
    let server = common::server().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().await.unwrap(), "default");
    let pp = PostParams::default();

    let owner = api.create(&pp, &cm("owner-bg", json!({}))).await.unwrap();
    api.create(&pp, &owned_by("child-bg", &owner)).await.unwrap();
    api.delete("owner-bg", &DeleteParams::background()).await.unwrap();
    common::eventually("background deletion collects dependents", || async {
        api.get_opt("child-bg").await.unwrap().is_none()
    })
    .await;

    let owner = api.create(&pp, &cm("owner-fg", json!({}))).await.unwrap();
    let mut held = owned_by("child-fg", &owner);
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&pp, &held).await.unwrap();
    api.delete("owner-fg", &DeleteParams::foreground()).await.unwrap();
    let waiting = api.get("owner-fg").await.unwrap();
    assert_eq!(
        waiting.metadata.finalizers,
        Some(vec!["foregroundDeletion".to_string()]),
        "the owner waits for its dependents"
    );
    common::eventually("the dependent is being deleted", || async {
        api.get("child-fg").await.unwrap().metadata.deletion_timestamp.is_some()
    })
    .await;
    assert!(api.get_opt("owner-fg").await.unwrap().is_some(), "the owner waits while a dependent remains");
    api.patch("child-fg", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}})))
        .await
        .unwrap();
    common::eventually("the owner goes once its dependents are gone", || async {
        api.get_opt("owner-fg").await.unwrap().is_none()
    })
    .await;

    let owner = api.create(&pp, &cm("owner-or", json!({}))).await.unwrap();
    api.create(&pp, &owned_by("child-or", &owner)).await.unwrap();
    api.delete("owner-or", &DeleteParams::orphan()).await.unwrap();
    let orphan = api.get("child-or").await.unwrap();
    assert!(orphan.metadata.owner_references.unwrap_or_default().is_empty());
}

#[tokio::test]
async fn namespace_deletion_cascades_to_its_objects() {
    let server = common::server().await;
    let client = server.client().await.unwrap();
    namespace(&client, "doomed").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
    let mut held = cm("held", json!({}));
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&PostParams::default(), &held).await.unwrap();
    api.create(&PostParams::default(), &cm("plain", json!({}))).await.unwrap();
    let namespaces: Api<Namespace> = Api::all(client);
    namespaces.delete("doomed", &DeleteParams::default()).await.unwrap();
    let terminating = namespaces.get("doomed").await.unwrap();
    assert_eq!(terminating.status.unwrap().phase.as_deref(), Some("Terminating"));
    common::eventually("the namespace's objects are deleted", || async {
        api.get_opt("plain").await.unwrap().is_none()
    })
    .await;
    let err = api_error(api.create(&PostParams::default(), &cm("late", json!({}))).await);
    assert_eq!(err.code, 403);
    assert_eq!(
        err.message,
        "configmaps \"late\" is forbidden: unable to create new content in namespace doomed because it is being terminated"
    );
    common::eventually("the held object is being deleted", || async {
        api.get("held").await.unwrap().metadata.deletion_timestamp.is_some()
    })
    .await;
    api.patch("held", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}}))).await.unwrap();
    common::eventually("the empty namespace goes", || async { namespaces.get_opt("doomed").await.unwrap().is_none() })
        .await;
}

#[tokio::test]
async fn a_new_crd_is_served_generically() {
    let server = common::server().await;
    let client = server.client().await.unwrap();
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    let crd = serde_json::from_value(json!({
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced", "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
                 "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer", "default": 3}}}}}}}]}
    }))
    .unwrap();
    let created = crds.create(&PostParams::default(), &crd).await.unwrap();
    let established =
        created.status.unwrap().conditions.unwrap().into_iter().any(|c| c.type_ == "Established" && c.status == "True");
    assert!(established);
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("example.com", "v1", "Widget"), "widgets");
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let w: DynamicObject = serde_json::from_value(
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"unknown": true}}),
    )
    .unwrap();
    let stored = widgets.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(stored.data["spec"], json!({"size": 3}), "defaults applied, unknown fields pruned");
    crds.delete("widgets.example.com", &DeleteParams::default()).await.unwrap();
    let err = api_error(widgets.list(&ListParams::default()).await);
    assert_eq!(err.code, 404);
}

#[tokio::test]
async fn service_account_tokens_are_rs256_jwts_that_authenticate() {
    let server = common::server().await;
    let client = server.client().await.unwrap();
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    sas.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "robot"}})).unwrap())
        .await
        .unwrap();
    let request: TokenRequest = serde_json::from_value(
        json!({"spec": {"audiences": ["api://AzureADTokenExchange"], "expirationSeconds": 3600}}),
    )
    .unwrap();
    let response = sas.create_token_request("robot", &PostParams::default(), &request).await.unwrap();
    let token = response.status.unwrap().token;

    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(server.token_issuer().jwks()).unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("kid in jwks");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["api://AzureADTokenExchange"]);
    validation.set_issuer(&[server.url()]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["sub"], "system:serviceaccount:default:robot");
    assert_eq!(claims["kubernetes.io"]["serviceaccount"]["name"], "robot");

    let bad = api_error(
        sas.create_token_request(
            "robot",
            &PostParams::default(),
            &serde_json::from_value(json!({"spec": {"audiences": ["x"], "expirationSeconds": 10}})).unwrap(),
        )
        .await,
    );
    assert_eq!(bad.code, 422);

    // A token for the API server's own audience is a credential; for another audience it is not.
    let api_token = sas
        .create_token_request(
            "robot",
            &PostParams::default(),
            &serde_json::from_value(json!({"spec": {"audiences": []}})).unwrap(),
        )
        .await
        .unwrap()
        .status
        .unwrap()
        .token;
    let as_robot: Api<ConfigMap> = Api::namespaced(server.client_for_token(&api_token).await.unwrap(), "default");
    assert_eq!(
        api_error(as_robot.list(&ListParams::default()).await).code,
        403,
        "authenticated, but RBAC grants nothing yet"
    );
    let foreign: Api<ConfigMap> = Api::namespaced(server.client_for_token(&token).await.unwrap(), "default");
    assert_eq!(api_error(foreign.list(&ListParams::default()).await).code, 401);
    sas.delete("robot", &DeleteParams::default()).await.unwrap();
    assert_eq!(
        api_error(as_robot.list(&ListParams::default()).await).code,
        401,
        "tokens die with their ServiceAccount"
    );
}

async fn robot_token(client: &Client, ns: &str, name: &str) -> String {
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    sas.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap())
        .await
        .unwrap();
    let request: TokenRequest = serde_json::from_value(json!({"spec": {"audiences": []}})).unwrap();
    sas.create_token_request(name, &PostParams::default(), &request).await.unwrap().status.unwrap().token
}

#[tokio::test]
async fn rbac_grants_service_accounts_exactly_what_their_bindings_say() {
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
    let server = common::server().await;
    let admin = server.client().await.unwrap();
    namespace(&admin, "team").await;
    robot_token(&admin, "team", "rw").await;
    let token = server.service_account_token("team", "rw").unwrap();
    let robot = server.client_for_token(&token).await.unwrap();
    let team_cms: Api<ConfigMap> = Api::namespaced(robot.clone(), "team");

    let denied = api_error(team_cms.list(&ListParams::default()).await);
    assert_eq!((denied.code, denied.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        denied.message,
        "configmaps is forbidden: User \"system:serviceaccount:team:rw\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"team\""
    );

    let roles: Api<Role> = Api::namespaced(admin.clone(), "team");
    roles.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "read-cms"}, "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}]})).unwrap()).await.unwrap();
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), "team");
    bindings
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "rw-reads"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-cms"}, "subjects": [{"kind": "ServiceAccount", "name": "rw", "namespace": "team"}]})).unwrap())
        .await
        .unwrap();
    team_cms.list(&ListParams::default()).await.unwrap();
    let create = api_error(team_cms.create(&PostParams::default(), &cm("x", json!({}))).await);
    assert_eq!(
        create.message,
        "configmaps is forbidden: User \"system:serviceaccount:team:rw\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"team\""
    );
    let elsewhere: Api<ConfigMap> = Api::namespaced(robot.clone(), "default");
    assert_eq!(
        api_error(elsewhere.list(&ListParams::default()).await).code,
        403,
        "a RoleBinding grants only in its namespace"
    );

    let gws = gateways(&robot, "default");
    let all_gws: Api<DynamicObject> = Api::all_with(
        robot.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "Gateway"),
            "gateways",
        ),
    );
    let denied = api_error(all_gws.list(&ListParams::default()).await);
    assert!(
        denied.message.ends_with(
            "cannot list resource \"gateways\" in API group \"gateway.networking.k8s.io\" at the cluster scope"
        ),
        "{}",
        denied.message
    );
    let cluster_roles: Api<ClusterRole> = Api::all(admin.clone());
    cluster_roles
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "gw-status"}, "rules": [
            {"apiGroups": ["gateway.networking.k8s.io"], "resources": ["gateways"], "verbs": ["list", "watch"]},
            {"apiGroups": ["gateway.networking.k8s.io"], "resources": ["gateways/status"], "verbs": ["patch"], "resourceNames": ["edge"]}
        ]})).unwrap())
        .await
        .unwrap();
    let crbs: Api<ClusterRoleBinding> = Api::all(admin.clone());
    crbs.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "gw-status"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "gw-status"}, "subjects": [{"kind": "Group", "name": "system:serviceaccounts:team"}]})).unwrap())
        .await
        .unwrap();
    all_gws.list(&ListParams::default()).await.unwrap();
    gateways(&admin, "default").create(&PostParams::default(), &gateway("edge", 443)).await.unwrap();
    gateways(&admin, "default").create(&PostParams::default(), &gateway("core", 443)).await.unwrap();
    let status = Patch::Merge(json!({"status": {"addresses": [{"type": "IPAddress", "value": "10.1.1.1"}]}}));
    gws.patch_status("edge", &PatchParams::default(), &status).await.unwrap();
    let named = api_error(gws.patch_status("core", &PatchParams::default(), &status).await);
    assert_eq!(
        named.message,
        "gateways.gateway.networking.k8s.io \"core\" is forbidden: User \"system:serviceaccount:team:rw\" cannot patch resource \"gateways/status\" in API group \"gateway.networking.k8s.io\" in the namespace \"default\""
    );
    let spec = api_error(
        gws.patch("edge", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}}))).await,
    );
    assert_eq!(spec.code, 403, "status rights do not grant the main resource");
}

#[tokio::test]
async fn discovery_serves_aggregated_v2_with_the_exact_media_type() {
    let server = common::server().await;
    let client = server.client().await.unwrap();
    let request = http::Request::get("/apis")
        .header("accept", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")
        .body(Vec::new())
        .unwrap();
    let response = client.send(request.map(kube::client::Body::from)).await.unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let gateway = doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["metadata"]["name"] == "gateway.networking.k8s.io")
        .expect("gateway group");
    let resources = gateway["versions"][0]["resources"].as_array().unwrap();
    let gw = resources.iter().find(|r| r["resource"] == "gateways").unwrap();
    assert_eq!(gw["responseKind"]["kind"], "Gateway");
    assert_eq!(gw["scope"], "Namespaced");
    assert_eq!(gw["shortNames"], json!(["gtw"]));

    let core: serde_json::Value =
        client.request(http::Request::get("/api/v1").body(Vec::new()).unwrap()).await.unwrap();
    let token = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "serviceaccounts/token")
        .expect("token subresource");
    assert_eq!(token["kind"], "TokenRequest");
    let version = client.apiserver_version().await.unwrap();
    assert_eq!((version.major.as_str(), version.minor.as_str()), ("1", "32"));
    let missing = client.request_text(http::Request::get("/openapi/v2").body(Vec::new()).unwrap()).await;
    assert!(matches!(missing, Err(Error::Api(e)) if e.code == 404));
}

#[tokio::test]
async fn unknown_patch_types_are_415() {
    let server = common::server().await;
    let client = server.client().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &cm("p", json!({}))).await.unwrap();
    let request = http::Request::patch("/api/v1/namespaces/default/configmaps/p")
        .header("content-type", "text/plain")
        .body(b"{}".to_vec())
        .unwrap();
    let err = api_error(client.request::<ConfigMap>(request).await);
    assert_eq!((err.code, err.reason.as_str()), (415, "UnsupportedMediaType"));
    let gws = gateways(&client, "default");
    gws.create(&PostParams::default(), &gateway("g", 443)).await.unwrap();
    let err = api_error(
        gws.patch("g", &PatchParams::default(), &Patch::Strategic(json!({"metadata": {"labels": {"a": "b"}}}))).await,
    );
    assert_eq!(err.code, 415, "strategic merge patch is not served for custom resources");
}

#[tokio::test]
async fn a_restarted_sandbox_with_a_state_dir_keeps_objects_versions_and_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let options = || KubeServerOptions { state_dir: Some(dir.path().to_path_buf()), ..KubeServerOptions::default() };
    let first = common::server_with(options()).await;
    let client = first.client().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let kept = api.create(&PostParams::default(), &cm("kept", json!({"a": "1"}))).await.unwrap();
    let token = robot_token(&client, "default", "survivor").await;
    let (url, kubeconfig) = (first.url().to_string(), first.kubeconfig_yaml());
    first.shutdown().await;

    let second = common::server_with(options()).await;
    assert_eq!(second.url(), url, "the same port");
    assert_eq!(second.kubeconfig_yaml(), kubeconfig, "the same CA and admin token");
    let api: Api<ConfigMap> = Api::namespaced(second.client().await.unwrap(), "default");
    let restored = api.get("kept").await.unwrap();
    assert_eq!(restored.metadata.uid, kept.metadata.uid);
    assert_eq!(restored.metadata.resource_version, kept.metadata.resource_version);
    let next = api.create(&PostParams::default(), &cm("after", json!({}))).await.unwrap();
    let (before, after): (u64, u64) = (
        kept.metadata.resource_version.unwrap().parse().unwrap(),
        next.metadata.resource_version.unwrap().parse().unwrap(),
    );
    assert!(after > before, "resourceVersions keep growing across restarts");
    let robot: Api<ConfigMap> = Api::namespaced(second.client_for_token(&token).await.unwrap(), "default");
    assert_eq!(
        api_error(robot.list(&ListParams::default()).await).code,
        403,
        "the old token still authenticates (and RBAC still applies)"
    );
}

#[tokio::test]
async fn crd_cel_rules_reject_invalid_objects_with_422() {
    let server = common::server().await;
    let client = server.client().await.unwrap();
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    let crd = serde_json::from_value(json!({
        "metadata": {"name": "ranges.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced", "names": {"plural": "ranges", "singular": "range", "kind": "Range"},
                 "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {
                     "type": "object",
                     "x-kubernetes-validations": [{"rule": "self.low <= self.high", "message": "low must not exceed high"}],
                     "properties": {"low": {"type": "integer"}, "high": {"type": "integer"}}
                 }}}}}]}
    }))
    .unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("example.com", "v1", "Range"), "ranges");
    let ranges: Api<DynamicObject> = Api::namespaced_with(client, "default", &ar);
    let good: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Range", "metadata": {"name": "ok"}, "spec": {"low": 1, "high": 2}})).unwrap();
    ranges.create(&PostParams::default(), &good).await.unwrap();
    let bad: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Range", "metadata": {"name": "bad"}, "spec": {"low": 5, "high": 2}})).unwrap();
    let err = api_error(ranges.create(&PostParams::default(), &bad).await);
    assert_eq!(
        (err.code, err.message.as_str()),
        (422, "Range.example.com \"bad\" is invalid: spec: Invalid value: \"object\": low must not exceed high")
    );
    let patched = ranges.patch("ok", &PatchParams::default(), &Patch::Merge(json!({"spec": {"low": 9}}))).await;
    assert_eq!(api_error(patched).code, 422, "updates are validated too");
}

#[tokio::test]
async fn label_selected_watches_see_objects_enter_and_leave() {
    let server = common::server().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().await.unwrap(), "default");
    let rv = api.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();
    api.create(&PostParams::default(), &cm("mover", json!({}))).await.unwrap();
    let label = |v: &str| Patch::Merge(json!({"metadata": {"labels": {"team": v}}}));
    api.patch("mover", &PatchParams::default(), &label("a")).await.unwrap();
    api.patch("mover", &PatchParams::default(), &Patch::Merge(json!({"data": {"x": "1"}}))).await.unwrap();
    api.patch("mover", &PatchParams::default(), &label("b")).await.unwrap();
    let stream = api.watch(&WatchParams::default().labels("team=a").timeout(5).disable_bookmarks(), &rv).await.unwrap();
    let events: Vec<String> = tokio::time::timeout(Duration::from_secs(10), stream.take(3).try_collect::<Vec<_>>())
        .await
        .expect("events in time")
        .unwrap()
        .into_iter()
        .map(|e| {
            match e {
                WatchEvent::Added(_) => "ADDED",
                WatchEvent::Modified(_) => "MODIFIED",
                WatchEvent::Deleted(_) => "DELETED",
                _ => "OTHER",
            }
            .to_string()
        })
        .collect();
    assert_eq!(events, vec!["ADDED", "MODIFIED", "DELETED"]);
}

#[tokio::test]
async fn kube_runtime_event_recorder_creates_and_updates_events() {
    use k8s_openapi::api::events::v1::Event as K8sEvent;
    use kube::Resource;
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};
    let server = common::server().await;
    let client = server.client().await.unwrap();
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let subject = configmaps.create(&PostParams::default(), &cm("subject", json!({}))).await.unwrap();
    let recorder = Recorder::new(client.clone(), Reporter { controller: "routewarden".into(), instance: None });
    let event = Event {
        type_: EventType::Normal,
        reason: "Published".into(),
        note: Some("record set written".into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    recorder.publish(&event, &subject.object_ref(&())).await.unwrap();
    recorder.publish(&event, &subject.object_ref(&())).await.unwrap();
    let events: Api<K8sEvent> = Api::namespaced(client, "default");
    let listed = events.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(listed.len(), 1, "a repeated event is one object with a series");
    let e = &listed[0];
    assert_eq!(
        (e.reason.as_deref(), e.regarding.as_ref().and_then(|r| r.name.as_deref())),
        (Some("Published"), Some("subject"))
    );
    assert_eq!(e.series.as_ref().map(|s| s.count), Some(2));

    // One store behind both APIs: the core view (what kubectl describe reads) shows the same event.
    let core: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(server.client().await.unwrap(), "default");
    let selected = core
        .list(&ListParams::default().fields("involvedObject.kind=ConfigMap,involvedObject.name=subject"))
        .await
        .unwrap()
        .items;
    assert_eq!(selected.len(), 1);
    assert_eq!(
        (selected[0].message.as_deref(), selected[0].reporting_component.as_deref()),
        (Some("record set written"), Some("routewarden"))
    );
    let by_regarding = events.list(&ListParams::default().fields("regarding.name=subject")).await.unwrap().items;
    assert_eq!(by_regarding.len(), 1);
}

#[tokio::test]
async fn server_side_dry_run_validates_without_storing() {
    let server = common::server().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().await.unwrap(), "default");
    let dry = PostParams { dry_run: true, field_manager: None };
    let returned = api.create(&dry, &cm("dry", json!({"a": "1"}))).await.unwrap();
    assert_eq!(returned.metadata.name.as_deref(), Some("dry"));
    assert!(api.get_opt("dry").await.unwrap().is_none(), "nothing stored");
}

#[tokio::test]
async fn streaming_list_watchers_get_initial_events_and_the_end_bookmark() {
    use kube::runtime::{WatchStreamExt, watcher};
    let server = common::server().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client().await.unwrap(), "default");
    api.create(&PostParams::default(), &cm("existing", json!({}))).await.unwrap();
    let mut events = watcher(api.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut initialized = false;
    let mut seen_existing = false;
    while !initialized {
        match tokio::time::timeout(Duration::from_secs(10), events.try_next()).await.expect("in time").unwrap().unwrap()
        {
            watcher::Event::InitApply(cm) => seen_existing |= cm.metadata.name.as_deref() == Some("existing"),
            watcher::Event::InitDone => initialized = true,
            _ => {}
        }
    }
    assert!(seen_existing, "the initial events carry the existing object");
    api.create(&PostParams::default(), &cm("later", json!({}))).await.unwrap();
    let mut applied = events.applied_objects();
    let later =
        tokio::time::timeout(Duration::from_secs(10), applied.try_next()).await.expect("in time").unwrap().unwrap();
    assert_eq!(later.metadata.name.as_deref(), Some("later"));
}

#[tokio::test]
async fn server_side_apply_on_the_status_subresource_owns_only_status() {
    let server = common::server().await;
    let api = gateways(&server.client().await.unwrap(), "default");
    api.create(&PostParams::default(), &gateway("gw", 443)).await.unwrap();
    let status = json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "gw"},
        "spec": {"gatewayClassName": "ignored-on-status"},
        "status": {"addresses": [{"type": "IPAddress", "value": "10.9.9.9"}]}});
    let applied = api.patch_status("gw", &PatchParams::apply("status-writer"), &Patch::Apply(&status)).await.unwrap();
    assert_eq!(applied.data["status"]["addresses"][0]["value"], "10.9.9.9");
    assert_eq!(applied.data["spec"]["gatewayClassName"], "unmanaged", "a status apply does not touch spec");
    let entry = applied
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .find(|m| m.manager.as_deref() == Some("status-writer"))
        .expect("entry");
    assert_eq!((entry.operation.as_deref(), entry.subresource.as_deref()), (Some("Apply"), Some("status")));
    let fields = serde_json::to_value(entry.fields_v1.unwrap()).unwrap();
    assert!(fields.get("f:status").is_some() && fields.get("f:spec").is_none(), "{fields}");

    // A status apply never creates: once the object is gone, it is a 404 and nothing appears.
    api.delete("gw", &Default::default()).await.unwrap();
    let gone = api.patch_status("gw", &PatchParams::apply("status-writer"), &Patch::Apply(&status)).await.unwrap_err();
    assert!(matches!(&gone, kube::Error::Api(e) if e.code == 404), "{gone:?}");
    assert!(api.get_opt("gw").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_lease_manager_elects_one_leader_and_hands_over_on_release() {
    use k8s_openapi::api::coordination::v1::Lease;
    use kube_lease_manager::LeaseManagerBuilder;
    let server = common::server().await;
    let client = server.client().await.unwrap();
    let manager = |identity: &str| {
        LeaseManagerBuilder::new(client.clone(), "routewarden-leader")
            .with_identity(identity)
            .with_duration(3)
            .with_grace(1)
            .build()
    };
    let a = manager("a").await.unwrap();
    let b = manager("b").await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_secs(10), a.changed()).await.expect("a decides in time").unwrap(),
        "a leads"
    );
    let b_waits = tokio::time::timeout(Duration::from_millis(1500), b.changed()).await;
    assert!(b_waits.is_err() || !b_waits.unwrap().unwrap(), "b does not lead while a holds the lease");
    let leases: Api<Lease> = Api::namespaced(client, "default");
    let lease = leases.get("routewarden-leader").await.unwrap();
    assert_eq!(lease.spec.unwrap().holder_identity.as_deref(), Some("a"));
    a.release().await.unwrap();
    let b_leads = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if b.changed().await.unwrap() {
                return;
            }
        }
    })
    .await;
    assert!(b_leads.is_ok(), "b takes over after a releases");
    assert_eq!(leases.get("routewarden-leader").await.unwrap().spec.unwrap().holder_identity.as_deref(), Some("b"));
}

#[tokio::test]
async fn bad_requests_get_status_objects_never_panics() {
    let server = common::server().await;
    let client = server.client().await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &cm("target", json!({}))).await.unwrap();
    let base = "/api/v1/namespaces/default/configmaps";
    let cases: Vec<(&str, http::Request<Vec<u8>>, u16, &str)> = vec![
        (
            "malformed JSON",
            http::Request::post(base).header("content-type", "application/json").body(b"{nope".to_vec()).unwrap(),
            400,
            "BadRequest",
        ),
        ("a JSON array", http::Request::post(base).body(b"[]".to_vec()).unwrap(), 400, "BadRequest"),
        (
            "another kind",
            http::Request::post(base)
                .body(br#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"}}"#.to_vec())
                .unwrap(),
            400,
            "BadRequest",
        ),
        (
            "another version",
            http::Request::post(base)
                .body(br#"{"apiVersion":"v2","kind":"ConfigMap","metadata":{"name":"s"}}"#.to_vec())
                .unwrap(),
            400,
            "BadRequest",
        ),
        (
            "an unknown media type",
            http::Request::post(base).header("content-type", "text/plain").body(b"x".to_vec()).unwrap(),
            415,
            "UnsupportedMediaType",
        ),
        ("a missing name", http::Request::post(base).body(br#"{"metadata":{}}"#.to_vec()).unwrap(), 422, "Invalid"),
        (
            "a bad label selector",
            http::Request::get(format!("{base}?labelSelector=a%20in%20b")).body(Vec::new()).unwrap(),
            400,
            "BadRequest",
        ),
        (
            "a bad continue token",
            http::Request::get(format!("{base}?limit=1&continue=garbage")).body(Vec::new()).unwrap(),
            400,
            "BadRequest",
        ),
        ("a bad limit", http::Request::get(format!("{base}?limit=many")).body(Vec::new()).unwrap(), 400, "BadRequest"),
        (
            "a bad watch version",
            http::Request::get(format!("{base}?watch=true&resourceVersion=abc")).body(Vec::new()).unwrap(),
            400,
            "BadRequest",
        ),
        (
            "an unknown resource",
            http::Request::get("/api/v1/namespaces/default/widgets").body(Vec::new()).unwrap(),
            404,
            "NotFound",
        ),
        (
            "an unknown group",
            http::Request::get("/apis/nope.example.com/v1").body(Vec::new()).unwrap(),
            404,
            "NotFound",
        ),
        (
            "an unknown subresource",
            http::Request::get(format!("{base}/target/scale")).body(Vec::new()).unwrap(),
            404,
            "NotFound",
        ),
        (
            "a cluster kind under a namespace",
            http::Request::get("/api/v1/namespaces/default/namespaces/x").body(Vec::new()).unwrap(),
            404,
            "NotFound",
        ),
        (
            "PUT of a missing object",
            http::Request::put(format!("{base}/missing")).body(br#"{"metadata":{"name":"missing"}}"#.to_vec()).unwrap(),
            404,
            "NotFound",
        ),
        (
            "PUT with another name",
            http::Request::put(format!("{base}/target")).body(br#"{"metadata":{"name":"other"}}"#.to_vec()).unwrap(),
            400,
            "BadRequest",
        ),
        (
            "a malformed JSON patch",
            http::Request::patch(format!("{base}/target"))
                .header("content-type", "application/json-patch+json")
                .body(br#"{"op":"add"}"#.to_vec())
                .unwrap(),
            400,
            "BadRequest",
        ),
        (
            "apply without a field manager",
            http::Request::patch(format!("{base}/target"))
                .header("content-type", "application/apply-patch+yaml")
                .body(b"apiVersion: v1\nkind: ConfigMap\n".to_vec())
                .unwrap(),
            400,
            "BadRequest",
        ),
        (
            "apply of broken YAML",
            http::Request::patch(format!("{base}/target?fieldManager=m"))
                .header("content-type", "application/apply-patch+yaml")
                .body(b"a: [".to_vec())
                .unwrap(),
            400,
            "BadRequest",
        ),
        (
            "a garbage protobuf body",
            http::Request::post(base)
                .header("content-type", "application/vnd.kubernetes.protobuf")
                .body(b"k8s\0\xff\xff".to_vec())
                .unwrap(),
            400,
            "BadRequest",
        ),
        (
            "a verb the resource lacks",
            http::Request::post(format!("{base}/target")).body(b"{}".to_vec()).unwrap(),
            405,
            "MethodNotAllowed",
        ),
    ];
    for (description, request, code, reason) in cases {
        match client.request_text(request).await {
            Err(Error::Api(status)) => {
                assert_eq!((status.code, status.reason.as_str()), (code, reason), "{description}: {}", status.message);
            }
            other => panic!("{description}: expected a {code} Status, got {other:?}"),
        }
    }
    cms.get("target").await.expect("the server is still serving");
}

#[tokio::test]
async fn events_written_as_core_v1_are_watched_as_events_k8s_io() {
    use k8s_openapi::api::core::v1::Event as CoreEvent;
    use k8s_openapi::api::events::v1::Event as EventV1;
    let server = common::server().await;
    let client = server.client().await.unwrap();
    let v1: Api<EventV1> = Api::namespaced(client.clone(), "default");
    let rv = v1.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();
    let core: Api<CoreEvent> = Api::namespaced(client, "default");
    let event: CoreEvent = serde_json::from_value(json!({"metadata": {"name": "old-style"}, "involvedObject": {"kind": "Gateway", "name": "gw"}, "reason": "Synced", "message": "done", "type": "Normal", "source": {"component": "legacy"}})).unwrap();
    core.create(&PostParams::default(), &event).await.unwrap();
    let mut stream = v1.watch(&WatchParams::default().timeout(5), &rv).await.unwrap().boxed();
    let first =
        tokio::time::timeout(Duration::from_secs(5), stream.next()).await.expect("in time").expect("an event").unwrap();
    let WatchEvent::Added(seen) = first else { panic!("expected ADDED, got {first:?}") };
    assert_eq!(seen.regarding.and_then(|r| r.name).as_deref(), Some("gw"));
    assert_eq!((seen.note.as_deref(), seen.reporting_controller.as_deref()), (Some("done"), Some("legacy")));
}

#[tokio::test]
async fn metadata_only_requests_get_partial_object_metadata_without_data() {
    let server = common::server().await;
    let client = server.client().await.unwrap();
    namespace(&client, "meta").await;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), "meta");
    let secret = serde_json::from_value(json!({
        "metadata": {"name": "s", "labels": {"app": "x"}},
        "type": "Opaque",
        "stringData": {"password": "hunter2"},
    }))
    .unwrap();
    secrets.create(&PostParams::default(), &secret).await.unwrap();

    // A metadata informer (kube-rs `Api<PartialObjectMeta<K>>`, client-go metadata clients).
    let meta: Api<kube::core::PartialObjectMeta<k8s_openapi::api::core::v1::Secret>> =
        Api::namespaced(client.clone(), "meta");
    let raw = |path: &str, accept: &str| {
        http::Request::get(path).header("Accept", accept.to_owned()).body(Vec::new()).unwrap()
    };
    let list: serde_json::Value = client
        .request(raw(
            "/api/v1/namespaces/meta/secrets",
            "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
        ))
        .await
        .unwrap();
    assert_eq!(list["kind"], "PartialObjectMetadataList");
    assert_eq!(list["items"][0]["kind"], "PartialObjectMetadata");
    assert_eq!(list["items"][0]["metadata"]["labels"]["app"], "x");
    assert!(!list.to_string().contains("aHVudGVyMg"), "no Secret data in metadata-only answers: {list}");
    let one = meta.get_metadata("s").await.unwrap();
    assert_eq!(one.metadata.name.as_deref(), Some("s"));

    // Watches too.
    let mut stream = kube::runtime::watcher(meta, kube::runtime::watcher::Config::default()).boxed();
    let mut seen = false;
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(5), stream.try_next()).await.unwrap() {
        if let kube::runtime::watcher::Event::InitApply(o) = event {
            assert_eq!(o.metadata.name.as_deref(), Some("s"));
            seen = true;
        }
        if seen {
            break;
        }
    }
    assert!(seen);
    let body = client
        .request_text(raw(
            "/api/v1/namespaces/meta/secrets?watch=true&timeoutSeconds=1",
            "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
        ))
        .await
        .unwrap();
    assert!(body.contains("\"PartialObjectMetadata\"") && !body.contains("aHVudGVyMg"), "{body}");
}
