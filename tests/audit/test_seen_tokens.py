"""A captured client JWT is accepted once across workers when the replay store is the database (D8).

Each worker kept its own ``jti`` cache, so with ``--workers 2`` a replayed token was accepted once
per worker (2 of 20 tries in the field probe). Here "another worker" is another verifier, on its
own connection pool to the same database, as a second process would be. Every test runs on
SQLite and (marked ``integration``) PostgreSQL.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.audit.seen_tokens import SeenTokens
from engine.audit.store import AuditStore, normalise_url
from engine.security.jwt import AuthFailed, JwtVerifier
from engine.security.replay import ReplayUnavailable
from tests.apps import MakeClient
from tests.audit.conftest import HASH_KEY, app_settings
from tests.audit.records import BODY
from tests.cdshooks.test_auth import ISS, Ehr

AUD = "http://127.0.0.1:8000/v1/evaluate"  # the default CDSRULES_PUBLIC_BASE_URL


@pytest.fixture(scope="module")
def ehr() -> Iterator[Ehr]:
    e = Ehr()
    yield e
    e.close()


@pytest.fixture
def workers(db_url: str) -> Iterator[list[AuditStore]]:
    """Four stores on one database, each with its own engine: four processes' worth of connections."""
    stores = [AuditStore(db_url, HASH_KEY) for _ in range(4)]
    stores[0].migrate()
    yield stores
    for s in stores:
        s.dispose()


def _verifier(ehr: Ehr, store: AuditStore | None) -> JwtVerifier:
    return JwtVerifier(
        issuers={ISS: [ehr.jku]},
        algorithms=["ES384"],
        leeway_s=30,
        max_lifetime_s=3600,
        jwks_timeout_s=5,
        jwks_cache_s=300,
        refresh_cooldown_s=5,
        replay=SeenTokens(store, 30) if store is not None else None,
    )


def _rows(store: AuditStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM seen_tokens").scalar() or 0)


def test_a_token_accepted_by_one_worker_is_refused_by_another(ehr: Ehr, workers: list[AuditStore]) -> None:
    first, second = _verifier(ehr, workers[0]), _verifier(ehr, workers[1])
    token = f"Bearer {ehr.token(aud=AUD, jku=None)}"
    assert first.authenticate(token, [AUD]).issuer == ISS
    with pytest.raises(AuthFailed, match="replay"):
        second.authenticate(token, [AUD])
    with pytest.raises(AuthFailed, match="replay"):
        first.authenticate(token, [AUD])
    assert second.authenticate(f"Bearer {ehr.token(aud=AUD, jku=None)}", [AUD]).issuer == ISS  # a new token is fine
    assert _rows(workers[0]) == 2


def test_with_the_memory_store_each_worker_accepts_the_token_once(ehr: Ehr) -> None:
    """The per-process store, for contrast: why ``database`` is the default."""
    first, second = _verifier(ehr, None), _verifier(ehr, None)
    token = f"Bearer {ehr.token(aud=AUD, jku=None)}"
    assert first.authenticate(token, [AUD]) == second.authenticate(token, [AUD])


def test_concurrent_verifies_of_one_token_accept_exactly_one(ehr: Ehr, workers: list[AuditStore]) -> None:
    verifiers = [_verifier(ehr, s) for s in workers]
    token = f"Bearer {ehr.token(aud=AUD, jku=None)}"
    for v in verifiers:  # keys cached, so the race below is only the replay check
        v.authenticate(f"Bearer {ehr.token(aud=AUD, jku=None)}", [AUD])

    def attempt(i: int) -> bool:
        try:
            verifiers[i % len(verifiers)].authenticate(token, [AUD])
        except AuthFailed:
            return False
        return True

    with ThreadPoolExecutor(8) as pool:
        accepted = list(pool.map(attempt, range(16)))
    assert accepted.count(True) == 1


def test_an_expired_id_no_longer_refuses_and_is_pruned(workers: list[AuditStore]) -> None:
    store = SeenTokens(workers[0], leeway_s=30, prune_every_s=3600)
    now = time.time()
    assert store.first_use(ISS, "old", now - 100, now - 200)
    assert not store.first_use(ISS, "old", now - 100, now - 150), "live until exp + leeway"
    stale = [f"stale-{i}" for i in range(5)]
    for jti in stale:
        assert store.first_use(ISS, jti, now - 100, now - 200)
    assert _rows(workers[0]) == 6
    # exp + leeway has passed: the id is taken over by the new token; the prune (first use of this
    # store) already ran, so the stale rows are still there until the next one
    assert store.first_use(ISS, "old", now + 300, now)
    assert not store.first_use(ISS, "old", now + 300, now)
    pruning = SeenTokens(workers[1], leeway_s=30)
    assert pruning.first_use(ISS, "fresh", now + 300, now)  # its first use prunes
    with workers[0].engine.connect() as conn:
        left = {r[0] for r in conn.exec_driver_sql("SELECT jti FROM seen_tokens")}
    assert left == {"old", "fresh"}


def test_the_app_with_two_workers_accepts_a_captured_token_once(ehr: Ehr, db_url: str, make_client: MakeClient) -> None:
    settings = app_settings(db_url, jwt_issuers={ISS: [ehr.jku]})
    assert settings.replay_store == "database", "the shared store is the default"
    one, two = make_client(settings), make_client(settings)  # two apps: two workers' verifiers
    auth = {"authorization": f"Bearer {ehr.token(aud=AUD, jku=None)}"}
    assert one.post("/v1/evaluate", json=BODY, headers=auth).status_code == 200
    replay = two.post("/v1/evaluate", json=BODY, headers=auth)
    assert replay.status_code == 401 and replay.content == b""


def _drop_seen_tokens(db_url: str) -> None:
    engine = sa.create_engine(normalise_url(db_url))
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE seen_tokens")
    engine.dispose()


def test_when_the_replay_store_fails_the_token_is_refused_with_a_503(
    ehr: Ehr, db_url: str, make_client: MakeClient
) -> None:
    api: TestClient = make_client(app_settings(db_url, jwt_issuers={ISS: [ehr.jku]}))
    _drop_seen_tokens(db_url)
    auth = {"authorization": f"Bearer {ehr.token(aud=AUD, jku=None)}"}
    resp = api.post("/v1/evaluate", json=BODY, headers=auth)
    assert resp.status_code == 503, resp.text
    body = resp.json()
    assert body["retryable"] is True and "replay" in body["title"] and "findings" not in body
    assert api.app.state.cds.audit.count() == 0, "no decision was made for an unchecked token"  # type: ignore[attr-defined]


def test_an_unreachable_database_is_replay_unavailable_not_a_driver_error() -> None:
    store = AuditStore("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2", "k")
    with pytest.raises(ReplayUnavailable):
        SeenTokens(store, 30).first_use(ISS, str(uuid.uuid4()), time.time() + 60, time.time())
    store.dispose()
