"""A pod's workspace files (its ``workspace`` volume, mounted at the workload's
``files_path``) over exec, as ``kubectl cp`` does: ``tar`` in the container packs a file
to download and unpacks one uploaded, ``find`` lists a directory, ``rm``/``rmdir``
delete. Every command runs through the official client's exec stream
(``kubernetes.stream``) in the replica's container.

Paths are checked as the docker agent checks them (``gpuyard.agent.files.split_path``:
relative, no ``.`` or ``..``, no NUL, bounded) before anything runs, and each is passed
to the container as an argument of a fixed script, never spliced into it. A symbolic
link anywhere on the path is refused (400) as the agent refuses it; unlike the agent's,
these checks run in the container, which only reaches its own file system. Sizes: a
download over ``MAX_DOWNLOAD_BYTES`` and an upload over the pod's ``ephemeral-storage``
limit (less what the workspace holds) are 413.

Needs ``sh``, ``tar``, ``du``, ``cut`` and either GNU ``find`` (``-printf``) or ``stat``
in the image: GNU coreutils and busybox images both do (the listing falls back to a POSIX
loop where ``find`` has no ``-printf``); an image without them answers 502 saying so.
"""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from kubernetes import client as k8s
from kubernetes import stream as k8s_stream
from websocket import WebSocketException

from gpuyard.agent.files import split_path
from gpuyard.domain.replica_access import WorkspaceFile, WorkspaceListing
from gpuyard.runtimes.kubernetes.calls import KubeFailure, KubeUnreachable, calling
from gpuyard.runtimes.kubernetes.pods import CONTAINER
from gpuyard.runtimes.kubernetes.streams import STATUS, STDIN, final_message

#: The largest file a download reads (it is answered whole).
MAX_DOWNLOAD_BYTES = 256 * 1024 * 1024
#: The most a listing reads: entries beyond it are left out.
MAX_LISTING_BYTES = 8 * 1024 * 1024
#: Seconds one command may take (an upload or download of a large file included).
COMMAND_TIMEOUT_S = 300.0
_CHUNK = 256 * 1024
_STDERR_BYTES = 4096

# The scripts take their paths as arguments ("$@"), never spliced into the text. Each
# first refuses a symbolic link on the way (exit 3), then does its one thing; 4: not a
# directory (or not a regular file), 5: not found, 6: a directory not empty, 8: a
# directory where a file is to go.
_NO_LINKS = 'for c in "$@"; do if [ -L "$c" ]; then exit 3; fi; done; '
LIST_SCRIPT = (
    "root=$1; target=$2; shift 2; " + _NO_LINKS + 'if [ ! -e "$target" ]; then exit 5; fi; '
    'if [ ! -d "$target" ]; then exit 4; fi; '
    'used=$(du -sk "$root" | cut -f1) || exit 7; printf "%s\\0" "$used"; '
    # GNU find lists in one process; elsewhere (busybox, whose find has no -printf) a
    # POSIX loop over the globs (hidden names too) with one ``stat -c`` per entry, which
    # GNU coreutils and busybox both have (it does not follow links).
    "if find \"$target\" -maxdepth 0 -printf '' >/dev/null 2>&1; then "
    "exec find \"$target\" -mindepth 1 -maxdepth 1 -printf '%y\\t%s\\t%T@\\t%f\\0'; fi; "
    'for e in "$target"/* "$target"/.[!.]* "$target"/..?*; do '
    'if [ -L "$e" ]; then t=l; elif [ -d "$e" ]; then t=d; elif [ -f "$e" ]; then t=f; '
    'elif [ -e "$e" ]; then t=o; else continue; fi; '
    "sm=$(stat -c '%s %Y' -- \"$e\") || exit 7; "
    'printf \'%s\\t%s\\t%s\\t%s\\0\' "$t" "${sm%% *}" "${sm#* }" "${e##*/}"; done'
)
DOWNLOAD_SCRIPT = (
    "dir=$1; name=$2; shift 2; " + _NO_LINKS + 'if [ ! -e "$dir/$name" ]; then exit 5; fi; '
    'if [ ! -f "$dir/$name" ]; then exit 4; fi; exec tar -cf - -C "$dir" -- "$name"'
)
USED_SCRIPT = 'du -sk "$1" | cut -f1'
UPLOAD_SCRIPT = (
    "dir=$1; name=$2; shift 2; " + _NO_LINKS + 'if [ -e "$dir" ] && [ ! -d "$dir" ]; then '
    'exit 4; fi; if [ -d "$dir/$name" ] && [ ! -L "$dir/$name" ]; then exit 8; fi; '
    'mkdir -p -- "$dir" && exec tar -xmf - -C "$dir"'
)
DELETE_SCRIPT = (
    "target=$1; shift; " + _NO_LINKS + 'if [ -L "$target" ] || [ -f "$target" ]; then '
    'exec rm -f -- "$target"; fi; if [ -d "$target" ]; then rmdir -- "$target" || exit 6; '
    'exit 0; fi; if [ -e "$target" ]; then exec rm -f -- "$target"; fi; exit 5'
)


