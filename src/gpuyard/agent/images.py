"""Images on this host through the Docker Engine API (docker SDK): list, pull, build, push.

Pull, build and push return an iterator of progress lines from Docker's own JSON stream:
a refusal Docker gives before the operation starts (an unknown repository, a bad
Dockerfile path) raises at once, as a domain error; once it runs, Docker's errors are a
last ``error`` line. Every operation stops at ``deadline_s`` (checked between Docker's
lines), and each line's text is cut to ``MAX_MESSAGE_LENGTH``. Credentials go to Docker
as the call's ``auth_config`` and nowhere else.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import IO, Any

import docker
from docker.errors import APIError, ImageNotFound
from docker.errors import NotFound as DockerNotFound
from docker.utils import parse_repository_tag

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


class ImageManager:
    """The images of this host's Docker daemon."""

    def __init__(self, client: docker.DockerClient, deadline_s: float) -> None:
        self.client = client
        self.deadline_s = deadline_s

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

    def pull(self, reference: str, auth: RegistryAuth | None) -> Iterator[ProgressLine]:
        repository, tag = parse_repository_tag(reference)
        try:
            stream = self.client.api.pull(
                repository,
                tag=tag or "latest",
                stream=True,
                decode=True,
                auth_config=_auth_config(auth),
            )
        except DOCKER_ERRORS as exc:
            raise image_error(exc, "reference") from exc
        log.info("image pull", reference=reference)
        return self._follow(stream, lambda: self._image_id(reference))

    def build(self, context: IO[bytes], tag: str, dockerfile: str) -> Iterator[ProgressLine]:
        try:
            stream = self.client.api.build(
                fileobj=context,
                custom_context=True,
                tag=tag,
                dockerfile=dockerfile,
                rm=True,
                forcerm=True,
                decode=True,
                timeout=max(1, math.ceil(self.deadline_s)),
            )
        except DOCKER_ERRORS as exc:
            raise image_error(exc, "context") from exc
        log.info("image build", tag=tag)
        return self._follow(stream, lambda: self._image_id(tag))

    def push(self, source: str, target: str, auth: RegistryAuth | None) -> Iterator[ProgressLine]:
        repository, tag = parse_repository_tag(target)
        try:
            if source != target:
                self.client.api.tag(source, repository, tag or "latest")
            stream = self.client.api.push(
                repository,
                tag=tag or "latest",
                stream=True,
                decode=True,
                auth_config=_auth_config(auth),
            )
        except DOCKER_ERRORS as exc:
            raise image_error(exc, "source") from exc
        log.info("image push", source=source, target=target)
        return self._follow(stream, lambda: target)

    def _image_id(self, reference: str) -> str | None:
        try:
            attrs = self.client.api.inspect_image(reference)  # type: ignore[no-untyped-call]
            return str(attrs.get("Id") or "") or None
        except DOCKER_ERRORS:
            return None

    def _follow(self, stream: Iterator[Any], made: Any) -> Iterator[ProgressLine]:
        """Docker's stream as progress lines, ending with ``done`` or ``error``."""
        deadline = time.monotonic() + self.deadline_s
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
            if time.monotonic() > deadline:
                message = f"stopped after {self.deadline_s:g} s"
            else:
                message = f"Docker's stream broke: {exc}"
            log.warning("image stream ended", error=str(exc))
            yield ProgressLine(kind="error", message=_cut(message))
            return
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        image = made()
        message = f"{image} pushed ({digest})" if digest else f"{image or 'image'} ready"
        yield ProgressLine(kind="done", message=_cut(message), image=digest or image)
