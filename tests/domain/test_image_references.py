"""Image references, registry addresses and files paths: the grammar Docker's
distribution project defines, table-driven, and the round trip as a property."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from gpuyard.domain.errors import InvalidInput
from gpuyard.domain.image_references import (
    ImageReference,
    check_files_path,
    parse_reference,
    parse_registry_address,
    with_tag,
)

VALID = [
    pytest.param("nginx", "nginx", None, None, None, id="bare name (Docker Hub)"),
    pytest.param("nginx:1.27", "nginx", "1.27", None, None, id="tag"),
    pytest.param("library/nginx:latest", "library/nginx", "latest", None, None, id="namespace"),
    pytest.param(
        "127.0.0.1:5000/team/app:v1", "127.0.0.1:5000/team/app", "v1", None, "127.0.0.1:5000",
        id="registry with a port",
    ),
    pytest.param(
        "registry.example/app", "registry.example/app", None, None, "registry.example",
        id="registry with a dot",
    ),
    pytest.param("localhost/app:1", "localhost/app", "1", None, "localhost", id="localhost"),
    pytest.param(
        "app@sha256:" + "a" * 64, "app", None, "sha256:" + "a" * 64, None, id="digest"
    ),
    pytest.param("a__b/c.d-e:T_1.x-y", "a__b/c.d-e", "T_1.x-y", None, None, id="separators"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "repository", "tag", "digest", "domain"), VALID)
def test_valid_references(
    text: str, repository: str, tag: str | None, digest: str | None, domain: str | None
) -> None:
    parsed = parse_reference(text)
    assert (parsed.repository, parsed.tag, parsed.digest, parsed.domain) == (
        repository, tag, digest, domain,
    )  # fmt: skip
    assert str(parsed) == text


INVALID = [
    pytest.param("", id="empty"),
    pytest.param("Nginx", id="upper-case path"),
    pytest.param("nginx:", id="empty tag"),
    pytest.param("nginx:-x", id="tag starting with a dash"),
    pytest.param("nginx:" + "t" * 129, id="tag too long"),
    pytest.param("a" * 256, id="name too long"),
    pytest.param("a//b", id="empty component"),
    pytest.param("a/b/", id="trailing slash"),
    pytest.param("http://reg/app", id="a URL"),
    pytest.param("app@sha256:abc", id="short digest"),
    pytest.param("a\nb", id="newline"),
    pytest.param("app:1 ", id="trailing space"),
]


@pytest.mark.parametrize("text", INVALID)
def test_invalid_references_name_the_field(text: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_reference(text, "source")
    assert [e.field for e in refused.value.errors] == ["source"]


def test_with_tag_reads_as_docker_does() -> None:
    assert str(with_tag(parse_reference("app"))) == "app:latest"
    assert str(with_tag(parse_reference("app:1"))) == "app:1"
    digest = "app@sha256:" + "b" * 64
    assert str(with_tag(parse_reference(digest))) == digest


@pytest.mark.parametrize(
    ("text", "address", "plain_http"),
    [
        ("127.0.0.1:5000", "127.0.0.1:5000", False),
        ("http://127.0.0.1:5000", "127.0.0.1:5000", True),
        ("https://registry.example/", "registry.example", False),
    ],
)
def test_registry_addresses(text: str, address: str, plain_http: bool) -> None:
    assert parse_registry_address(text) == (address, plain_http)


@pytest.mark.parametrize("text", ["ftp://r", "r:0", "r:70000", "r/path", "http://", "r x"])
def test_bad_registry_addresses(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_registry_address(text)


@pytest.mark.parametrize(
    "text", ["relative", "/", "/a/../b", "/a/./b", "/with space", "/" + "a" * 1024]
)
def test_bad_files_paths(text: str) -> None:
    with pytest.raises(InvalidInput):
        check_files_path(text)


def test_files_path_drops_a_trailing_slash() -> None:
    assert check_files_path("/srv/www/html/") == "/srv/www/html"


_COMPONENT = st.from_regex(r"\A[a-z0-9]{1,8}([._-][a-z0-9]{1,8}){0,2}\Z")
_TAG = st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}\Z")


@given(
    domain=st.sampled_from([None, "localhost", "reg.example", "127.0.0.1:5000"]),
    path=st.lists(_COMPONENT, min_size=1, max_size=3),
    tag=st.none() | _TAG,
)
def test_parse_inverts_str(domain: str | None, path: list[str], tag: str | None) -> None:
    """Any reference built from the grammar's parts parses back to those parts."""
    repository = "/".join(([domain] if domain else []) + path)
    # Docker reads a first component with a dot (or localhost) as a registry: so do we.
    assume(domain is not None or len(path) == 1 or not ("." in path[0] or path[0] == "localhost"))
    built = ImageReference(repository, tag, None)
    parsed = parse_reference(str(built))
    assert parsed == built
    assert parsed.domain == domain
