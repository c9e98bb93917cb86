"""Redis: the one connection of a process (timeouts, health), and pub/sub as the bus."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

from gpuyard.services.bus.notices import ConnectedBus, Notice, encode_notice

#: The channel every process publishes to and listens on.
CHANNEL = "gpuyard:bus"
#: Connecting and each command give up after these (a Redis that does not answer must
#: not hold a request: the callers fall back to what works without it).
CONNECT_TIMEOUT_S = 1.0
COMMAND_TIMEOUT_S = 1.0
#: Publishing gives up sooner, and never retries a timeout: a revocation's notice is sent
#: on its request's thread (``publish_now``), and waiting longer than the others' caller
#: cache lives (``GPUYARD_CALLER_CACHE_S``, 2 s) would buy nothing but a slow response.
PUBLISH_TIMEOUT_S = 0.5
#: How long the listener waits for a message before checking whether it should stop.
LISTEN_POLL_S = 0.5
#: After this long without a message the listener PINGs on its subscription, and leaves it
#: if the answer takes longer than ``PING_TIMEOUT_S``: a Redis that hangs, or a network
#: that drops packets, keeps the socket open and silent, and a quiet subscription cannot
#: tell that from no news (it would stay "connected" while deaf, and nobody would poll).
PING_IDLE_S = 2.0
PING_TIMEOUT_S = 2.0
_PING = "gpuyard-bus-alive"


class RedisConnection:
    """The process's Redis clients for ``url``: one for commands (the login throttle's: a
    dropped connection retried once after a short backoff, a timeout never), one for
    publishing notices (``PUBLISH_TIMEOUT_S``, the same retries: at most about three times
    that on a request's thread, once per outage), one for pub/sub (no retry: a dropped
    subscription must be seen, since notices were lost meanwhile). Connections are made
    on first use."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client: redis.Redis = redis.Redis.from_url(
            url,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=COMMAND_TIMEOUT_S,
            # A dropped connection is retried; a timeout is not: it would double the wait.
            retry=Retry(
                ExponentialBackoff(cap=0.2, base=0.02), 1, supported_errors=(redis.ConnectionError,)
            ),
            health_check_interval=30,
        )
        self.publish_client: redis.Redis = redis.Redis.from_url(
            url,
            socket_connect_timeout=PUBLISH_TIMEOUT_S,
            socket_timeout=PUBLISH_TIMEOUT_S,
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        )
        self.listen_client: redis.Redis = redis.Redis.from_url(
            url,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=COMMAND_TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=10,
        )

    def close(self) -> None:
        self.client.close()
        self.publish_client.close()
        self.listen_client.close()


class RedisBus(ConnectedBus):
    """The bus over Redis pub/sub (``CHANNEL``)."""

    transport = "redis"

    def __init__(self, sender: str, connection: RedisConnection) -> None:
        super().__init__(sender)
        self.connection = connection

    def _send(self, notices: Iterable[Notice]) -> None:
        pipe = self.connection.publish_client.pipeline(transaction=False)
        for notice in notices:
            pipe.publish(CHANNEL, encode_notice(notice, self.sender))
        pipe.execute()

    def _listen(
        self,
        ready: Callable[[], None],
        received: Callable[[str | bytes], None],
        stop: threading.Event,
    ) -> None:
        pubsub = self.connection.listen_client.pubsub()
        try:
            pubsub.subscribe(CHANNEL)
            # Wait for the subscription's confirmation: from then on nothing is missed.
            while not stop.is_set():
                confirm = pubsub.get_message(timeout=LISTEN_POLL_S)
                if confirm is not None and confirm.get("type") == "subscribe":
                    break
                if confirm is not None and confirm.get("type") == "message":
                    received(confirm["data"])
            else:
                return
            ready()
            heard_at, pinged_at = time.monotonic(), None
            while not stop.is_set():
                message = pubsub.get_message(timeout=LISTEN_POLL_S)
                now = time.monotonic()
                if message is not None:
                    heard_at, pinged_at = now, None  # anything read proves the link
                    if message.get("type") == "message":
                        received(message["data"])
                elif pinged_at is not None:
                    if now - pinged_at > PING_TIMEOUT_S:
                        raise redis.TimeoutError("the subscription's PING went unanswered")
                elif now - heard_at >= PING_IDLE_S:
                    pubsub.ping(_PING)
                    pinged_at = now
        finally:
            pubsub.close()

    def _close(self) -> None:
        self.connection.close()
