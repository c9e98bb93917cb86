"""The catalog's defaults reach a launch exactly: whatever resources an image stores, a
launch that leaves them out asks for exactly those (a pool of the image then matches)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gpuyard.domain.image_records import CatalogImage
from gpuyard.domain.resources import Resources
from gpuyard.services.workloads.from_catalog import catalog_defaults

NOW = datetime(2026, 12, 4, tzinfo=UTC)
GPU_MILLI = st.one_of(
    st.integers(0, 64).map(lambda whole: whole * 1000),
    st.integers(1, 9).map(lambda share: share * 100),
)


class _Launch:
    """A launch that gives only ``given`` (the rest: the API's defaults)."""

    image_id = "img"
    image = None
    ports: list[int] = []
    cpu = 1.0
    ram_gb = 1.0
    storage_gb = 0.0
    gpu = 0.0
    files_path = None

    def __init__(self, **given: Any) -> None:
        self.model_fields_set = set(given)
        for name, value in given.items():
            setattr(self, name, value)


def _image(request: Resources) -> CatalogImage:
    return CatalogImage(
        id="img", name="web", reference="web:1", type="web", default_port=8080,
        cpu_milli=request.cpu_milli, ram_mib=request.ram_mib,
        storage_mib=request.storage_mib, gpu_milli=request.gpu_milli, description="",
        files_path="/srv/www", created_by=None, created_at=NOW, updated_at=NOW,
    )  # fmt: skip


@given(
    cpu_milli=st.integers(0, 4096 * 10).map(lambda tenths: tenths * 100),
    ram_mib=st.integers(0, 65536 * 1024),
    storage_mib=st.integers(0, 1024 * 1024),
    gpu_milli=GPU_MILLI,
)
def test_left_out_resources_are_the_images_exactly(
    cpu_milli: int, ram_mib: int, storage_mib: int, gpu_milli: int
) -> None:
    stored = Resources(cpu_milli, ram_mib, storage_mib, gpu_milli)
    values: dict[str, Any] = catalog_defaults(_image(stored), _Launch())
    asked = Resources.from_api(values["cpu"], values["ram_gb"], values["storage_gb"], values["gpu"])
    assert asked == stored


def test_given_fields_win_and_nulls_count_as_left_out() -> None:
    launch = _Launch(cpu=2.0, ports=[], files_path=None, image="other:1")
    values = catalog_defaults(_image(Resources(500, 256)), launch)
    assert set(values) == {"ram_gb", "storage_gb", "gpu", "files_path"}
    assert values["files_path"] == "/srv/www"
