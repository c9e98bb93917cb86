"""A wall-clock sampling profiler for every thread of this process (stdlib only).

cProfile sees one thread; a server answers requests on worker threads while its scheduler
loop runs on another. :class:`StackSampler` reads ``sys._current_frames()`` every few
milliseconds and counts, per thread role, each function on the stack once per sample
(inclusive time). A thread blocked in the database shows the Python frame that waits (for
example SQLAlchemy's ``do_execute``), so the report says where each thread's *wall* time
goes, which is what a latency budget needs.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from types import FrameType

#: Threads named like this are one role in the report.
ROLES = (
    ("loop-scheduler", "scheduler loop"),
    ("loop-lifecycle", "lifecycle loop"),
    ("AnyIO worker", "API request threads"),
    ("bench-uvicorn", "event loop (uvicorn)"),
)
#: Where the time of a gpuyard server goes: our code, the ORM/driver, the web stack.
INTERESTING = (
    "gpuyard/",
    "sqlalchemy/engine/base.py",
    "sqlalchemy/orm/session.py",
    "sqlalchemy/orm/persistence.py",
    "psycopg/cursor.py",
    "fastapi/routing.py",
    "pydantic/main.py",
    "jwt/",
    "structlog/",
    "logging/__init__.py",
)
_IDLE = ("wait", "select", "_worker", "accept", "sleep", "get", "run_forever", "_run_once")


class StackSampler:
    def __init__(self, interval_s: float = 0.005) -> None:
        self.interval_s = interval_s
        self.samples: Counter[str] = Counter()  # role -> samples (busy ones)
        self.functions: dict[str, Counter[str]] = {}  # role -> function -> samples
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def __enter__(self) -> StackSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        names = {}
        while not self._stop.wait(self.interval_s):
            for thread in threading.enumerate():
                names[thread.ident] = thread.name
            for ident, frame in sys._current_frames().items():
                name = names.get(ident, "?")
                if name == "bench-sampler":
                    continue
                self._sample(_role(name), frame)

    def _sample(self, role: str, frame: FrameType) -> None:
        if frame.f_code.co_name in _IDLE and "gpuyard" not in frame.f_code.co_filename:
            return  # parked: not part of anybody's latency
        seen: set[str] = set()
        counter = self.functions.setdefault(role, Counter())
        current: FrameType | None = frame
        while current is not None:
            code = current.f_code
            key = f"{_short(code.co_filename)}:{code.co_firstlineno}({code.co_name})"
            if key not in seen:
                seen.add(key)
                counter[key] += 1
            current = current.f_back
        self.samples[role] += 1

    def report(self, top: int = 16, match: tuple[str, ...] = INTERESTING) -> str:
        """Per role: busy share of samples and the top functions (inclusive) whose location
        contains one of ``match``; frames on (nearly) every sample are roots and skipped."""
        total = sum(self.samples.values()) or 1
        lines = [f"wall-clock samples every {self.interval_s * 1000:.0f} ms, all threads "
                 "(inclusive: a function counts once per sample it is on the stack):"]  # fmt: skip
        for role, count in self.samples.most_common():
            if role == "other":  # the bench's own threads (its progress poll, the pool)
                continue
            lines.append(f"\n[{role}] {count} busy samples ({count / total:.0%} of all)")
            functions = [
                (k, n)
                for k, n in self.functions[role].most_common()
                if any(m in k for m in match) and (n < 0.98 * count or "gpuyard" in k)
            ]
            for key, n in functions[:top]:
                lines.append(f"  {n / count:6.1%}  {key}")
        return "\n".join(lines)


def _role(thread_name: str) -> str:
    for prefix, role in ROLES:
        if thread_name.startswith(prefix):
            return role
    return "other"


def _short(path: str) -> str:
    for marker in ("/site-packages/", "/src/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path.rsplit("/", 1)[-1]
