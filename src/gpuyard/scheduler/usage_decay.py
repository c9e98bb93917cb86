"""Decayed historical usage: time-based fair share (issue 21), as Slurm's and KAI's.

Pure: no store, no clock. Each team's allocated resources are integrated over time with
an exponential decay of half-life ``h``: usage held ``a`` seconds ago counts
``2^(-a/h)`` of usage held now. The history loop keeps the integral per team
(``services/usage/decay.py``, table ``team_usage_decay``) by :func:`accrue`, treating
what a team holds as constant between two ticks (it samples the allocation each tick).

The integral is in resource-seconds (internal units: milli-cores x s, MiB x s, ...).
Holding ``x`` forever converges to ``x * h / ln 2`` (:func:`saturation`), so the *decayed
share* of a team, ``max over dimensions of history / (capacity * h / ln 2)``, is in
[0, 1] while the team never holds more than the fleet: the dominant share of its recent
past, as DRF's dominant share is of its present.

How it is mixed into the DRF order (``FairShareTree.order_key``), among equal
priorities only, and after the guarantee rule (a team under its guarantee still goes
first, so guarantees stay reachable): Slurm's classic fair-share factor
``F = 2^(-U/S)``, with ``U`` the node's decayed share and ``S`` its normalised share
(its weight over the sum of its siblings' weights), divides the node's
``used / fair share`` ratio. A team that used twice its share over the last half-lives
counts its present usage four times over: with two equal teams, the one that held the
whole fleet while the other was away is served after the returning one until their
histories even out, instead of both being cut to half at once. Reclaim is not changed:
what a team is guaranteed does not depend on its past.
"""

from __future__ import annotations

import math

#: Vector of the four dimensions, in :data:`scheduler.fairshare.DIMENSIONS` order.
Vector = tuple[float, float, float, float]

#: ``U / S`` is capped here (a factor of 2^64): past it the order no longer changes and a
#: weight-0 team's infinite ratio stays finite.
MAX_EXPONENT = 64.0


def decay_factor(elapsed_s: float, half_life_s: float) -> float:
    """How much of the usage ``elapsed_s`` ago still counts: ``2^(-elapsed/half_life)``."""
    if elapsed_s <= 0:
        return 1.0
    return math.pow(2.0, -elapsed_s / half_life_s)


def saturation(half_life_s: float) -> float:
    """The decayed usage of one unit held forever: ``half_life / ln 2`` seconds."""
    return half_life_s / math.log(2.0)


def accrue(
    history: Vector,
    used: Vector,
    elapsed_s: float,
    half_life_s: float,
    counted_s: float | None = None,
) -> Vector:
    """``history`` (resource-seconds as of ``elapsed_s`` ago) decayed to now, plus ``used``
    held over the last ``counted_s`` seconds (all of ``elapsed_s`` by default; less when
    the gap is longer than what the caller saw): the exact integral of a constant
    ``used`` under the decay, ``used * h/ln2 * (1 - 2^(-counted/h))``."""
    elapsed_s = max(0.0, elapsed_s)
    counted = elapsed_s if counted_s is None else min(max(0.0, counted_s), elapsed_s)
    keep = decay_factor(elapsed_s, half_life_s)
    # 1 - 2^(-counted/h) through expm1: exact for intervals tiny against the half-life
    # (a 10 s tick against days), where the subtraction would cancel.
    gain = saturation(half_life_s) * -math.expm1(-counted * math.log(2.0) / half_life_s)
    return (
        history[0] * keep + max(0.0, used[0]) * gain,
        history[1] * keep + max(0.0, used[1]) * gain,
        history[2] * keep + max(0.0, used[2]) * gain,
        history[3] * keep + max(0.0, used[3]) * gain,
    )


def decayed_share(history: Vector, capacity: Vector, half_life_s: float) -> float:
    """The dominant share of ``history``: the largest ``history / (capacity * h/ln2)``
    over the dimensions the fleet has (0 when it has none)."""
    full = saturation(half_life_s)
    return max(
        (h / (c * full) for h, c in zip(history, capacity, strict=True) if c > 0),
        default=0.0,
    )


def usage_exponent(decayed: float, normalized_share: float) -> float:
    """``U / S`` of Slurm's factor, capped at :data:`MAX_EXPONENT` (a node without a share,
    weight 0, with any history, gets the cap)."""
    if decayed <= 0:
        return 0.0
    if normalized_share <= 0:
        return MAX_EXPONENT
    return min(MAX_EXPONENT, decayed / normalized_share)


def usage_penalty(decayed: float, normalized_share: float) -> float:
    """``1 / F = 2^(U/S)`` (>= 1; 1 without history): what the node's ``used / fair
    share`` ratio is multiplied by in the queue's order."""
    return math.pow(2.0, usage_exponent(decayed, normalized_share))
