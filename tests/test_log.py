"""Console logging: a logged exception's traceback never carries the values of a frame's locals."""

from __future__ import annotations

import json

import pytest

from gpuyard.log import configure_logging, get_logger

SECRET = "s3cr3t-registry-password-0451"


def _push(credentials: dict[str, str]) -> None:
    password = credentials["password"]
    raise RuntimeError(f"the registry refused user {credentials['username']} ({len(password)})")


def test_a_logged_traceback_shows_no_local_values(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", json=False)
    try:
        _push({"username": "ci", "password": SECRET})
    except RuntimeError:
        get_logger("gpuyard.test").exception("push failed")
    err = capsys.readouterr().err
    assert "push failed" in err
    assert "the registry refused user ci" in err  # the traceback is there...
    assert "_push" in err
    assert SECRET not in err  # ...without the locals that held the password


def test_a_json_log_line_carries_the_traceback_without_local_values(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", json=True)
    try:
        _push({"username": "ci", "password": SECRET})
    except RuntimeError:
        get_logger("gpuyard.test").exception("push failed")
    [line] = [raw for raw in capsys.readouterr().err.splitlines() if "push failed" in raw]
    record = json.loads(line)
    assert record["event"] == "push failed"
    assert "the registry refused user ci" in record["exception"]
    assert "in _push" in record["exception"]
    assert SECRET not in line
