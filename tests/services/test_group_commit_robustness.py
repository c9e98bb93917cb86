"""Group commit under failure: if anything raises after a batch was taken off the queue
(here the after-commit hook, during the one-at-a-time fallback), every submitter still gets
an answer, nobody spins, later submissions go through, and an item that committed is not
reported as failed."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.orm import Session

from gpuyard.domain.errors import GpuyardError
from gpuyard.services.group_commit import GroupCommit
from gpuyard.store.database import Database


def test_an_exception_after_a_batch_was_taken_answers_everyone(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'gc.db'}")
    written: list[str] = []
    empty_batches = 0
    stop = threading.Event()
    gc: GroupCommit[str, str]

    def write_batch(_session: Session, items: Sequence[str]) -> list[str | GpuyardError]:
        nonlocal empty_batches
        if not items:
            empty_batches += 1
            if stop.is_set():
                raise SystemExit  # ends the spinning thread after the assertion
        if list(items) == ["z"]:  # hold the leader lock until a and b are both queued
            deadline = time.monotonic() + 10
            while gc.queued < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        if len(items) > 1:
            raise RuntimeError("an unexpected error: the batch is retried one at a time")
        written.extend(items)
        return list(items)

    calls = 0

    def after_commit() -> None:
        nonlocal calls
        calls += 1
        if calls == 2:  # e.g. a failing wake-up hook, once
            raise OSError("hook failed")

    gc = GroupCommit(db, write_batch, after_commit)
    outcomes: dict[str, object] = {}

    def submit(item: str) -> None:
        try:
            outcomes[item] = gc.submit(item)
        except Exception as exc:
            outcomes[item] = exc

    threads = {"z": threading.Thread(target=submit, args=("z",), daemon=True)}
    threads["z"].start()
    while gc.queued != 0:  # z taken by its leader
        time.sleep(0.001)
    for item in ("a", "b"):
        threads[item] = threading.Thread(target=submit, args=(item,), daemon=True)
        threads[item].start()
    for thread in threads.values():
        thread.join(5)
    hung = [item for item, thread in threads.items() if thread.is_alive()]
    try:
        assert not hung, (
            f"submitters {hung} never returned ({empty_batches} empty write transactions "
            f"so far; outcomes {outcomes})"
        )
    finally:
        stop.set()
        for thread in threads.values():
            thread.join(5)
        db.dispose()
