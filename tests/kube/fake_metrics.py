"""The fake API server's ``metrics.k8s.io/v1beta1`` group: what metrics-server serves
(NodeMetrics, PodMetrics), a TEST DOUBLE like the rest of the fake (see README.md).

Off by default, as on a cluster without metrics-server: every path of the group is then a
404 ``Status`` "the server could not find the requested resource" with empty details
(fixtures/status_404_no_api_group.json), as the real API server answers for a group it
does not serve. On (``served = True``), it answers what the test set
(``set_node_usage``, ``set_pod_usage``), shaped on fixtures/node_metrics.json and
pod_metrics.json: a node or pod with no usage set has not been scraped yet (404 NotFound
on a read, left out of a list, as metrics-server does). PodMetrics carry the pod's labels,
and lists take ``labelSelector``.
"""

from __future__ import annotations

import contextlib
import copy
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kube.fake_apiserver import ApiError, Key, Obj, label_matcher, load_fixture, now_rfc3339

if TYPE_CHECKING:
    from kube.fake_apiserver import FakeApiServer

PREFIX = "/apis/metrics.k8s.io/v1beta1"


class FakeMetrics:
    """The metrics group of one fake API server."""

    def __init__(self, server: FakeApiServer) -> None:
        self._server = server
        #: Whether metrics-server is "installed" (the group is served).
        self.served = False
        self._nodes: dict[str, dict[str, str]] = {}
        self._pods: dict[Key, dict[str, str]] = {}
        #: How many requests the group got (served or not).
        self.requests = 0

    def set_node_usage(self, name: str, cpu: str, memory: str) -> None:
        """The node's usage as metrics-server last scraped it ("3500m", "48Gi")."""
        self._nodes[name] = {"cpu": cpu, "memory": memory}

    def set_pod_usage(self, namespace: str, name: str, cpu: str, memory: str = "64Mi") -> None:
        """The pod's ``replica`` container's usage as metrics-server last scraped it."""
        self._pods[(namespace, name)] = {"cpu": cpu, "memory": memory}

    def routes(self) -> list[Route]:
        return [
            Route(f"{PREFIX}/nodes", self._node_list),
            Route(f"{PREFIX}/nodes/{{name}}", self._node),
            Route(f"{PREFIX}/pods", self._pod_list),
            Route(f"{PREFIX}/namespaces/{{namespace}}/pods", self._pod_list),
            Route(f"{PREFIX}/namespaces/{{namespace}}/pods/{{name}}", self._pod),
        ]

    def _check(self, request: Request) -> None:
        self._server._authorize(request.headers)
        self.requests += 1
        if not self.served:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})

    def _node_metrics(self, name: str) -> Obj | None:
        usage = self._nodes.get(name)
        if usage is None:
            return None
        obj: Obj = load_fixture("node_metrics.json")
        labels = {}
        with contextlib.suppress(ApiError):
            labels = self._server.get("nodes", name)["metadata"].get("labels") or {}
        obj["metadata"] = {"name": name, "creationTimestamp": now_rfc3339(), "labels": labels}
        obj["timestamp"] = now_rfc3339()
        obj["usage"] = dict(usage)
        return obj

    def _pod_metrics(self, namespace: str, name: str) -> Obj | None:
        usage = self._pods.get((namespace, name))
        if usage is None:
            return None
        try:
            pod = self._server.get("pods", name, namespace)
        except ApiError:
            return None  # metrics-server drops a pod that is gone
        obj: Obj = load_fixture("pod_metrics.json")
        obj["metadata"] = {
            "name": name,
            "namespace": namespace,
            "creationTimestamp": now_rfc3339(),
            "labels": copy.deepcopy(pod["metadata"].get("labels") or {}),
        }
        obj["timestamp"] = now_rfc3339()
        obj["containers"] = [{"name": "replica", "usage": dict(usage)}]
        return obj

    async def _node_list(self, request: Request) -> Response:
        self._check(request)
        labels = label_matcher(request.query_params.get("labelSelector"))
        items = [self._node_metrics(name) for name in sorted(self._nodes)]
        found = [i for i in items if i is not None and labels(i["metadata"]["labels"])]
        return JSONResponse(_list("NodeMetricsList", found))

    async def _node(self, request: Request) -> Response:
        self._check(request)
        name = request.path_params["name"]
        found = self._node_metrics(name)
        if found is None:
            raise _not_found("nodes", name)
        return JSONResponse(found)

    async def _pod_list(self, request: Request) -> Response:
        self._check(request)
        namespace = request.path_params.get("namespace")
        labels = label_matcher(request.query_params.get("labelSelector"))
        found = []
        for ns, name in sorted(self._pods):
            if namespace is not None and ns != namespace:
                continue
            item = self._pod_metrics(ns, name)
            if item is not None and labels(item["metadata"]["labels"]):
                found.append(item)
        return JSONResponse(_list("PodMetricsList", found))

    async def _pod(self, request: Request) -> Response:
        self._check(request)
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        found = self._pod_metrics(namespace, name)
        if found is None:
            raise _not_found("pods", f"{namespace}/{name}")
        return JSONResponse(found)


def _list(kind: str, items: list[Obj]) -> Obj:
    return {
        "kind": kind,
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {},
        "items": items,
    }


def _not_found(resource: str, name: str) -> ApiError:
    """metrics-server's answer for an object it has no metrics of."""
    return ApiError(
        404,
        "NotFound",
        f'{resource}.metrics.k8s.io "{name}" not found',
        {"name": name, "group": "metrics.k8s.io", "kind": resource},
    )
