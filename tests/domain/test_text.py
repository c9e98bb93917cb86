"""Storable text: the check and the repair agree with what UTF-8 and PostgreSQL accept."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpuyard.domain.text import REPLACEMENT, renderable, unstorable_paths, unstorable_reason

# Any code point, surrogates and NUL included (hypothesis leaves surrogates out by default).
any_text = st.text(st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF))
json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=12,
)


def _storable(value: Any) -> bool:
    """What the database and the response encoder accept: UTF-8 encodable, no NUL."""
    text = json.dumps(value, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\\u0000" not in json.dumps(value)


@given(json_like)
def test_the_check_finds_exactly_what_cannot_be_stored(value: Any) -> None:
    assert (not list(unstorable_paths(value))) == _storable(value)


@given(json_like)
def test_repaired_values_are_always_storable_and_keep_good_text(value: Any) -> None:
    repaired = renderable(value)
    assert _storable(repaired)
    if _storable(value):
        assert repaired == value


@pytest.mark.parametrize(
    ("value", "paths"),
    [
        ({"A": "ok", "B": "x\x00"}, ["env.B"]),
        ({"\ud800": "v"}, ["env"]),
        ({"nested": {"deep": ["a", "\udfff"]}}, ["env.nested.deep.1"]),
    ],
    ids=["bad value", "bad key reported at its dict", "nested list item"],
)
def test_paths_name_each_bad_entry(value: Any, paths: list[str]) -> None:
    assert [path for path, _ in unstorable_paths(value, "env")] == paths


def test_reasons_say_what_is_wrong() -> None:
    assert unstorable_reason("ok") is None
    assert "NUL" in (unstorable_reason("a\x00") or "")
    assert "surrogate" in (unstorable_reason("\ud800") or "")
    assert renderable("a\ud800b") == f"a{REPLACEMENT}b"
