"""The official Kubernetes Python client against the routewarden sandbox.

Run by sandbox/tests/python_client.rs as `python3 client_test.py KUBECONFIG`. It exercises what
emulators.md lists for the client: JSON bodies without a Content-Type, strategic merge patch from
a dict, list, and watch with bookmarks, transparent reconnect, and 410 handling (one retry without
timeout_seconds, none with it). Faults are injected through the sandbox's admin endpoint.
Exits non-zero when a check fails; prints "N passed, M failed".
"""

import sys
import traceback

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

NS = "default"


def faults(api_client, body):
    params = api_client.param_serialize(
        method="POST", resource_path="/sandbox/faults", body=body, header_params={"Content-Type": "application/json"}, auth_settings=["BearerToken"]
    )
    response = api_client.call_api(*params)
    response.read()
    assert response.status == 200, response.status


def cm(name, value="1"):
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels={"suite": "python"}), data={"v": value})


def test_list_and_create_without_content_type(core, api_client):
    names = [n.metadata.name for n in core.list_namespace().items]
    assert "default" in names, names
    created = core.create_namespaced_config_map(NS, cm("py-created"))
    assert created.metadata.uid
    patched = core.patch_namespaced_config_map("py-created", NS, {"data": {"v": "2"}, "metadata": {"labels": {"extra": "yes"}}})
    assert patched.data == {"v": "2"}, patched.data
    assert patched.metadata.labels == {"suite": "python", "extra": "yes"}, patched.metadata.labels
    selected = core.list_namespaced_config_map(NS, label_selector="extra=yes")
    assert [c.metadata.name for c in selected.items] == ["py-created"]
    try:
        core.read_namespaced_config_map("nope", NS)
        raise AssertionError("expected 404")
    except ApiException as e:
        assert e.status == 404, e.status


def test_watch_with_bookmarks(core, api_client):
    rv = core.list_namespaced_config_map(NS).metadata.resource_version
    core.create_namespaced_config_map(NS, cm("py-watched"))
    w = watch.Watch()
    seen = []
    for event in w.stream(core.list_namespaced_config_map, NS, resource_version=rv, allow_watch_bookmarks=True, timeout_seconds=3):
        kind = event["type"]
        name = event["object"]["metadata"].get("name") if kind == "BOOKMARK" else event["object"].metadata.name
        seen.append((kind, name))
        if kind == "BOOKMARK":
            w.stop()
    assert ("ADDED", "py-watched") in seen, seen
    assert seen[-1][0] == "BOOKMARK", seen
    assert int(w.resource_version) > int(rv), (w.resource_version, rv)


def test_watch_reconnects_when_the_server_closes_it(core, api_client):
    rv = core.list_namespaced_config_map(NS).metadata.resource_version
    core.create_namespaced_config_map(NS, cm("py-before-close"))
    w = watch.Watch()
    seen = []
    for event in w.stream(core.list_namespaced_config_map, NS, resource_version=rv):
        if event["type"] == "BOOKMARK":
            continue
        seen.append(event["object"].metadata.name)
        if event["object"].metadata.name == "py-before-close":
            faults(api_client, {"closeWatches": True})
            core.create_namespaced_config_map(NS, cm("py-after-close"))
        if event["object"].metadata.name == "py-after-close":
            w.stop()
    assert seen == ["py-before-close", "py-after-close"], seen


def test_410_is_retried_once_without_timeout(core, api_client):
    rv = core.list_namespaced_config_map(NS).metadata.resource_version
    core.create_namespaced_config_map(NS, cm("py-after-410"))
    faults(api_client, {"expireNextWatches": 1})
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_config_map, NS, resource_version=rv):
        if event["type"] != "BOOKMARK" and event["object"].metadata.name == "py-after-410":
            w.stop()
    faults(api_client, {"expireNextWatches": 2})
    try:
        for _ in watch.Watch().stream(core.list_namespaced_config_map, NS, resource_version=rv):
            pass
        raise AssertionError("expected 410 after one retry")
    except ApiException as e:
        assert e.status == 410, e.status
        assert "Expired" in e.reason, e.reason


def test_410_is_raised_at_once_with_timeout(core, api_client):
    rv = core.list_namespaced_config_map(NS).metadata.resource_version
    faults(api_client, {"expireNextWatches": 1})
    try:
        for _ in watch.Watch().stream(core.list_namespaced_config_map, NS, resource_version=rv, timeout_seconds=5):
            pass
        raise AssertionError("expected 410")
    except ApiException as e:
        assert e.status == 410, e.status


def test_custom_objects_and_gateway_status(core, api_client):
    custom = client.CustomObjectsApi(api_client)
    gw = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "py-gw"},
        "spec": {"gatewayClassName": "approuting-istio", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]},
    }
    custom.create_namespaced_custom_object("gateway.networking.k8s.io", "v1", NS, "gateways", gw)
    w = watch.Watch()
    for event in w.stream(custom.list_namespaced_custom_object, "gateway.networking.k8s.io", "v1", NS, "gateways", field_selector="metadata.name=py-gw", timeout_seconds=10):
        conditions = (event["object"].get("status") or {}).get("conditions") or []
        if any(c["type"] == "Programmed" and c["status"] == "True" for c in conditions):
            w.stop()
            return
    raise AssertionError("the Gateway was never programmed")


def main():
    config.load_kube_config(config_file=sys.argv[1])
    api_client = client.ApiClient()
    core = client.CoreV1Api(api_client)
    tests = [v for k, v in sorted(globals().items()) if k.startswith("test_")]
    passed = failed = 0
    for test in tests:
        try:
            test(core, api_client)
            passed += 1
            print(f"ok   {test.__name__}")
        except Exception:
            failed += 1
            print(f"FAIL {test.__name__}")
            traceback.print_exc()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
