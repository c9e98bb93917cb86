"""Idle culling and maximum lifetime (issue 19): the policy and the decision, no I/O.

A *policy* says whether a running workload is culled when idle, below which utilisation
(percent) and for how long. Policies are set per team and per image type (a catalog
image's ``type``, matched by the workload's image reference) on top of a global default
(``GPUYARD_IDLE_CULL_*``). They combine by :func:`resolve_policy`: ``off`` or ``never``
anywhere wins (a team may opt out; ``never`` is the admins' word, which a team admin
cannot lift), otherwise the most specific threshold and window win (image type, then
team, then the default).

Each loop tick observes a workload's utilisation (:class:`Observation`: the mean of its
GPUs', or of its CPU share when it holds no GPU) and :func:`decide` moves its stored
:class:`CullState` on: an observation at or above the threshold, or none at all, resets
the idle clock (missing data is never idleness); once idle for the window less the
notice, a warning is recorded with the time it will be stopped, and only a warned
workload whose announced time has passed is stopped. The same holds for the maximum
lifetime (``max_lifetime_s`` of the workload, else its team's default for open-ended
workloads). Everything the decision needs is stored, so a restarted loop picks up where
it was.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from gpuyard.domain.usage import GpuLoad, GpuReading


class CullMode(StrEnum):
    """What a policy says about idle culling."""

    ON = "on"
    #: Opted out (a team admin may set and lift it).
    OFF = "off"
    #: Exempt by an admin: only an admin may lift it.
    NEVER = "never"


class PolicyScope(StrEnum):
    """What a stored policy applies to."""

    TEAM = "team"
    IMAGE_TYPE = "image_type"


#: Bounds of a policy's settings (the API and the settings use the same).
MIN_THRESHOLD_PCT = 0.0
MAX_THRESHOLD_PCT = 100.0
MIN_WINDOW_S = 60
MAX_WINDOW_S = 30 * 86400
MIN_LIFETIME_S = 60
MAX_LIFETIME_S = 90 * 86400


@dataclass(frozen=True)
class PolicySettings:
    """One stored policy's fields; None: not set here (the next level decides)."""

    mode: CullMode | None = None
    threshold_pct: float | None = None
    window_s: int | None = None
    #: The team's default maximum lifetime for its open-ended workloads (team scope only).
    max_lifetime_s: int | None = None


@dataclass(frozen=True)
class StoredPolicy:
    """A policy set for one team or one image type."""

    scope: PolicyScope
    #: The team's id or the image type.
    subject: str
    settings: PolicySettings
    updated_by: str | None
    updated_at: datetime


@dataclass(frozen=True)
class EffectivePolicy:
    """What applies to one workload."""

    culled: bool
    threshold_pct: float
    window_s: int
    #: Which level switched it off ("team", "image type nginx"...), or None.
    off_by: str | None
    #: The team default lifetime (None: none).
    team_max_lifetime_s: int | None


def resolve_policy(
    default: PolicySettings,
    team: PolicySettings | None,
    image_type: PolicySettings | None,
    image_type_name: str | None = None,
) -> EffectivePolicy:
    """The policy of a workload: off/never anywhere wins; else the most specific values."""
    levels = [("default", default)]
    if team is not None:
        levels.append(("team", team))
    if image_type is not None:
        levels.append((f"image type {image_type_name or '?'}", image_type))
    threshold = default.threshold_pct if default.threshold_pct is not None else 5.0
    window = default.window_s if default.window_s is not None else 7200
    off_by = None
    for _, level in levels:
        if level.threshold_pct is not None:
            threshold = level.threshold_pct
        if level.window_s is not None:
            window = level.window_s
    # The most specific "off"/"never" names the level that said it; "on" never overrides
    # an opt-out elsewhere (a team's opt-out holds for every image type, and the reverse).
    for name, level in reversed(levels[1:]):
        if level.mode in (CullMode.OFF, CullMode.NEVER):
            off_by = f"{name} ({level.mode.value})"
            break
    turned_on = any(level.mode is CullMode.ON for _, level in levels[1:])
    if off_by is None and default.mode is not CullMode.ON and not turned_on:
        off_by = "default (off)"
    return EffectivePolicy(
        culled=off_by is None,
        threshold_pct=threshold,
        window_s=window,
        off_by=off_by,
        team_max_lifetime_s=team.max_lifetime_s if team is not None else None,
    )


class Signal(StrEnum):
    """Where a workload's utilisation comes from."""

    GPU = "gpu"
    CPU = "cpu"


@dataclass(frozen=True)
class Observation:
    """A workload's utilisation now (percent), or None: nothing known this tick."""

    utilisation_pct: float | None
    signal: Signal | None
    #: The runtime has no signal at all for this workload: never culled when idle.
    unsupported: bool = False
    #: Why it has none (a kubernetes cluster without metrics-server, a GPU pod...);
    #: None: the runtime gave no reason.
    no_signal_reason: str | None = None


