"""The routing login's two URLs are written into nginx's config as they are, so settings
take only plain URLs (services/routing/config.py quotes nothing of them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gpuyard.settings import Settings


def _settings(tmp_path: Path, **values: str) -> Settings:
    return Settings(data_dir=tmp_path, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url", ["https://gpuyard.example.com", "http://127.0.0.1:8080/", "https://[::1]:8443"]
)
def test_a_dashboard_url_is_an_origin(tmp_path: Path, url: str) -> None:
    assert _settings(tmp_path, routing_dashboard_url=url).routing_dashboard_url == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://gpuyard.example.com",
        "https://gpuyard.example.com/app",  # an origin, no path
        "https://gpuyard.example.com?x=1",
        "https://gpuyard.example.com;return 200",
        "https://gpuyard.example.com\n}",
        "https://gpu yard.example.com",
        "https://",
    ],
)
def test_anything_else_is_refused_for_the_dashboard(tmp_path: Path, url: str) -> None:
    with pytest.raises(ValidationError, match="GPUYARD_ROUTING_DASHBOARD_URL"):
        _settings(tmp_path, routing_dashboard_url=url)


@pytest.mark.parametrize(
    "url", ["https://apps.example.com/x;y", "https://apps.example.com/#f", "https://a.b/'$x"]
)
def test_a_routing_url_with_nginx_syntax_is_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(ValidationError, match="GPUYARD_ROUTING_PUBLIC_URL"):
        _settings(tmp_path, routing_public_url=url)


def test_a_routing_url_may_have_a_path(tmp_path: Path) -> None:
    url = "https://apps.example.com/routes/"
    assert _settings(tmp_path, routing_public_url=url).routing_public_url == url.rstrip("/")
