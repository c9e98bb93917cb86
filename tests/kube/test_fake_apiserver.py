"""The fake API server, driven only through the official `kubernetes` client."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream

from kube.fake_apiserver import (
    FIXTURES,
    ExecResult,
    FakeApiServer,
    load_fixture,
    parse_quantity,
    write_kubeconfig,
)

NS = "test-team"
NODE = "gpu-node-1"


def wait_for(condition: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    """Poll `condition` until it is truthy, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def api(kubeconfig: Path) -> Iterator[client.CoreV1Api]:
    api_client = config.new_client_from_config(str(kubeconfig))
    yield client.CoreV1Api(api_client)
    api_client.close()


def pod_body(name: str, node: str = NODE, gpus: int = 1, **container: Any) -> dict[str, Any]:
    resources = {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": str(gpus)}
    return {
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "gpuyard"}},
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": "nvcr.io/nvidia/pytorch:24.10-py3",
                    "resources": {"requests": dict(resources), "limits": dict(resources)},
                    **container,
                }
            ],
        },
    }


class Collector:
    """Runs a watch in a thread and keeps its events, for waiting on them."""

    def __init__(self, func: Callable[..., Any], **kwargs: Any) -> None:
        self.events: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self.watch = watch.Watch()
        self.finished = threading.Event()
        self.stopping = False
        self._thread = threading.Thread(target=self._run, args=(func, kwargs), daemon=True)
        self._thread.start()

    def _run(self, func: Callable[..., Any], kwargs: dict[str, Any]) -> None:
        try:
            for event in self.watch.stream(func, **kwargs):
                self.events.append(event)
        except BaseException as exc:
            if not self.stopping:  # stop() shuts the socket down under the reader
                self.error = exc
        finally:
            self.finished.set()

    def types(self) -> list[str]:
        return [event["type"] for event in self.events]

    def stop(self) -> None:
        """Stop the watch; again until it ends, as its response may not have arrived yet
        when stop() first runs (then there is no socket yet for it to shut)."""
        self.stopping = True
        deadline = time.monotonic() + 5
        while self._thread.is_alive() and time.monotonic() < deadline:
            self.watch.stop()
            self._thread.join(timeout=0.05)
        assert not self._thread.is_alive(), "the watch did not stop"


def test_version_and_nodes_list_with_gpu_allocatable(
    fake_apiserver: FakeApiServer, kubeconfig: Path, api: client.CoreV1Api
) -> None:
    fake_apiserver.add_node(NODE)
    fake_apiserver.add_node("cpu-node", gpus=0, cpu="32", memory="128Gi")
    version = client.VersionApi(config.new_client_from_config(str(kubeconfig))).get_code()
    assert version.major == "1"
    assert version.git_version.startswith("v1.31")

    nodes = api.list_node()
    assert int(nodes.metadata.resource_version) > 0
    by_name = {node.metadata.name: node for node in nodes.items}
    assert set(by_name) == {NODE, "cpu-node"}
    gpu_node = by_name[NODE]
    assert gpu_node.status.allocatable["nvidia.com/gpu"] == "8"
    assert gpu_node.status.allocatable["cpu"] == "64"
    assert gpu_node.status.allocatable["memory"] == "512Gi"
    assert gpu_node.metadata.labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert gpu_node.metadata.labels["kubernetes.io/hostname"] == NODE
    ready = next(c for c in gpu_node.status.conditions if c.type == "Ready")
    assert ready.status == "True"
    assert "nvidia.com/gpu" not in by_name["cpu-node"].status.allocatable
    assert api.read_node(NODE).metadata.uid == gpu_node.metadata.uid

    gpu_only = api.list_node(label_selector="nvidia.com/gpu.present=true")
    assert [n.metadata.name for n in gpu_only.items] == [NODE]
    not_gpu = api.list_node(label_selector="!nvidia.com/gpu.present")
    assert [n.metadata.name for n in not_gpu.items] == ["cpu-node"]
    in_set = api.list_node(label_selector="kubernetes.io/hostname in (cpu-node,other)")
    assert [n.metadata.name for n in in_set.items] == ["cpu-node"]

    with pytest.raises(ApiException) as missing:
        api.read_node("nope")
    assert missing.value.status == 404
    assert json.loads(missing.value.body)["reason"] == "NotFound"


