"""``python -m bench.path_trace [--json FILE]``: what one submission to a docker server
goes through, counted from a trace (docs/architecture.md, "One submission").

A real app over SQLite, one real agent (in uvicorn, in-process) over a throwaway dockerd;
the scheduler cycle and the starter tick run in threads of their own, as the loops would.
A first submission warms everything up (first-use caches, the snapshot's full load); the
second one is traced from the POST until its container is recorded running.

Counted, with a profiler on every thread:

- functions: distinct gpuyard functions that ran (``co_qualname`` in a module under
  ``src/gpuyard``; generated ``__init__``/``__eq__`` are not gpuyard source, so they are not
  functions here but do count as classes);
- modules: distinct modules of those functions;
- threads: distinct threads those functions ran in;
- classes: distinct gpuyard classes whose constructor ran, or whose instances a gpuyard
  function took or returned, by kind (data: dataclass, NamedTuple or pydantic model;
  row: ORM row; enum; exception; object: anything else, e.g. a service or a cache).

Dicts (insert rows, the agent's docker kwargs) are not classes and are not counted here.
Needs dockerd (the tests' harness starts one; exits 2 when it cannot).
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import logging
import os
import sys
import tempfile
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import gpuyard
from gpuyard.log import AUDIT_LOGGER, configure_logging

TESTS = Path(__file__).resolve().parent.parent / "tests"
SRC = str(Path(gpuyard.__file__).parent)
_CONSTRUCTORS = {"__init__", "__new__", "__post_init__"}


class PathRecorder:
    """A profile function (``sys.setprofile``) that records while ``on``."""

    def __init__(self) -> None:
        self.on = False
        self.functions: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.classes: dict[str, str] = {}

    def _class(self, value: object) -> None:
        cls = value if isinstance(value, type) else type(value)
        module = getattr(cls, "__module__", "") or ""
        if not module.startswith("gpuyard"):
            return
        name = f"{module}.{cls.__qualname__}"
        if name not in self.classes:
            self.classes[name] = _kind(cls)

    def __call__(self, frame: FrameType, event: str, arg: object) -> None:
        if not self.on or event not in ("call", "return"):
            return
        code = frame.f_code
        in_src = code.co_filename.startswith(SRC)
        if event == "return":
            if in_src and arg is not None:
                self._class(arg)
            return
        if code.co_name in _CONSTRUCTORS and code.co_argcount:
            made = frame.f_locals.get(code.co_varnames[0])
            if made is not None:
                self._class(made)
        if not in_src:
            return
        module = frame.f_globals.get("__name__", "?")
        self.functions[(module, code.co_qualname)].add(threading.current_thread().name)
        for name in code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]:
            value = frame.f_locals.get(name)
            if name not in ("self", "cls") and value is not None:
                self._class(value)


def _kind(cls: type) -> str:
    if issubclass(cls, enum.Enum):
        return "enum"
    if issubclass(cls, BaseException):
        return "exception"
    if dataclasses.is_dataclass(cls) or (issubclass(cls, tuple) and hasattr(cls, "_fields")):
        return "data"
    modules = [base.__module__ for base in cls.__mro__]
    if any(m.startswith("pydantic") for m in modules):
        return "data"
    if any(m.startswith("sqlalchemy") for m in modules):
        return "row"
    return "object"


def _thread_role(name: str) -> str:
    """Thread names as roles (the test client's and uvicorn's names carry ids)."""
    if name.startswith("asyncio-portal"):
        return "api event loop"
    if name == "AnyIO worker thread":
        return "agent request worker"
    if name.startswith("Thread-"):
        return "agent event loop"
    return name


def _in_thread(name: str, work: Callable[[], object]) -> object:
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(work()), name=name)
    thread.start()
    thread.join()
    return result[0]


def trace_one_submission() -> dict[str, Any]:
    """Run two submissions to a docker server; the trace of the second."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from factories.app import authed_client, make_context, make_settings  # type: ignore[import-not-found]
    from factories.docker_fleet import docker_fleet  # type: ignore[import-not-found]
    from support.dockerd import DockerServer  # type: ignore[import-not-found]

    from gpuyard.services.containers.starter import start_scheduled
    from gpuyard.services.scheduling.cycle import run_scheduling_cycle

    recorder = PathRecorder()
    with tempfile.TemporaryDirectory() as tmp, DockerServer() as dockerd:
        base = Path(tmp)
        # Installed before any thread of the app or the agent starts, so each inherits it.
        sys.setprofile(recorder)
        threading.setprofile(recorder)
        try:
            settings = make_settings(base / "data", None, demo=False, stop_grace_period_s=0.0)
            ctx = make_context(settings)
            with docker_fleet(ctx, dockerd, base, ["gpu-1"]) as fleet:
                api = authed_client(ctx)
                body = {
                    "image": dockerd.image,
                    "command": ["sleep", "300"],
                    "cpu": 0.1,
                    "ram_gb": 0.125,
                    "ports": [80],
                    "cluster_id": fleet.cluster_id,
                }
                for round_ in ("warm-up", "traced"):
                    recorder.on = round_ == "traced"
                    response = api.post("/api/v1/workloads", json=body | {"name": round_})
                    if response.status_code != 201:
                        raise RuntimeError(response.text)
                    _in_thread("scheduler-loop", lambda: run_scheduling_cycle(ctx))
                    if _in_thread("starter-loop", lambda: start_scheduled(ctx)) != 1:
                        raise RuntimeError("the starter did not start the container")
                    recorder.on = False
                    workload = api.get(f"/api/v1/workloads/{response.json()['id']}").json()
                    if workload["status"] != "running":
                        raise RuntimeError(f"{round_}: {workload['status']}")
                api.close()
            ctx.db.dispose()
        finally:
            sys.setprofile(None)
            threading.setprofile(None)
    functions = {
        f"{module}.{name}": sorted({_thread_role(t) for t in threads})
        for (module, name), threads in recorder.functions.items()
    }
    kinds: dict[str, int] = defaultdict(int)
    for kind in recorder.classes.values():
        kinds[kind] += 1
    return {
        "functions": dict(sorted(functions.items())),
        "modules": sorted({module for module, _name in recorder.functions}),
        "threads": sorted({t for roles in functions.values() for t in roles}),
        "classes": dict(sorted(recorder.classes.items())),
        "class_kinds": dict(sorted(kinds.items())),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.path_trace", description=__doc__)
    parser.add_argument("--json", type=Path, help="write every name found to this file")
    args = parser.parse_args(argv)
    configure_logging("WARNING")
    for handler in logging.getLogger(AUDIT_LOGGER).handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as we do
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from support.local_server import ServerUnavailable  # type: ignore[import-not-found]

    try:
        found = trace_one_submission()
    except ServerUnavailable as exc:
        print(f"dockerd unavailable: {exc}")
        return 2
    print(f"functions: {len(found['functions'])}")
    print(f"modules:   {len(found['modules'])}")
    print(f"threads:   {len(found['threads'])} ({', '.join(found['threads'])})")
    kinds = ", ".join(f"{n} {k}" for k, n in found["class_kinds"].items())
    print(f"classes:   {len(found['classes'])} ({kinds})")
    if args.json:
        args.json.write_text(json.dumps(found, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