@dataclass(frozen=True)
class WorkspacePod:
    """Where a workload's workspace is: its pod, and the volume's mount path there."""

    namespace: str
    name: str
    files_path: str
    #: The pod's ephemeral-storage limit in bytes (the workspace's quota); 0: none.
    quota_bytes: int


@dataclass(frozen=True)
class Ran:
    """What a command in the container gave: exit code, output, and its error text."""

    exit_code: int
    stdout: bytes
    stderr: str


def run(
    configuration: k8s.Configuration,
    pod: WorkspacePod,
    argv: Sequence[str],
    stdin: Iterable[bytes] | None = None,
    max_stdout: int = MAX_LISTING_BYTES,
) -> Ran:
    """Run ``argv`` in the pod's replica container; 413 when its output passes
    ``max_stdout`` (the session is closed then)."""
    # stream() swaps the request method of the ApiClient it is given for the WebSocket's:
    # a client of its own, so that the loops sharing the cluster's are not disturbed.
    api_client = k8s.ApiClient(configuration)
    try:
        with calling(f"exec in pod {pod.namespace}/{pod.name}"):
            session: Any = k8s_stream.stream(
                k8s.CoreV1Api(api_client).connect_get_namespaced_pod_exec,
                pod.name,
                pod.namespace,
                command=list(argv),
                container=CONTAINER,
                stdin=stdin is not None,
                stdout=True,
                stderr=True,
                tty=False,
                binary=True,
                _preload_content=False,
            )
        try:
            return _drive(session, pod, stdin, max_stdout)
        except (WebSocketException, OSError) as exc:
            detail = f"exec in pod {pod.namespace}/{pod.name}: {type(exc).__name__}: {exc}"
            raise KubeUnreachable(detail[:1000]) from exc
        finally:
            session.close()
    finally:
        cast(Any, api_client).close()


def _drive(session: Any, pod: WorkspacePod, stdin: Iterable[bytes] | None, cap: int) -> Ran:
    deadline = time.monotonic() + COMMAND_TIMEOUT_S
    stdout, stderr = bytearray(), bytearray()

    def drain(timeout: float) -> None:
        session.update(timeout=timeout)
        stdout.extend(session.read_stdout(timeout=0) or b"")
        stderr.extend((session.read_stderr(timeout=0) or b"")[: _STDERR_BYTES - len(stderr)])
        if len(stdout) > cap:
            raise KubeFailure(
                413, f"more than {cap} bytes from pod {pod.namespace}/{pod.name}", title="Too large"
            )

    refused_stdin: Exception | None = None
    if stdin is not None:
        try:
            _send_stdin(session, stdin, drain)
        except (WebSocketException, OSError) as exc:
            # The script may exit before reading its input (it refused the path): the
            # API server then closes the session under our writes. Its exit status is
            # already on the way; read it rather than report the broken pipe.
            refused_stdin = exc
    while session.is_open():
        if time.monotonic() > deadline:
            raise KubeFailure(504, f"exec in pod {pod.namespace}/{pod.name} took too long")
        try:
            drain(1.0)
        except (WebSocketException, OSError):
            if refused_stdin is None:
                raise
            break
    status = session.read_channel(STATUS) or b""
    if not status and refused_stdin is not None:
        raise refused_stdin
    final = final_message(status if isinstance(status, bytes) else str(status).encode())
    if final.get("type") != "exit":
        raise KubeFailure(502, f"exec in pod {pod.namespace}/{pod.name}: {final.get('detail')}")
    return Ran(int(cast(int, final["exit_code"])), bytes(stdout), stderr.decode(errors="replace"))


