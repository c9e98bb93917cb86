"""How a requested ``gpu_model`` matches a device's model string.

Rule: split both strings into words (runs of letters and digits, case-insensitive); a device
matches when every word of the request is a word of the device model. So ``H100``,
``h100 80gb`` and ``NVIDIA H100 80GB HBM3`` all match ``NVIDIA H100 80GB HBM3``, while ``A10``
does not match ``NVIDIA A100-SXM4-80GB`` (a plain substring test would get that wrong).
An empty or missing request matches every device.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[0-9a-z]+")

#: A normalised model request: the set of required words, or None for "any model".
ModelKey = frozenset[str] | None


def model_key(requested: str | None) -> ModelKey:
    """Normalise a requested model once per cycle (None or blank = any model)."""
    if requested is None:
        return None
    words = frozenset(_WORD.findall(requested.casefold()))
    return words or None


def device_matches(key: ModelKey, device_model: str) -> bool:
    """True when a device of ``device_model`` satisfies the normalised request ``key``."""
    if key is None:
        return True
    return key <= frozenset(_WORD.findall(device_model.casefold()))


def describe_model(requested: str | None) -> str:
    """The request as users wrote it, for reasons ("" when any model will do)."""
    return requested.strip() if requested else ""
