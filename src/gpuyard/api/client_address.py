"""The client's address, for login throttling and the audit log.

The TCP peer is the client, unless the peer is one of the reverse proxies named in
``GPUYARD_TRUSTED_PROXIES`` (addresses and CIDR networks; none by default). Only then is
``X-Forwarded-For`` read, from the right: each trusted proxy appends the address it saw,
so the right-most address that is not a trusted proxy is the client. Whatever a client
writes into the header itself stands to the left of that and is never used.

gpuyard starts uvicorn with its own proxy handling off (``proxy_headers=False``; uvicorn
would otherwise believe X-Forwarded-For from 127.0.0.1), so the peer seen here is the real
one and this is the only place the header is read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv6Address, ip_address

from starlette.requests import HTTPConnection

from gpuyard.settings import IPNetwork

FORWARDED_FOR = "x-forwarded-for"


def client_ip(connection: HTTPConnection) -> str | None:
    """The client's address of a request or WebSocket (see the module docstring)."""
    peer = connection.client.host if connection.client else None
    trusted = connection.app.state.ctx.settings.trusted_proxy_networks
    if not trusted:
        return peer
    return resolve_client_ip(peer, connection.headers.getlist(FORWARDED_FOR), trusted)


def resolve_client_ip(
    peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[IPNetwork]
) -> str | None:
    """``peer`` unless it is a trusted proxy; then the right-most address of the
    X-Forwarded-For values (in the order received) that is not a trusted proxy. When
    every hop is trusted, the left-most; when a hop is not an address at all, the last
    trusted hop before it (a proxy wrote nonsense: no client address is known)."""
    last = _address(peer)
    if last is None or not _is_trusted(last, trusted):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break
        last = address
        if not _is_trusted(address, trusted):
            break
    return str(last)


def _address(text: str | None) -> IPv4Address | IPv6Address | None:
    """An address as peers and proxies write it: ``1.2.3.4``, ``1.2.3.4:5678``, ``::1``,
    ``[::1]:443``; None when it is none of these."""
    if not text:
        return None
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: IPv4Address | IPv6Address, trusted: Sequence[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in trusted)
