"""Where a workload's files directory is mounted in its containers: the one policy.

A workload's files directory is writable by its owner twice over: through the files API,
and from inside the container (where symlinks can be planted too). Mounting it is safe
wherever only the workload's own processes look; it is not where the container runtime,
running as root on the host, itself reads or writes while it sets the container up:

- ``/proc``, ``/sys``, ``/dev``: runc mounts kernel filesystems there; a mount over or
  under them is the shape of the runc escapes (CVE-2019-16884, CVE-2021-30465);
- ``/etc``: Docker bind-mounts ``/etc/hosts``, ``/etc/hostname``, ``/etc/resolv.conf``;
- ``/bin``, ``/sbin``, ``/lib*``, ``/usr``: the NVIDIA container toolkit injects driver
  libraries and binaries there and runs ``ldconfig`` (CVE-2024-0132 followed a planted
  symlink from there to the host);
- ``/boot``, ``/root``: nothing of a workload's belongs there.

So the rule is short: an absolute, normalised path of portable file-name characters,
not ``/``, and neither one of those system directories nor anywhere inside one. A web
image serves from a directory of its own (``/srv/www``, ``/var/www``, ``/data``) rather
than from a document root under ``/usr``. The policy reads the path as written; symlinks
inside the image are resolved by the runtime within the container's root.
"""

from __future__ import annotations

import re

from gpuyard.domain.errors import InvalidInput

#: Where the files directory is mounted when neither the request nor the image says.
DEFAULT_FILES_PATH = "/workspace"
MAX_FILES_PATH_LENGTH = 1024
#: Directories the mount may be neither at nor under (see the module's docstring).
SYSTEM_DIRECTORIES = frozenset({
    "/proc", "/sys", "/dev", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
    "/libx32", "/usr", "/boot", "/root",
})  # fmt: skip
#: One segment: POSIX's portable file-name characters.
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+", re.ASCII)


def files_path_problem(text: str) -> str | None:
    """Why ``text`` cannot be where a files directory is mounted, or None when it can.

    ``text`` is taken as given, except that one trailing slash is allowed (the callers
    drop it, :func:`check_files_path`)."""
    if len(text) > MAX_FILES_PATH_LENGTH:
        return f"at most {MAX_FILES_PATH_LENGTH} characters"
    if not text.startswith("/"):
        return "must be an absolute path (starting with /)"
    path = text[:-1] if len(text) > 1 and text.endswith("/") else text
    if path == "/":
        return "must not be / (the container's whole file system)"
    segments = path.split("/")[1:]
    if any(not _SEGMENT.fullmatch(segment) for segment in segments):
        return "each segment must be letters, digits, '.', '_' or '-' (no empty segments)"
    if any(segment in {".", ".."} for segment in segments):
        return "must be normalised: no '.' or '..' segments"
    system = f"/{segments[0]}"
    if system in SYSTEM_DIRECTORIES:
        return (
            f"must not be {system} or inside it: system directories "
            f"({', '.join(sorted(SYSTEM_DIRECTORIES))}) are refused"
        )
    return None


def check_files_path(text: str, field: str = "files_path") -> str:
    """The path, without a trailing slash, or InvalidInput naming ``field``."""
    problem = files_path_problem(text)
    if problem is not None:
        raise InvalidInput.for_field(field, problem)
    return text.rstrip("/")
