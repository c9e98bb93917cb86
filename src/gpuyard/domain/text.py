"""Storable text: what every database and JSON encoder gpuyard uses can hold.

Two kinds of character cannot be stored or rendered everywhere:
- NUL (U+0000): PostgreSQL refuses it in text, C libraries cut strings at it;
- lone UTF-16 surrogates (U+D800-U+DFFF): Python strings may hold them (``json.loads``
  makes them from ``"\\ud800"``), but no UTF-8 encoder accepts them, so a row holding one
  fails every response that renders it.

Input is refused when it holds either (``unstorable_paths``); text already stored by an
older version is repaired on the way out (``renderable``) so one row cannot fail a list.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def unstorable_reason(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None when it can."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "must not contain NUL characters"
    return "must be valid Unicode text (it holds a lone UTF-16 surrogate)"


def unstorable_paths(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(dotted path, reason) for each unstorable string in ``value``: strings, and the
    keys and values of dicts and lists, however nested. A bad dict key is reported at the
    dict's path with the key's position, since the key itself cannot be printed."""
    if isinstance(value, str):
        reason = unstorable_reason(value)
        if reason is not None:
            yield path, reason
    elif isinstance(value, dict):
        for position, (key, item) in enumerate(value.items()):
            key_reason = unstorable_reason(key) if isinstance(key, str) else None
            if key_reason is not None:
                yield path, f"key {position + 1} {key_reason}"
                continue
            yield from unstorable_paths(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from unstorable_paths(item, f"{path}.{index}" if path else str(index))


def renderable(value: Any) -> Any:
    """``value`` with every unstorable character replaced by U+FFFD (nested dicts and lists
    included); the same object when there is nothing to replace."""
    if isinstance(value, str):
        return _UNSTORABLE.sub(REPLACEMENT, value) if _UNSTORABLE.search(value) else value
    if isinstance(value, dict):
        return {renderable(k): renderable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [renderable(item) for item in value]
    return value
