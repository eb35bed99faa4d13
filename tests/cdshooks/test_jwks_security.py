"""A slow JWKS URL costs one fetch, not one per request, and cached keys keep working (D3, D8).

Before, tokens naming a random ``kid`` and a blackholed allow-listed JWKS URL each fetched again,
one after another, each holding a request thread for the whole timeout. And the replay cache
scanned every live ``jti`` on every verify.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest

from engine.security.jwt import AuthFailed, JwtVerifier
from tests.cdshooks.test_auth import EC_KEY, ISS, Ehr

SLOW_ISS = "https://ehr2.example.org"
AUD = "http://127.0.0.1:8000/v1/evaluate"


class Blackhole:
    """Accepts connections and never answers; counts them."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.accepted = 0
        self.held: list[socket.socket] = []
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/slow-jwks"
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for c in self.held:
            c.close()


@pytest.fixture
def ehr() -> Iterator[Ehr]:
    e = Ehr()
    yield e
    e.close()


@pytest.fixture
def hole() -> Iterator[Blackhole]:
    h = Blackhole()
    yield h
    h.close()


def _verifier(ehr: Ehr, hole: Blackhole) -> JwtVerifier:
    return JwtVerifier(
        issuers={ISS: [ehr.jku], SLOW_ISS: [hole.url]},
        algorithms=["ES384", "RS384"],
        leeway_s=30,
        max_lifetime_s=3600,
        jwks_timeout_s=0.5,
        jwks_cache_s=300,
        refresh_cooldown_s=5,
        failure_cooldown_s=30,
        max_waiters=2,
    )


def _attack_token() -> str:
    headers = {"kid": uuid.uuid4().hex}
    return jwt.encode({"iss": SLOW_ISS}, EC_KEY, algorithm="ES384", headers=headers)


def test_a_blackholed_jwks_is_fetched_once_and_other_issuers_keep_working(ehr: Ehr, hole: Blackhole) -> None:
    verifier = _verifier(ehr, hole)

    def good() -> str:
        return ehr.token(aud=AUD, jku=None)

    verifier.authenticate(f"Bearer {good()}", [AUD])  # the healthy issuer's keys are now cached

    def attack(_: int) -> str:
        try:
            verifier.authenticate(f"Bearer {_attack_token()}", [AUD])
        except AuthFailed as exc:
            return str(exc)
        return "accepted"

    with ThreadPoolExecutor(30) as pool:
        outcomes = list(pool.map(attack, range(60)))
        client = verifier.authenticate(f"Bearer {good()}", [AUD])  # while the attack runs
    assert client.issuer == ISS
    assert "accepted" not in outcomes
    assert hole.accepted == 1, f"{hole.accepted} fetches of the blackholed JWKS"
    assert any("cooling down" in o or "waiting" in o for o in outcomes)


def test_replay_cache_evicts_expired_ids_and_still_refuses_replays(ehr: Ehr, hole: Blackhole) -> None:
    verifier = _verifier(ehr, hole)
    now = time.time()
    for i in range(1000):  # ids whose tokens expired long ago
        verifier._check_lifetime_and_replay(ISS, {"exp": now - 3600 + i * 0.001, "jti": f"old-{i}"})
    token = ehr.token(aud=AUD, jku=None)
    verifier.authenticate(f"Bearer {token}", [AUD])
    assert verifier.live_jtis == 1  # the expired ones went on this verify
    with pytest.raises(AuthFailed, match="replay"):
        verifier.authenticate(f"Bearer {token}", [AUD])
