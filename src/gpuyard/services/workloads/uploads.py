"""An upload body that lives in a (spooled) temporary file rather than in memory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import IO

_CHUNK = 256 * 1024


class SpooledUpload:
    """The bytes of a file object, re-readable from its start: each iteration (each try
    of a request, a retry included) sends them all again, a chunk at a time."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file

    @property
    def size(self) -> int:
        self._file.seek(0, os.SEEK_END)
        return self._file.tell()

    def __iter__(self) -> Iterator[bytes]:
        self._file.seek(0)
        while chunk := self._file.read(_CHUNK):
            yield chunk
