"""Host port ranges by image type."""

from __future__ import annotations

import pytest

from gpuyard.services.ports import port_range_for
from gpuyard.settings import Settings, parse_port_ranges

RANGES = Settings().port_range_table


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("nginx:1.27", (8000, 8099)),
        ("library/httpd", (8100, 8199)),
        ("python:3.12-slim", (8200, 8299)),
        ("node:22", (8300, 8399)),
        ("linuxserver/openssh-server", (9000, 9999)),
        ("acme/ssh", (2200, 2210)),
        ("pytorch/pytorch:2.4", (9000, 9999)),
    ],
)
def test_the_range_follows_the_image_type(image: str, expected: tuple[int, int]) -> None:
    assert port_range_for(image, RANGES, None) == expected


def test_a_server_range_overrides_the_image_type() -> None:
    assert port_range_for("nginx", RANGES, (21000, 21009)) == (21000, 21009)


@pytest.mark.parametrize("text", ["nginx=8000-8099", "*=9-1", "*=0-10", "x"])
def test_bad_ranges_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"port range"):
        parse_port_ranges(text)
