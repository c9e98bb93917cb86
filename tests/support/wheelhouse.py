"""An offline wheelhouse for installing gpuyard into a fresh virtualenv, made without a
network: gpuyard's own wheel from this source tree, and every distribution it needs
repacked from the test interpreter's site-packages (each installed distribution's RECORD
lists its files and its WHEEL file its tags, which is all a wheel is).

`gpuyard agent install --wheelhouse DIR` then installs from it with `pip install
--no-index --find-links`, as it would on a host without access to an index.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import re
import sys
import tomllib
import zipfile
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

_NAME = re.compile(r"[-_.]+")
#: Installer bookkeeping that must not travel in a wheel.
_SKIP_META = {"INSTALLER", "REQUESTED", "direct_url.json", "RECORD"}


def _normal(name: str) -> str:
    return _NAME.sub("_", name).lower()


def _record_line(name: str, data: bytes) -> list[str]:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return [name, f"sha256={digest}", str(len(data))]


def _write_wheel(path: Path, files: Iterable[tuple[str, bytes]], dist_info: str) -> Path:
    records: list[list[str]] = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as wheel:
        for name, data in files:
            wheel.writestr(name, data)
            records.append(_record_line(name, data))
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows([*records, [f"{dist_info}/RECORD", "", ""]])
        wheel.writestr(f"{dist_info}/RECORD", out.getvalue())
    return path


def _closure(requirements: list[str]) -> dict[str, metadata.Distribution]:
    """Installed distributions that ``requirements`` need, transitively (markers and the
    extras asked for evaluated against this interpreter)."""
    found: dict[str, metadata.Distribution] = {}
    pending = [(Requirement(r), "") for r in requirements]
    while pending:
        requirement, extra = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
            continue
        key = _normal(requirement.name)
        dist = metadata.distribution(requirement.name)
        first = key not in found
        found[key] = dist
        extras = set(requirement.extras)
        for line in dist.requires or []:
            child = Requirement(line)
            if child.marker is None:
                if first:
                    pending.append((child, ""))
                continue
            for wanted in ["", *sorted(extras)]:
                if child.marker.evaluate({"extra": wanted}) and (first or wanted):
                    pending.append((child, wanted))
                    break
    return found


def _repack(dist: metadata.Distribution, dest: Path) -> Path:
    """One installed distribution as a wheel with its original tags."""
    name, version = dist.metadata["Name"], dist.version
    files = [f for f in dist.files or [] if ".." not in f.parts and "__pycache__" not in f.parts]
    dist_info = next(str(f.parts[0]) for f in files if f.parts[0].endswith(".dist-info"))
    wheel_meta = Path(str(dist.locate_file(f"{dist_info}/WHEEL"))).read_text()
    tags = [
        line.split(":", 1)[1].strip() for line in wheel_meta.splitlines() if line.startswith("Tag:")
    ]
    # A compressed tag set, as a wheel's file name writes several: py2.py3-none-any.
    parts = [list(dict.fromkeys(t.split("-")[i] for t in tags)) for i in range(3)]
    tag = "-".join(".".join(values) for values in parts)
    contents = []
    for file in files:
        if file.parts[0] == dist_info and file.name in _SKIP_META:
            continue
        local = Path(str(dist.locate_file(file)))
        if local.is_file():
            contents.append((file.as_posix(), local.read_bytes()))
    return _write_wheel(dest / f"{_normal(name)}-{version}-{tag}.whl", contents, dist_info)


def _gpuyard_wheel(project: Path, dest: Path) -> tuple[Path, list[str]]:
    """gpuyard's own wheel from the source tree (pure Python, with its package data)."""
    config = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    version = str(config["version"])
    requirements = [str(r) for r in config["dependencies"]]
    dist_info = f"gpuyard-{version}.dist-info"
    package = project / "src" / "gpuyard"
    contents = [
        (path.relative_to(project / "src").as_posix(), path.read_bytes())
        for path in sorted(package.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    ]
    meta = [
        "Metadata-Version: 2.1",
        "Name: gpuyard",
        f"Version: {version}",
        f"Requires-Python: {config.get('requires-python', '>=3.11')}",
        *(f"Requires-Dist: {r}" for r in requirements),
    ]
    contents += [
        (f"{dist_info}/METADATA", ("\n".join(meta) + "\n").encode()),
        (
            f"{dist_info}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: gpuyard tests\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n",
        ),
        (f"{dist_info}/entry_points.txt", b"[console_scripts]\ngpuyard = gpuyard.cli.main:app\n"),
    ]
    wheel = _write_wheel(dest / f"gpuyard-{version}-py3-none-any.whl", contents, dist_info)
    return wheel, requirements


def build_wheelhouse(project: Path, dest: Path) -> Path:
    """Fill ``dest`` with gpuyard's wheel and its dependencies' (repacked); ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    _wheel, requirements = _gpuyard_wheel(project, dest)
    for dist in _closure(requirements).values():
        _repack(dist, dest)
    return dest


if __name__ == "__main__":  # python tests/support/wheelhouse.py PROJECT DEST
    print(build_wheelhouse(Path(sys.argv[1]), Path(sys.argv[2])))