@dataclass(frozen=True)
class CullState:
    """What the loop stores per running workload between ticks."""

    idle_since: datetime | None = None
    #: The highest utilisation seen while idle (what the final event reports).
    idle_peak_pct: float | None = None
    idle_warned_at: datetime | None = None
    #: When the warned workload will be stopped for idleness (announced in the warning).
    idle_stop_at: datetime | None = None
    lifetime_warned_at: datetime | None = None
    lifetime_stop_at: datetime | None = None
    #: The "no utilisation signal" event was recorded (said once, and again only when
    #: the reason changes or the signal came back in between).
    unsupported_noted: bool = False
    #: Why there is no signal, as that event said (None: no reason given, or a signal).
    no_signal_reason: str | None = None


class Action(StrEnum):
    NONE = "none"
    #: Record an event only (a warning, a note); the workload keeps running.
    NOTE = "note"
    STOP = "stop"


@dataclass(frozen=True)
class Decision:
    state: CullState
    action: Action
    #: The event's text (None with Action.NONE).
    message: str | None = None
    #: The event's details (threshold, window, observed utilisation...).
    details: Mapping[str, object] | None = None
    #: A short code: a stop's reason ("idle", "max_lifetime"), or what a note says
    #: ("idle_warning", "lifetime_warning", "in_use_again", "culling_off", "no_reading",
    #: "no_signal").
    reason_code: str | None = None


def notice_s(limit_s: float, warn_s: int) -> float:
    """How long before a stop its warning comes: ``warn_s``, at most half the limit."""
    return max(0.0, min(float(warn_s), limit_s / 2))


def duration_text(seconds: float) -> str:
    """``2h 5m``, ``45m``, ``30s``: a duration for an event's text."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m {secs}s" if secs and minutes < 10 else f"{minutes}m"
    return f"{secs}s"


def _at(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class Lifetime:
    """A workload's maximum lifetime: when it started and how long it may run."""

    started_at: datetime
    max_lifetime_s: int
    #: "the workload" (opted in at submit) or "its team's default".
    source: str


def decide(
    policy: EffectivePolicy,
    state: CullState,
    observation: Observation,
    lifetime: Lifetime | None,
    now: datetime,
    warn_s: int,
) -> Decision:
    """One tick's decision for one running workload (see the module's docstring). The
    maximum lifetime goes first: it holds whatever the idle policy says."""
    if lifetime is not None:
        decision = _decide_lifetime(state, lifetime, now, warn_s)
        if decision.action is not Action.NONE:
            return decision
        state = decision.state
    return _decide_idle(policy, state, observation, now, warn_s)


def _decide_lifetime(state: CullState, lifetime: Lifetime, now: datetime, warn_s: int) -> Decision:
    limit = lifetime.max_lifetime_s
    end = lifetime.started_at + timedelta(seconds=limit)
    notice = notice_s(limit, warn_s)
    details: dict[str, object] = {"max_lifetime_s": limit, "source": lifetime.source}
    if state.lifetime_warned_at is None:
        if now < end - timedelta(seconds=notice):
            return Decision(state, Action.NONE)
        stop_at = max(end, now + timedelta(seconds=notice))
        warned = replace(state, lifetime_warned_at=now, lifetime_stop_at=stop_at)
        message = (
            f"maximum lifetime {duration_text(limit)} ({lifetime.source}): "
            f"will be stopped at {_at(stop_at)}"
        )
        details |= {"stop_at": stop_at.isoformat()}
        return Decision(warned, Action.NOTE, message, details, "lifetime_warning")
    stop_at = state.lifetime_stop_at or end
    if now < stop_at:
        return Decision(state, Action.NONE)
    message = (
        f"stopped: reached its maximum lifetime of {duration_text(limit)} ({lifetime.source}), "
        f"running since {_at(lifetime.started_at)}"
    )
    return Decision(state, Action.STOP, message, details, "max_lifetime")


def _reset_idle(state: CullState) -> CullState:
    return replace(
        state, idle_since=None, idle_peak_pct=None, idle_warned_at=None, idle_stop_at=None
    )


