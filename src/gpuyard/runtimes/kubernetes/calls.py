"""Calling a cluster's API server: timeouts, and the client's exceptions as runtime
failures (``KubeFailure``, ``KubeUnreachable``; ``NotForKubernetes`` for what pods do not
do)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import urllib3
from kubernetes.client.exceptions import ApiException

from gpuyard.runtimes.base import RuntimeFailure, RuntimeUnreachable

#: (connect, read) seconds for ordinary calls; logs that follow have no read timeout.
TIMEOUT = (3.0, 20.0)


class KubeFailure(RuntimeFailure):
    """The API server refused a call (or did not answer: ``KubeUnreachable``)."""

    def __init__(self, status: int, detail: str, *, title: str = "Kubernetes error") -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = []

    @classmethod
    def of(cls, exc: ApiException, what: str) -> KubeFailure:
        """The failure an ``ApiException`` says (its Status message when it has one)."""
        status = int(exc.status or 0)
        message = str(exc.reason or "")
        try:
            body = json.loads(exc.body or "{}")
        except (TypeError, ValueError):
            body = {}
        if isinstance(body, dict) and body.get("message"):
            message = str(body["message"])
        detail = f"{what}: {status} {message}"[:1000]
        if status in (0, 429, 500, 502, 503, 504):
            return KubeUnreachable(detail)
        return cls(status, detail)


class KubeUnreachable(KubeFailure, RuntimeUnreachable):
    """No answer from the API server (or a 5xx/429): worth trying again later."""

    def __init__(self, detail: str) -> None:
        super().__init__(503, detail, title="Kubernetes API server unreachable")


@contextmanager
def calling(what: str) -> Iterator[None]:
    """Turn the client's exceptions into runtime failures saying ``what`` was asked."""
    try:
        yield
    except ApiException as exc:
        raise KubeFailure.of(exc, what) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise KubeUnreachable(f"{what}: {type(exc).__name__}: {exc}"[:1000]) from exc


class NotForKubernetes(RuntimeFailure):
    """What a kubernetes replica answers for what this runtime does not do (yet): 409."""

    title = "Not supported by the kubernetes runtime"

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.status = 409
        self.detail = what
        self.errors = []


def not_supported(what: str) -> NoReturn:
    raise NotForKubernetes(what)
