"""Which failures are an item's own fault (it is failed) and which are not (retried next
tick): a healthy workload must never be failed because the database or an agent had a
bad moment."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy.exc import (
    DataError,
    OperationalError,
    PendingRollbackError,
    StatementError,
    TimeoutError,
)
from sqlalchemy.orm.exc import StaleDataError

from gpuyard.services.loops.item_failures import blames_item


def _unicode_error() -> UnicodeEncodeError:
    return UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")


@pytest.mark.parametrize(
    ("exc", "blamed"),
    [
        (OverflowError("date value out of range"), True),
        (_unicode_error(), True),
        (DataError("INSERT", {}, Exception("invalid byte sequence")), True),
        (StatementError("bind", "INSERT", {}, ValueError("a JSON column cannot hold NUL")), True),
        (TypeError("unsupported operand"), True),
        (TimeoutError("QueuePool limit reached"), False),
        (StaleDataError("expected to update 1 row"), False),
        (PendingRollbackError("rolled back"), False),
        (OperationalError("SELECT", {}, Exception("server closed the connection")), False),
        (json.JSONDecodeError("Expecting value", "<html>", 0), False),
        (httpx.ConnectError("refused"), False),
        (ConnectionResetError(), False),
        (RuntimeError("something else"), False),
    ],
    ids=[
        "overflow from the item's duration",
        "text no encoder takes",
        "a value the database refuses",
        "a column conversion refused the value",
        "wrong shape",
        "pool timeout",
        "a concurrent update won",
        "a rolled-back session",
        "the connection dropped",
        "an agent answered nonsense",
        "an agent is unreachable",
        "the network",
        "anything unknown is retried",
    ],
)
def test_only_the_items_own_data_is_blamed(exc: BaseException, blamed: bool) -> None:
    assert blames_item(exc) is blamed
