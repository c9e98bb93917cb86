"""An in-process fake Kubernetes API server: a TEST DOUBLE, never tried against a real cluster.

It speaks the real wire protocol (JSON over HTTP/1.1, chunked watch streams, the
`v5.channel.k8s.io` and `v4.channel.k8s.io` WebSocket subprotocols for exec, which runs
the command for real in a subprocess on a per-pod directory) for the few verbs gpuyard's
kubernetes runtime uses, so the official `kubernetes` client drives it unmodified. Objects are built
from the recorded API objects in fixtures/. The "fake kubelet" methods (Python, not HTTP)
move pods and nodes through the states a real kubelet would report. See README.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import re
import shutil
import socket
import ssl
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from kube.fake_tls import TlsFiles

FIXTURES = Path(__file__).parent / "fixtures"
GPU_RESOURCE = "nvidia.com/gpu"
DEFAULT_TOKEN = "fake-apiserver-token"
#: The exec subprotocols it speaks; the client's first offered one it speaks is chosen.
EXEC_SUBPROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
EXEC_SUBPROTOCOL = EXEC_SUBPROTOCOLS[1]
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped kinds

# Kubernetes quantity: a signed decimal number with an optional binary or decimal suffix.
_QUANTITY = re.compile(
    r"^[+-]?(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$"
)
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SUFFIX = {
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "": 1.0,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}


def load_fixture(name: str) -> Any:
    """A recorded API object from fixtures/, freshly parsed (callers may mutate it)."""
    return json.loads((FIXTURES / name).read_text())


def parse_quantity(text: str) -> float:
    """The value of a Kubernetes quantity string; ValueError when it is not one."""
    match = _QUANTITY.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"quantities must match the regular expression {_QUANTITY.pattern!r}")
    suffix = match.group(3) or ""
    number = text.strip()[: len(text.strip()) - len(suffix)] if suffix else text.strip()
    if suffix[:1] in ("e", "E"):
        return float(text.strip())
    return float(number) * _SUFFIX[suffix]


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    """Answered as a real `Status` object."""

    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> Obj:
        body: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def not_found(kind: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{kind} "{name}" not found', {"name": name, "kind": kind})


def invalid(kind_name: str, name: str, field: str, message: str) -> ApiError:
    return ApiError(
        422,
        "Invalid",
        f'{kind_name} "{name}" is invalid: {field}: {message}',
        {
            "name": name,
            "kind": kind_name,
            "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field}],
        },
    )


def expired(requested: int, current: int) -> Obj:
    status: Obj = load_fixture("status_410_expired.json")
    status["message"] = f"too old resource version: {requested} ({current})"
    return status


# --- selectors --------------------------------------------------------------------------

_SET_REQ = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_selector(text: str) -> list[str]:
    """Split on commas that are not inside the parentheses of a set-based requirement."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part.strip() for part in parts if part.strip()]


def _label_requirement_holds(labels: dict[str, str], key: str, op: str, values: set[str]) -> bool:
    if op in ("=", "=="):
        return labels.get(key) in values
    if op in ("!=", "notin"):
        return labels.get(key) not in values
    if op == "in":
        return labels.get(key) in values
    if op == "exists":
        return key in labels
    return key not in labels  # "!"


def label_matcher(selector: str | None) -> Callable[[dict[str, str]], bool]:
    """A predicate for a labelSelector (equality- and set-based); ApiError 400 when malformed."""
    requirements: list[tuple[str, str, set[str]]] = []
    for req in _split_selector(selector or ""):
        set_match = _SET_REQ.match(req)
        eq = re.match(r"^([\w./-]+)\s*(==|!=|=)\s*([\w.-]*)$", req)
        exists = re.match(r"^(!?)([\w./-]+)$", req)
        if set_match:
            key, op, values = set_match.group(1), set_match.group(2), set_match.group(3)
            requirements.append((key, op, {v.strip() for v in values.split(",") if v.strip()}))
        elif eq:
            requirements.append((eq.group(1), eq.group(2), {eq.group(3)}))
        elif exists:
            requirements.append((exists.group(2), "!" if exists.group(1) else "exists", set()))
        else:
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {req!r}")
    return lambda labels: all(
        _label_requirement_holds(labels, key, op, values) for key, op, values in requirements
    )


FIELD_PATHS: dict[str, dict[str, Callable[[Obj], str]]] = {
    "pods": {
        "metadata.name": lambda o: o["metadata"]["name"],
        "metadata.namespace": lambda o: o["metadata"].get("namespace", ""),
        "spec.nodeName": lambda o: o["spec"].get("nodeName") or "",
        "status.phase": lambda o: o.get("status", {}).get("phase") or "",
    },
    "nodes": {
        "metadata.name": lambda o: o["metadata"]["name"],
        "spec.unschedulable": lambda o: str(bool(o["spec"].get("unschedulable"))).lower(),
    },
    "namespaces": {
        "metadata.name": lambda o: o["metadata"]["name"],
        "status.phase": lambda o: o.get("status", {}).get("phase") or "",
    },
}


def field_matcher(kind: str, selector: str | None) -> Callable[[Obj], bool]:
    """A predicate for a fieldSelector; 400 on a field the real server does not index."""
    requirements: list[tuple[Callable[[Obj], str], bool, str]] = []
    for req in _split_selector(selector or ""):
        match = re.match(r"^([\w.]+)\s*(==|!=|=)\s*(.*)$", req)
        if match is None:
            raise ApiError(400, "BadRequest", f"invalid selector: {req!r}")
        field, op, value = match.groups()
        getter = FIELD_PATHS[kind].get(field)
        if getter is None:
            raise ApiError(400, "BadRequest", f"field label not supported: {field}")
        requirements.append((getter, op != "!=", value))
    return lambda obj: all((getter(obj) == value) == equal for getter, equal, value in requirements)


