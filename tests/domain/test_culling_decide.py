"""Idle culling's decision (domain/culling.py), as properties over any run of ticks:
nothing is stopped that was not warned with the time it would be stopped, idle all along
for the window; missing data never counts as idle; a policy that is off never stops;
an off or never anywhere wins over on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from gpuyard.domain.culling import (
    Action,
    CullMode,
    CullState,
    EffectivePolicy,
    Lifetime,
    Observation,
    PolicySettings,
    Signal,
    cpu_share_pct,
    decide,
    resolve_policy,
)

START = datetime(2026, 1, 1, tzinfo=UTC)
readings = st.one_of(st.none(), st.floats(min_value=0, max_value=100))
ticks = st.lists(
    st.tuples(st.integers(min_value=1, max_value=900), readings), min_size=1, max_size=80
)


def _policy(threshold: float, window: int, culled: bool = True) -> EffectivePolicy:
    return EffectivePolicy(culled, threshold, window, None if culled else "team (off)", None)


@given(
    ticks,
    st.floats(min_value=0.5, max_value=50),
    st.integers(min_value=60, max_value=7200),
    st.integers(min_value=0, max_value=1800),
)
def test_a_stop_comes_only_after_its_warning_and_a_whole_idle_window(
    steps: list[tuple[int, float | None]], threshold: float, window: int, warn_s: int
) -> None:
    policy = _policy(threshold, window)
    state = CullState()
    now = START
    streak_start: datetime | None = None  # since when every reading was idle
    announced: datetime | None = None
    for step, value in steps:
        now += timedelta(seconds=step)
        idle = value is not None and value < threshold
        streak_start = (streak_start or now) if idle else None
        decision = decide(policy, state, Observation(value, Signal.GPU), None, now, warn_s)
        if decision.action is Action.STOP:
            assert idle
            assert streak_start is not None
            assert now - streak_start >= timedelta(seconds=window)
            assert announced is not None  # warned before, within this idle streak
            assert now >= announced
            assert decision.details is not None
            assert decision.details["observed_max_pct"] < threshold
            return
        if decision.reason_code == "idle_warning":
            assert state.idle_warned_at is None  # warned once per idle streak
            announced = decision.state.idle_stop_at
            assert announced is not None
            assert announced >= now
            assert decision.message is not None
            assert "unless used" in decision.message
        if not idle:
            # A warned workload hears that the announced stop is off, and why.
            if announced is not None:
                assert decision.action is Action.NOTE
                assert decision.reason_code in ("in_use_again", "no_reading")
            announced = None
            assert decision.state.idle_since is None
            assert decision.state.idle_stop_at is None
        state = decision.state


@given(ticks, st.integers(min_value=60, max_value=7200))
def test_a_policy_that_is_off_never_stops_and_never_warns(
    steps: list[tuple[int, float | None]], window: int
) -> None:
    policy = _policy(50.0, window, culled=False)
    state, now = CullState(), START
    for step, value in steps:
        now += timedelta(seconds=step)
        decision = decide(policy, state, Observation(value, Signal.CPU), None, now, 60)
        assert decision.action is Action.NONE
        state = decision.state


@given(st.lists(st.integers(min_value=1, max_value=10_000), min_size=1, max_size=40))
def test_no_signal_is_never_culled_and_said_once(steps: list[int]) -> None:
    policy = _policy(100.0, 60)
    state, now, notes = CullState(), START, 0
    for step in steps:
        now += timedelta(seconds=step)
        decision = decide(policy, state, Observation(None, None, unsupported=True), None, now, 0)
        assert decision.action is not Action.STOP
        notes += decision.action is Action.NOTE
        state = decision.state
    assert notes == 1


_WHY = st.sampled_from([None, "no metrics-server", "a GPU pod"])


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=10_000),
            st.one_of(st.builds(lambda why: ("none", why), _WHY), readings.map(lambda v: ("v", v))),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_no_signal_is_said_again_only_when_its_reason_changes_or_a_reading_came_between(
    steps: list[tuple[int, tuple[str, object]]],
) -> None:
    """Runs of "no signal" (with a reason: no metrics-server, a GPU pod) and readings: a
    note says the reason each time it differs from the last one said, or the first time
    after a reading came in between; a missing reading (None) changes nothing; nothing
    is ever stopped while there is no signal."""
    policy = _policy(0.0, 60)  # threshold 0: never idle, so only the notes speak
    state, now = CullState(), START
    said: str | object | None = object()  # nothing said yet
    for step, (what, value) in steps:
        now += timedelta(seconds=step)
        if what == "none":
            why = value if isinstance(value, str) else None
            observation = Observation(None, None, unsupported=True, no_signal_reason=why)
            decision = decide(policy, state, observation, None, now, 0)
            assert decision.action is not Action.STOP
            assert (decision.action is Action.NOTE) == (said != why)
            if decision.action is Action.NOTE:
                assert decision.message == (
                    f"never culled when idle: {why or 'its runtime reports no utilisation for it'}"
                )
            said = why
            assert decision.state.no_signal_reason == why
        else:
            reading = value if isinstance(value, float) else None
            decision = decide(policy, state, Observation(reading, Signal.CPU), None, now, 0)
            assert decision.action is Action.NONE
            if reading is not None:
                said = object()  # a signal again: the next loss is said again
        state = decision.state


@given(
    st.integers(min_value=60, max_value=86400),
    st.integers(min_value=0, max_value=3600),
    st.lists(st.integers(min_value=1, max_value=3600), min_size=1, max_size=60),
)
def test_max_lifetime_is_warned_then_stopped_never_before_its_end(
    limit: int, warn_s: int, steps: list[int]
) -> None:
    lifetime = Lifetime(START, limit, "set on the workload")
    policy = _policy(5.0, 60, culled=False)
    state, now, warned = CullState(), START, None
    for step in steps:
        now += timedelta(seconds=step)
        decision = decide(policy, state, Observation(90.0, Signal.GPU), lifetime, now, warn_s)
        if decision.action is Action.STOP:
            assert warned is not None
            assert now >= START + timedelta(seconds=limit)
            assert now >= warned
            return
        if decision.reason_code == "lifetime_warning":
            warned = decision.state.lifetime_stop_at
        state = decision.state


modes = st.one_of(st.none(), st.sampled_from(CullMode))


@given(st.sampled_from([CullMode.ON, CullMode.OFF]), modes, modes)
def test_off_or_never_anywhere_wins(
    default: CullMode, team: CullMode | None, image: CullMode | None
) -> None:
    """The default (settings: on or off) holds unless a team or image type says
    otherwise; their off or never beats any on."""
    resolved = resolve_policy(
        PolicySettings(default, 5.0, 600),
        PolicySettings(team),
        PolicySettings(image),
        "jupyter",
    )
    off = (CullMode.OFF, CullMode.NEVER)
    opted_out = (
        team in off
        or image in off
        or (default is CullMode.OFF and CullMode.ON not in (team, image))
    )
    assert resolved.culled is not opted_out


def test_the_most_specific_threshold_and_window_win() -> None:
    resolved = resolve_policy(
        PolicySettings(CullMode.ON, 5.0, 7200),
        PolicySettings(None, 10.0, 3600),
        PolicySettings(None, None, 600),
        "jupyter",
    )
    assert (resolved.culled, resolved.threshold_pct, resolved.window_s) == (True, 10.0, 600)


def test_cpu_share_from_two_readings() -> None:
    later = START + timedelta(seconds=10)
    assert cpu_share_pct(100.0, START, 105.0, later, 1.0) == 50.0
    assert cpu_share_pct(100.0, START, 120.0, later, 4.0) == 50.0
    assert cpu_share_pct(100.0, START, 99.0, later, 1.0) is None  # restarted: counter went back
    assert cpu_share_pct(100.0, START, 101.0, START, 1.0) is None  # no time passed