def _send_stdin(session: Any, stdin: Iterable[bytes], drain: Callable[[float], None]) -> None:
    for chunk in stdin:
        for start in range(0, len(chunk), _CHUNK):
            session.write_stdin(chunk[start : start + _CHUNK])
        drain(0)
    session.close_channel(STDIN)  # v5; on v4 tar stops at the archive's end itself


def _refused(path: str, why: str, status: int = 400) -> KubeFailure:
    failure = KubeFailure(status, f"path {path!r} refused: {why}", title="Path refused")
    failure.errors = [{"field": "path", "message": failure.detail}]
    return failure


def _failed(ran: Ran, path: str, what: str) -> KubeFailure:
    """The failure a script's exit code says (see the scripts)."""
    if ran.exit_code == 3:
        return _refused(path, "a symbolic link is on the path")
    if ran.exit_code == 4:
        return _refused(path, f"not a {what}")
    if ran.exit_code == 5:
        return KubeFailure(404, f"{path!r} does not exist in the workspace", title="Not found")
    if ran.exit_code == 6:
        return KubeFailure(409, f"directory {path!r} is not empty", title="Conflict")
    if ran.exit_code == 8:
        return KubeFailure(409, f"{path!r} is a directory in the workspace", title="Conflict")
    detail = f"{what} {path!r} failed in the container (exit {ran.exit_code}): {ran.stderr}"
    return KubeFailure(502, detail.strip()[:1000], title="Workspace command failed")


def _chain(root: str, parts: Sequence[str]) -> list[str]:
    """Each path from the workspace root down to ``parts`` (the links to look for)."""
    return [f"{root}/{'/'.join(parts[: i + 1])}" for i in range(len(parts))]


def list_dir(configuration: k8s.Configuration, pod: WorkspacePod, path: str) -> WorkspaceListing:
    """One directory of the workspace, entries sorted by name; symbolic links are listed,
    never followed."""
    parts = split_path(path)
    root = pod.files_path
    target = f"{root}/{'/'.join(parts)}" if parts else root
    argv = ["sh", "-c", LIST_SCRIPT, "sh", root, target, *_chain(root, parts)]
    ran = run(configuration, pod, argv)
    if ran.exit_code != 0:
        raise _failed(ran, path, "directory")
    used_text, _, rest = ran.stdout.partition(b"\0")
    entries = []
    for record in rest.split(b"\0"):
        entry = _entry(record, parts)
        if entry is not None:
            entries.append(entry)
    try:
        used_bytes = int(used_text.strip() or b"0") * 1024
    except ValueError:
        used_bytes = 0
    listing = tuple(sorted(entries, key=lambda e: e.name))
    return WorkspaceListing("/".join(parts), listing, used_bytes, pod.quota_bytes)


_KINDS = {"f": "file", "d": "dir", "l": "symlink"}


def _entry(record: bytes, parts: Sequence[str]) -> WorkspaceFile | None:
    fields = record.split(b"\t", 3)
    if len(fields) != 4:
        return None
    kind, size, modified, name_bytes = fields
    name = name_bytes.decode(errors="replace")
    try:
        return WorkspaceFile(
            name=name,
            path="/".join([*parts, name]),
            type=cast(Any, _KINDS.get(kind.decode(errors="replace"), "other")),
            size=int(size),
            modified_at=float(modified),
        )
    except ValueError:
        return None


def download(configuration: k8s.Configuration, pod: WorkspacePod, path: str) -> bytes:
    """One regular file of the workspace (``tar`` packs it in the container)."""
    parts = split_path(path)
    if not parts:
        raise _refused(path, "names the workspace itself, not a file")
    root = pod.files_path
    folder = "/".join([root, *parts[:-1]])
    argv = ["sh", "-c", DOWNLOAD_SCRIPT, "sh", folder, parts[-1], *_chain(root, parts)]
    cap = MAX_DOWNLOAD_BYTES + 64 * 1024  # the archive's headers and padding beside it
    try:
        ran = run(configuration, pod, argv, max_stdout=cap)
    except KubeFailure as exc:
        if exc.status == 413:
            raise _too_large(path) from exc
        raise
    if ran.exit_code != 0:
        raise _failed(ran, path, "regular file")
    try:
        with tarfile.open(fileobj=io.BytesIO(ran.stdout), mode="r:") as archive:
            member = archive.next()
            if member is None or not member.isreg():
                raise _refused(path, "not a regular file")
            extracted = archive.extractfile(member)
            return extracted.read() if extracted is not None else b""
    except tarfile.TarError as exc:
        raise KubeFailure(502, f"the container's tar answered no archive for {path!r}") from exc