def _decide_idle(
    policy: EffectivePolicy, state: CullState, observation: Observation, now: datetime, warn_s: int
) -> Decision:
    if observation.unsupported:
        reason = observation.no_signal_reason
        if state.unsupported_noted and state.no_signal_reason == reason:
            return Decision(_reset_idle(state), Action.NONE)
        noted = replace(_reset_idle(state), unsupported_noted=True, no_signal_reason=reason)
        why = reason or "its runtime reports no utilisation for it"
        message = f"never culled when idle: {why}"
        return Decision(noted, Action.NOTE, message, {"signal": None, "why": why}, "no_signal")
    if state.unsupported_noted and observation.utilisation_pct is not None:
        # A reading again (metrics-server installed since): a later loss is said again.
        state = replace(state, unsupported_noted=False, no_signal_reason=None)
    value = observation.utilisation_pct
    if (
        not policy.culled
        or value is None
        or not math.isfinite(value)
        or value >= policy.threshold_pct
    ):
        # Busy, unknown (no samples: not idle) or not culled: the idle clock starts over.
        reset = _reset_idle(state)
        if state.idle_warned_at is None:
            return Decision(reset, Action.NONE)
        # A warned workload hears why the announced stop is off.
        if not policy.culled:
            message = f"no longer scheduled to stop: idle culling is off ({policy.off_by})"
            return Decision(reset, Action.NOTE, message, {}, "culling_off")
        if value is None or not math.isfinite(value):
            message = (
                "no longer scheduled to stop: no utilisation reading "
                "(never stopped on missing data)"
            )
            return Decision(reset, Action.NOTE, message, {}, "no_reading")
        message = (
            f"in use again ({value:.1f} % {_signal(observation)}): no longer scheduled to stop"
        )
        observed = {"observed_pct": round(value, 2)}
        return Decision(reset, Action.NOTE, message, observed, "in_use_again")
    idle_since = state.idle_since or now
    peak = max(state.idle_peak_pct or 0.0, value)
    state = replace(state, idle_since=idle_since, idle_peak_pct=peak)
    window = policy.window_s
    idle_for = (now - idle_since).total_seconds()
    details: dict[str, object] = {
        "threshold_pct": policy.threshold_pct,
        "window_s": window,
        "observed_max_pct": round(peak, 2),
        "signal": _signal(observation),
        "idle_since": idle_since.isoformat(),
    }
    if state.idle_warned_at is None:
        notice = notice_s(window, warn_s)
        if idle_for < window - notice:
            return Decision(state, Action.NONE)
        stop_at = max(idle_since + timedelta(seconds=window), now + timedelta(seconds=notice))
        warned = replace(state, idle_warned_at=now, idle_stop_at=stop_at)
        message = (
            f"idle for {duration_text(idle_for)} ({_signal(observation)} utilisation at most "
            f"{peak:.1f} %, below {policy.threshold_pct:g} %): will be stopped at "
            f"{_at(stop_at)} unless used"
        )
        details |= {"stop_at": stop_at.isoformat()}
        return Decision(warned, Action.NOTE, message, details, "idle_warning")
    if state.idle_stop_at is not None and now < state.idle_stop_at:
        return Decision(state, Action.NONE)
    message = (
        f"stopped: idle for {duration_text(idle_for)}, {_signal(observation)} utilisation at "
        f"most {peak:.1f} % (below the threshold of {policy.threshold_pct:g} % for the "
        f"window of {duration_text(window)})"
    )
    return Decision(state, Action.STOP, message, details, "idle")


def _signal(observation: Observation) -> str:
    return observation.signal.value.upper() if observation.signal is not None else "no"


def time_left_s(state: CullState, now: datetime) -> float | None:
    """Seconds until the earliest announced stop (None: none announced)."""
    deadlines = [d for d in (state.idle_stop_at, state.lifetime_stop_at) if d is not None]
    if not deadlines:
        return None
    return max(0.0, (min(deadlines) - now).total_seconds())


def cpu_share_pct(
    cpu_seconds_then: float,
    at_then: datetime,
    cpu_seconds_now: float,
    at_now: datetime,
    cpu_limit_cores: float,
) -> float | None:
    """CPU utilisation over an interval, in percent of the cores the workload holds, from
    two readings of its cumulative CPU time; None when the readings say nothing (no time
    passed, a counter that went back: a restarted container)."""
    elapsed = (at_now - at_then).total_seconds()
    used = cpu_seconds_now - cpu_seconds_then
    if elapsed <= 0 or used < 0 or cpu_limit_cores <= 0:
        return None
    return min(100.0, 100.0 * used / elapsed / cpu_limit_cores)


@dataclass(frozen=True)
class ReplicaUsageQuery:
    """What a runtime is asked about one replica for idle culling."""

    handle: str
    server_id: str
    workload_id: str
    command: tuple[str, ...] | None
    #: The replica's GPUs: index, its share (milli) and the device's memory.
    gpus: tuple[GpuLoad, ...]
    #: The cores it holds (its CPU limit).
    cpu_cores: float


@dataclass(frozen=True)
class ReplicaUsage:
    """What a runtime says one replica uses now. Each part may be missing: the GPUs'
    utilisation (a runtime that sees devices per replica), a CPU share in percent of its
    cores, or its cumulative CPU time in seconds (the loop turns two readings into a
    share, :func:`cpu_share_pct`). ``no_signal`` says why there is no signal at all for
    this replica, and never will be while that holds (a kubernetes cluster without
    metrics-server; a GPU pod, whose GPU utilisation metrics-server does not report):
    its workload is never culled when idle, and the reason is said in its events."""

    gpus: tuple[GpuReading, ...] = ()
    cpu_pct: float | None = None
    cpu_seconds: float | None = None
    no_signal: str | None = None
