"""A server outlives no interpreter: killed with SIGKILL, its guard still tears the server down."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .local_server import LocalServer, ServerUnavailable, port_is_open
from .postgres import PostgresServer
from .redis import RedisServer

CHILD = """
import json, os, signal
from {module} import {cls}
server = {cls}().start()
print(json.dumps({{"port": server.port, "dir": str(server.directory)}}), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("server_class", [PostgresServer, RedisServer], ids=["postgres", "redis"])
def test_server_is_torn_down_when_its_interpreter_is_killed(
    server_class: type[LocalServer],
) -> None:
    module, cls = server_class.__module__, server_class.__name__
    try:
        server_class().check_available()
    except ServerUnavailable as missing:
        pytest.skip(str(missing))
    child = subprocess.run(
        [sys.executable, "-c", CHILD.format(module=module, cls=cls)],
        cwd=Path(__file__).parents[1],  # where `support` is importable from
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == -9, child.stderr
    started = json.loads(child.stdout)
    directory = Path(started["dir"])

    deadline = time.monotonic() + 30
    while port_is_open(started["port"]) or directory.exists():
        assert time.monotonic() < deadline, f"{cls} still up after its interpreter died"
        time.sleep(0.1)
