"""Which bus and which login throttle a process gets, from its settings."""

from __future__ import annotations

from gpuyard.auth.login_throttle import LoginThrottle
from gpuyard.services.bus.notices import ChangeBus
from gpuyard.services.bus.postgres_bus import PostgresBus
from gpuyard.services.bus.redis_bus import RedisBus, RedisConnection
from gpuyard.services.bus.shared_throttle import SharedLoginThrottle
from gpuyard.settings import Settings
from gpuyard.store.database import Database


def build_bus(settings: Settings, db: Database, sender: str) -> ChangeBus:
    """Redis pub/sub with ``GPUYARD_REDIS_URL``; else LISTEN/NOTIFY on PostgreSQL; else
    (the embedded SQLite, or ``GPUYARD_CHANGE_BUS=false``) the local bus."""
    if not settings.change_bus:
        return ChangeBus(sender)
    if settings.redis_url:
        return RedisBus(sender, RedisConnection(settings.redis_url))
    if not db.is_sqlite:
        return PostgresBus(sender, db)
    return ChangeBus(sender)


def build_login_throttle(
    settings: Settings, bus: ChangeBus, local: LoginThrottle
) -> LoginThrottle | SharedLoginThrottle:
    """The windows in Redis with ``GPUYARD_REDIS_URL`` (``local`` while it is down);
    else ``local``: this process's own."""
    if not settings.redis_url:
        return local
    if isinstance(bus, RedisBus):
        connection = bus.connection  # one connection per process
    else:
        connection = RedisConnection(settings.redis_url)
    return SharedLoginThrottle(connection.client, local)
