"""What every service needs: settings, database, clock, the scheduler's wake-up, runtimes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from gpuyard.settings import Settings
from gpuyard.store.database import Database

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


class Wakeup:
    """Hints a background loop to run now instead of at its next interval."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def notify(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> bool:
        woke = self._event.wait(timeout)
        self._event.clear()
        return woke


@dataclass
class ServiceContext:
    settings: Settings
    db: Database
    secret_key: str
    clock: Clock = system_clock
    scheduler_wakeup: Wakeup = field(default_factory=Wakeup)

    def now(self) -> datetime:
        return self.clock()
