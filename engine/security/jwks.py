"""One issuer's JWK Set: cached keys served without waiting; fetches on their own thread, bounded waits.

A token's signature can only be checked once its key is known, so an unknown ``kid`` means a
fetch, and an unauthenticated caller chooses the ``kid``. When an allow-listed JWKS URL is slow
or blackholed (the EHR's outage), every such request used to fetch again, one after another,
each holding a request thread for the whole timeout, until no thread was left for anyone.

So, per JWKS URL: a key already in the cache is returned at once, without taking any lock. The
network fetch runs on a thread of its own (one per URL at most, started for the fetch and gone
after it), never on the request thread pool that evaluation shares, so however long a slow-drip
server holds it, it holds no request thread. At most one fetch runs at a time; a request that
needs it waits at most ``timeout_s`` and only ``max_waiters`` may wait at once (others are refused
at once). A failed fetch, or one that outlasts a waiter's wait, starts a cooldown during which
lookups that need the network fail at once (the negative cache); a fetch that finishes later
still fills the cache for the requests after it. A request thread is then held at most for one
timeout, and only ``max_waiters`` of them per URL; one URL's fetch never waits for another's.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as WaitTimeout
from urllib.parse import urlsplit

from jwt import PyJWK, PyJWKClient


class KeyUnavailable(Exception):
    """No key for this ``kid`` now (unknown, fetch failed or cooling down, too many waiting)."""


class JwksKeys:
    def __init__(
        self,
        url: str,
        *,
        timeout_s: float,
        cache_s: float,
        refresh_cooldown_s: float,
        failure_cooldown_s: float,
        max_waiters: int,
    ) -> None:
        self.url = url
        self._timeout = timeout_s
        self._refresh_cooldown = refresh_cooldown_s
        self._failure_cooldown = failure_cooldown_s
        self._max_waiters = max_waiters
        # PyJWKClient does the HTTP and the parsing; the refetch policy (its cooldown) is ours below
        self._client = PyJWKClient(url, cache_jwk_set=True, lifespan=max(cache_s, 1.0), timeout=timeout_s)
        self._meta = threading.Lock()
        self._in_flight: Future[None] | None = None
        self._waiters = 0
        self._failed_until = 0.0
        self._fetched_at: float | None = None
        self.fetches = 0
        self.fetch_failures = 0

    @property
    def in_flight(self) -> Future[None] | None:
        """The fetch running now, if any (done when its JWK Set is cached or it failed)."""
        return self._in_flight

    @property
    def waiting(self) -> int:
        return self._waiters

    def _lookup(self, kid: str) -> tuple[PyJWK | None, bool]:
        """The cached key for ``kid``, and whether a fresh JWK Set is cached at all."""
        cache = self._client.jwk_set_cache
        jwk_set = cache.get() if cache is not None else None
        if jwk_set is None:
            return None, False
        for key in jwk_set.keys:
            if key.key_id == kid and key.public_key_use in ("sig", None):
                return key, True
        return None, True

    def signing_key(self, kid: str) -> PyJWK:
        hit, fresh = self._lookup(kid)
        if hit is not None:
            return hit
        with self._meta:
            now = time.monotonic()
            if now < self._failed_until:
                raise KeyUnavailable("the last JWKS fetch failed or timed out; cooling down")
            fetch = self._in_flight
            if fetch is None:
                # an unknown kid refetches a fresh set only now and then: the caller chooses the kid
                recent = self._fetched_at is not None and now - self._fetched_at < self._refresh_cooldown
                if fresh and recent:
                    raise KeyUnavailable("unknown kid; the JWKS was fetched moments ago")
            if self._waiters >= self._max_waiters:
                raise KeyUnavailable("too many requests already waiting for this JWKS")
            if fetch is None:
                fetch = self._start()
            self._waiters += 1
        try:
            fetch.result(timeout=self._timeout)
        except WaitTimeout as exc:
            with self._meta:
                self._failed_until = max(self._failed_until, time.monotonic() + self._failure_cooldown)
            raise KeyUnavailable("the JWKS fetch did not finish in time") from exc
        except KeyUnavailable:
            raise
        finally:
            with self._meta:
                self._waiters -= 1
        hit, _ = self._lookup(kid)
        if hit is None:
            raise KeyUnavailable("no such kid in the JWKS")
        return hit

    def _start(self) -> Future[None]:
        """Start the fetch on its own daemon thread (under ``_meta``)."""
        fetch: Future[None] = Future()
        fetch.set_running_or_notify_cancel()
        self._in_flight = fetch
        self.fetches += 1
        name = f"jwks-fetch {urlsplit(self.url).netloc}"
        threading.Thread(target=self._fetch, args=(fetch,), name=name, daemon=True).start()
        return fetch

    def _fetch(self, fetch: Future[None]) -> None:
        try:
            self._client.get_jwk_set(refresh=True)  # caches the set it fetched
        except Exception as exc:  # unreachable, reset, not JSON, no usable key: all mean "no keys now"
            with self._meta:
                self._failed_until = time.monotonic() + self._failure_cooldown
                self.fetch_failures += 1
                self._in_flight = None
            fetch.set_exception(KeyUnavailable(f"JWKS fetch failed ({type(exc).__name__})"))
            return
        with self._meta:
            self._fetched_at = time.monotonic()
            self._in_flight = None
        fetch.set_result(None)
