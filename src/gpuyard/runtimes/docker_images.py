"""The docker runtime's image operations: list, pull, build and push through the agent's
/v1/images routes, whose NDJSON progress lines become ``domain.image_records`` values.

Lines are read with a bound on their length (a line past ``MAX_LINE_BYTES`` ends the
stream with an error), and a stream that goes quiet for ``IDLE_TIMEOUT_S`` ends too.
Credentials travel in the request body of the one call that needs them, never in a log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING

import httpx
from pydantic import ValidationError

from gpuyard.agent.image_models import (
    MAX_LINE_BYTES,
    ImagesPublic,
    ProgressLine,
    PullSpec,
    PushSpec,
    RegistryAuth,
)
from gpuyard.domain.image_records import (
    HostImage,
    ImageProgress,
    ProgressKind,
    RegistryCredentials,
)

if TYPE_CHECKING:
    from gpuyard.runtimes.docker import AgentClient

#: A pull or build may sit on one step (a big layer, a slow RUN) this long between lines.
IDLE_TIMEOUT_S = 600.0
STREAM_TIMEOUT = httpx.Timeout(IDLE_TIMEOUT_S, connect=3.0)


def _auth(credentials: RegistryCredentials | None) -> RegistryAuth | None:
    if credentials is None:
        return None
    return RegistryAuth(
        username=credentials.username,
        password=credentials.password,
        server_address=credentials.address,
    )


def progress_of(line: ProgressLine) -> ImageProgress:
    """The neutral record of one of the agent's progress lines."""
    return ImageProgress(
        kind=ProgressKind(line.kind),
        message=line.message,
        layer=line.layer,
        current=line.current,
        total=line.total,
        image=line.image,
    )


def bounded_lines(chunks: Iterable[bytes], max_bytes: int = MAX_LINE_BYTES) -> Iterator[bytes]:
    """The lines of a byte stream; ValueError on a line longer than ``max_bytes``."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if len(line) > max_bytes:
                raise ValueError(f"a progress line is over {max_bytes} bytes")
            if line.strip():
                yield line
        if len(pending) > max_bytes:
            raise ValueError(f"a progress line is over {max_bytes} bytes")
    if pending.strip():
        yield pending


def _progress(response: httpx.Response) -> Iterator[ImageProgress]:
    try:
        for raw in bounded_lines(response.iter_bytes()):
            yield progress_of(ProgressLine.model_validate_json(raw))
    except (ValueError, ValidationError) as exc:
        yield ImageProgress(
            ProgressKind.ERROR, f"the agent sent a line gpuyard cannot read: {exc}"[:500]
        )
    except httpx.TimeoutException:
        yield ImageProgress(
            ProgressKind.ERROR, f"the agent sent nothing for {IDLE_TIMEOUT_S:.0f} s"
        )
    except httpx.TransportError as exc:
        yield ImageProgress(ProgressKind.ERROR, f"the agent's stream broke: {exc}")


class AgentImages:
    """Image operations of the docker runtime over ``_client_for(server_name)``."""

    _client_for: Callable[[str], AgentClient]

    def images(self, server_name: str) -> list[HostImage]:
        data = ImagesPublic.model_validate(self._client_for(server_name).get_json("/v1/images"))
        return [HostImage(i.id, tuple(i.tags), i.size_bytes, i.created_at) for i in data.data]

    def remove_image(self, server_name: str, reference: str, *, force: bool = False) -> None:
        params = {"reference": reference, "force": "true" if force else "false"}
        # Not retried: a removal whose answer was lost would be retried into a 404, and the
        # removal that did happen would go unaudited. The caller sees the lost answer.
        self._client_for(server_name).delete("/v1/images", params=params, retry=False)

    def pull_image(
        self, server_name: str, reference: str, credentials: RegistryCredentials | None
    ) -> AbstractContextManager[Iterator[ImageProgress]]:
        body = PullSpec(reference=reference, auth=_auth(credentials)).model_dump(mode="json")
        return self._stream(server_name, "/v1/images/pull", json=body)

    def build_image(
        self,
        server_name: str,
        tag: str,
        context: bytes | Iterable[bytes],
        size: int | None,
        dockerfile: str,
    ) -> AbstractContextManager[Iterator[ImageProgress]]:
        headers = {"Content-Type": "application/x-tar"}
        if size is not None:
            headers["Content-Length"] = str(size)
        params = {"tag": tag, "dockerfile": dockerfile}
        return self._stream(
            server_name, "/v1/images/build", content=context, headers=headers, params=params
        )

    def push_image(
        self,
        server_name: str,
        source: str,
        target: str,
        credentials: RegistryCredentials | None,
    ) -> AbstractContextManager[Iterator[ImageProgress]]:
        spec = PushSpec(source=source, target=target, auth=_auth(credentials))
        return self._stream(server_name, "/v1/images/push", json=spec.model_dump(mode="json"))

    @contextmanager
    def _stream(
        self, server_name: str, path: str, **kwargs: object
    ) -> Iterator[Iterator[ImageProgress]]:
        client = self._client_for(server_name)
        with client.open_stream("POST", path, timeout=STREAM_TIMEOUT, **kwargs) as response:
            yield _progress(response)
