"""The history's stored form (store/usage_history.py): figures survive a round trip to
0.1 %, unknown figures stay unknown, and rows an older writer left do not fail a read."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpuyard.domain.usage import GPU_FIGURES, SERVER_FIGURES, gpu_figure
from gpuyard.store.usage_history import decode_figures, encode_figures

PERCENT = st.floats(min_value=0, max_value=100, allow_nan=False)
NAMES = st.sampled_from(
    [*SERVER_FIGURES, *(gpu_figure(i, f) for i in (0, 1, 7, 15) for f in GPU_FIGURES)]
)
VALUE = PERCENT | st.tuples(PERCENT, PERCENT).map(lambda pair: (min(pair), max(pair)))


@given(st.dictionaries(NAMES, VALUE))
def test_figures_survive_the_stored_form(figures: dict[str, float | tuple[float, float]]) -> None:
    stored = json.loads(json.dumps(encode_figures(figures)))  # as the JSON column keeps it

    decoded = decode_figures(stored)

    assert set(decoded) == set(figures)
    for name, value in figures.items():
        avg, top = value if isinstance(value, tuple) else (value, value)
        assert decoded[name] == (pytest.approx(avg, abs=0.051), pytest.approx(top, abs=0.051))


@pytest.mark.parametrize(
    "stored",
    [None, "text", [], [1, 2], [["x", True, {}], [[0, "a"], ["i", 1, 2, 3], [True, 1, 2, 3]]]],
    ids=["null", "text", "empty", "numbers", "garbage inside"],
)
def test_a_row_no_writer_of_this_version_left_reads_as_unknown(stored: object) -> None:
    assert decode_figures(stored) == {}
