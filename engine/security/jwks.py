"""One issuer's JWK Set: cached keys served without waiting; fetches bounded so a slow URL stalls no one.

A token's signature can only be checked once its key is known, so an unknown ``kid`` means a
fetch, and an unauthenticated caller chooses the ``kid``. When an allow-listed JWKS URL is slow
or blackholed (the EHR's outage), every such request used to fetch again, one after another,
each holding a request thread for the whole timeout, until no thread was left for anyone.

So, per JWKS URL: a key already in the cache is returned at once, without taking any lock; at
most one fetch runs at a time; a failed fetch starts a cooldown during which lookups that need
the network fail at once (the negative cache); and only ``max_waiters`` requests may wait for a
fetch in progress, others are refused at once. A request thread is then held at most for one
fetch timeout, and only a bounded number of them per URL.
"""

from __future__ import annotations

import threading
import time

from jwt import PyJWK, PyJWKClient, PyJWKClientConnectionError, PyJWKClientError


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
        self._failure_cooldown = failure_cooldown_s
        self._max_waiters = max_waiters
        self._client = PyJWKClient(
            url, cache_jwk_set=True, lifespan=max(cache_s, 1.0), timeout=timeout_s, cooldown_duration=refresh_cooldown_s
        )
        self._fetching = threading.Lock()
        self._meta = threading.Lock()
        self._waiters = 0
        self._failed_until = 0.0
        self.fetch_failures = 0

    def _cached(self, kid: str) -> PyJWK | None:
        cache = self._client.jwk_set_cache
        jwk_set = cache.get() if cache is not None else None
        if jwk_set is None:
            return None
        for key in jwk_set.keys:
            if key.key_id == kid and key.public_key_use in ("sig", None):
                return key
        return None

    def signing_key(self, kid: str) -> PyJWK:
        hit = self._cached(kid)
        if hit is not None:
            return hit
        with self._meta:
            if time.monotonic() < self._failed_until:
                raise KeyUnavailable("the last JWKS fetch failed; cooling down")
            if self._waiters >= self._max_waiters:
                raise KeyUnavailable("too many requests already waiting for this JWKS")
            self._waiters += 1
        try:
            if not self._fetching.acquire(timeout=self._timeout):
                raise KeyUnavailable("a JWKS fetch in progress did not finish in time")
            try:
                hit = self._cached(kid)  # the fetch we waited for may have brought it
                if hit is not None:
                    return hit
                if time.monotonic() < self._failed_until:
                    raise KeyUnavailable("the last JWKS fetch failed; cooling down")
                try:
                    return self._client.get_signing_key(kid)
                except PyJWKClientConnectionError as exc:
                    with self._meta:
                        self._failed_until = time.monotonic() + self._failure_cooldown
                        self.fetch_failures += 1
                    raise KeyUnavailable(f"JWKS fetch failed ({type(exc).__name__})") from exc
                except PyJWKClientError as exc:
                    raise KeyUnavailable(f"{type(exc).__name__}") from exc
            finally:
                self._fetching.release()
        finally:
            with self._meta:
                self._waiters -= 1
