"""Images on a real docker server in the browser: a build from an uploaded context tar
with its log streamed into the page, the built image listed as present, a push to a real
registry (docker-registry on 127.0.0.1 with a password) added on the same page, the image
removed from the server and pulled back from the registry, each operation's progress
streamed (web/docker_cluster.py: a real agent over the session's dockerd)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from integration.test_images_docker import build_context, registry_tags
from playwright.sync_api import Page, expect
from support.registry import RegistryServer

from web.docker_cluster import DockerCluster
from web.pages import ImagesPage

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow]

STREAM_TIMEOUT_MS = 90_000


def local_tags(cluster: DockerCluster) -> set[str]:
    """Every tag on the cluster's dockerd, read directly (not through gpuyard)."""
    return {tag for image in cluster.docker.images.list() for tag in image.tags}


def test_build_and_push_stream_their_progress_into_the_page(
    admin_page: Page,
    docker_cluster: DockerCluster,
    registry_server: RegistryServer,
    tmp_path: Path,
) -> None:
    marker = f"m{uuid.uuid4().hex[:10]}"
    tag = f"web16-test/app:{marker}"
    context = tmp_path / "context.tar"
    context.write_bytes(build_context(docker_cluster.image, marker))

    images = ImagesPage(admin_page)
    images.open()
    images.build(tag, context)
    expect(images.progress).to_have_attribute("data-outcome", "done", timeout=STREAM_TIMEOUT_MS)
    # The build's own output (the RUN step echoing the marker) came through the stream.
    expect(images.progress_lines).to_contain_text(marker)
    expect(images.present_image(tag)).to_be_visible()
    images.check_accessibility()

    registry = f"local-{marker}"
    images.add_registry(
        registry,
        f"http://{registry_server.address}",
        registry_server.username,
        registry_server.password,
    )
    expect(images.registry_row(registry)).to_contain_text(registry_server.address)
    images.push(tag, registry)
    expect(images.progress).to_have_attribute("data-outcome", "done", timeout=STREAM_TIMEOUT_MS)
    assert marker in registry_tags(registry_server, "web16-test/app")
    images.check_accessibility()

    pulled = f"{registry_server.address}/{tag}"
    # Removed from the server on the page (and any copy the push left under the
    # registry's name, removed directly), then pulled back.
    images.remove(tag)
    expect(images.present_image(tag)).to_have_count(0)
    assert tag not in local_tags(docker_cluster)
    if pulled in local_tags(docker_cluster):
        docker_cluster.docker.images.remove(pulled)
    images.pull(pulled, registry)
    expect(images.progress).to_have_attribute("data-outcome", "done", timeout=STREAM_TIMEOUT_MS)
    expect(images.present_image(pulled)).to_be_visible()
    assert pulled in local_tags(docker_cluster)

    # A tag the registry does not have: refused before anything starts, said on the page.
    missing = f"{registry_server.address}/web16-test/app:missing-{marker}"
    images.pull(missing, registry)
    expect(images.progress).to_have_attribute("data-outcome", "refused", timeout=STREAM_TIMEOUT_MS)
    expect(images.progress.get_by_role("alert")).to_contain_text("Pull: refused")
    assert missing not in local_tags(docker_cluster)
    images.check_accessibility()
