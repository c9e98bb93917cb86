"""Docker image references, registry addresses, and the catalog's names, checked once.

The reference grammar is the one of the distribution project
(``distribution/reference/regexp.go``): ``[domain[:port]/]path[:tag][@digest]`` with
lower-case path components, a tag of at most 128 word characters, and a name of at most
255 characters. The first component is a registry domain when it has a dot or a port, or
is ``localhost``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gpuyard.domain.errors import InvalidInput

# Where a workload's files directory is mounted: one policy, for the catalog and launches.
from gpuyard.domain.files_paths import MAX_FILES_PATH_LENGTH as MAX_FILES_PATH_LENGTH
from gpuyard.domain.files_paths import check_files_path as check_files_path

MAX_REFERENCE_LENGTH = 512
MAX_NAME_LENGTH = 255

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]{{1,5}})?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"^(?P<name>(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$",
    re.ASCII,
)
_ADDRESS = re.compile(rf"^(?:(?P<scheme>https?)://)?(?P<address>{_DOMAIN})/?$", re.ASCII)
#: Catalog and registry names: lower-case slugs.
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
#: An image type (nginx, python, ubuntu-ssh): what pools key on.
TYPE_PATTERN = r"^[a-z0-9][a-z0-9-]{0,31}$"
#: A registry address as given: host[:port], optionally behind http:// or https://.
REGISTRY_URL_PATTERN = r"^(https?://)?[A-Za-z0-9.-]+(:[0-9]{1,5})?/?$"


@dataclass(frozen=True)
class ImageReference:
    """A parsed reference: ``repository`` includes the registry domain when there is one."""

    repository: str
    tag: str | None
    digest: str | None

    @property
    def domain(self) -> str | None:
        """The registry address the reference names, or None (Docker Hub)."""
        first, slash, _rest = self.repository.partition("/")
        if slash and ("." in first or ":" in first or first == "localhost"):
            return first
        return None

    @property
    def path(self) -> str:
        """The repository without its registry domain."""
        domain = self.domain
        return self.repository[len(domain) + 1 :] if domain else self.repository

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str, field: str = "reference") -> ImageReference:
    """The reference ``text`` names; InvalidInput on ``field`` when it is not one."""
    found = _REFERENCE.match(text) if len(text) <= MAX_REFERENCE_LENGTH else None
    if found is None or len(found.group("name")) > MAX_NAME_LENGTH:
        raise InvalidInput.for_field(
            field,
            "must be an image reference such as nginx:1.27 or registry.example:5000/team/app:v1 "
            "(lower-case repository, tag of word characters, '.' and '-')",
        )
    return ImageReference(found.group("name"), found.group("tag"), found.group("digest"))


def with_tag(reference: ImageReference) -> ImageReference:
    """The reference with ``latest`` when it names no tag and no digest (as Docker reads it)."""
    if reference.tag or reference.digest:
        return reference
    return ImageReference(reference.repository, "latest", None)


def parse_registry_address(text: str, field: str = "url") -> tuple[str, bool]:
    """(``host[:port]``, whether the URL said http://) for a registry URL as given."""
    found = _ADDRESS.match(text.strip())
    if found is None:
        raise InvalidInput.for_field(
            field, "must be host[:port] or http(s)://host[:port] (no path)"
        )
    address = found.group("address")
    port = address.rpartition(":")[2] if ":" in address else None
    if port is not None and not 1 <= int(port) <= 65535:
        raise InvalidInput.for_field(field, "the port must be 1-65535")
    return address, found.group("scheme") == "http"
