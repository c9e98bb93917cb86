"""Images on this host through the Docker Engine API (docker SDK): list, pull, build, push.

Pull, build and push return an iterator of progress lines from Docker's own JSON stream:
a refusal Docker gives before the operation starts (an unknown repository, a bad
Dockerfile path) raises at once, as a domain error; once it runs, Docker's errors are a
last ``error`` line. Every operation stops at ``deadline_s`` (checked between Docker's
lines, and by a watchdog that shuts Docker's socket down so a read blocked on a silent
daemon or registry ends too), and each line's text is cut to ``MAX_MESSAGE_LENGTH``.
Credentials go to Docker as the call's ``auth_config`` and nowhere else.
"""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time
from collections.abc import Iterator
from typing import IO, Any

import docker
import requests
from docker import auth as docker_auth
from docker.errors import APIError, ImageNotFound, create_api_error_from_http_exception
from docker.errors import NotFound as DockerNotFound
from docker.utils import parse_repository_tag
from docker.utils.json_stream import json_stream

from gpuyard.agent.errors import DOCKER_ERRORS, RuntimeRefused, RuntimeUnavailable
from gpuyard.agent.image_models import MAX_MESSAGE_LENGTH, ImageInfo, ProgressLine, RegistryAuth
from gpuyard.domain.errors import Conflict, FieldError, GpuyardError, InvalidInput
from gpuyard.domain.errors import NotFound as DomainNotFound
from gpuyard.log import get_logger

log = get_logger(__name__)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_LENGTH else text[: MAX_MESSAGE_LENGTH - 1] + "…"


def image_error(exc: Exception, field: str) -> GpuyardError:
    """What a Docker SDK exception of an image operation means for the caller."""
    detail = str(getattr(exc, "explanation", None) or exc)
    lowered = detail.lower()
    if any(word in lowered for word in ("unauthorized", "authentication required", "denied")):
        # Docker answers 500 for a registry's refusal: it is the credentials' fault.
        message = "the registry refused these credentials"
        return InvalidInput(f"Docker: {detail}", [FieldError("auth", message)])
    if "manifest unknown" in lowered or "not found" in lowered:
        return InvalidInput(f"Docker: {detail}", [FieldError(field, "not found")])
    if isinstance(exc, ImageNotFound | DockerNotFound):
        return InvalidInput(f"Docker: {detail}", [FieldError(field, "not found")])
    if isinstance(exc, APIError):
        if exc.status_code is not None and 400 <= exc.status_code < 500:
            return InvalidInput(f"Docker refused it: {detail}", [FieldError(field, _cut(detail))])
        return RuntimeRefused(f"Docker: {detail}")
    return RuntimeUnavailable(f"Docker does not answer: {exc}")


def _auth_config(auth: RegistryAuth | None) -> dict[str, str] | None:
    if auth is None or auth.username is None:
        return None
    return {
        "username": auth.username,
        "password": auth.password or "",
        "serveraddress": auth.server_address,
    }


def _progress(event: dict[str, Any]) -> ProgressLine:
    """One of Docker's stream objects as a progress line."""
    if event.get("error") or event.get("errorDetail"):
        detail = event.get("errorDetail") or {}
        message = str(event.get("error") or detail.get("message") or "failed")
        return ProgressLine(kind="error", message=_cut(message))
    if "stream" in event:
        return ProgressLine(kind="log", message=_cut(str(event["stream"]).rstrip("\n")))
    aux = event.get("aux")
    if isinstance(aux, dict) and not event.get("status"):
        # The build's image id, or a push's digest, as Docker reports them.
        made = aux.get("ID") or aux.get("Digest")
        return ProgressLine(kind="status", message=_cut(f"image {made}" if made else str(aux)))
    details = event.get("progressDetail") or {}
    current, total = details.get("current"), details.get("total")
    layer = event.get("id")
    return ProgressLine(
        kind="status",
        message=_cut(str(event.get("status") or "")),
        layer=str(layer)[:256] if layer else None,
        current=current if isinstance(current, int) else None,
        total=total if isinstance(total, int) else None,
    )