# --- patches ----------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Strategic merge patch, as far as Pod/Node need it: lists of named objects
    (containers, env, ports...) merge by their `name`, other lists are replaced."""
    if isinstance(patch, dict) and isinstance(target, dict):
        result = copy.deepcopy(target)
        for key, value in patch.items():
            if key.startswith("$"):
                continue
            if value is None:
                result.pop(key, None)
            else:
                result[key] = strategic_merge_patch(result.get(key), value)
        return result
    if (
        isinstance(patch, list)
        and isinstance(target, list)
        and all(isinstance(item, dict) and "name" in item for item in patch + target)
    ):
        merged = copy.deepcopy(target)
        for item in patch:
            index = next((i for i, t in enumerate(merged) if t["name"] == item["name"]), None)
            if index is None:
                merged.append(copy.deepcopy(item))
            else:
                merged[index] = strategic_merge_patch(merged[index], item)
        return merged
    return copy.deepcopy(patch)


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]


def json_patch(target: Obj, operations: list[Obj]) -> Obj:
    """RFC 6902 JSON patch: add, replace, remove, test."""
    result = copy.deepcopy(target)
    for op in operations:
        parts = _pointer(op.get("path", ""))
        if not parts:
            raise ApiError(422, "Invalid", "json patch path must not be empty")
        parent: Any = result
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent.setdefault(part, {})
        last = parts[-1]
        kind = op.get("op")
        try:
            if kind in ("add", "replace"):
                if isinstance(parent, list):
                    if last == "-":
                        parent.append(op["value"])
                    elif kind == "add":
                        parent.insert(int(last), op["value"])
                    else:
                        parent[int(last)] = op["value"]
                else:
                    if kind == "replace" and last not in parent:
                        raise KeyError(last)
                    parent[last] = op["value"]
            elif kind == "remove":
                del parent[int(last) if isinstance(parent, list) else last]
            elif kind == "test":
                value = parent[int(last) if isinstance(parent, list) else last]
                if value != op.get("value"):
                    raise ApiError(422, "Invalid", f"testing value {op['path']} failed")
            else:
                raise ApiError(422, "Invalid", f"unexpected json patch op {kind!r}")
        except (KeyError, IndexError, ValueError) as exc:
            raise ApiError(
                422,
                "Invalid",
                f"the server rejected our request due to an error in our "
                f"request: doc is missing path: {op.get('path')}: {exc}",
            ) from exc
    return result


def apply_patch(content_type: str, target: Obj, body: Any) -> Obj:
    kind = content_type.split(";")[0].strip()
    if kind == "application/json-patch+json":
        if not isinstance(body, list):
            raise ApiError(400, "BadRequest", "json patch must be a list of operations")
        return json_patch(target, body)
    if not isinstance(body, dict):
        raise ApiError(400, "BadRequest", "patch body must be a JSON object")
    if kind == "application/merge-patch+json":
        merged: Obj = merge_patch(target, body)
        return merged
    if kind == "application/strategic-merge-patch+json":
        strategic: Obj = strategic_merge_patch(target, body)
        return strategic
    raise ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - "
        f"accepted media types include: application/json-patch+json, "
        f"application/merge-patch+json, application/strategic-merge-patch+json ({kind})",
    )


# --- the server -------------------------------------------------------------------------


@dataclass
class ExecResult:
    """The canned outcome of one command run through /exec."""

    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0


@dataclass
class ExecRecord:
    """One exec session the fake served: where, what, how, and the resizes it was sent."""

    namespace: str
    pod: str
    command: tuple[str, ...]
    subprotocol: str
    tty: bool
    resizes: list[dict[str, Any]]
    exit_code: int | None = None


@dataclass
class _Event:
    resource_version: int
    type: str
    obj: Obj


class _Watchers:
    """Wake-ups for the streams (watch, log follow) waiting on the server's event loops."""

    def __init__(self) -> None:
        self._waiting: dict[asyncio.Event, asyncio.AbstractEventLoop] = {}
        self._lock = threading.Lock()

    def register(self, event: asyncio.Event) -> None:
        with self._lock:
            self._waiting[event] = asyncio.get_running_loop()

    def unregister(self, event: asyncio.Event) -> None:
        with self._lock:
            self._waiting.pop(event, None)

    def wake_all(self) -> None:
        """Callable from any thread: the fake kubelet's, a grace timer's, a handler's."""
        with self._lock:
            waiting = list(self._waiting.items())
        for event, loop in waiting:
            with contextlib.suppress(RuntimeError):  # that loop closed: nobody waits on it
                loop.call_soon_threadsafe(event.set)


KINDS = ("nodes", "namespaces", "pods")
KIND_NAMES = {"nodes": "Node", "namespaces": "Namespace", "pods": "Pod"}