def test_node_watch_from_list_version_sees_cordon_readiness_and_removal(
    fake_apiserver: FakeApiServer, api: client.CoreV1Api
) -> None:
    fake_apiserver.add_node(NODE)
    listed = api.list_node()
    collector = Collector(
        api.list_node, resource_version=listed.metadata.resource_version, timeout_seconds=10
    )
    api.patch_node(NODE, {"spec": {"unschedulable": True}})
    fake_apiserver.set_node_ready(NODE, False)
    fake_apiserver.add_node("gpu-node-2")
    fake_apiserver.remove_node("gpu-node-2")
    wait_for(lambda: len(collector.events) >= 4, what="four node events")
    collector.stop()
    assert collector.types()[:4] == ["MODIFIED", "MODIFIED", "ADDED", "DELETED"]
    assert collector.events[0]["object"].spec.unschedulable is True
    ready = next(c for c in collector.events[1]["object"].status.conditions if c.type == "Ready")
    assert ready.status == "Unknown"
    versions = [int(e["object"].metadata.resource_version) for e in collector.events[:4]]
    assert versions == sorted(versions)
    assert versions[0] > int(listed.metadata.resource_version)
    cordoned = api.read_node(NODE)
    assert cordoned.spec.unschedulable is True
    assert "node.kubernetes.io/unschedulable" in {t.key for t in cordoned.spec.taints}
    uncordoned = api.patch_node(NODE, {"spec": {"unschedulable": None}})
    assert not uncordoned.spec.unschedulable
    assert "node.kubernetes.io/unschedulable" not in {t.key for t in uncordoned.spec.taints}


def test_watch_without_version_starts_with_current_objects(
    fake_apiserver: FakeApiServer, api: client.CoreV1Api
) -> None:
    fake_apiserver.add_node(NODE)
    collector = Collector(api.list_node, timeout_seconds=1)
    assert collector.finished.wait(5), "timeoutSeconds must end the stream"
    assert collector.error is None
    assert collector.types() == ["ADDED"]
    assert collector.events[0]["object"].metadata.name == NODE


def test_bookmarks_arrive_and_carry_the_current_version(
    fake_apiserver: FakeApiServer, api: client.CoreV1Api
) -> None:
    fake_apiserver.bookmark_interval = 0.05
    rv = api.list_node().metadata.resource_version
    fake_apiserver.add_namespace("unrelated")  # bumps the shared counter, not a node event
    collector = Collector(
        api.list_node, resource_version=rv, allow_watch_bookmarks=True, timeout_seconds=10
    )
    wait_for(lambda: "BOOKMARK" in collector.types(), what="a bookmark")
    collector.stop()
    assert set(collector.types()) == {"BOOKMARK"}
    bookmark = next(e for e in collector.events if e["type"] == "BOOKMARK")
    assert bookmark["raw_object"]["metadata"]["resourceVersion"] == fake_apiserver.resource_version
    assert collector.watch.resource_version == fake_apiserver.resource_version


def test_compacted_history_answers_410_and_a_relist_recovers(
    fake_apiserver: FakeApiServer, api: client.CoreV1Api
) -> None:
    fake_apiserver.add_node(NODE)
    old_rv = api.list_node().metadata.resource_version
    fake_apiserver.add_node("gpu-node-2")
    fake_apiserver.compact()

    with pytest.raises(ApiException) as gone:
        for _ in watch.Watch().stream(api.list_node, resource_version=old_rv, timeout_seconds=5):
            pass
    assert gone.value.status == 410

    relisted = api.list_node()  # the recovery: relist, then watch from the list's version
    assert {n.metadata.name for n in relisted.items} == {NODE, "gpu-node-2"}
    collector = Collector(
        api.list_node, resource_version=relisted.metadata.resource_version, timeout_seconds=10
    )
    fake_apiserver.remove_node(NODE)
    wait_for(lambda: collector.types() == ["DELETED"], what="the deletion after the relist")
    collector.stop()
    assert collector.error is None


