"""GPU slot choice and GPU model matching."""

from __future__ import annotations

import pytest

from gpuyard.scheduler.gpu_match import device_matches, model_key
from gpuyard.scheduler.gpu_slots import choose_batch, choose_slots, is_valid_gpu_request

ALL8 = tuple(range(8))

# (name, device allocations, gpu milli, expected allocation or None)
SLOT_CASES = [
    ("no gpu", [0, 0], 0, ()),
    ("one gpu on empty server takes index 0", [0] * 4, 1000, ((0, 1000),)),
    ("whole gpu skips partly used device", [300, 0, 0, 0], 1000, ((1, 1000),)),
    ("whole gpu never takes a partly used device", [300, 500], 1000, None),
    (
        "two gpus take the shortest run that fits, leaving the long run whole",
        [0, 0, 1000, 0, 0, 0, 0, 1000],
        2000,
        ((0, 1000), (1, 1000)),
    ),
    (
        "one gpu takes an isolated free device, keeping runs whole",
        [0, 0, 0, 1000, 0, 1000, 0, 0],
        1000,
        ((4, 1000),),
    ),
    (
        "no run long enough: lowest free indices",
        [0, 1000, 0, 1000, 0, 1000, 0, 1000],
        3000,
        ((0, 1000), (2, 1000), (4, 1000)),
    ),
    ("not enough free devices", [0, 1000, 0, 1000], 3000, None),
    ("share packs onto the fullest device that fits", [200, 600, 0, 0], 300, ((1, 300),)),
    ("share skips a device without room", [800, 500, 0], 300, ((1, 300),)),
    ("share exactly fills a device (edge)", [700, 0], 300, ((0, 300),)),
    ("share falls back to a free device", [900, 800, 0, 0], 300, ((2, 300),)),
    ("share breaks an isolated free device", [0, 0, 1000, 0], 500, ((3, 500),)),
    ("share with no room anywhere", [900, 1000], 200, None),
    ("invalid 1.5 gpus", [0, 0], 1500, None),
]


@pytest.mark.parametrize(
    ("alloc", "milli", "expected"), [c[1:] for c in SLOT_CASES], ids=[c[0] for c in SLOT_CASES]
)
def test_choose_slots(alloc: list[int], milli: int, expected: object) -> None:
    indices = tuple(range(len(alloc)))
    assert choose_slots(indices, alloc, indices, milli) == expected


def test_only_listed_positions_are_used() -> None:
    # Mixed-model server: positions 0 and 1 are another model.
    alloc = [0, 0, 0, 0]
    assert choose_slots((0, 1, 2, 3), alloc, (2, 3), 2000) == ((2, 1000), (3, 1000))
    assert choose_slots((0, 1, 2, 3), alloc, (2, 3), 3000) is None


def test_device_indices_need_not_be_positions() -> None:
    # ServerView.gpus may list indices 4..7 (e.g. a partition of a host).
    assert choose_slots((4, 5, 6, 7), [1000, 0, 0, 1000], ALL8[:4], 2000) == (
        (5, 1000),
        (6, 1000),
    )


def test_batch_whole_gpus_get_distinct_devices() -> None:
    out = choose_batch(ALL8, [0] * 8, ALL8, 2000, 4)
    assert out is not None
    devices = [index for alloc in out for index, _ in alloc]
    assert sorted(devices) == list(ALL8)


def test_batch_shares_fill_one_device_before_the_next() -> None:
    out = choose_batch((0, 1), [0, 0], (0, 1), 300, 4)
    assert out == [((0, 300),), ((0, 300),), ((0, 300),), ((1, 300),)]
    assert choose_batch((0,), [0], (0,), 600, 2) is None


@pytest.mark.parametrize(
    ("milli", "valid"),
    [(0, True), (100, True), (900, True), (1000, True), (8000, True), (1500, False)],
    ids=["none", "0.1", "0.9", "one", "eight", "one and a half"],
)
def test_valid_gpu_requests(milli: int, valid: bool) -> None:
    assert is_valid_gpu_request(milli) is valid


MODEL_CASES = [
    ("short name", "H100", "NVIDIA H100 80GB HBM3", True),
    ("case-insensitive", "h100", "NVIDIA H100 80GB HBM3", True),
    ("full name", "NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3", True),
    ("words in any order", "80gb h100", "NVIDIA H100 80GB HBM3", True),
    ("hyphenated device name", "A100 80GB", "NVIDIA A100-SXM4-80GB", True),
    ("A10 is not A100 (whole words, not substrings)", "A10", "NVIDIA A100-SXM4-80GB", False),
    ("other model", "A100", "NVIDIA H100 80GB HBM3", False),
    ("missing word", "H100 PCIe", "NVIDIA H100 80GB HBM3", False),
    ("blank matches all", "  ", "anything", True),
]


@pytest.mark.parametrize(
    ("requested", "device", "matches"),
    [c[1:] for c in MODEL_CASES],
    ids=[c[0] for c in MODEL_CASES],
)
def test_model_matching(requested: str, device: str, matches: bool) -> None:
    assert device_matches(model_key(requested), device) is matches


def test_no_model_matches_everything() -> None:
    assert model_key(None) is None
    assert device_matches(None, "whatever")
