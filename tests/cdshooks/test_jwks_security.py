"""A slow JWKS URL costs one fetch, not one per request, and cached keys keep working (D3, D8).

Before, tokens naming a random ``kid`` and a blackholed allow-listed JWKS URL each fetched again,
one after another, each holding a request thread for the whole timeout; and the fetch itself ran
on a request thread, which a slow-drip JWKS server held for as long as it dripped. And the replay
cache scanned every live ``jti`` on every verify.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest

from engine.security.jwt import AuthFailed, JwtVerifier
from engine.security.replay import MemoryReplay
from tests.cdshooks.test_auth import EC_KEY, EC_KEY_2, ISS, Ehr, _jwk

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


class DripJwks:
    """A JWKS endpoint that answers at once, then sends its body a space at a time until released.

    Each space arrives well within the client's socket timeout, so a fetch of it never times out:
    it lasts until ``release`` is set, like an EHR's overloaded JWKS server.
    """

    PAD = 1_000_000

    def __init__(self, keys: list[dict[str, object]]) -> None:
        self.body = json.dumps({"keys": keys}).encode()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/jwks.json"
        self.requests = 0
        self.entered = threading.Event()  # a fetch is being answered
        self.release = threading.Event()
        self.finished = threading.Event()  # the whole body was sent
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.requests += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {self.PAD + len(self.body)}"
            try:
                conn.sendall(head.encode() + b"\r\n\r\n")
                self.entered.set()
                sent = 0
                while not self.release.wait(0.02) and sent < self.PAD - 1:
                    conn.sendall(b" ")
                    sent += 1
                conn.sendall(b" " * (self.PAD - sent) + self.body)
                self.finished.set()
            except OSError:
                return

    def close(self) -> None:
        self.release.set()
        self.sock.close()


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
    assert isinstance(verifier.replay, MemoryReplay)
    assert len(verifier.replay) == 1  # the expired ones went on this verify
    with pytest.raises(AuthFailed, match="replay"):
        verifier.authenticate(f"Bearer {token}", [AUD])


def test_a_slow_drip_jwks_holds_no_request_thread_and_other_issuers_verify_meanwhile() -> None:
    """The fetch runs on its own thread: waiters give up after the timeout while it still drips.

    The request pool here has ``max_waiters + 1`` threads. Before, the fetching request itself was
    stuck for as long as the server dripped, so the attack could not finish while it dripped.
    """
    ehr = Ehr()  # the healthy issuer; its keys are not cached yet, so it needs a fetch of its own
    drip = DripJwks([_jwk(EC_KEY_2, "slow-1", "ES384")])
    requests = ThreadPoolExecutor(3)  # the request pool: max_waiters + 1 threads
    verifier = JwtVerifier(
        issuers={ISS: [ehr.jku], SLOW_ISS: [drip.url]},
        algorithms=["ES384"],
        leeway_s=30,
        max_lifetime_s=3600,
        jwks_timeout_s=1.0,
        jwks_cache_s=300,
        refresh_cooldown_s=5,
        failure_cooldown_s=30,
        max_waiters=2,
    )

    def attack(_: int) -> str:
        try:
            verifier.authenticate(f"Bearer {_attack_token()}", [AUD])
        except AuthFailed as exc:
            return str(exc)
        return "accepted"

    try:
        attacks = [requests.submit(attack, i) for i in range(40)]
        assert drip.entered.wait(30), "the slow JWKS was never fetched"
        legit = requests.submit(verifier.authenticate, f"Bearer {ehr.token(aud=AUD, jku=None)}", [AUD])
        assert legit.result(timeout=30).issuer == ISS
        assert not drip.finished.is_set(), "the healthy issuer verified while the slow fetch was pending"
        outcomes = [a.result(timeout=30) for a in attacks]  # before: the fetching request never returned
        assert not drip.finished.is_set(), "every attacker returned while the slow fetch still dripped"
        slow = verifier._client(drip.url)
        assert slow.waiting == 0 and slow.in_flight is not None
        assert "accepted" not in outcomes
        assert sum("did not finish in time" in o for o in outcomes) <= 2, "at most max_waiters waited"
        assert drip.requests == 1 and slow.fetches == 1

        drip.release.set()  # the fetch completes in the background and fills the cache
        pending = slow.in_flight
        if pending is not None:
            pending.result(timeout=30)
        now = int(time.time())
        claims = {"iss": SLOW_ISS, "aud": AUD, "exp": now + 300, "iat": now, "jti": "j-1"}
        token = jwt.encode(claims, EC_KEY_2, algorithm="ES384", headers={"kid": "slow-1"})
        assert requests.submit(verifier.authenticate, f"Bearer {token}", [AUD]).result(timeout=30).issuer == SLOW_ISS
        assert drip.requests == 1, "the key came from the fetch that outlived its waiters"
    finally:
        drip.close()  # releases a request stuck on the drip, so the pool can shut down
        requests.shutdown(wait=True, cancel_futures=True)
        ehr.close()
