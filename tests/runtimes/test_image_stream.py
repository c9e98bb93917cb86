"""The control plane's reading of an agent's NDJSON progress: lines split across chunks
come out whole, and a line past the bound stops the stream instead of filling memory."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpuyard.runtimes.docker_images import bounded_lines


@given(
    lines=st.lists(st.binary(min_size=1, max_size=40).map(lambda b: b.replace(b"\n", b"x"))),
    cuts=st.lists(st.integers(min_value=1, max_value=17), min_size=1),
)
def test_lines_survive_any_chunking(lines: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(line + b"\n" for line in lines)
    chunks, position, index = [], 0, 0
    while position < len(stream):
        size = cuts[index % len(cuts)]
        chunks.append(stream[position : position + size])
        position, index = position + size, index + 1
    expected = [line for line in lines if line.strip()]
    assert list(bounded_lines(chunks, max_bytes=64)) == expected


def test_a_line_without_end_past_the_bound_is_refused() -> None:
    endless = (b"x" * 10 for _ in range(100))
    with pytest.raises(ValueError, match="over 64 bytes"):
        list(bounded_lines(endless, max_bytes=64))


def test_a_long_complete_line_is_refused() -> None:
    with pytest.raises(ValueError, match="over 8 bytes"):
        list(bounded_lines([b"short\n", b"much too long\n"], max_bytes=8))


def test_a_last_line_without_newline_is_kept() -> None:
    assert list(bounded_lines([b'{"a":1}\n{"b"', b":2}"])) == [b'{"a":1}', b'{"b":2}']
