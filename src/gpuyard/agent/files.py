"""Per-workload files: one directory per workload, mounted read-write at the
workload's ``files_path`` (``/workspace`` unless it says otherwise).

The container can write anything into that directory, including symbolic links to host paths
(``ln -s /etc /workspace/x``), and can swap a directory for a link at any moment. So the agent
never resolves a path by name: it walks from the workspace root one component at a time with
``openat(O_NOFOLLOW | O_DIRECTORY)`` and opens the last component with ``O_NOFOLLOW``. A link
anywhere on the path is refused (400), race-free. ``..``, ``.``, absolute paths and NUL bytes
are refused before any system call.

Sizes: an upload is refused (413) when it is larger than the per-file limit, or when it would
take the workspace over its quota (the workload's ``storage_mib``, else the agent default).
That is checked on upload only: what the container writes itself is not limited here (see
docs/agent.md).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gpuyard.agent.errors import PathRefused, PayloadTooLarge
from gpuyard.agent.models import FileEntry, is_workload_id
from gpuyard.domain.errors import Conflict, FieldError, InvalidInput, NotFound

MIB = 1024 * 1024
CHUNK = 256 * 1024
MAX_PATH = 4096
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_UPLOAD_PREFIX = ".gpuyard-upload-"


def split_path(path: str) -> list[str]:
    """The components of a workspace-relative path; refuses what could leave the workspace."""
    if "\x00" in path or len(path) > MAX_PATH:
        raise _refused(path, "contains a NUL byte or is too long")
    if path.startswith("/"):
        raise _refused(path, "must be relative to the workspace")
    parts = [p for p in path.split("/") if p]
    if any(p in {".", ".."} for p in parts):
        raise _refused(path, "'..' and '.' are not allowed")
    if any(len(p.encode()) > 255 for p in parts):
        raise _refused(path, "a path component is longer than 255 bytes")
    return parts


def _refused(path: str, why: str) -> PathRefused:
    message = f"path {path!r} refused: {why}"
    return PathRefused(message, [FieldError("path", message)])


@dataclass(frozen=True)
class Workspaces:
    """The workspaces under ``<data_dir>/workloads/<id>/files`` and their quotas."""

    root: Path
    max_upload_bytes: int
    default_quota_bytes: int

    def workload_dir(self, workload_id: str) -> Path:
        if not is_workload_id(workload_id):
            raise InvalidInput.for_field("workload_id", f"not a workload id: {workload_id!r}")
        return self.root / workload_id

    def directory(self, workload_id: str) -> Path:
        return self.workload_dir(workload_id) / "files"

    def prepare(self, workload_id: str, storage_mib: int) -> Path:
        """Create the workspace (mode 0777 so any container user can write; its parents are
        0700) and record its quota. Returns the directory to mount."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)  # host users cannot reach the 0777 workspaces below
        base = self.workload_dir(workload_id)
        base.mkdir(mode=0o700, exist_ok=True)
        files = base / "files"
        files.mkdir(exist_ok=True)
        os.chmod(files, 0o777)  # noqa: S103 - the parent is 0700
        quota = storage_mib * MIB if storage_mib else self.default_quota_bytes
        (base / "meta.json").write_text(json.dumps({"quota_bytes": quota}))
        return files

    def quota_bytes(self, workload_id: str) -> int:
        try:
            meta = json.loads((self.workload_dir(workload_id) / "meta.json").read_text())
            return int(meta["quota_bytes"])
        except (OSError, ValueError, KeyError):
            return self.default_quota_bytes

    def used_bytes(self, workload_id: str) -> int:
        """Apparent size of every regular file in the workspace (links are not followed)."""
        total = 0
        with contextlib.suppress(FileNotFoundError):
            for directory, _dirs, files in os.walk(self.directory(workload_id)):
                for name in files:
                    with contextlib.suppress(OSError):
                        info = os.lstat(os.path.join(directory, name))
                        if stat.S_ISREG(info.st_mode):
                            total += info.st_size
        return total

    def remove(self, workload_id: str) -> bool:
        """Delete a workload's directory (rmtree never follows links here). False if absent."""
        base = self.workload_dir(workload_id)
        if not base.exists():
            return False
        shutil.rmtree(base)
        return True

    @contextlib.contextmanager
    def _open_dir(
        self, workload_id: str, parts: list[str], *, create: bool = False
    ) -> Iterator[int]:
        """A descriptor of the directory ``parts`` below the workspace root, reached without
        following any symbolic link."""
        root = self.directory(workload_id)
        if create and not root.exists():
            self.prepare(workload_id, 0)
        try:
            fd = os.open(root, _DIR_FLAGS)
        except FileNotFoundError:
            raise NotFound.for_object("workspace", workload_id) from None
        try:
            for index, part in enumerate(parts):
                if create:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o777, dir_fd=fd)
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    raise self._walk_error(exc, fd, part, "/".join(parts[: index + 1])) from None
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)

    @staticmethod
    def _walk_error(exc: OSError, dir_fd: int, part: str, shown: str) -> Exception:
        if exc.errno == errno.ENOENT:
            return NotFound(f"{shown!r} does not exist in the workspace")
        with contextlib.suppress(OSError):
            if stat.S_ISLNK(os.stat(part, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                return _refused(shown, "it is a symbolic link")
        if exc.errno in {errno.ENOTDIR, errno.ELOOP}:
            return _refused(shown, "not a directory")
        return exc

    def list_dir(self, workload_id: str, path: str = "") -> list[FileEntry]:
        """The entries of one workspace directory, sorted by name."""
        parts = split_path(path)
        entries: list[FileEntry] = []
        with self._open_dir(workload_id, parts) as fd:
            for name in sorted(os.listdir(fd)):
                if name.startswith(_UPLOAD_PREFIX):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    info = os.stat(name, dir_fd=fd, follow_symlinks=False)
                    entries.append(
                        FileEntry(
                            name=name,
                            path="/".join([*parts, name]),
                            type=_kind(info.st_mode),
                            size=info.st_size,
                            modified_at=info.st_mtime,
                        )
                    )
        return entries

    def open_file(self, workload_id: str, path: str) -> tuple[int, int]:
        """(descriptor, size) of a regular file, for the caller to close; links, devices and
        FIFOs are refused."""
        parts = split_path(path)
        if not parts:
            raise _refused(path, "names the workspace itself, not a file")
        with self._open_dir(workload_id, parts[:-1]) as dir_fd:
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
            try:
                fd = os.open(parts[-1], flags, dir_fd=dir_fd)
            except OSError as exc:
                raise self._walk_error(exc, dir_fd, parts[-1], path) from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise _refused(path, "not a regular file")
        return fd, info.st_size

    @staticmethod
    def read_chunks(fd: int) -> Iterator[bytes]:
        """The content of a descriptor from ``open_file``, in chunks; closes it at the end."""
        try:
            while chunk := os.read(fd, CHUNK):
                yield chunk
        finally:
            os.close(fd)

    def check_upload_size(self, workload_id: str, size: int) -> None:
        """Refuse (413) an upload of ``size`` bytes over the per-file limit or the free quota
        (used before reading a body whose Content-Length is known)."""
        self.check_limit(size)
        self.check_quota(
            workload_id, size, self.quota_bytes(workload_id) - self.used_bytes(workload_id)
        )

    def check_limit(self, size: int) -> None:
        if size > self.max_upload_bytes:
            raise PayloadTooLarge(
                f"upload of {size} bytes is over the limit of {self.max_upload_bytes} bytes",
                [FieldError("body", "file too large")],
            )

    def check_quota(self, workload_id: str, size: int, available: int) -> None:
        if size > available:
            raise PayloadTooLarge(
                f"upload of {size} bytes would take the workspace over its quota of "
                f"{self.quota_bytes(workload_id)} bytes ({max(available, 0)} bytes free)",
                [FieldError("body", "workspace quota exceeded")],
            )

    def begin_upload(self, workload_id: str, path: str) -> Upload:
        """Start writing ``path`` (parents are created): a temp file beside it, renamed into
        place by ``Upload.commit``. A link on the path is refused (400)."""
        parts = split_path(path)
        if not parts:
            raise _refused(path, "names the workspace itself, not a file")
        available = self.quota_bytes(workload_id) - self.used_bytes(workload_id)
        with self._open_dir(workload_id, parts[:-1], create=True) as parent:
            dir_fd = os.dup(parent)
        try:
            with contextlib.suppress(OSError):
                old = os.stat(parts[-1], dir_fd=dir_fd, follow_symlinks=False)
                available += old.st_size if stat.S_ISREG(old.st_mode) else 0
            temp = f"{_UPLOAD_PREFIX}{secrets.token_hex(8)}"
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(temp, flags, 0o644, dir_fd=dir_fd)
        except BaseException:
            os.close(dir_fd)
            raise
        return Upload(self, workload_id, parts, dir_fd, fd, temp, available)

    def delete(self, workload_id: str, path: str) -> None:
        """Delete one file or empty directory (a link is deleted itself, never followed)."""
        parts = split_path(path)
        if not parts:
            raise _refused(path, "names the workspace itself")
        with self._open_dir(workload_id, parts[:-1]) as dir_fd:
            try:
                info = os.stat(parts[-1], dir_fd=dir_fd, follow_symlinks=False)
                if stat.S_ISDIR(info.st_mode):
                    os.rmdir(parts[-1], dir_fd=dir_fd)
                else:
                    os.unlink(parts[-1], dir_fd=dir_fd)
            except FileNotFoundError:
                raise NotFound(f"{path!r} does not exist in the workspace") from None
            except OSError as exc:
                if exc.errno == errno.ENOTEMPTY:
                    raise Conflict(f"directory {path!r} is not empty") from None
                raise


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    return "other"


class Upload:
    """One file being uploaded: ``write`` chunks, then ``commit`` (or ``abort``)."""

    def __init__(
        self,
        workspaces: Workspaces,
        workload_id: str,
        parts: list[str],
        dir_fd: int,
        fd: int,
        temp: str,
        available: int,
    ) -> None:
        self._workspaces = workspaces
        self._workload_id = workload_id
        self._parts = parts
        self._dir_fd = dir_fd
        self._fd = fd
        self._temp = temp
        self._available = available
        self.size = 0

    def write(self, chunk: bytes) -> None:
        """Append a chunk; over the per-file limit or the quota it aborts and raises 413."""
        self.size += len(chunk)
        try:
            self._workspaces.check_limit(self.size)
            self._workspaces.check_quota(self._workload_id, self.size, self._available)
        except PayloadTooLarge:
            self.abort()
            raise
        view = memoryview(chunk)
        while view:
            view = view[os.write(self._fd, view) :]

    def commit(self) -> FileEntry:
        """Move the file into place (replacing a file or a link, never a directory)."""
        name, shown = self._parts[-1], "/".join(self._parts)
        try:
            os.close(self._fd)
            self._fd = -1
            os.rename(self._temp, name, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)
            info = os.stat(name, dir_fd=self._dir_fd, follow_symlinks=False)
        except (IsADirectoryError, NotADirectoryError):
            self.abort()
            raise Conflict(f"{shown!r} is a directory in the workspace") from None
        except BaseException:
            self.abort()
            raise
        os.close(self._dir_fd)
        self._dir_fd = -1
        return FileEntry(
            name=name, path=shown, type="file", size=self.size, modified_at=info.st_mtime
        )

    def abort(self) -> None:
        """Drop the temp file; safe to call more than once."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._dir_fd >= 0:
            with contextlib.suppress(OSError):
                os.unlink(self._temp, dir_fd=self._dir_fd)
            os.close(self._dir_fd)
            self._dir_fd = -1