def test_expired_watch_is_a_410_error_event_on_the_wire(
    fake_apiserver: FakeApiServer, kubeconfig: Path
) -> None:
    """The wire format itself: an ERROR event carrying a Status 410, as the real server."""
    api_client = config.new_client_from_config(str(kubeconfig))
    api = client.CoreV1Api(api_client)
    rv = api.list_node().metadata.resource_version
    fake_apiserver.add_node(NODE)
    fake_apiserver.compact()
    response = api.list_node(
        watch=True, resource_version=rv, timeout_seconds=5, _preload_content=False
    )
    line = response.readline() if hasattr(response, "readline") else next(response.stream())
    event = json.loads(line)
    assert event["type"] == "ERROR"
    fixture = load_fixture("status_410_expired.json")
    assert {k: event["object"][k] for k in ("kind", "status", "reason", "code")} == {
        k: fixture[k] for k in ("kind", "status", "reason", "code")
    }
    assert event["object"]["message"].startswith("too old resource version")
    response.release_conn()
    api_client.close()


def test_namespaces_create_get_list_and_conflict(api: client.CoreV1Api) -> None:
    created = api.create_namespace({"metadata": {"name": NS, "labels": {"team": "test"}}})
    assert created.metadata.name == NS
    assert created.status.phase == "Active"
    assert api.read_namespace(NS).metadata.labels["team"] == "test"
    names = {n.metadata.name for n in api.list_namespace().items}
    assert {"default", "kube-system", NS} <= names
    with pytest.raises(ApiException) as exists:
        api.create_namespace({"metadata": {"name": NS}})
    assert exists.value.status == 409
    assert json.loads(exists.value.body)["reason"] == "AlreadyExists"
    with pytest.raises(ApiException) as bad:
        api.create_namespace({"metadata": {"name": "Not_A_Label"}})
    assert bad.value.status == 422
    with pytest.raises(ApiException) as missing:
        api.read_namespace("absent")
    assert missing.value.status == 404


def test_pod_create_get_list_by_node_and_kubelet_states(
    fake_apiserver: FakeApiServer, api: client.CoreV1Api
) -> None:
    fake_apiserver.add_node(NODE)
    api.create_namespace({"metadata": {"name": NS}})
    created = api.create_namespaced_pod(NS, pod_body("trainer-0", command=["python", "t.py"]))
    assert created.status.phase == "Pending"
    assert created.status.qos_class == "Guaranteed"
    burstable = pod_body("burstable", node="gpu-node-9")
    burstable["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "1"}}
    assert api.create_namespaced_pod(NS, burstable).status.qos_class == "Burstable"
    best_effort = pod_body("best-effort", node="gpu-node-9")
    best_effort["spec"]["containers"][0].pop("resources")
    assert api.create_namespaced_pod(NS, best_effort).status.qos_class == "BestEffort"
    assert created.spec.node_name == NODE
    api.create_namespaced_pod(NS, pod_body("elsewhere", node="gpu-node-9"))
    fake_apiserver.add_foreign_pod(
        "other-team", "foreign", NODE, {"cpu": "8", "nvidia.com/gpu": "2"}
    )

    on_node = api.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={NODE}")
    assert sorted(p.metadata.name for p in on_node.items) == ["foreign", "trainer-0"]
    ours = api.list_namespaced_pod(NS, label_selector="app.kubernetes.io/managed-by=gpuyard")
    assert sorted(p.metadata.name for p in ours.items) == [
        "best-effort",
        "burstable",
        "elsewhere",
        "trainer-0",
    ]
    by_name = api.list_namespaced_pod(NS, field_selector="metadata.name=trainer-0")
    assert [p.metadata.name for p in by_name.items] == ["trainer-0"]
    foreign = api.read_namespaced_pod("foreign", "other-team")
    assert foreign.status.phase == "Running"
    assert foreign.spec.containers[0].resources.requests["nvidia.com/gpu"] == "2"

    running = fake_apiserver.kubelet_run(NS, "trainer-0")
    pod = api.read_namespaced_pod("trainer-0", NS)
    assert pod.status.phase == "Running"
    assert pod.status.pod_ip == running["status"]["podIP"]
    assert pod.status.start_time is not None
    assert pod.status.container_statuses[0].state.running.started_at is not None
    assert set(running["status"]) == set(load_fixture("pod_running.json")["status"])

    fake_apiserver.kubelet_terminate(NS, "trainer-0", reason="OOMKilled", exit_code=137)
    pod = api.read_namespaced_pod("trainer-0", NS)
    assert pod.status.phase == "Failed"
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.reason, terminated.exit_code) == ("OOMKilled", 137)

    fake_apiserver.kubelet_waiting(NS, "elsewhere", "ImagePullBackOff")
    waiting = api.read_namespaced_pod("elsewhere", NS).status.container_statuses[0].state
    assert waiting.waiting.reason == "ImagePullBackOff"
    fake_apiserver.kubelet_evict(NS, "elsewhere")
    evicted = api.read_namespaced_pod("elsewhere", NS).status
    assert (evicted.phase, evicted.reason) == ("Failed", "Evicted")


