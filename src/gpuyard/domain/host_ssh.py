"""Host SSH (issue 19): how gpuyard reaches a server's own shell, and what it pinned.

Pure data and the rules for the parts a caller types (host, port, user name). The private
key is never part of a read model: a read says which key (its type and fingerprint), and
the decrypted :class:`SshCredentials` exist only for the moment of one connection and hide
the key from ``repr``.

Host keys are trusted on first use: the first connection that succeeds pins the key the
host presented; every later connection must present that same key, or it is refused
before any credential is sent. Only an explicit un-pin (audited) forgets it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import datetime

from gpuyard.domain.errors import FieldError, InvalidInput

#: The largest private key text accepted (an RSA-8192 key in PEM is about 6.5 KB).
MAX_PRIVATE_KEY_CHARS = 16_384
MAX_PASSPHRASE_CHARS = 1_024
MAX_HOST_CHARS = 253
DEFAULT_PORT = 22
#: POSIX portable user names (what useradd accepts by default), at most 32 characters.
_USERNAME = re.compile(r"[a-z_][a-z0-9_.-]{0,30}[a-z0-9_.$-]?")
#: One DNS label: letters, digits, hyphens inside.
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


@dataclass(frozen=True)
class SshEndpoint:
    """Where to connect and as whom."""

    host: str
    port: int
    username: str

    def __str__(self) -> str:
        return f"{self.username}@{self.host}:{self.port}"


@dataclass(frozen=True)
class HostKeyPin:
    """The host key a server presented at its first successful connection."""

    #: OpenSSH public key line (``ssh-ed25519 AAAA...``), without comment.
    public_key: str
    #: ``SHA256:...``, as ``ssh-keygen -l`` prints it.
    fingerprint: str
    pinned_at: datetime


@dataclass(frozen=True)
class ServerSsh:
    """A server's SSH settings as anyone may read them (no private key)."""

    server_id: str
    endpoint: SshEndpoint
    key_type: str
    key_fingerprint: str
    host_key: HostKeyPin | None
    updated_by: str | None
    updated_at: datetime


@dataclass(frozen=True)
class SshCredentials:
    """A decrypted private key for one connection (never logged, never returned)."""

    private_key: str = field(repr=False)
    passphrase: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class KeyFacts:
    """What a private key says about itself once parsed."""

    key_type: str
    fingerprint: str
    #: Its public half as an OpenSSH line (to put in ``authorized_keys``).
    public_key: str


def checked_host(host: str, field_name: str = "host") -> str:
    """A host name or an IP address (IPv6 without brackets), or InvalidInput naming the
    field: no user part, no port, no spaces, nothing a shell or ssh option could read."""
    value = host.strip()
    if not value or len(value) > MAX_HOST_CHARS:
        raise InvalidInput.for_field(field_name, f"1 to {MAX_HOST_CHARS} characters")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    labels = value.rstrip(".").split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        raise InvalidInput.for_field(
            field_name, "a host name (letters, digits, hyphens, dots) or an IP address"
        )
    return value.rstrip(".").lower()


def checked_username(username: str, field_name: str = "username") -> str:
    """A POSIX user name, or InvalidInput naming the field."""
    if not _USERNAME.fullmatch(username):
        raise InvalidInput.for_field(
            field_name,
            "a user name: lower-case letters, digits, '_', '.', '-', at most 32, "
            "not starting with a digit or '-'",
        )
    return username


def checked_endpoint(host: str | None, port: int, username: str) -> SshEndpoint:
    """All three parts checked at once: one InvalidInput listing every field at fault
    (``host`` None: none given and none to default to)."""
    errors: list[FieldError] = []
    checked: dict[str, str] = {}
    if host is None:
        errors.append(FieldError("host", "required: this server has no agent URL to take it from"))
    for name, check, value in (
        ("host", checked_host, host),
        ("username", checked_username, username),
    ):
        if value is None:
            continue
        try:
            checked[name] = check(value)
        except InvalidInput as exc:
            errors.extend(exc.errors)
    if not 1 <= port <= 65535:
        errors.append(FieldError("port", "a TCP port, 1 to 65535"))
    if errors:
        raise InvalidInput.for_fields(errors)
    return SshEndpoint(checked["host"], port, checked["username"])


def changed_host_key_detail(endpoint: SshEndpoint, pinned: str, presented: str | None) -> str:
    """The refusal a changed host key gets: what was pinned, what came, and what to do."""
    seen = f"it now presents {presented}" if presented else "it presented another key"
    return (
        f"the host key of {endpoint.host}:{endpoint.port} changed: gpuyard pinned {pinned} "
        f"at first use and {seen}. Nothing was sent to it. If the host was reinstalled or its "
        "keys rotated, an admin un-pins the old key (DELETE /api/v1/servers/{id}/ssh/host-key "
        "or `gpuyard server ssh-unpin`); otherwise something is impersonating it."
    )
