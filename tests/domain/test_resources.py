"""Resources: API units in, exact integers inside, every bad field named."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpuyard.domain.errors import InvalidInput
from gpuyard.domain.resources import Resources

GOOD = [
    ("plain", dict(cpu=2, ram_gb=8, storage_gb=10, gpu=1), Resources(2000, 8192, 10240, 1000)),
    ("tenth of a core", dict(cpu=0.1, ram_gb=0.5), Resources(100, 512, 0, 0)),
    ("gpu share", dict(cpu=1, ram_gb=1, gpu=0.3), Resources(1000, 1024, 0, 300)),
    ("eight gpus", dict(gpu=8), Resources(0, 0, 0, 8000)),
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
    ("gpu 0.25", dict(gpu=0.25), ["gpu"]),
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
