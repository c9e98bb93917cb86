"""A throwaway Redis for S1's scale layout, reusing the test suite's server harness.

``tests/support/redis.py`` starts the machine's redis-server in a temp dir, on 127.0.0.1
only, without persistence, with an exit guard that stops it if the bench dies. Where
redis-server is missing, the scale layout's rows are skipped with the reason instead.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from bench.pg import TESTS


@contextmanager
def redis() -> Iterator[tuple[str | None, str]]:
    """Yield (redis:// URL, "") with a running server, or (None, why not) without one."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    try:
        from support.local_server import ServerUnavailable  # type: ignore[import-not-found]
        from support.redis import RedisServer  # type: ignore[import-not-found]
    except ImportError as exc:  # pytest (a dev dependency) is needed by the harness
        yield None, f"Redis harness not importable: {exc}"
        return
    server = RedisServer()
    try:
        server.start()
    except ServerUnavailable as exc:
        yield None, str(exc)
        return
    try:
        yield str(server.url), ""
    finally:
        server.stop()
