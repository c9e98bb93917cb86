"""Pending reasons: every server's "no" folded into one human line.

In the style of kube-scheduler's ``FitError``: "0/4 servers fit: 3 have too few free GPUs
(needs 2, best server gpu-3 has 1 free), 1 is draining". Servers are counted per failure
category (a server short of both CPU and RAM counts in both); categories are listed by count,
then alphabetically, and resource categories name the best candidate and its numbers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

from gpuyard.domain.resources import GPU_MILLI, MIB_PER_GB
from gpuyard.scheduler.decisions import PendingCode
from gpuyard.scheduler.framework import (
    CPU,
    GPU_DEVICES,
    GPU_MEMORY,
    GPU_MILLI_TOTAL,
    GPU_SHARE,
    RAM,
    STORAGE,
    Code,
    Status,
)
from gpuyard.scheduler.plugins.holds import RESERVED_PHRASE
from gpuyard.scheduler.plugins.model_limits import MODEL_LIMITS


@dataclass(frozen=True)
class Diagnosis:
    """Why one replica fits nowhere: the verdict of every server that rejected it.

    Its code and rendered text are computed once (one diagnosis serves every workload of
    the same shape in a cycle).
    """

    total: int
    failures: tuple[tuple[str, Status], ...]  # (server name, verdict)
    _texts: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def code(self) -> PendingCode:
        """RESERVED when a server would fit but for a starving workload's reservation;
        UNRESOLVABLE when every server rejects it for good; QUOTA when every server is
        of a GPU model its team (or department) is at its limit of; else UNSCHEDULABLE."""
        if any(st.phrase == RESERVED_PHRASE for _, st in self.failures):
            return PendingCode.RESERVED
        if (
            self.total > 0
            and len(self.failures) == self.total
            and all(st.code is Code.UNRESOLVABLE for _, st in self.failures)
        ):
            return PendingCode.UNRESOLVABLE
        if (
            self.total > 0
            and len(self.failures) == self.total
            and all(st.plugin == MODEL_LIMITS for _, st in self.failures)
        ):
            return PendingCode.QUOTA  # every server is of a model the team is at its limit of
        return PendingCode.UNSCHEDULABLE


# (phrase, unit divisor, unit suffix) per (resource, code). Phrases use {has}/{is}.
_FREE = {
    CPU: ("{has} too little free CPU", 1000, " cpu"),
    RAM: ("{has} too little free RAM", MIB_PER_GB, " GB"),
    STORAGE: ("{has} too little free storage", MIB_PER_GB, " GB"),
    GPU_DEVICES: ("{has} too few free {model}GPUs", 1, ""),
    GPU_SHARE: ("{has} no {model}GPU with enough room", GPU_MILLI, " GPU"),
    GPU_MILLI_TOTAL: ("{has} too little free GPU", GPU_MILLI, " GPU"),
    GPU_MEMORY: ("{has} no {model}GPU with enough free memory", MIB_PER_GB, " GB"),
}
_TOTAL = {
    CPU: ("{has} too few CPUs", 1000, " cpu"),
    RAM: ("{has} too little RAM", MIB_PER_GB, " GB"),
    STORAGE: ("{has} too little storage", MIB_PER_GB, " GB"),
    GPU_DEVICES: ("{has} too few {model}GPUs", 1, ""),
    GPU_MEMORY: ("{has} no {model}GPU with that much memory", MIB_PER_GB, " GB"),
}


def fit_error(diag: Diagnosis, gpu_model: str | None = None) -> str:
    """One line saying how many servers fit and why the others do not."""
    cached = diag._texts.get(gpu_model or "")
    if cached is None:
        cached = diag._texts[gpu_model or ""] = _render(diag, gpu_model)
    return cached


def _render(diag: Diagnosis, gpu_model: str | None) -> str:
    if diag.total == 0:
        return "0/0 servers fit: no servers are registered"
    model = f"{gpu_model.strip()} " if gpu_model and gpu_model.strip() else ""
    counts: dict[str, int] = {}
    best: dict[str, tuple[int, str, int]] = {}  # phrase -> (available, server, requested)
    units: dict[str, tuple[int, str, bool]] = {}  # phrase -> (divisor, suffix, is_total)
    for server, status in diag.failures:
        if not status.insufficient:
            counts[status.phrase] = counts.get(status.phrase, 0) + 1
            continue
        table = _TOTAL if status.code is Code.UNRESOLVABLE else _FREE
        for item in status.insufficient:
            phrase, divisor, suffix = table.get(item.resource, ("{is} too small", 1, ""))
            phrase = phrase.replace("{model}", model)
            counts[phrase] = counts.get(phrase, 0) + 1
            units[phrase] = (divisor, suffix, table is _TOTAL)
            current = best.get(phrase)
            # The best candidate has the most available; the first name on ties.
            if (
                current is None
                or item.available > current[0]
                or (item.available == current[0] and server < current[1])
            ):
                best[phrase] = (item.available, server, item.requested)
    parts: list[tuple[int, str]] = []
    for phrase, count in counts.items():
        text = _verb(phrase, count)
        if phrase in best:
            available, server, requested = best[phrase]
            divisor, suffix, is_total = units[phrase]
            want = _num(requested, divisor) + suffix
            have = _num(available, divisor) + suffix
            if is_total:
                text += f" (needs {want}, largest server {server} has {have})"
            else:
                text += f" (needs {want}, best server {server} has {have} free)"
        parts.append((count, text))
    parts.sort(key=lambda item: (-item[0], item[1]))
    fitting = diag.total - len(diag.failures)
    return f"{fitting}/{diag.total} servers fit: " + ", ".join(text for _, text in parts)


def join(parts: Iterable[str]) -> str:
    """Join reason fragments with "; ", skipping empty ones."""
    return "; ".join(p for p in parts if p)


def duration(seconds: float) -> str:
    """Short human duration: 40 s, 12 min, 3.5 h."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _verb(phrase: str, count: int) -> str:
    # Plain replace, not str.format: phrases may contain user text (labels, model names).
    one = count == 1
    for word, singular, plural in (("{has}", "has", "have"), ("{is}", "is", "are")):
        phrase = phrase.replace(word, singular if one else plural)
    return f"{count} " + phrase.replace("{does}", "does" if one else "do")


def _num(value: int, divisor: int) -> str:
    return f"{round(value / divisor, 3):g}"
