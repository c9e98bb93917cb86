"""How a requested ``gpu_model`` matches a device's model string.

Rule: split both strings into words (runs of letters and digits, case-insensitive); a device
matches when every word of the request is a word of the device model. So ``H100``,
``h100 80gb`` and ``NVIDIA H100 80GB HBM3`` all match ``NVIDIA H100 80GB HBM3``, while ``A10``
does not match ``NVIDIA A100-SXM4-80GB`` (a plain substring test would get that wrong).

A request may name several acceptable models separated by ``|`` (the Alibaba openb trace's
form, ``V100M16|V100M32``): a device matches when it matches any one of them. An empty or
missing request (or one whose alternatives are all blank) matches every device.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[0-9a-z]+")

#: Separator of alternative models in one request.
ALTERNATIVE_SEPARATOR = "|"

#: A normalised model request: the alternatives, each a set of required words (sorted so
#: equal requests give equal keys), or None for "any model".
ModelKey = tuple[frozenset[str], ...] | None


def model_key(requested: str | None) -> ModelKey:
    """Normalise a requested model once per cycle (None or blank = any model)."""
    if requested is None:
        return None
    alternatives = {
        frozenset(_WORD.findall(part.casefold())) for part in requested.split(ALTERNATIVE_SEPARATOR)
    }
    alternatives.discard(frozenset())
    if not alternatives:
        return None
    return tuple(sorted(alternatives, key=sorted))


def model_alternatives(requested: str | None) -> list[str]:
    """The alternatives of a request as written, stripped, blanks dropped."""
    if not requested:
        return []
    return [p.strip() for p in requested.split(ALTERNATIVE_SEPARATOR) if p.strip()]


#: Most alternatives one request may name, and the longest one (characters).
MAX_MODEL_ALTERNATIVES = 8
MAX_MODEL_ALTERNATIVE_LENGTH = 64


def model_problem(requested: str) -> str | None:
    """Why ``requested`` is not a storable model request (None when it is): each of at most
    :data:`MAX_MODEL_ALTERNATIVES` ``|``-separated alternatives names a model (at least one
    letter or digit, at most :data:`MAX_MODEL_ALTERNATIVE_LENGTH` characters), and the text
    holds no control characters."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in requested):
        return "must not contain control characters"
    parts = requested.split(ALTERNATIVE_SEPARATOR)
    if len(parts) > MAX_MODEL_ALTERNATIVES:
        return f"at most {MAX_MODEL_ALTERNATIVES} models separated by '|'"
    for part in parts:
        if not _WORD.search(part.casefold()):
            return "each model separated by '|' needs a letter or digit"
        if len(part.strip()) > MAX_MODEL_ALTERNATIVE_LENGTH:
            return f"each model is at most {MAX_MODEL_ALTERNATIVE_LENGTH} characters"
    return None


def device_matches(key: ModelKey, device_model: str) -> bool:
    """True when a device of ``device_model`` satisfies the normalised request ``key``."""
    if key is None:
        return True
    words = frozenset(_WORD.findall(device_model.casefold()))
    return any(alternative <= words for alternative in key)


def describe_model(requested: str | None) -> str:
    """The request as users wrote it, for reasons ("" when any model will do)."""
    return requested.strip() if requested else ""