@pytest.mark.parametrize(
    ("mutate", "status", "field"),
    [
        (lambda b: b["spec"].update(containers=[]), 422, "spec.containers"),
        (lambda b: b["metadata"].update(name="Bad_Name"), 422, "metadata.name"),
        (lambda b: b["spec"]["containers"][0].pop("image"), 422, "image"),
        (
            lambda b: b["spec"]["containers"][0]["resources"]["limits"].update(cpu="lots"),
            422,
            "resources.limits[cpu]",
        ),
        (
            lambda b: b["spec"]["containers"][0]["resources"].update(
                limits={"cpu": "1"}, requests={"cpu": "2"}
            ),
            422,
            "resources.requests[cpu]",
        ),
        (
            lambda b: b["spec"]["containers"][0]["resources"]["limits"].pop("nvidia.com/gpu"),
            422,
            "nvidia.com/gpu",
        ),
        (lambda b: b["metadata"].update(namespace="someone-else"), 400, ""),
    ],
)
def test_pod_create_is_validated(
    fake_apiserver: FakeApiServer,
    api: client.CoreV1Api,
    mutate: Callable[[Any], Any],
    status: int,
    field: str,
) -> None:
    api.create_namespace({"metadata": {"name": NS}})
    body = pod_body("trainer-0")
    mutate(body)
    before = fake_apiserver.resource_version
    with pytest.raises(ApiException) as refused:
        api.create_namespaced_pod(NS, body)
    assert refused.value.status == status
    error = json.loads(refused.value.body)
    assert error["kind"] == "Status"
    assert field in error["message"]
    assert fake_apiserver.resource_version == before, "nothing is written on refusal"


