"""The agent's errors: domain errors with a problem type and status, rendered as problem+json.

Docker's own answers are translated here, once: an unknown image is the caller's fault (422),
a missing NVIDIA runtime is a fact of this host (409), anything else Docker refuses is a bad
gateway (502), and a Docker daemon that does not answer is 503.
"""

from __future__ import annotations

from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from requests.exceptions import RequestException

from gpuyard.domain.errors import Conflict, FieldError, GpuyardError, InvalidInput
from gpuyard.domain.errors import NotFound as DomainNotFound

_PROBLEMS = "https://gpuyard.dev/problems/"
#: What the docker SDK raises: its own errors, and requests' when the daemon is unreachable.
DOCKER_ERRORS = (DockerException, RequestException)


class PathRefused(InvalidInput):
    """A workspace path that escapes the workspace (``..``, absolute, through a symlink)."""

    type = f"{_PROBLEMS}path-refused"
    title = "Path refused"
    status = 400


class PayloadTooLarge(GpuyardError):
    """An upload over the per-file limit or the workspace quota."""

    type = f"{_PROBLEMS}payload-too-large"
    title = "Payload too large"
    status = 413


class GpuRuntimeUnavailable(Conflict):
    """GPUs were asked for but this host's Docker has no NVIDIA runtime."""

    type = f"{_PROBLEMS}gpu-runtime-unavailable"
    title = "GPU runtime unavailable"


class RuntimeRefused(GpuyardError):
    """Docker answered with an error the agent cannot attribute to the request."""

    type = f"{_PROBLEMS}runtime-refused"
    title = "Container runtime refused the request"
    status = 502


class RuntimeUnavailable(GpuyardError):
    """The Docker daemon does not answer."""

    type = f"{_PROBLEMS}runtime-unavailable"
    title = "Container runtime unavailable"
    status = 503


def container_not_found(container_id: str) -> DomainNotFound:
    return DomainNotFound.for_object("container", container_id)


def from_docker(exc: Exception, *, image: str | None = None) -> GpuyardError:
    """The domain error that says what a Docker SDK exception means for the caller."""
    if isinstance(exc, ImageNotFound) or (
        image is not None and isinstance(exc, NotFound) and "image" in _explain(exc).lower()
    ):
        message = f"image {image!r} is not on this host (pull or import it first)"
        return InvalidInput(message, [FieldError("image", message)])
    if isinstance(exc, NotFound):
        return DomainNotFound(_explain(exc))
    if isinstance(exc, APIError):
        detail = _explain(exc)
        if "could not select device driver" in detail:
            return GpuRuntimeUnavailable(
                f"this host's Docker cannot give GPUs to containers ({detail}); install the "
                "NVIDIA Container Toolkit and restart dockerd",
                [FieldError("gpu_uuids", "no NVIDIA container runtime on this host")],
            )
        if "port is already allocated" in detail or "address already in use" in detail:
            return Conflict(
                f"a published host port is taken on this host ({detail})",
                [FieldError("ports", "host port already in use")],
            )
        if exc.status_code == 409:
            return Conflict(f"Docker: {detail}")
        if exc.status_code is not None and 400 <= exc.status_code < 500:
            return InvalidInput(f"Docker refused the container: {detail}")
        return RuntimeRefused(f"Docker: {detail}")
    return RuntimeUnavailable(f"Docker does not answer: {exc}")


def _explain(exc: Exception) -> str:
    explanation = getattr(exc, "explanation", None)
    return str(explanation or exc)