class FakeApiServer:
    """A fake kube-apiserver on 127.0.0.1, served by uvicorn in a background thread.

    State lives here and is guarded by one lock; the HTTP handlers and the fake-kubelet
    methods below both go through it. Every change bumps one shared resourceVersion
    counter and appends an event to that kind's bounded history, which watches replay.
    """

    def __init__(
        self, token: str = DEFAULT_TOKEN, history_limit: int = 1000, tls: TlsFiles | None = None
    ) -> None:
        self.token = token
        #: With ``tls``: HTTPS only, and a client certificate signed by its CA is required
        #: and is the authentication (no token then: uvicorn does not tell the handlers
        #: whether a certificate came, so it is asked of every connection).
        self.tls = tls
        self.resize_supported = True
        self.bookmark_interval = 1.0
        #: Canned outcomes by command; any other command runs for real (``pod_dir``).
        self.exec_results: dict[tuple[str, ...], ExecResult] = {}
        #: The exec subprotocols it speaks (a test may leave v4 alone, as older clusters).
        self.exec_subprotocols: list[str] = list(EXEC_SUBPROTOCOLS)
        #: Every exec session served, in order.
        self.execs: list[ExecRecord] = []
        #: The PATH exec'd commands run with (None: the host's); a test points it at a
        #: directory of busybox's applets to play a busybox image's tools.
        self.exec_path: str | None = None
        self._pod_root = Path(tempfile.mkdtemp(prefix="fake-apiserver-pods-"))
        self.version = {
            "major": "1",
            "minor": "31",
            "gitVersion": "v1.31.6-gke.1020000",
            "gitCommit": "0b2e7e1c6a5f4d3b2a1908f7e6d5c4b3a2918070",
            "gitTreeState": "clean",
            "buildDate": "2026-10-21T16:02:07Z",
            "goVersion": "go1.22.12 X:boringcrypto",
            "compiler": "gc",
            "platform": "linux/amd64",
        }
        from kube.fake_metrics import FakeMetrics  # it builds on this module's helpers

        #: The ``metrics.k8s.io`` group (metrics-server), off unless a test serves it.
        self.metrics = FakeMetrics(self)
        self._lock = threading.RLock()
        self._rv = 1000
        self._objects: dict[str, dict[Key, Obj]] = {kind: {} for kind in KINDS}
        self._history: dict[str, deque[_Event]] = {
            kind: deque(maxlen=history_limit) for kind in KINDS
        }
        self._oldest_watchable: dict[str, int] = dict.fromkeys(KINDS, 0)
        self._logs: dict[Key, list[str]] = {}
        self._grace_timers: dict[Key, threading.Timer] = {}
        self._watchers = _Watchers()
        self._port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._online = False
        for namespace in ("default", "kube-system"):
            self.add_namespace(namespace)

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    def start(self) -> None:
        """Listen (again) on 127.0.0.1; the first start picks a free port, later ones reuse it."""
        if self._server is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app(),
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
            ws="auto",
            ws_ping_interval=None,
            **self._tls_options(),
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="fake-apiserver", daemon=True
        )
        self._online = True
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake API server did not start")
            time.sleep(0.01)
        sock.close()  # uvicorn listens on its own duplicate
        self._server, self._thread = server, thread

    def _tls_options(self) -> dict[str, Any]:
        if self.tls is None:
            return {}
        return {
            "ssl_certfile": str(self.tls.server_cert),
            "ssl_keyfile": str(self.tls.server_key),
            "ssl_ca_certs": str(self.tls.ca),
            "ssl_cert_reqs": ssl.CERT_REQUIRED,
        }

    def stop(self) -> None:
        """Stop listening and end every open stream; the state is kept for a later start()."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._online = False
        self._watchers.wake_all()
        server.should_exit = True
        thread.join(timeout=10)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5)
        self._server = self._thread = None

    def close(self) -> None:
        """Stop for good: also cancels pending graceful deletions."""
        self.stop()
        with self._lock:
            for timer in self._grace_timers.values():
                timer.cancel()
            self._grace_timers.clear()
        shutil.rmtree(self._pod_root, ignore_errors=True)

    @property
    def online(self) -> bool:
        return self._online

    # --- storage -----------------------------------------------------------------------

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def _record(self, kind: str, event_type: str, obj: Obj) -> None:
        """Bump the resourceVersion, store the change, tell the watchers. Caller holds the lock."""
        rv = self._next_rv()
        obj["metadata"]["resourceVersion"] = str(rv)
        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        if event_type == "DELETED":
            self._objects[kind].pop(key, None)
        else:
            self._objects[kind][key] = obj
        history = self._history[kind]
        if len(history) == history.maxlen:
            self._oldest_watchable[kind] = history[0].resource_version
        history.append(_Event(rv, event_type, copy.deepcopy(obj)))
        self._watchers.wake_all()

    def compact(self) -> None:
        """Forget every kind's event history, as etcd compaction does: a watch from any
        resourceVersion before now then gets 410 Gone (reason Expired)."""
        with self._lock:
            for kind in KINDS:
                self._history[kind].clear()
                self._oldest_watchable[kind] = self._rv
            self._watchers.wake_all()

    @property
    def resource_version(self) -> str:
        with self._lock:
            return str(self._rv)

    def get(self, kind: str, name: str, namespace: str = "") -> Obj:
        """A copy of a stored object (KeyError when absent)."""
        with self._lock:
            return copy.deepcopy(self._objects[kind][(namespace, name)])

    def names(self, kind: str) -> list[Key]:
        with self._lock:
            return sorted(self._objects[kind])

    # --- fake cluster control (tests call these; not HTTP) -----------------------------

    def add_namespace(self, name: str, labels: dict[str, str] | None = None) -> Obj:
        namespace: Obj = load_fixture("namespace.json")
        namespace["metadata"].update(
            name=name,
            uid=str(uuid.uuid4()),
            creationTimestamp=now_rfc3339(),
            labels={"kubernetes.io/metadata.name": name, **(labels or {})},
        )
        with self._lock:
            if ("", name) in self._objects["namespaces"]:
                raise ApiError(
                    409,
                    "AlreadyExists",
                    f'namespaces "{name}" already exists',
                    {"name": name, "kind": "namespaces"},
                )
            self._record("namespaces", "ADDED", namespace)
            return copy.deepcopy(namespace)

    def add_node(
        self,
        name: str,
        *,
        gpus: int = 8,
        gpu_product: str = "NVIDIA-H100-80GB-HBM3",
        cpu: str = "64",
        memory: str = "512Gi",
        ephemeral_storage: str = "1000Gi",
        labels: dict[str, str] | None = None,
        ready: bool = True,
    ) -> Obj:
        """A node built from the recorded GKE H100 node, with this name, size and labels."""
        node: Obj = load_fixture("node_h100.json")
        meta = node["metadata"]
        meta.update(name=name, uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339())
        meta["labels"].update(
            {
                "kubernetes.io/hostname": name,
                "nvidia.com/gpu.product": gpu_product,
                "nvidia.com/gpu.count": str(gpus),
            }
        )
        if gpus == 0:
            for key in [k for k in meta["labels"] if k.startswith("nvidia.com/")]:
                del meta["labels"][key]
            node["spec"].pop("taints", None)
        meta["labels"].update(labels or {})
        node["spec"]["providerID"] = f"gce://gpuyard-demo/us-central1-a/{name}"
        resources = {
            "cpu": cpu,
            "memory": memory,
            "ephemeral-storage": ephemeral_storage,
            "pods": "110",
            "hugepages-1Gi": "0",
            "hugepages-2Mi": "0",
        }
        if gpus:
            resources[GPU_RESOURCE] = str(gpus)
        node["status"]["allocatable"] = dict(resources)
        node["status"]["capacity"] = dict(resources)
        node["status"]["addresses"][1]["address"] = name
        self._set_ready(node, ready)
        with self._lock:
            self._record("nodes", "ADDED", node)
            return copy.deepcopy(node)

    def remove_node(self, name: str) -> None:
        with self._lock:
            node = self._objects["nodes"][("", name)]
            self._record("nodes", "DELETED", copy.deepcopy(node))

    @staticmethod
    def _set_ready(node: Obj, ready: bool) -> None:
        for condition in node["status"]["conditions"]:
            if condition["type"] == "Ready":
                condition.update(
                    status="True" if ready else "Unknown",
                    reason="KubeletReady" if ready else "NodeStatusUnknown",
                    message="kubelet is posting ready status"
                    if ready
                    else "Kubelet stopped posting node status.",
                    lastTransitionTime=now_rfc3339(),
                    lastHeartbeatTime=now_rfc3339(),
                )

    def set_node_ready(self, name: str, ready: bool) -> None:
        """The node's Ready condition: True, or Unknown as when its kubelet stops reporting."""
        with self._lock:
            node = copy.deepcopy(self._objects["nodes"][("", name)])
            self._set_ready(node, ready)
            self._record("nodes", "MODIFIED", node)

    def add_foreign_pod(
        self,
        namespace: str,
        name: str,
        node_name: str,
        requests: dict[str, str],
        phase: str = "Running",
    ) -> Obj:
        """A pod gpuyard did not create, bound to a node (another scheduler's)."""
        with self._lock:
            if ("", namespace) not in self._objects["namespaces"]:
                self.add_namespace(namespace)
        body = {
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": "other"}},
            "spec": {
                "nodeName": node_name,
                "containers": [
                    {
                        "name": "main",
                        "image": "registry.example/other:1",
                        "resources": {"requests": dict(requests), "limits": dict(requests)},
                    }
                ],
            },
        }
        self.create_pod(namespace, body)
        if phase == "Running":
            self.kubelet_run(namespace, name)
        return self.get("pods", name, namespace)

    def set_logs(self, namespace: str, name: str, lines: Iterable[str]) -> None:
        with self._lock:
            self._logs[(namespace, name)] = list(lines)
        self._watchers.wake_all()

    def append_log(self, namespace: str, name: str, line: str) -> None:
        """One more line of the pod's output; a following /log stream sends it."""
        with self._lock:
            self._logs.setdefault((namespace, name), []).append(line)
        self._watchers.wake_all()

    def _modify_pod(self, namespace: str, name: str, change: Callable[[Obj], None]) -> Obj:
        with self._lock:
            pod = copy.deepcopy(self._objects["pods"][(namespace, name)])
            change(pod)
            self._record("pods", "MODIFIED", pod)
            return copy.deepcopy(pod)

    def _container_status(self, pod: Obj, container: Obj, state: Obj, **extra: Any) -> Obj:
        status: Obj = {
            "name": container["name"],
            "image": container["image"],
            "imageID": "",
            "restartCount": 0,
            "started": False,
            "ready": False,
            "lastState": {},
            "state": state,
        }
        status.update(extra)
        return status

    def kubelet_run(self, namespace: str, name: str, pod_ip: str = "10.52.7.19") -> Obj:
        """Pending -> Running: containers running, podIP and startTime set, Ready."""
        running = load_fixture("pod_running.json")["status"]

        def change(pod: Obj) -> None:
            stamp = now_rfc3339()
            status = copy.deepcopy(running)
            for condition in status["conditions"]:
                condition["lastTransitionTime"] = stamp
            status.update(podIP=pod_ip, podIPs=[{"ip": pod_ip}], startTime=stamp)
            template = running["containerStatuses"][0]
            status["containerStatuses"] = [
                {
                    **copy.deepcopy(template),
                    "name": c["name"],
                    "image": c["image"],
                    "containerID": f"containerd://{uuid.uuid4().hex}{uuid.uuid4().hex}",
                    "state": {"running": {"startedAt": stamp}},
                    "resources": copy.deepcopy(c.get("resources", {})),
                    "allocatedResources": copy.deepcopy(c.get("resources", {}).get("requests", {})),
                }
                for c in pod["spec"]["containers"]
            ]
            status["qosClass"] = pod["status"].get("qosClass", "Guaranteed")
            status["hostIP"] = status["hostIPs"][0]["ip"] = "10.128.0.57"
            pod["status"] = status

        return self._modify_pod(namespace, name, change)

    def kubelet_waiting(
        self, namespace: str, name: str, reason: str = "ImagePullBackOff", message: str = ""
    ) -> Obj:
        """The pod stays Pending with its containers waiting for `reason`."""
        default = load_fixture("pod_pending_imagepullbackoff.json")["status"]

        def change(pod: Obj) -> None:
            status = copy.deepcopy(default)
            status["startTime"] = now_rfc3339()
            status["qosClass"] = pod["status"].get("qosClass", "Guaranteed")
            status["containerStatuses"] = [
                self._container_status(
                    pod,
                    c,
                    {
                        "waiting": {
                            "reason": reason,
                            "message": message or f'Back-off pulling image "{c["image"]}"',
                        }
                    },
                )
                for c in pod["spec"]["containers"]
            ]
            pod["status"] = status

        return self._modify_pod(namespace, name, change)

    def kubelet_terminate(
        self, namespace: str, name: str, reason: str = "Error", exit_code: int = 1
    ) -> Obj:
        """Containers terminated (OOMKilled with 137, Error, Completed with 0...); the pod
        goes Succeeded when every exit code is 0 (restartPolicy Never), Failed otherwise."""
        fixture = "pod_succeeded.json" if exit_code == 0 else "pod_failed_oomkilled.json"
        template = load_fixture(fixture)["status"]

        def change(pod: Obj) -> None:
            stamp = now_rfc3339()
            started = pod["status"].get("startTime", stamp)
            status = copy.deepcopy(template)
            status.update(startTime=started, qosClass=pod["status"].get("qosClass", "Guaranteed"))
            for key in ("podIP", "podIPs"):
                if key in pod["status"]:
                    status[key] = pod["status"][key]
            status["containerStatuses"] = [
                self._container_status(
                    pod,
                    c,
                    {
                        "terminated": {
                            "exitCode": exit_code,
                            "reason": reason,
                            "startedAt": started,
                            "finishedAt": stamp,
                        }
                    },
                )
                for c in pod["spec"]["containers"]
            ]
            pod["status"] = status

        return self._modify_pod(namespace, name, change)

    def kubelet_evict(self, namespace: str, name: str, message: str | None = None) -> Obj:
        """Phase Failed with reason Evicted, as the kubelet reports under node pressure."""
        template = load_fixture("pod_failed_evicted.json")["status"]

        def change(pod: Obj) -> None:
            status = copy.deepcopy(template)
            if message is not None:
                status["message"] = message
            status["qosClass"] = pod["status"].get("qosClass", "Guaranteed")
            status["startTime"] = pod["status"].get("startTime", now_rfc3339())
            status["containerStatuses"] = [
                self._container_status(
                    pod, c, copy.deepcopy(template["containerStatuses"][0]["state"])
                )
                for c in pod["spec"]["containers"]
            ]
            pod["status"] = status

        return self._modify_pod(namespace, name, change)

    def kubelet_finish_delete(self, namespace: str, name: str) -> None:
        """The kubelet confirms a gracefully deleted pod is gone: DELETED event."""
        with self._lock:
            timer = self._grace_timers.pop((namespace, name), None)
            if timer is not None:
                timer.cancel()
            pod = self._objects["pods"].get((namespace, name))
            if pod is not None:
                self._record("pods", "DELETED", copy.deepcopy(pod))
                self._logs.pop((namespace, name), None)

    # --- pods: validation, creation, deletion ------------------------------------------

    def create_pod(self, namespace: str, body: Any) -> Obj:
        """Create a pod as POST /api/v1/namespaces/{ns}/pods does (validation included)."""
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body must be a Pod object")
        pod = copy.deepcopy(body)
        pod["kind"], pod["apiVersion"] = "Pod", "v1"
        meta = pod.setdefault("metadata", {}) or {}
        pod["metadata"] = meta
        if meta.get("namespace") not in (None, "", namespace):
            raise ApiError(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on "
                "the request",
            )
        meta["namespace"] = namespace
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{uuid.uuid4().hex[:5]}"
        name = meta.get("name") or ""
        if not name:
            raise invalid(
                "Pod", "", "metadata.name", "Required value: name or generateName is required"
            )
        if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
            raise invalid(
                "Pod",
                name,
                "metadata.name",
                f'Invalid value: "{name}": a lowercase '
                "RFC 1123 subdomain must consist of lower case alphanumeric "
                "characters, '-' or '.'",
            )
        for field in ("labels", "annotations"):
            values = meta.get(field) or {}
            if not isinstance(values, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in values.items()
            ):
                raise invalid(
                    "Pod", name, f"metadata.{field}", "Invalid value: must be a map of strings"
                )
        spec = pod.get("spec")
        if not isinstance(spec, dict):
            raise invalid("Pod", name, "spec", "Required value")
        containers = spec.get("containers")
        if not isinstance(containers, list) or not containers:
            raise invalid("Pod", name, "spec.containers", "Required value")
        seen: set[str] = set()
        for index, container in enumerate(containers):
            self._validate_container(name, index, container, seen)
        with self._lock:
            if ("", namespace) not in self._objects["namespaces"]:
                raise not_found("namespaces", namespace)
            if (namespace, name) in self._objects["pods"]:
                raise ApiError(
                    409,
                    "AlreadyExists",
                    f'pods "{name}" already exists',
                    {"name": name, "kind": "pods"},
                )
            self._default_pod(pod)
            self._record("pods", "ADDED", pod)
            return copy.deepcopy(pod)

    @staticmethod
    def _validate_container(pod_name: str, index: int, container: Any, seen: set[str]) -> None:
        path = f"spec.containers[{index}]"
        if not isinstance(container, dict):
            raise invalid("Pod", pod_name, path, "Invalid value: must be an object")
        cname = container.get("name")
        if not isinstance(cname, str) or not _DNS_LABEL.match(cname) or len(cname) > 63:
            raise invalid("Pod", pod_name, f"{path}.name", f"Invalid value: {cname!r}")
        if cname in seen:
            raise invalid("Pod", pod_name, f"{path}.name", f'Duplicate value: "{cname}"')
        seen.add(cname)
        if not isinstance(container.get("image"), str) or not container["image"].strip():
            raise invalid("Pod", pod_name, f"{path}.image", "Required value")
        resources = container.get("resources") or {}
        parsed: dict[str, dict[str, float]] = {}
        for group in ("requests", "limits"):
            values = resources.get(group) or {}
            if not isinstance(values, dict):
                raise invalid("Pod", pod_name, f"{path}.resources.{group}", "Invalid value")
            parsed[group] = {}
            for resource, quantity in values.items():
                field = f"{path}.resources.{group}[{resource}]"
                try:
                    value = parse_quantity(str(quantity))
                except ValueError as exc:
                    raise invalid(
                        "Pod", pod_name, field, f'Invalid value: "{quantity}": {exc}'
                    ) from exc
                if value < 0:
                    raise invalid(
                        "Pod",
                        pod_name,
                        field,
                        f'Invalid value: "{quantity}": must be greater than or equal to 0',
                    )
                parsed[group][resource] = value
        for resource, request in parsed["requests"].items():
            limit = parsed["limits"].get(resource)
            field = f"{path}.resources.requests[{resource}]"
            if "/" in resource and "kubernetes.io/" not in resource:  # an extended resource
                if limit is None:
                    raise invalid(
                        "Pod",
                        pod_name,
                        f"{path}.resources.limits[{resource}]",
                        "Required value: Limit must be set for non overcommitable resources",
                    )
                if limit != request:
                    raise invalid(
                        "Pod", pod_name, field, f"Invalid value: must be equal to {resource} limit"
                    )
            elif limit is not None and request > limit:
                raise invalid(
                    "Pod",
                    pod_name,
                    field,
                    f"Invalid value: must be less than or equal to {resource} limit",
                )

    def _default_pod(self, pod: Obj) -> None:
        """The defaults the real API server's admission and defaulting fill in."""
        meta, spec = pod["metadata"], pod["spec"]
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339())
        meta.pop("deletionTimestamp", None)
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("securityContext", {})
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("priority", 0)
        for container in spec["containers"]:
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            container.setdefault(
                "imagePullPolicy",
                "Always"
                if container["image"].endswith(":latest") or ":" not in container["image"]
                else "IfNotPresent",
            )
            resources = container.setdefault("resources", {})
            limits = resources.get("limits") or {}
            if limits:
                requests = resources.setdefault("requests", {})
                for resource, limit in limits.items():
                    requests.setdefault(resource, limit)  # requests default to limits
        qos = self._qos_class(spec["containers"])
        conditions = []
        if spec.get("nodeName"):
            conditions.append(
                {
                    "type": "PodScheduled",
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": now_rfc3339(),
                }
            )
        pod["status"] = {"phase": "Pending", "conditions": conditions, "qosClass": qos}

    @staticmethod
    def _qos_class(containers: list[Obj]) -> str:
        """BestEffort: no requests or limits anywhere; Guaranteed: every container limits
        cpu and memory with requests equal to limits; Burstable otherwise."""
        groups = [c.get("resources") or {} for c in containers]
        if not any((g.get("requests") or {}) or (g.get("limits") or {}) for g in groups):
            return "BestEffort"
        for group in groups:
            limits, requests = group.get("limits") or {}, group.get("requests") or {}
            if not {"cpu", "memory"} <= set(limits):
                return "Burstable"
            for resource, request in requests.items():
                limit = limits.get(resource)
                if limit is None or parse_quantity(str(limit)) != parse_quantity(str(request)):
                    return "Burstable"
        return "Guaranteed"

    def delete_pod(self, namespace: str, name: str, grace_period: int | None = None) -> Obj:
        """DELETE: immediate for unbound or finished pods or a 0 grace period; otherwise
        deletionTimestamp now, and the pod goes when the kubelet says or the grace ends."""
        with self._lock:
            pod = self._objects["pods"].get((namespace, name))
            if pod is None:
                raise not_found("pods", name)
            pod = copy.deepcopy(pod)
            if grace_period is None:
                grace_period = int(pod["spec"].get("terminationGracePeriodSeconds", 30))
            finished = pod["status"].get("phase") in ("Succeeded", "Failed")
            if grace_period <= 0 or not pod["spec"].get("nodeName") or finished:
                self._record("pods", "DELETED", pod)
                self._logs.pop((namespace, name), None)
                return copy.deepcopy(pod)
            if "deletionTimestamp" in pod["metadata"]:
                current = int(pod["metadata"].get("deletionGracePeriodSeconds", grace_period))
                if grace_period >= current:  # a longer grace cannot extend a running deletion
                    return pod
            pod["metadata"]["deletionTimestamp"] = now_rfc3339()
            pod["metadata"]["deletionGracePeriodSeconds"] = grace_period
            self._record("pods", "MODIFIED", pod)
            old = self._grace_timers.pop((namespace, name), None)
            if old is not None:
                old.cancel()
            timer = threading.Timer(grace_period, self.kubelet_finish_delete, (namespace, name))
            timer.daemon = True
            self._grace_timers[(namespace, name)] = timer
            timer.start()
            return copy.deepcopy(pod)

    def _patch_pod(
        self, namespace: str, name: str, content_type: str, body: Any, subresource: str = ""
    ) -> Obj:
        with self._lock:
            current = self._objects["pods"].get((namespace, name))
            if current is None:
                raise not_found("pods", name)
            patched = apply_patch(content_type, current, body)
            self._check_pod_update(current, patched, subresource)
            if subresource == "resize":
                for status in patched.get("status", {}).get("containerStatuses", []) or []:
                    container = next(
                        (c for c in patched["spec"]["containers"] if c["name"] == status["name"]),
                        None,
                    )
                    if container is not None and "running" in status.get("state", {}):
                        status["resources"] = copy.deepcopy(container.get("resources", {}))
                        status["allocatedResources"] = copy.deepcopy(
                            container.get("resources", {}).get("requests", {})
                        )
            if patched == current:
                return copy.deepcopy(current)  # a no-op patch does not bump resourceVersion
            self._record("pods", "MODIFIED", patched)
            return copy.deepcopy(patched)

    def _check_pod_update(self, old: Obj, new: Obj, subresource: str) -> None:
        name = old["metadata"]["name"]
        for fixed in ("name", "namespace", "uid", "creationTimestamp"):
            if new["metadata"].get(fixed) != old["metadata"].get(fixed):
                raise invalid("Pod", name, f"metadata.{fixed}", "Invalid value: field is immutable")
        for field in ("labels", "annotations"):
            values = new["metadata"].get(field) or {}
            if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
                raise invalid("Pod", name, f"metadata.{field}", "Invalid value")
        old_spec, new_spec = copy.deepcopy(old["spec"]), copy.deepcopy(new["spec"])
        old_containers = old_spec.pop("containers")
        new_containers = new_spec.pop("containers", None)
        if (
            not isinstance(new_containers, list)
            or [c.get("name") for c in new_containers] != [c["name"] for c in old_containers]
            or new_spec != old_spec
        ):
            raise invalid(
                "Pod",
                name,
                "spec",
                "Forbidden: pod updates may not change fields "
                "other than `spec.containers[*].image`, "
                "`spec.activeDeadlineSeconds`, `spec.tolerations` (only additions "
                "to existing tolerations) or `spec.terminationGracePeriodSeconds`",
            )
        mutable = "resources" if subresource == "resize" else "image"
        seen: set[str] = set()
        for index, (before, after) in enumerate(zip(old_containers, new_containers, strict=True)):
            self._validate_container(name, index, after, seen)
            rest_before = {k: v for k, v in before.items() if k != mutable}
            rest_after = {k: v for k, v in after.items() if k != mutable}
            if rest_before != rest_after:
                what = (
                    "only cpu and memory resources are mutable"
                    if subresource == "resize"
                    else "pod updates may not change fields other than `spec.containers[*].image`"
                )
                raise invalid("Pod", name, f"spec.containers[{index}]", f"Forbidden: {what}")
            if subresource == "resize":
                for group in ("requests", "limits"):
                    b = (before.get("resources") or {}).get(group) or {}
                    a = (after.get("resources") or {}).get(group) or {}
                    changed = {k for k in set(a) | set(b) if a.get(k) != b.get(k)}
                    if changed - {"cpu", "memory"}:
                        raise invalid(
                            "Pod",
                            name,
                            f"spec.containers[{index}].resources",
                            "Forbidden: only cpu and memory resources are mutable",
                        )
        if subresource != "resize" and new.get("status") != old.get("status"):
            new["status"] = copy.deepcopy(old["status"])  # status changes go to /status

    # --- HTTP ---------------------------------------------------------------------------

    def _app(self) -> Starlette:
        routes = [
            Route("/version", self._version),
            Route("/api/v1/nodes", self._nodes),
            Route("/api/v1/nodes/{name}", self._node, methods=["GET", "PATCH"]),
            Route("/api/v1/namespaces", self._namespaces, methods=["GET", "POST"]),
            Route("/api/v1/namespaces/{name}", self._namespace),
            Route("/api/v1/pods", self._all_pods),
            Route("/api/v1/namespaces/{namespace}/pods", self._pods, methods=["GET", "POST"]),
            Route(
                "/api/v1/namespaces/{namespace}/pods/{name}",
                self._pod,
                methods=["GET", "PATCH", "DELETE"],
            ),
            Route(
                "/api/v1/namespaces/{namespace}/pods/{name}/resize",
                self._pod_resize,
                methods=["GET", "PATCH"],
            ),
            Route("/api/v1/namespaces/{namespace}/pods/{name}/log", self._pod_log),
            WebSocketRoute("/api/v1/namespaces/{namespace}/pods/{name}/exec", self._pod_exec),
            *self.metrics.routes(),
        ]
        app = Starlette(routes=routes)
        app.add_exception_handler(ApiError, self._api_error)  # type: ignore[arg-type]
        app.add_exception_handler(404, self._not_found)
        app.add_exception_handler(405, self._not_allowed)
        return app

    @staticmethod
    def _api_error(request: Request, exc: ApiError) -> Response:
        return JSONResponse(exc.status(), status_code=exc.code)

    @staticmethod
    def _not_found(request: Request, exc: Exception) -> Response:
        error = ApiError(404, "NotFound", "the server could not find the requested resource", {})
        return JSONResponse(error.status(), status_code=404)

    @staticmethod
    def _not_allowed(request: Request, exc: Exception) -> Response:
        error = ApiError(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
        return JSONResponse(error.status(), status_code=405)

    def _authorize(self, headers: Any) -> None:
        if self.tls is not None:
            return  # the TLS handshake required a client certificate signed by the CA
        if headers.get("authorization", "") != f"Bearer {self.token}":
            raise ApiError(401, "Unauthorized", "Unauthorized")

    async def _body(self, request: Request) -> Any:
        raw = await request.body()
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ApiError(
                400, "BadRequest", f"the body of the request could not be decoded: {exc}"
            ) from exc

    async def _version(self, request: Request) -> Response:
        self._authorize(request.headers)
        return JSONResponse(self.version)

    def _get_or_404(self, kind: str, namespace: str, name: str) -> Obj:
        with self._lock:
            obj = self._objects[kind].get((namespace, name))
            if obj is None:
                raise not_found(kind, name)
            return copy.deepcopy(obj)

    async def _list_or_watch(self, request: Request, kind: str, namespace: str | None) -> Response:
        self._authorize(request.headers)
        query = request.query_params
        labels = label_matcher(query.get("labelSelector"))
        fields = field_matcher(kind, query.get("fieldSelector"))

        def matches(obj: Obj) -> bool:
            if namespace is not None and obj["metadata"].get("namespace") != namespace:
                return False
            return labels(obj["metadata"].get("labels") or {}) and fields(obj)

        if query.get("watch") in ("true", "1", "True"):
            requested = query.get("resourceVersion") or ""
            if requested and not requested.isdigit():
                raise ApiError(400, "BadRequest", f"invalid resource version: {requested!r}")
            return StreamingResponse(
                self._watch_stream(kind, matches, query), media_type="application/json"
            )
        with self._lock:
            items = [copy.deepcopy(o) for _, o in sorted(self._objects[kind].items()) if matches(o)]
            rv = str(self._rv)
        for item in items:  # list items carry no kind/apiVersion on the wire
            item.pop("kind", None)
            item.pop("apiVersion", None)
        body = {
            "kind": f"{KIND_NAMES[kind]}List",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": rv},
            "items": items,
        }
        return JSONResponse(body)

    async def _watch_stream(
        self, kind: str, matches: Callable[[Obj], bool], query: Any
    ) -> AsyncIterator[bytes]:
        timeout = float(query.get("timeoutSeconds") or 1800)
        deadline = time.monotonic() + timeout
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1", "True")
        requested = query.get("resourceVersion") or ""
        wake = asyncio.Event()
        self._watchers.register(wake)
        try:
            too_old, current = False, 0
            with self._lock:
                if requested in ("", "0"):
                    # No version: the current objects as ADDED, then changes from now.
                    last = self._rv
                    initial = [copy.deepcopy(o) for _, o in sorted(self._objects[kind].items())]
                    pending = [_Event(last, "ADDED", o) for o in initial]
                else:
                    last = int(requested)  # checked by _list_or_watch before the stream starts
                    pending = []
                    too_old = last < self._oldest_watchable[kind]
                    current = self._rv
            if too_old:  # the real server answers 200, then one ERROR event, then ends
                yield self._line("ERROR", expired(last, current))
                return
            for event in pending:
                if matches(event.obj):
                    yield self._line(event.type, event.obj)
            last_sent = time.monotonic()
            while self._online:
                wake.clear()
                with self._lock:
                    if last < self._oldest_watchable[kind]:
                        events = None
                    else:
                        events = [e for e in self._history[kind] if e.resource_version > last]
                    current = self._rv
                if events is None:
                    yield self._line("ERROR", expired(last, current))
                    return
                for event in events:
                    last = event.resource_version
                    if matches(event.obj):
                        yield self._line(event.type, event.obj)
                        last_sent = time.monotonic()
                now = time.monotonic()
                if now >= deadline:
                    return
                if bookmarks and now - last_sent >= self.bookmark_interval:
                    last = max(last, current)
                    yield self._line(
                        "BOOKMARK",
                        {
                            "kind": KIND_NAMES[kind],
                            "apiVersion": "v1",
                            "metadata": {"resourceVersion": str(last), "creationTimestamp": None},
                        },
                    )
                    last_sent = now
                wait = deadline - now
                if bookmarks:
                    wait = min(wait, max(0.0, self.bookmark_interval - (now - last_sent)))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=max(wait, 0.001))
        finally:
            self._watchers.unregister(wake)

    @staticmethod
    def _line(event_type: str, obj: Obj) -> bytes:
        return json.dumps({"type": event_type, "object": obj}).encode() + b"\n"

    async def _nodes(self, request: Request) -> Response:
        return await self._list_or_watch(request, "nodes", None)

    async def _node(self, request: Request) -> Response:
        self._authorize(request.headers)
        name = request.path_params["name"]
        if request.method == "GET":
            return JSONResponse(self._get_or_404("nodes", "", name))
        body = await self._body(request)
        with self._lock:
            current = self._objects["nodes"].get(("", name))
            if current is None:
                raise not_found("nodes", name)
            patched = apply_patch(request.headers.get("content-type", ""), current, body)
            if patched["metadata"].get("name") != name:
                raise invalid("Node", name, "metadata.name", "Invalid value: field is immutable")
            unschedulable = patched["spec"].get("unschedulable")
            if unschedulable is not None and not isinstance(unschedulable, bool):
                raise invalid(
                    "Node", name, "spec.unschedulable", "Invalid value: must be a boolean"
                )
            self._sync_unschedulable_taint(patched)
            if patched != current:
                self._record("nodes", "MODIFIED", patched)
            return JSONResponse(copy.deepcopy(patched))

    @staticmethod
    def _sync_unschedulable_taint(node: Obj) -> None:
        """A cordoned node carries the node.kubernetes.io/unschedulable taint, as the node
        lifecycle controller sets it; uncordoned, it loses it."""
        taints = [
            t
            for t in node["spec"].get("taints") or []
            if t.get("key") != "node.kubernetes.io/unschedulable"
        ]
        if node["spec"].get("unschedulable"):
            taints.append(
                {
                    "key": "node.kubernetes.io/unschedulable",
                    "effect": "NoSchedule",
                    "timeAdded": now_rfc3339(),
                }
            )
        if taints:
            node["spec"]["taints"] = taints
        else:
            node["spec"].pop("taints", None)

    async def _namespaces(self, request: Request) -> Response:
        if request.method == "GET":
            return await self._list_or_watch(request, "namespaces", None)
        self._authorize(request.headers)
        body = await self._body(request)
        name = (body.get("metadata") or {}).get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name:
            raise invalid("Namespace", "", "metadata.name", "Required value")
        if len(name) > 63 or not _DNS_LABEL.match(name):
            raise invalid(
                "Namespace",
                name,
                "metadata.name",
                f'Invalid value: "{name}": a '
                "lowercase RFC 1123 label must consist of lower case alphanumeric "
                "characters or '-'",
            )
        labels = (body.get("metadata") or {}).get("labels") or {}
        return JSONResponse(self.add_namespace(name, labels), status_code=201)

    async def _namespace(self, request: Request) -> Response:
        self._authorize(request.headers)
        return JSONResponse(self._get_or_404("namespaces", "", request.path_params["name"]))

    async def _all_pods(self, request: Request) -> Response:
        return await self._list_or_watch(request, "pods", None)

    async def _pods(self, request: Request) -> Response:
        namespace = request.path_params["namespace"]
        if request.method == "GET":
            return await self._list_or_watch(request, "pods", namespace)
        self._authorize(request.headers)
        pod = self.create_pod(namespace, await self._body(request))
        return JSONResponse(pod, status_code=201)

    async def _pod(self, request: Request) -> Response:
        self._authorize(request.headers)
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        if request.method == "GET":
            return JSONResponse(self._get_or_404("pods", namespace, name))
        if request.method == "DELETE":
            grace = request.query_params.get("gracePeriodSeconds")
            raw = await request.body()
            if grace is None and raw:
                options = json.loads(raw)
                if isinstance(options, dict):
                    grace = options.get("gracePeriodSeconds")
            try:
                seconds = None if grace is None else int(grace)
            except ValueError:
                raise ApiError(400, "BadRequest", "gracePeriodSeconds must be an integer") from None
            return JSONResponse(self.delete_pod(namespace, name, seconds))
        content_type = request.headers.get("content-type", "")
        body = await self._body(request)
        return JSONResponse(self._patch_pod(namespace, name, content_type, body))

    async def _pod_resize(self, request: Request) -> Response:
        self._authorize(request.headers)
        if not self.resize_supported:  # an older cluster: the subresource does not exist
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        if request.method == "GET":
            return JSONResponse(self._get_or_404("pods", namespace, name))
        content_type = request.headers.get("content-type", "")
        body = await self._body(request)
        return JSONResponse(self._patch_pod(namespace, name, content_type, body, "resize"))

    def _started_container(self, pod: Obj, container: str | None) -> str:
        """The container to read or exec in; 400 like the real server when it has not started."""
        names = [c["name"] for c in pod["spec"]["containers"]]
        pod_name = pod["metadata"]["name"]
        if container is None:
            if len(names) > 1:
                raise ApiError(
                    400,
                    "BadRequest",
                    f"a container name must be specified for pod "
                    f"{pod_name}, choose one of: {names}",
                )
            container = names[0]
        if container not in names:
            raise ApiError(
                400, "BadRequest", f"container {container} is not valid for pod {pod_name}"
            )
        for status in pod["status"].get("containerStatuses") or []:
            if status["name"] == container and "waiting" not in status.get("state", {}):
                return container
        reason = "ContainerCreating"
        for status in pod["status"].get("containerStatuses") or []:
            if status["name"] == container:
                reason = status["state"]["waiting"].get("reason", reason)
        raise ApiError(
            400,
            "BadRequest",
            f'container "{container}" in pod "{pod_name}" is waiting to start: {reason}',
        )

    async def _pod_log(self, request: Request) -> Response:
        self._authorize(request.headers)
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        pod = self._get_or_404("pods", namespace, name)
        self._started_container(pod, request.query_params.get("container"))
        tail = request.query_params.get("tailLines")
        follow = request.query_params.get("follow") in ("true", "1", "True")
        with self._lock:
            lines = list(self._logs.get((namespace, name), []))
        start = max(0, len(lines) - int(tail)) if tail is not None else 0
        if not follow:
            return PlainTextResponse("".join(f"{line}\n" for line in lines[start:]))
        return StreamingResponse(self._follow_log(namespace, name, start), media_type="text/plain")

    async def _follow_log(self, namespace: str, name: str, start: int) -> AsyncIterator[bytes]:
        """Lines as they come, until the pod's containers terminate or it is deleted."""
        wake = asyncio.Event()
        self._watchers.register(wake)
        sent = start
        try:
            while self._online:
                wake.clear()
                with self._lock:
                    lines = list(self._logs.get((namespace, name), []))
                    pod = self._objects["pods"].get((namespace, name))
                    done = pod is None or pod["status"].get("phase") in ("Succeeded", "Failed")
                if len(lines) > sent:
                    yield "".join(f"{line}\n" for line in lines[sent:]).encode()
                    sent = len(lines)
                    continue
                if done:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=1.0)
        finally:
            self._watchers.unregister(wake)

    def pod_dir(self, namespace: str, name: str) -> Path:
        """The pod's "container filesystem": a directory of its own on the host, the
        working directory of its exec'd commands, in which each of its containers'
        ``volumeMounts`` (``/workspace``...) is a subdirectory of the same name."""
        path = self._pod_root / namespace / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _in_pod(self, pod: Obj, container: str, command: tuple[str, ...]) -> list[str]:
        """``command`` with the container's mount paths rewritten into the pod's directory
        (where they appear as a path in an argument: ``/workspace/a``, ``-C /workspace``)."""
        root = self.pod_dir(pod["metadata"]["namespace"], pod["metadata"]["name"])
        mounts: list[str] = []
        for spec in pod["spec"]["containers"]:
            if spec["name"] == container:
                mounts = [m["mountPath"].rstrip("/") for m in spec.get("volumeMounts") or []]
        rewritten = []
        for argument in command:
            for mount in sorted(mounts, key=len, reverse=True):
                if not mount:
                    continue
                local = root / mount.lstrip("/")
                local.mkdir(parents=True, exist_ok=True)
                pattern = rf"(?<![\w/.-]){re.escape(mount)}(?=/|$|[\s'\"])"
                argument = re.sub(pattern, lambda _m, to=str(local): to, argument)
            rewritten.append(argument)
        return rewritten

    async def _pod_exec(self, websocket: WebSocket) -> None:
        try:
            self._authorize(websocket.headers)
            namespace = websocket.path_params["namespace"]
            name = websocket.path_params["name"]
            pod = self._get_or_404("pods", namespace, name)
            container = self._started_container(pod, websocket.query_params.get("container"))
        except ApiError as error:
            # Refused before the upgrade, with the Status the real server sends.
            await websocket.send_denial_response(
                JSONResponse(error.status(), status_code=error.code)
            )
            return
        offered = [
            p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",")
        ]
        chosen = next((p for p in offered if p in self.exec_subprotocols), None)
        if chosen is None:
            await websocket.close(code=1002)
            return
        await websocket.accept(subprotocol=chosen)
        params = websocket.query_params
        command = tuple(params.getlist("command"))
        flags = {
            k: params.get(k) in ("true", "1", "True") for k in ("stdin", "stdout", "stderr", "tty")
        }
        record = ExecRecord(namespace, name, command, chosen, flags["tty"], [])
        self.execs.append(record)
        try:
            if command in self.exec_results:
                result = self.exec_results[command]
                record.exit_code = result.exit_code
                if result.stdout and flags["stdout"]:
                    await websocket.send_bytes(bytes([STDOUT]) + result.stdout.encode())
                if result.stderr and flags["stderr"]:
                    await websocket.send_bytes(bytes([STDERR]) + result.stderr.encode())
                status = self._exec_status(command, result.exit_code)
            else:
                argv = self._in_pod(pod, container, command)
                status = await self._run(websocket, record, argv, flags, chosen)
            await websocket.send_bytes(bytes([ERROR]) + json.dumps(status).encode())
            await websocket.close()
        except WebSocketDisconnect:
            return

    async def _run(
        self,
        websocket: WebSocket,
        record: ExecRecord,
        argv: list[str],
        flags: dict[str, bool],
        subprotocol: str,
    ) -> Obj:
        """Run ``argv`` in the pod's directory, relaying the channels, until it exits;
        the Status for channel 3. With a TTY, stderr goes to stdout (as the kubelet's)."""
        command = record.command
        if not argv:
            return self._exec_status(("",), -1)
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if flags["stdin"] else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT if flags["tty"] else asyncio.subprocess.PIPE,
                cwd=self.pod_dir(record.namespace, record.pod),
                env={
                    "PATH": self.exec_path or os.environ.get("PATH", "/usr/bin:/bin"),
                    "HOME": "/",
                },
                start_new_session=True,
            )
        except OSError:
            return self._exec_status(command, -1)

        async def pump(reader: asyncio.StreamReader | None, channel: int, wanted: bool) -> None:
            while reader is not None:
                data = await reader.read(32768)
                if not data:
                    return
                if wanted:
                    await websocket.send_bytes(bytes([channel]) + data)

        async def feed() -> None:
            """The client's messages: stdin, resizes, v5's close of stdin; a hang-up kills."""
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, 9)
                    return
                data = message.get("bytes") or (message.get("text") or "").encode()
                if not data:
                    continue
                channel, payload = data[0], data[1:]
                if channel == STDIN and process.stdin is not None and payload:
                    with contextlib.suppress(ConnectionError):
                        process.stdin.write(payload)
                        await process.stdin.drain()
                elif channel == RESIZE:
                    with contextlib.suppress(ValueError):
                        record.resizes.append(json.loads(payload))
                elif (
                    channel == CLOSE
                    and subprotocol == EXEC_SUBPROTOCOLS[0]
                    and payload[:1] == bytes([STDIN])
                    and process.stdin is not None
                ):
                    process.stdin.close()

        feeder = asyncio.create_task(feed())
        try:
            await asyncio.gather(
                pump(process.stdout, STDOUT, flags["stdout"]),
                pump(process.stderr, STDERR, flags["stderr"]),
            )
            exit_code = await process.wait()
            if exit_code < 0:  # killed by a signal: the shell's 128 + N
                exit_code = 128 - exit_code
        finally:
            feeder.cancel()
            await asyncio.gather(feeder, return_exceptions=True)
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, 9)
                await process.wait()
        record.exit_code = exit_code
        return self._exec_status(command, exit_code)

    @staticmethod
    def _exec_status(command: tuple[str, ...], exit_code: int) -> Obj:
        """The Status on the error channel, shaped as fixtures/exec_status.json's."""
        shapes = load_fixture("exec_status.json")
        if exit_code == 0:
            return dict(shapes["success"])
        fill = {
            "{command}": " ".join(command),
            "{code}": str(exit_code),
            "{program}": command[0] if command else "",
        }
        status = shapes["not_found"] if exit_code < 0 else shapes["non_zero_exit"]
        text = json.dumps(status)
        for key, value in fill.items():
            text = text.replace(key, json.dumps(value)[1:-1])
        return dict(json.loads(text))


def write_kubeconfig(
    path: Path, server: str, token: str | None, context: str = "fake", tls: TlsFiles | None = None
) -> Path:
    """A kubeconfig YAML pointing at `server` with a bearer token, or (``tls``) the CA and a
    client certificate as base64 data, as kubeadm and the cloud providers write them."""
    import base64

    import yaml

    def data(file: Path) -> str:
        return base64.b64encode(file.read_bytes()).decode()

    user: dict[str, str] = {}
    cluster: dict[str, str] = {"server": server}
    if token is not None:
        user["token"] = token
    if tls is not None:
        cluster["certificate-authority-data"] = data(tls.ca)
        user["client-certificate-data"] = data(tls.client_cert)
        user["client-key-data"] = data(tls.client_key)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": context, "cluster": cluster}],
        "users": [{"name": f"{context}-user", "user": user}],
        "contexts": [
            {
                "name": context,
                "context": {"cluster": context, "user": f"{context}-user", "namespace": "default"},
            }
        ],
        "current-context": context,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
