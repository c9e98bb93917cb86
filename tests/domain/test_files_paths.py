"""Where a files directory may be mounted: the policy of domain/files_paths.py, table-driven,
and as properties (an accepted path is never inside a system directory; a refusal says why)."""

from __future__ import annotations

import posixpath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpuyard.domain.errors import InvalidInput
from gpuyard.domain.files_paths import (
    DEFAULT_FILES_PATH,
    MAX_FILES_PATH_LENGTH,
    SYSTEM_DIRECTORIES,
    check_files_path,
    files_path_problem,
)

ACCEPTED = [
    pytest.param("/workspace", "/workspace", id="the default"),
    pytest.param("/srv/www", "/srv/www", id="a web root of its own"),
    pytest.param("/var/www/html", "/var/www/html", id="under /var"),
    pytest.param("/srv/www/", "/srv/www", id="one trailing slash is dropped"),
    pytest.param("/usrdata", "/usrdata", id="a name that starts like a system directory"),
    pytest.param("/opt/app-1.2_x", "/opt/app-1.2_x", id="portable characters"),
    pytest.param("/home/..data", "/home/..data", id="dots inside a name"),
]

REFUSED = [
    pytest.param("", "absolute", id="empty"),
    pytest.param("workspace", "absolute", id="relative"),
    pytest.param("/", "must not be /", id="the root"),
    pytest.param("//", "must not be /", id="the root twice"),
    pytest.param("/srv//www", "no empty segments", id="an empty segment"),
    pytest.param("/srv/www//", "no empty segments", id="two trailing slashes"),
    pytest.param("/srv/../etc", "normalised", id="dot-dot"),
    pytest.param("/srv/./www", "normalised", id="dot"),
    pytest.param("/..", "normalised", id="dot-dot at the top"),
    pytest.param("/with space", "letters, digits", id="a space"),
    pytest.param("/a:b", "letters, digits", id="a colon (Docker's volume syntax)"),
    pytest.param("/caf\u00e9", "letters, digits", id="non-ASCII"),
    pytest.param("/a\x00b", "letters, digits", id="NUL"),
    pytest.param("/\ud800", "letters, digits", id="a lone surrogate"),
    pytest.param("/" + "a" * MAX_FILES_PATH_LENGTH, "at most", id="too long"),
    pytest.param("/etc", "/etc", id="/etc itself"),
    pytest.param("/etc/nginx", "/etc", id="inside /etc"),
    pytest.param("/proc/self", "/proc", id="inside /proc"),
    pytest.param("/sys", "/sys", id="/sys"),
    pytest.param("/dev/shm", "/dev", id="inside /dev"),
    pytest.param("/usr/share/nginx/html", "/usr", id="nginx's stock web root is under /usr"),
    pytest.param("/usr/lib/x86_64-linux-gnu", "/usr", id="where GPU libraries are injected"),
    pytest.param("/lib64", "/lib64", id="/lib64"),
    pytest.param("/bin/", "/bin", id="/bin with a trailing slash"),
    pytest.param("/root/.ssh", "/root", id="root's home"),
    pytest.param("/boot", "/boot", id="/boot"),
]


@pytest.mark.parametrize(("text", "stored"), ACCEPTED)
def test_accepted_paths(text: str, stored: str) -> None:
    assert files_path_problem(text) is None
    assert check_files_path(text) == stored


@pytest.mark.parametrize(("text", "says"), REFUSED)
def test_refused_paths_name_the_field_and_say_why(text: str, says: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_files_path(text, field="files_path")
    assert [e.field for e in refused.value.errors] == ["files_path"]
    assert says in refused.value.errors[0].message


def test_the_default_is_accepted() -> None:
    assert check_files_path(DEFAULT_FILES_PATH) == DEFAULT_FILES_PATH


_SEGMENT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-/", min_size=0, max_size=12)


@given(st.lists(st.one_of(_SEGMENT, st.sampled_from(sorted(SYSTEM_DIRECTORIES))), max_size=5))
def test_an_accepted_path_is_normalised_and_outside_every_system_directory(
    parts: list[str],
) -> None:
    text = "/" + "/".join(p.strip("/") for p in parts)
    if files_path_problem(text) is not None:
        return  # refusals are covered by the table; this checks what gets through
    stored = check_files_path(text)
    assert posixpath.normpath(stored) == stored
    assert stored != "/"
    assert not any(
        stored == system or stored.startswith(system + "/") for system in SYSTEM_DIRECTORIES
    )
