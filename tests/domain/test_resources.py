"""Resources: API units in, exact integers inside, every bad field named."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpuyard.domain.errors import InvalidInput
from gpuyard.domain.resources import GpuShareRule, Resources

GOOD = [
    ("plain", dict(cpu=2, ram_gb=8, storage_gb=10, gpu=1), Resources(2000, 8192, 10240, 1000)),
    ("tenth of a core", dict(cpu=0.1, ram_gb=0.5), Resources(100, 512, 0, 0)),
    ("gpu share", dict(cpu=1, ram_gb=1, gpu=0.3), Resources(1000, 1024, 0, 300)),
    ("eight gpus", dict(gpu=8), Resources(0, 0, 0, 8000)),
    ("a quarter gpu", dict(gpu=0.25), Resources(0, 0, 0, 250)),
    ("smallest share", dict(gpu=0.05), Resources(0, 0, 0, 50)),
    ("largest share", dict(gpu=0.95), Resources(0, 0, 0, 950)),
    ("float noise", dict(cpu=0.30000000000000004 * 1, gpu=0.7), Resources(300, 0, 0, 700)),
]


@pytest.mark.parametrize(
    ("kwargs", "expected"), [(k, e) for _, k, e in GOOD], ids=[g[0] for g in GOOD]
)
def test_from_api_converts_exactly(kwargs: dict[str, float], expected: Resources) -> None:
    assert Resources.from_api(**kwargs) == expected


BAD = [
    ("negative cpu", dict(cpu=-1), ["cpu"]),
    ("cpu finer than 0.1", dict(cpu=0.05), ["cpu"]),
    ("gpu 1.5", dict(gpu=1.5), ["gpu"]),
    ("gpu share off the 0.05 steps", dict(gpu=0.12), ["gpu"]),
    ("gpu share below the minimum", dict(gpu=0.01), ["gpu"]),
    ("gpu share finer than a milli", dict(gpu=0.0505), ["gpu"]),
    ("gpu share just under one", dict(gpu=0.99), ["gpu"]),
    ("too many gpus", dict(gpu=65), ["gpu"]),
    ("too much ram", dict(ram_gb=10**6), ["ram_gb"]),
    ("nan", dict(cpu=float("nan")), ["cpu"]),
    ("infinity", dict(storage_gb=float("inf")), ["storage_gb"]),
    ("several at once", dict(cpu=-1, gpu=1.5, ram_gb=-2), ["cpu", "ram_gb", "gpu"]),
]


@pytest.mark.parametrize(("kwargs", "fields"), [(k, f) for _, k, f in BAD], ids=[b[0] for b in BAD])
def test_from_api_names_every_bad_field(kwargs: dict[str, float], fields: list[str]) -> None:
    with pytest.raises(InvalidInput) as caught:
        Resources.from_api(**kwargs)
    assert [e.field for e in caught.value.errors] == fields


def test_non_numbers_are_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        Resources.from_api(cpu="2")  # type: ignore[arg-type]
    assert caught.value.errors[0].field == "cpu"
    with pytest.raises(InvalidInput):
        Resources.from_api(gpu=True)


def test_describe_and_api_units_round_trip() -> None:
    r = Resources.from_api(cpu=2.5, ram_gb=16, storage_gb=0, gpu=2)
    assert (r.cpu, r.ram_gb, r.storage_gb, r.gpu) == (2.5, 16, 0, 2)
    assert r.describe() == "2.5 cpu, 16 GB RAM, 2 GPUs"
    assert r.whole_gpus == 2
    assert not r.is_gpu_share
    assert Resources.from_api(gpu=0.4).is_gpu_share


amounts = st.builds(
    Resources,
    st.integers(0, 10**6),
    st.integers(0, 10**7),
    st.integers(0, 10**8),
    st.integers(0, 64_000),
)


@given(amounts, amounts)
def test_add_then_subtract_is_identity(a: Resources, b: Resources) -> None:
    assert (a + b) - b == a
    assert a.fits_in(a + b)
    assert (a + b).is_non_negative()


@given(amounts, amounts)
def test_fits_in_matches_every_dimension(a: Resources, b: Resources) -> None:
    assert a.fits_in(b) == (not a.shortfalls(b)) or a.fits_in(b) == all(
        x <= y
        for x, y in zip(
            (a.cpu_milli, a.ram_mib, a.storage_mib, a.gpu_milli),
            (b.cpu_milli, b.ram_mib, b.storage_mib, b.gpu_milli),
            strict=True,
        )
    )


SHARE_RULES = [
    ("default: 0.05 steps", GpuShareRule(), 0.35, 350),
    ("any milli above 0.02", GpuShareRule(min_milli=20, step_milli=1), 0.123, 123),
    ("any milli: the top share", GpuShareRule(min_milli=20, step_milli=1), 0.999, 999),
    ("quarters only", GpuShareRule(min_milli=250, step_milli=250), 0.75, 750),
    ("a minimum off the step", GpuShareRule(min_milli=120, step_milli=50), 0.15, 150),
]


@pytest.mark.parametrize(
    ("rule", "gpu", "milli"), [r[1:] for r in SHARE_RULES], ids=[r[0] for r in SHARE_RULES]
)
def test_a_configured_share_rule_allows_its_shares(
    rule: GpuShareRule, gpu: float, milli: int
) -> None:
    assert Resources.from_api(gpu=gpu, shares=rule).gpu_milli == milli


@pytest.mark.parametrize(
    ("rule", "gpu"),
    [
        (GpuShareRule(min_milli=20, step_milli=1), 0.019),
        (GpuShareRule(min_milli=250, step_milli=250), 0.5 + 0.05),
        (GpuShareRule(min_milli=100, step_milli=100), 0.05),
    ],
    ids=["below the minimum", "between quarters", "the old tenths refuse 0.05"],
)
def test_a_configured_share_rule_refuses_what_it_does_not_allow(
    rule: GpuShareRule, gpu: float
) -> None:
    with pytest.raises(InvalidInput) as caught:
        Resources.from_api(gpu=gpu, shares=rule)
    assert [e.field for e in caught.value.errors] == ["gpu"]
    assert rule.describe() in caught.value.errors[0].message


@given(min_milli=st.integers(1, 999), step_milli=st.integers(1, 999), room=st.integers(0, 1000))
def test_the_largest_share_within_a_room_is_allowed_and_fits(
    min_milli: int, step_milli: int, room: int
) -> None:
    smallest = min_milli + (-min_milli) % step_milli
    if smallest > 999 - 999 % step_milli:
        with pytest.raises(ValueError, match="no share below one GPU"):
            GpuShareRule(min_milli=min_milli, step_milli=step_milli)
        return
    rule = GpuShareRule(min_milli=min_milli, step_milli=step_milli)
    share = rule.largest_within(room)
    if share:
        assert rule.allows(share)
        assert share <= room
        assert not any(rule.allows(m) for m in range(share + 1, min(room, 999) + 1))
    else:
        assert not any(rule.allows(m) for m in range(1, min(room, 999) + 1))


def test_a_share_rule_outside_one_gpu_is_refused() -> None:
    with pytest.raises(ValueError, match="1-999 milli"):
        GpuShareRule(min_milli=0, step_milli=50)
    with pytest.raises(ValueError, match="1-999 milli"):
        GpuShareRule(min_milli=50, step_milli=1000)
    with pytest.raises(ValueError, match="no share below one GPU"):
        GpuShareRule(min_milli=990, step_milli=50)  # 0.99 rounds up to a whole GPU
