"""Property: a list plus a watch from the list's resourceVersion loses no change.

That is the contract the kubernetes runtime's informer relies on, so the fake must keep
it for any sequence of node changes, made by the fake kubelet or through the API.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes import client, config

from kube.fake_apiserver import FakeApiServer, label_matcher, write_kubeconfig
from kube.test_fake_apiserver import Collector, wait_for

NAMES = [f"node-{i}" for i in range(4)]
operations = st.lists(
    st.tuples(
        st.sampled_from(["add", "remove", "ready", "cordon"]), st.sampled_from(NAMES), st.booleans()
    ),
    max_size=12,
)


@pytest.fixture(scope="module")
def server_and_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    server = FakeApiServer()
    server.start()
    path: Path = tmp_path_factory.mktemp("kube") / "kubeconfig"
    write_kubeconfig(path, server.url, server.token)
    api_client = config.new_client_from_config(str(path))
    yield server, client.CoreV1Api(api_client)
    api_client.close()
    server.close()


def apply(server: FakeApiServer, api: client.CoreV1Api, op: tuple[str, str, bool]) -> bool:
    """Apply one change if it makes sense now; True when it changed a node."""
    kind, name, flag = op
    present = ("", name) in server.names("nodes")
    if kind == "add" and not present:
        server.add_node(name, gpus=8 if flag else 0)
        return True
    if not present or kind == "add":
        return False
    if kind == "remove":
        server.remove_node(name)
    elif kind == "ready":
        server.set_node_ready(name, flag)
    else:
        cordoned = bool(server.get("nodes", name)["spec"].get("unschedulable"))
        api.patch_node(name, {"spec": {"unschedulable": not cordoned}})
    return True


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=operations)
def test_list_then_watch_replays_to_the_final_list(
    server_and_api: tuple[FakeApiServer, client.CoreV1Api], ops: list[tuple[str, str, bool]]
) -> None:
    server, api = server_and_api
    listed = api.list_node()
    state = {n.metadata.name: n.metadata.resource_version for n in listed.items}
    collector = Collector(
        api.list_node, resource_version=listed.metadata.resource_version, timeout_seconds=10
    )
    changes = sum(apply(server, api, op) for op in ops)
    wait_for(lambda: len(collector.events) >= changes, what=f"{changes} watch events")
    collector.stop()
    assert collector.error is None
    events = collector.events[:changes]
    versions = [int(e["object"].metadata.resource_version) for e in events]
    assert versions == sorted(set(versions)), "resourceVersions strictly increase"
    for event in events:
        name = event["object"].metadata.name
        if event["type"] == "DELETED":
            del state[name]
        else:
            assert (event["type"] == "ADDED") == (name not in state)
            state[name] = event["object"].metadata.resource_version
    final = api.list_node()
    assert state == {n.metadata.name: n.metadata.resource_version for n in final.items}


@given(
    labels=st.dictionaries(st.sampled_from(["a", "b", "c"]), st.sampled_from(["x", "y"])),
    key=st.sampled_from(["a", "b", "c"]),
    value=st.sampled_from(["x", "y"]),
)
def test_label_selector_agrees_with_its_definition(
    labels: dict[str, str], key: str, value: str
) -> None:
    assert label_matcher(f"{key}={value}")(labels) == (labels.get(key) == value)
    assert label_matcher(f"{key}!={value}")(labels) == (labels.get(key) != value)
    assert label_matcher(key)(labels) == (key in labels)
    assert label_matcher(f"!{key}")(labels) == (key not in labels)
    assert label_matcher(f"{key} in ({value},z)")(labels) == (labels.get(key) == value)
    both = label_matcher(f"{key}={value},{key}")(labels)
    assert both == (labels.get(key) == value)
