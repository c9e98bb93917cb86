"""What the Ansible test installs: a wheel built from this checkout, and its dependencies as
wheels packed from the distributions this interpreter already has.

On a real fleet the wheelhouse comes from `pip wheel` on a machine with an index
(docs/operations.md "Provisioning"). The tests send nothing off the machine, so each
dependency is packed back into a wheel from its installed files (the RECORD of its
.dist-info lists them), which pip then installs with --no-index exactly as it would a
downloaded one.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import tarfile
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
#: Debian's interpreter, with Debian's setuptools and wheel (python3-setuptools,
#: python3-wheel): the build backend pyproject.toml names, without fetching one.
SYSTEM_PYTHON = Path("/usr/bin/python3")
#: Files an installer writes into .dist-info for itself; not part of a wheel.
_INSTALLER_FILES = {"INSTALLER", "RECORD", "REQUESTED", "direct_url.json"}


def build_project_wheel(out_dir: Path, work_dir: Path) -> Path:
    """Build gpuyard's wheel from a copy of this checkout's sources (the build writes
    egg-info and build/ next to them) with the PEP 517 backend pyproject.toml names."""
    source = work_dir / "source"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    out_dir.mkdir(parents=True, exist_ok=True)
    hook = (
        "import sys; from setuptools import build_meta; print(build_meta.build_wheel(sys.argv[1]))"
    )
    built = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", hook, str(out_dir)],
        cwd=source, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-4000:]
    wheel = out_dir / built.stdout.strip().splitlines()[-1]
    assert wheel.is_file(), built.stdout
    return wheel


def runtime_distributions(root: str = "gpuyard") -> list[metadata.Distribution]:
    """Every installed distribution ``root`` needs at run time (its own extras' too), once."""
    env = default_environment()
    seen: dict[str, metadata.Distribution] = {}
    pending: list[tuple[str, frozenset[str]]] = [(root, frozenset())]
    visited: set[tuple[str, frozenset[str]]] = set()
    while pending:
        name, extras = pending.pop()
        key = canonicalize_name(name)
        if (key, extras) in visited:
            continue
        visited.add((key, extras))
        dist = metadata.distribution(name)
        seen[key] = dist
        for line in dist.requires or []:
            requirement = Requirement(line)
            wanted = requirement.marker is None or any(
                requirement.marker.evaluate({**env, "extra": extra}) for extra in extras or {""}
            )
            if wanted:
                pending.append((requirement.name, frozenset(requirement.extras)))
    return [dist for key, dist in seen.items() if key != canonicalize_name(root)]


def _record_line(arcname: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{arcname},sha256={digest},{len(data)}"


def pack_installed(dist: metadata.Distribution, out_dir: Path) -> Path:
    """One installed distribution as a wheel: its files under site-packages (not the
    scripts pip generates from entry_points.txt) and its metadata, with a fresh RECORD."""
    info_dir = Path(str(dist._path))  # type: ignore[attr-defined]
    site = info_dir.parent
    wheel_meta = (info_dir / "WHEEL").read_text()
    tags = [
        line.split(":", 1)[1].strip() for line in wheel_meta.splitlines() if line.startswith("Tag:")
    ]
    # The compressed tag set of the file name: py2.py3-none-any for Tag: py2-none-any and
    # Tag: py3-none-any (the first alone would say "Python 2 only").
    parts = [dict.fromkeys(part) for part in zip(*(tag.split("-") for tag in tags), strict=True)]
    tag = "-".join(".".join(part) for part in parts)
    name = canonicalize_name(dist.metadata["Name"]).replace("-", "_")
    path = out_dir / f"{name}-{dist.version}-{tag}.whl"
    record: list[str] = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as wheel:
        for file in dist.files or []:
            arcname = file.as_posix()
            if arcname.startswith("..") or "__pycache__" in arcname:
                continue
            if arcname.startswith(info_dir.name + "/") and file.name in _INSTALLER_FILES:
                continue
            data = (site / file).read_bytes()
            wheel.writestr(arcname, data)
            record.append(_record_line(arcname, data))
        record.append(f"{info_dir.name}/RECORD,,")
        wheel.writestr(f"{info_dir.name}/RECORD", "\n".join(record) + "\n")
    return path


def make_wheelhouse_archive(out: Path, work_dir: Path) -> Path:
    """A .tar.gz of wheels for gpuyard's runtime dependencies (what the role's
    gpuyard_wheelhouse_archive takes)."""
    wheels = work_dir / "wheelhouse"
    wheels.mkdir(parents=True)
    for dist in runtime_distributions():
        pack_installed(dist, wheels)
    with tarfile.open(out, "w:gz", compresslevel=1) as archive:
        for wheel in sorted(wheels.iterdir()):
            archive.add(wheel, arcname=wheel.name)
    return out