def _too_large(path: str) -> KubeFailure:
    failure = KubeFailure(
        413, f"{path!r} is larger than {MAX_DOWNLOAD_BYTES} bytes", title="Too large"
    )
    failure.errors = [{"field": "path", "message": failure.detail}]
    return failure


def upload(
    configuration: k8s.Configuration,
    pod: WorkspacePod,
    path: str,
    content: bytes | Iterable[bytes],
    size: int | None,
) -> WorkspaceFile:
    """Write one file (parents created), as a one-member tar unpacked in the container."""
    parts = split_path(path)
    if not parts:
        raise _refused(path, "names the workspace itself, not a file")
    chunks: Iterable[bytes] = [content] if isinstance(content, bytes) else content
    if size is None:
        size = sum(len(chunk) for chunk in chunks)  # starts over at each iteration
    root = pod.files_path
    if pod.quota_bytes:
        used = run(configuration, pod, ["sh", "-c", USED_SCRIPT, "sh", root])
        try:
            used_bytes = int(used.stdout.strip() or b"0") * 1024
        except ValueError:
            used_bytes = 0
        if used_bytes + size > pod.quota_bytes:
            failure = KubeFailure(
                413,
                f"upload of {size} bytes would take the workspace over its quota of "
                f"{pod.quota_bytes} bytes ({max(pod.quota_bytes - used_bytes, 0)} bytes free)",
                title="Payload too large",
            )
            failure.errors = [{"field": "body", "message": "workspace quota exceeded"}]
            raise failure
    folder = "/".join([root, *parts[:-1]])
    argv = ["sh", "-c", UPLOAD_SCRIPT, "sh", folder, parts[-1], *_chain(root, parts[:-1])]
    modified = time.time()
    ran = run(configuration, pod, argv, stdin=_archive(parts[-1], chunks, size, modified))
    if ran.exit_code != 0:
        raise _failed(ran, path, "directory")
    return WorkspaceFile(parts[-1], "/".join(parts), "file", size, modified)


def _archive(name: str, chunks: Iterable[bytes], size: int, modified: float) -> Iterator[bytes]:
    """A tar of one regular file ``name`` (no slash: it lands in the directory tar is
    given), streamed: header, content, padding, the end blocks to a whole record."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime, info.type = size, 0o644, int(modified), tarfile.REGTYPE
    header = info.tobuf(format=tarfile.PAX_FORMAT)
    yield header
    sent = 0
    for chunk in chunks:
        chunk = chunk[: size - sent]  # never more than the header says
        sent += len(chunk)
        if chunk:
            yield chunk
    if sent < size:
        raise KubeFailure(400, f"the upload ended after {sent} of {size} bytes")
    padding = -size % tarfile.BLOCKSIZE
    end = 2 * tarfile.BLOCKSIZE
    written = len(header) + size + padding + end
    yield b"\0" * (padding + end + (-written % tarfile.RECORDSIZE))


def delete(configuration: k8s.Configuration, pod: WorkspacePod, path: str) -> None:
    """Delete one file, link (never followed) or empty directory."""
    parts = split_path(path)
    if not parts:
        raise _refused(path, "names the workspace itself")
    root = pod.files_path
    target = "/".join([root, *parts])
    argv = ["sh", "-c", DELETE_SCRIPT, "sh", target, *_chain(root, parts[:-1])]
    ran = run(configuration, pod, argv)
    if ran.exit_code != 0:
        raise _failed(ran, path, "file")


def workspace_pod(pod: k8s.V1Pod, quota_bytes: int) -> WorkspacePod:
    """Where the workspace is in ``pod`` (its ``workspace`` volume's mount path)."""
    meta = pod.metadata or k8s.V1ObjectMeta()
    mounts = []
    for container in (pod.spec.containers if pod.spec else None) or []:
        if container.name == CONTAINER:
            mounts = [m for m in container.volume_mounts or [] if m.name == "workspace"]
    if not mounts:
        raise KubeFailure(409, f"pod {meta.namespace}/{meta.name} has no workspace volume")
    return WorkspacePod(
        str(meta.namespace), str(meta.name), str(mounts[0].mount_path).rstrip("/"), quota_bytes
    )
