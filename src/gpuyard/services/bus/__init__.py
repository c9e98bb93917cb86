"""The cross-process bus: small notices that one process committed something.

Several processes share one database (API replicas, workers). Each one's wake-ups (#16),
caller cache (#20) and live feed (#23) act on what *its own* commits did at once; what
other processes commit they hear of through this package:

- ``notices``: :class:`~gpuyard.services.bus.notices.Notice` and the bus itself
  (:class:`~gpuyard.services.bus.notices.ChangeBus`): a publisher thread that coalesces
  notices and never blocks the caller, a listener thread that reconnects with backoff,
  and a health state others read (``connected`` / ``down since ...``);
- ``redis_bus``: the Redis connection (one place, timeouts, health) and Redis pub/sub;
- ``postgres_bus``: PostgreSQL LISTEN/NOTIFY where there is no Redis;
- ``shared_throttle``: the login throttle's windows in Redis, shared by every API process.

Notices are hints, never the truth: the database is read for what changed, and a lost
notice (the bus down, a reconnect) only delays an action to the next poll or interval.
While the bus is down every process falls back to polling (the change watch, the live
feed's 0.2 s reads), and a reconnect wakes every loop once, since notices may have been
lost meanwhile. Without Redis or PostgreSQL (the embedded SQLite) the bus is local only.
"""
