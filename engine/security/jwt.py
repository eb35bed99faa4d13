"""Authenticate the EHR (CDS Client) by the signed JWT it sends on every CDS Hooks call.

CDS Hooks 2.0.1, "Trusting CDS Clients": ``Authorization: Bearer <JWT>`` on discovery, service and
feedback calls, signed with the client's private key; its public key is in a JWK Set at the
``jku`` URL (or agreed out of band). We check, in this order and before any key is fetched: an
allow-listed algorithm (asymmetric only: never ``none`` or HMAC), a ``kid``, an allow-listed
``iss`` and, for that issuer, an allow-listed ``jku``. Then the signature against the issuer's
JWKS (cached; refetched once when an unknown ``kid`` appears, so key rotation works), ``aud``
equal to the endpoint URL built from our configured public base URL, ``exp``/``iat`` with a small
clock skew, and a ``jti`` not seen before (replay). Any failure is a bare 401; the reason goes to
the log, never the token.

JWKS lookups go through ``engine.security.jwks`` (cached keys at once; fetches single-flight on a
thread of their own, negatively cached on failure, with bounded waiters and a bounded wait), so a
slow JWKS URL cannot starve the request threads. Accepted ``jti`` values go to a
``engine.security.replay`` store: this process's memory, or the audit database shared by every
worker and replica. A store that cannot answer refuses the token (``ReplayUnavailable``, a 503),
and only a token whose signature, audience and lifetime all passed ever reaches it, so an
unauthenticated caller cannot make the service write.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import jwt

from engine.security.jwks import JwksKeys, KeyUnavailable
from engine.security.replay import MemoryReplay, ReplayStore

log = logging.getLogger("cdsrules.auth")

_FORBIDDEN_ALGS = ("none", "hs")
MAX_JTI_CHARS = 256  # a UUID is 36; the shared replay store keys on it


class AuthFailed(Exception):
    """Why a token was refused (logged, never sent to the caller)."""


@dataclass(frozen=True)
class Client:
    """The authenticated caller: the JWT's issuer and subject."""

    issuer: str
    subject: str | None = None


class JwtVerifier:
    def __init__(
        self,
        issuers: dict[str, list[str]],
        algorithms: list[str],
        leeway_s: float,
        max_lifetime_s: float,
        jwks_timeout_s: float,
        jwks_cache_s: float,
        refresh_cooldown_s: float,
        failure_cooldown_s: float = 30.0,
        max_waiters: int = 4,
        replay: ReplayStore | None = None,
    ) -> None:
        self.issuers = {iss: list(urls) for iss, urls in issuers.items()}
        self.algorithms = [a for a in algorithms if not a.lower().startswith(_FORBIDDEN_ALGS)]
        self.leeway = leeway_s
        self.max_lifetime = max_lifetime_s
        self._timeout = jwks_timeout_s
        self._cache_s = jwks_cache_s
        self._cooldown = refresh_cooldown_s
        self._failure_cooldown = failure_cooldown_s
        self._max_waiters = max_waiters
        self._clients: dict[str, JwksKeys] = {}
        self.replay: ReplayStore = replay if replay is not None else MemoryReplay(leeway_s)
        self._lock = threading.Lock()

    def _client(self, jwks_url: str) -> JwksKeys:
        with self._lock:
            client = self._clients.get(jwks_url)
            if client is None:
                client = JwksKeys(
                    jwks_url,
                    timeout_s=self._timeout,
                    cache_s=self._cache_s,
                    refresh_cooldown_s=self._cooldown,
                    failure_cooldown_s=self._failure_cooldown,
                    max_waiters=self._max_waiters,
                )
                self._clients[jwks_url] = client
            return client

    def verify(self, authorization: str | None, audiences: list[str]) -> dict[str, Any]:
        """The verified claims, or ``AuthFailed``. Blocking (may fetch a JWKS): call off the event loop."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthFailed("no bearer token")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise AuthFailed(f"malformed token ({type(exc).__name__})") from exc
        alg = str(header.get("alg", ""))
        if alg not in self.algorithms:
            raise AuthFailed(f"algorithm {alg!r} not allowed")
        if str(header.get("typ", "JWT")).upper() != "JWT":
            raise AuthFailed(f"typ {header.get('typ')!r} is not JWT")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthFailed("no kid")
        iss = unverified.get("iss")
        if not isinstance(iss, str) or iss not in self.issuers:
            raise AuthFailed(f"issuer {iss!r} not allowed")
        allowed = self.issuers[iss]
        jku = header.get("jku")
        if jku is not None and jku not in allowed:
            raise AuthFailed(f"jku {jku!r} not allowed for issuer {iss!r}")
        jwks_url = jku if isinstance(jku, str) else (allowed[0] if allowed else None)
        if jwks_url is None:
            raise AuthFailed(f"no JWKS configured for issuer {iss!r}")
        try:
            key = self._client(jwks_url).signing_key(kid)
        except KeyUnavailable as exc:
            raise AuthFailed(f"signing key {kid!r} unavailable ({exc})") from exc
        jwk: dict[str, Any] = dict(getattr(key, "_jwk_data", {}))  # PyJWK keeps the JWK only privately
        if jwk.get("kty") not in ("EC", "RSA", "OKP"):
            raise AuthFailed(f"key {kid!r} is not an asymmetric key")
        if jwk.get("alg") and jwk["alg"] != alg:  # the JWK pins its algorithm: honour it
            raise AuthFailed(f"token alg {alg!r} does not match the key's {jwk['alg']!r}")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                audience=audiences,
                issuer=iss,
                leeway=self.leeway,
                options={"require": ["iss", "aud", "exp", "iat", "jti"]},
            )
        except jwt.PyJWTError as exc:
            raise AuthFailed(f"{type(exc).__name__}: {exc}") from exc
        self._check_lifetime_and_replay(iss, claims)
        return claims

    def authenticate(self, authorization: str | None, audiences: list[str]) -> Client:
        """The verified caller, or ``AuthFailed``. Blocking, like ``verify``."""
        claims = self.verify(authorization, audiences)
        sub = claims.get("sub")
        return Client(str(claims["iss"]), sub if isinstance(sub, str) else None)

    def _check_lifetime_and_replay(self, iss: str, claims: dict[str, Any]) -> None:
        now = time.time()
        exp = float(claims["exp"])
        if exp - now > self.max_lifetime + self.leeway:
            raise AuthFailed("token lifetime longer than allowed")
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti:
            raise AuthFailed("jti is not a non-empty string")
        if len(jti) > MAX_JTI_CHARS:
            raise AuthFailed(f"jti longer than {MAX_JTI_CHARS} characters")
        if not self.replay.first_use(iss, jti, exp, now):  # ReplayUnavailable propagates: refused, 503
            raise AuthFailed("jti already used (replay)")