def test_pod_create_needs_its_namespace_and_a_unique_name(api: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as no_namespace:
        api.create_namespaced_pod("absent", pod_body("p"))
    assert no_namespace.value.status == 404
    api.create_namespace({"metadata": {"name": NS}})
    api.create_namespaced_pod(NS, pod_body("p"))
    with pytest.raises(ApiException) as duplicate:
        api.create_namespaced_pod(NS, pod_body("p"))
    assert duplicate.value.status == 409


def test_graceful_delete_then_kubelet_confirms(
    fake_apiserver: FakeApiServer, api: client.CoreV1Api
) -> None:
    api.create_namespace({"metadata": {"name": NS}})
    api.create_namespaced_pod(NS, pod_body("trainer-0"))
    fake_apiserver.kubelet_run(NS, "trainer-0")
    rv = api.list_namespaced_pod(NS).metadata.resource_version
    collector = Collector(
        api.list_namespaced_pod, namespace=NS, resource_version=rv, timeout_seconds=10
    )
    on_node = Collector(
        api.list_pod_for_all_namespaces,
        field_selector=f"spec.nodeName={NODE}",
        label_selector="app.kubernetes.io/managed-by=gpuyard",
        resource_version=rv,
        timeout_seconds=10,
    )
    fake_apiserver.add_foreign_pod("other-team", "foreign", NODE, {"cpu": "1"})

    deleted = api.delete_namespaced_pod("trainer-0", NS, grace_period_seconds=30)
    assert deleted.metadata.deletion_timestamp is not None
    assert deleted.metadata.deletion_grace_period_seconds == 30
    assert api.read_namespaced_pod("trainer-0", NS).metadata.deletion_timestamp is not None
    fake_apiserver.kubelet_finish_delete(NS, "trainer-0")
    wait_for(lambda: collector.types() == ["MODIFIED", "DELETED"], what="MODIFIED then DELETED")
    collector.stop()
    wait_for(lambda: on_node.types() == ["MODIFIED", "DELETED"], what="the node-scoped watch")
    on_node.stop()
    assert {e["object"].metadata.name for e in on_node.events} == {"trainer-0"}
    with pytest.raises(ApiException) as gone:
        api.read_namespaced_pod("trainer-0", NS)
    assert gone.value.status == 404


def test_graceful_delete_ends_after_the_grace_period_and_zero_is_immediate(
    fake_apiserver: FakeApiServer, api: client.CoreV1Api
) -> None:
    api.create_namespace({"metadata": {"name": NS}})
    for name in ("slow", "now"):
        api.create_namespaced_pod(NS, pod_body(name))
        fake_apiserver.kubelet_run(NS, name)
    api.delete_namespaced_pod("slow", NS, grace_period_seconds=1)
    api.delete_namespaced_pod("now", NS, grace_period_seconds=0)
    assert [p.metadata.name for p in api.list_namespaced_pod(NS).items] == ["slow"]
    wait_for(lambda: not api.list_namespaced_pod(NS).items, timeout=5, what="grace to end")
    with pytest.raises(ApiException) as missing:
        api.delete_namespaced_pod("slow", NS)
    assert missing.value.status == 404


def test_patch_labels_strategic_and_merge_and_spec_is_immutable(api: client.CoreV1Api) -> None:
    api.create_namespace({"metadata": {"name": NS}})
    api.create_namespaced_pod(NS, pod_body("trainer-0"))
    patched = api.patch_namespaced_pod(
        "trainer-0", NS, {"metadata": {"labels": {"gpuyard.io/preempted": "true"}}}
    )
    assert patched.metadata.labels == {
        "app.kubernetes.io/managed-by": "gpuyard",
        "gpuyard.io/preempted": "true",
    }
    merged = api.patch_namespaced_pod(
        "trainer-0",
        NS,
        {"metadata": {"annotations": {"note": "x"}, "labels": {"gpuyard.io/preempted": None}}},
        _content_type="application/merge-patch+json",
    )
    assert merged.metadata.annotations == {"note": "x"}
    assert "gpuyard.io/preempted" not in merged.metadata.labels
    as_json_patch = api.patch_namespaced_pod(
        "trainer-0", NS, [{"op": "add", "path": "/metadata/labels/stage", "value": "two"}]
    )
    assert as_json_patch.metadata.labels["stage"] == "two"
    with pytest.raises(ApiException) as forbidden:
        api.patch_namespaced_pod("trainer-0", NS, {"spec": {"nodeName": "other"}})
    assert forbidden.value.status == 422


def test_resize_patch_and_its_404_on_an_older_cluster(
    fake_apiserver: FakeApiServer, api: client.CoreV1Api, kubeconfig: Path
) -> None:
    api.create_namespace({"metadata": {"name": NS}})
    api.create_namespaced_pod(NS, pod_body("trainer-0"))
    fake_apiserver.kubelet_run(NS, "trainer-0")
    bigger = {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "1"}
    patch = {
        "spec": {
            "containers": [{"name": "main", "resources": {"requests": bigger, "limits": bigger}}]
        }
    }
    resized = api.patch_namespaced_pod_resize("trainer-0", NS, patch)
    assert resized.spec.containers[0].resources.limits["cpu"] == "8"
    assert resized.spec.containers[0].image == "nvcr.io/nvidia/pytorch:24.10-py3"
    assert resized.status.container_statuses[0].resources.limits["memory"] == "32Gi"

    gpus = {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "2"}
    with pytest.raises(ApiException) as gpu_change:
        api.patch_namespaced_pod_resize(
            "trainer-0",
            NS,
            {
                "spec": {
                    "containers": [
                        {"name": "main", "resources": {"requests": gpus, "limits": gpus}}
                    ]
                }
            },
        )
    assert gpu_change.value.status == 422
    with pytest.raises(ApiException) as not_via_pod:
        api.patch_namespaced_pod(
            "trainer-0",
            NS,
            patch
            | {
                "spec": {
                    "containers": [
                        {"name": "main", "resources": {"requests": gpus, "limits": gpus}}
                    ]
                }
            },
        )
    assert not_via_pod.value.status == 422

    fake_apiserver.resize_supported = False
    with pytest.raises(ApiException) as old_cluster:
        api.patch_namespaced_pod_resize("trainer-0", NS, patch)
    assert old_cluster.value.status == 404
    assert json.loads(old_cluster.value.body)["reason"] == "NotFound"


def test_logs_tail_and_follow(fake_apiserver: FakeApiServer, api: client.CoreV1Api) -> None:
    api.create_namespace({"metadata": {"name": NS}})
    api.create_namespaced_pod(NS, pod_body("trainer-0"))
    with pytest.raises(ApiException) as not_started:
        api.read_namespaced_pod_log("trainer-0", NS)
    assert not_started.value.status == 400
    fake_apiserver.kubelet_run(NS, "trainer-0")
    fake_apiserver.set_logs(NS, "trainer-0", [f"step {i}" for i in range(5)])
    assert api.read_namespaced_pod_log("trainer-0", NS, tail_lines=2) == "step 3\nstep 4\n"
    assert api.read_namespaced_pod_log("trainer-0", NS).count("\n") == 5

    lines: list[str] = []

    def follow() -> None:
        for line in watch.Watch().stream(
            api.read_namespaced_pod_log, name="trainer-0", namespace=NS, tail_lines=1
        ):
            lines.append(line)

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    wait_for(lambda: lines == ["step 4"], what="the tail line")
    fake_apiserver.append_log(NS, "trainer-0", "step 5")
    wait_for(lambda: lines == ["step 4", "step 5"], what="the followed line")
    fake_apiserver.kubelet_terminate(NS, "trainer-0", reason="Completed", exit_code=0)
    follower.join(timeout=5)
    assert not follower.is_alive(), "the follow stream ends when the container terminates"


def test_exec_over_websocket_returns_canned_output(
    fake_apiserver: FakeApiServer, api: client.CoreV1Api
) -> None:
    api.create_namespace({"metadata": {"name": NS}})
    api.create_namespaced_pod(NS, pod_body("trainer-0"))
    fake_apiserver.kubelet_run(NS, "trainer-0")
    fake_apiserver.exec_results[("nvidia-smi", "-L")] = ExecResult(
        stdout="GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1)\n"
    )
    fake_apiserver.exec_results[("sh", "-c", "exit 3")] = ExecResult(stderr="boom\n", exit_code=3)
    out = stream(
        api.connect_get_namespaced_pod_exec,
        "trainer-0",
        NS,
        command=["nvidia-smi", "-L"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
    )
    assert out == "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1)\n"
    assert (
        stream(
            api.connect_get_namespaced_pod_exec,
            "trainer-0",
            NS,
            command=["echo", "hello", "gpu"],
            stdout=True,
            stderr=True,
            stdin=False,
            tty=False,
        )
        == "hello gpu\n"
    )

    session = stream(
        api.connect_get_namespaced_pod_exec,
        "trainer-0",
        NS,
        command=["sh", "-c", "exit 3"],
        stdout=True,
        stderr=True,
        stdin=False,
        tty=False,
        _preload_content=False,
    )
    session.run_forever(timeout=5)
    assert session.read_stderr() == "boom\n"
    assert session.returncode == 3

    echo = stream(
        api.connect_get_namespaced_pod_exec,
        "trainer-0",
        NS,
        command=["cat"],
        stdin=True,
        stdout=True,
        stderr=True,
        tty=False,
        _preload_content=False,
    )
    echo.write_stdin("ping\n")
    received = ""
    deadline = time.monotonic() + 5
    while "ping\n" not in received and time.monotonic() < deadline:
        echo.update(timeout=0.5)
        received += echo.read_stdout()
    echo.close()
    assert received == "ping\n"


def test_bad_token_is_401_status(fake_apiserver: FakeApiServer, tmp_path: Path) -> None:
    bad = write_kubeconfig(tmp_path / "bad", fake_apiserver.url, "wrong-token")
    api = client.CoreV1Api(config.new_client_from_config(str(bad)))
    with pytest.raises(ApiException) as refused:
        api.list_node()
    assert refused.value.status == 401
    body = json.loads(refused.value.body)
    assert (body["kind"], body["status"], body["code"]) == ("Status", "Failure", 401)
    with pytest.raises(ApiException, match="401"):
        stream(
            api.connect_get_namespaced_pod_exec,
            "p",
            "default",
            command=["true"],
            stdout=True,
            stderr=False,
            stdin=False,
            tty=False,
        )


def test_unreachable_then_back_on_the_same_port(
    fake_apiserver: FakeApiServer, kubeconfig: Path
) -> None:
    fake_apiserver.add_node(NODE)
    api_client = config.new_client_from_config(str(kubeconfig))
    api_client.rest_client.pool_manager.connection_pool_kw["retries"] = False
    api = client.CoreV1Api(api_client)
    rv = api.list_node().metadata.resource_version
    collector = Collector(api.list_node, resource_version=rv, timeout_seconds=30)
    port = fake_apiserver.port

    fake_apiserver.stop()
    assert collector.finished.wait(5), "open watches end when the server goes away"
    with pytest.raises(urllib3.exceptions.HTTPError):
        api.list_node(_request_timeout=2)

    fake_apiserver.start()
    assert fake_apiserver.port == port
    assert [n.metadata.name for n in api.list_node().items] == [NODE]
    api_client.close()


def test_fixtures_are_valid_api_objects() -> None:
    """The recorded objects deserialize into the official client's models."""
    deserializer = client.ApiClient()

    node = deserializer.deserialize(
        (FIXTURES / "node_h100.json").read_text(), "V1Node", "application/json"
    )
    assert node.status.allocatable["nvidia.com/gpu"] == "8"
    for name, phase in [
        ("pod_pending_imagepullbackoff", "Pending"),
        ("pod_running", "Running"),
        ("pod_succeeded", "Succeeded"),
        ("pod_failed_oomkilled", "Failed"),
        ("pod_failed_evicted", "Failed"),
    ]:
        pod = deserializer.deserialize(
            (FIXTURES / f"{name}.json").read_text(), "V1Pod", "application/json"
        )
        assert pod.status.phase == phase
    for line in (FIXTURES / "watch_nodes_excerpt.jsonl").read_text().splitlines():
        assert json.loads(line)["type"] in {"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"}


@pytest.mark.parametrize(
    ("text", "value"),
    [("64", 64.0), ("500m", 0.5), ("512Gi", 512 * 2.0**30), ("1e3", 1000.0), ("1.5k", 1500.0)],
)
def test_parse_quantity(text: str, value: float) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "lots", "1.2.3", "5Xi", "Gi"])
def test_parse_quantity_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="quantities must match"):
        parse_quantity(text)


def test_bad_selectors_and_versions_are_400_status(
    fake_apiserver: FakeApiServer, api: client.CoreV1Api
) -> None:
    for call in (
        lambda: api.list_pod_for_all_namespaces(field_selector="spec.containers=x"),
        lambda: api.list_node(label_selector="a in (x"),
        lambda: api.list_node(watch=True, resource_version="not-a-number", timeout_seconds=1),
    ):
        with pytest.raises(ApiException) as refused:
            call()
        assert refused.value.status == 400
        body = json.loads(refused.value.body)
        assert (body["kind"], body["reason"]) == ("Status", "BadRequest")


def test_exec_into_a_pod_not_started_is_refused(
    fake_apiserver: FakeApiServer, api: client.CoreV1Api
) -> None:
    api.create_namespace({"metadata": {"name": NS}})
    api.create_namespaced_pod(NS, pod_body("trainer-0"))
    fake_apiserver.kubelet_waiting(NS, "trainer-0", "ImagePullBackOff")
    with pytest.raises(ApiException, match="400"):
        stream(
            api.connect_get_namespaced_pod_exec,
            "trainer-0",
            NS,
            command=["true"],
            stdout=True,
            stderr=True,
            stdin=False,
            tty=False,
        )
