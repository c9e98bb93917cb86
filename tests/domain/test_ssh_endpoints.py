"""The parts of an SSH endpoint a caller types: nothing accepted could be read by ssh or a
shell as anything but a host name, an address or a user name."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpuyard.domain.errors import InvalidInput
from gpuyard.domain.host_ssh import checked_endpoint, checked_host, checked_username

#: Characters a shell, ssh's option parser or a user@host form could act on.
_DANGEROUS = set(" \t\n\r;&|$`'\"\\<>(){}*?!#~@,=/\x00")


@given(st.text(max_size=300))
def test_an_accepted_host_is_an_address_or_a_plain_host_name(text: str) -> None:
    refused: list[str] = []
    try:
        host = checked_host(text)
    except InvalidInput as exc:
        refused = [e.field for e in exc.errors]
    if refused:
        assert refused == ["host"]
        return
    assert not host.startswith("-")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        assert not set(host) & _DANGEROUS
        assert all(label and not label.startswith("-") for label in host.split("."))
    assert checked_host(host) == host  # checking again changes nothing


@given(st.text(max_size=64))
def test_an_accepted_user_name_is_a_posix_one(text: str) -> None:
    try:
        name = checked_username(text)
    except InvalidInput:
        return
    assert name == text
    assert not name.startswith("-")
    assert not set(name) & _DANGEROUS
    assert len(name) <= 32


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("10.0.0.7", "10.0.0.7"),
        ("::1", "::1"),
        ("GPU-7.Example.org.", "gpu-7.example.org"),
        ("localhost", "localhost"),
    ],
    ids=["ipv4", "ipv6 without brackets", "a name, case and root dot dropped", "one label"],
)
def test_hosts_that_are_accepted(host: str, expected: str) -> None:
    assert checked_host(host) == expected


def test_every_bad_part_is_named_at_once() -> None:
    with pytest.raises(InvalidInput) as refused:
        checked_endpoint("-oProxyCommand=x", 0, "Root")
    assert [e.field for e in refused.value.errors] == ["host", "username", "port"]