class _Watchdog:
    """Shuts one Docker response's socket down at the deadline, or at once on ``fire``:
    a read blocked on it (docker-py reads a pull with no timeout) then fails and ends."""

    def __init__(self, response: requests.Response | None, deadline: float) -> None:
        self._raw = getattr(response, "raw", None)
        self.deadline = deadline
        self.fired = threading.Event()
        self.expired = False  # fired by the deadline, not by a close
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        self.expired = True
        self.fire()

    def fire(self) -> None:
        self._timer.cancel()
        self.fired.set()
        # Read now, not at the start: once the response is read to its end its connection
        # goes back to the pool (None here), and another request's socket is not ours.
        connection = getattr(self._raw, "connection", None)
        sock: socket.socket | None = getattr(connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


class ImageStream(Iterator[ProgressLine]):
    """The progress lines of one pull, build or push. ``close`` stops it from any thread:
    the watchdog fires, the read in flight ends, and Docker's stream is closed after it."""

    def __init__(self, lines: Iterator[ProgressLine], watchdog: _Watchdog) -> None:
        self._lines = lines
        self._watchdog = watchdog
        self._reading = threading.Lock()

    def __next__(self) -> ProgressLine:
        with self._reading:
            try:
                return next(self._lines)
            except StopIteration:
                self._watchdog.cancel()
                raise

    def abort(self) -> None:
        """Make a read in flight end now (any thread; never blocks)."""
        self._watchdog.fire()

    def close(self) -> None:
        """Abort, wait for a read in flight to end, then close Docker's stream."""
        self._watchdog.fire()
        with self._reading:  # the read in flight, if any, ends now that its socket is shut
            close = getattr(self._lines, "close", None)
            if close is not None:
                close()


class _Opened(threading.local):
    """The last response the image-stream client received in this thread."""

    response: requests.Response | None = None


class ImageManager:
    """The images of this host's Docker daemon."""

    def __init__(
        self,
        client: docker.DockerClient,
        deadline_s: float,
        streams: docker.DockerClient | None = None,
        build_labels: dict[str, str] | None = None,
    ) -> None:
        """``streams``: the client pulls, builds and pushes go through, whose read timeout
        should be at least ``deadline_s`` (default ``client``); ``build_labels``: labels
        every image it builds gets."""
        self.client = client
        self.build_labels = dict(build_labels or {})
        self.deadline_s = deadline_s
        self.streams = streams or client
        self._opened = _Opened()
        # The response each stream opens, for its watchdog (docker-py returns only a
        # generator); a hook runs in the thread that made the request.
        self.streams.api.hooks["response"].append(self._remember)

    def _remember(self, response: requests.Response, *_args: Any, **_kwargs: Any) -> None:
        self._opened.response = response

    def list(self) -> list[ImageInfo]:
        try:
            found = self.client.api.images()
        except DOCKER_ERRORS as exc:
            raise image_error(exc, "image") from exc
        return [
            ImageInfo(
                id=str(item.get("Id", "")),
                tags=[t for t in item.get("RepoTags") or [] if t != "<none>:<none>"],
                size_bytes=int(item.get("Size") or 0),
                created_at=(
                    time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(item["Created"]))
                    if isinstance(item.get("Created"), int)
                    else None
                ),
            )
            for item in found
        ]

    def remove(self, reference: str, *, force: bool) -> None:
        """Untag ``reference`` (removing the image with its last tag); NotFound when this
        host has no such image, Conflict when a container uses it (without ``force``)."""
        try:
            self.client.api.remove_image(reference, force=force)
        except ImageNotFound:
            raise DomainNotFound.for_object("image", reference, "reference") from None
        except APIError as exc:
            if exc.status_code == 409:
                raise Conflict(f"Docker: {exc.explanation or exc}") from exc
            raise image_error(exc, "reference") from exc
        except DOCKER_ERRORS as exc:
            raise image_error(exc, "reference") from exc
        log.info("image removed", reference=reference)

    def pull(self, reference: str, auth: RegistryAuth | None) -> ImageStream:
        repository, tag = parse_repository_tag(reference)
        deadline = time.monotonic() + self.deadline_s
        api = self.streams.api
        config = _auth_config(auth)
        registry, _ = docker_auth.resolve_repository_name(repository)
        header = (
            docker_auth.encode_header(config)
            if config is not None
            else docker_auth.get_config_header(api, registry)
        )
        try:
            # docker-py's own pull waits for Docker's answer with no timeout at all (Docker
            # answers only once the registry does): the same request, with the deadline as
            # its read timeout.
            response = api.post(
                f"{api.base_url}/v{api.api_version}/images/create",
                params={"fromImage": repository, "tag": tag or "latest"},
                headers={"X-Registry-Auth": header} if header else {},
                stream=True,
                timeout=self.deadline_s,
            )
            try:
                response.raise_for_status()
            except requests.HTTPError as exc:
                raise create_api_error_from_http_exception(exc) from exc
        except DOCKER_ERRORS as exc:
            if time.monotonic() >= deadline:
                raise RuntimeUnavailable(f"Docker did not answer in {self.deadline_s:g} s") from exc
            raise image_error(exc, "reference") from exc
        log.info("image pull", reference=reference)
        stream = json_stream(response.iter_content(chunk_size=None))
        return self._stream(stream, deadline, lambda: self._image_id(reference))

    def build(self, context: IO[bytes], tag: str, dockerfile: str) -> ImageStream:
        deadline = time.monotonic() + self.deadline_s
        try:
            stream = self.streams.api.build(
                fileobj=context,
                custom_context=True,
                tag=tag,
                dockerfile=dockerfile,
                rm=True,
                forcerm=True,
                labels=self.build_labels or None,
                decode=True,
                timeout=max(1, math.ceil(self.deadline_s)),
            )
        except DOCKER_ERRORS as exc:
            raise image_error(exc, "context") from exc
        log.info("image build", tag=tag)
        return self._stream(stream, deadline, lambda: self._image_id(tag))

    def push(self, source: str, target: str, auth: RegistryAuth | None) -> ImageStream:
        repository, tag = parse_repository_tag(target)
        deadline = time.monotonic() + self.deadline_s
        try:
            if source != target:
                self.client.api.tag(source, repository, tag or "latest")
            stream = self.streams.api.push(
                repository,
                tag=tag or "latest",
                stream=True,
                decode=True,
                auth_config=_auth_config(auth),
            )
        except DOCKER_ERRORS as exc:
            raise image_error(exc, "source") from exc
        log.info("image push", source=source, target=target)
        return self._stream(stream, deadline, lambda: target)

    def _stream(self, stream: Iterator[Any], deadline: float, made: Any) -> ImageStream:
        response, self._opened.response = self._opened.response, None
        watchdog = _Watchdog(response, deadline)
        return ImageStream(self._follow(stream, watchdog, made), watchdog)

    def _image_id(self, reference: str) -> str | None:
        try:
            attrs = self.client.api.inspect_image(reference)  # type: ignore[no-untyped-call]
            return str(attrs.get("Id") or "") or None
        except DOCKER_ERRORS:
            return None

    def _follow(
        self, stream: Iterator[Any], watchdog: _Watchdog, made: Any
    ) -> Iterator[ProgressLine]:
        """Docker's stream as progress lines, ending with ``done`` or ``error``."""
        deadline = watchdog.deadline
        digest: str | None = None
        try:
            for event in stream:
                if not isinstance(event, dict):
                    continue
                line = _progress(event)
                if not line.message.strip() and line.kind != "error":
                    continue  # Docker's blank lines and bare layer notices say nothing
                aux = event.get("aux")
                if isinstance(aux, dict) and isinstance(aux.get("Digest"), str):
                    digest = aux["Digest"]
                yield line
                if line.kind == "error":
                    return
                if time.monotonic() > deadline:
                    yield ProgressLine(kind="error", message=f"stopped after {self.deadline_s:g} s")
                    return
        except Exception as exc:
            # Any failure reading Docker's stream ends it with an error line (urllib3's read
            # timeout, for one, is wrapped by neither requests nor docker).
            if watchdog.expired or time.monotonic() > deadline:
                message = f"stopped after {self.deadline_s:g} s"
            elif watchdog.fired.is_set():
                message = "stopped: the request was cancelled"
            else:
                message = f"Docker's stream broke: {exc}"
            log.warning("image stream ended", error=str(exc))
            yield ProgressLine(kind="error", message=_cut(message))
            return
        finally:
            watchdog.cancel()  # Docker's stream is over: no deadline to enforce
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        image = made()
        message = f"{image} pushed ({digest})" if digest else f"{image or 'image'} ready"
        yield ProgressLine(kind="done", message=_cut(message), image=digest or image)
