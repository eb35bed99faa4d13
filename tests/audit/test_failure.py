"""No unrecorded advice: when the audit write fails the caller gets 503, and metrics count it."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.audit.store import AuditError, AuditStore, normalise_url
from tests.audit.records import BODY, make_record


def _failures(api: TestClient) -> float:
    text = api.get("/metrics").text
    m = re.search(r'^cdsrules_audit_write_failures_total\{kind="decision"\} (\S+)$', text, re.M)
    assert m, "the audit failure counter is exported from the start"
    return float(m.group(1))


def _drop(db_url: str, table: str) -> None:
    engine = sa.create_engine(normalise_url(db_url))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE {table}")
    engine.dispose()


def test_broken_store_gives_503_not_advice(api: TestClient, db_url: str) -> None:
    assert api.post("/v1/evaluate", json=BODY).status_code == 200
    before = _failures(api)
    _drop(db_url, "decision_rules")  # the decision row would insert; the rules that fired would not

    r = api.post("/v1/evaluate", json=BODY)
    assert r.status_code == 503
    body = r.json()
    assert "no advice" in body["title"]
    assert "findings" not in body and "dose" not in body
    assert _failures(api) == before + 1
    # all or nothing: the half-written decision was rolled back
    assert len(api.get("/v1/decisions").json()["items"]) == 1
    assert 'outcome="unavailable"' in api.get("/metrics").text


def test_missing_database_tables_fail_readiness_and_requests(api: TestClient, db_url: str) -> None:
    assert api.get("/readyz").status_code == 200
    _drop(db_url, "decision_rules")
    _drop(db_url, "decision_cards")  # it, too, points at decisions
    _drop(db_url, "decisions")
    ready = api.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["database"] == "unavailable"
    assert api.post("/v1/evaluate", json=BODY).status_code == 503
    assert api.get("/healthz").status_code == 200  # alive, just not ready


def test_unreachable_database_raises_audit_error() -> None:
    # nothing listens on port 1; the store must say so as an AuditError, not a driver exception
    store = AuditStore("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2", "k")
    with pytest.raises(AuditError):
        store.record(make_record())
    with pytest.raises(AuditError):
        store.record_feedback("svc", {"card": "c", "outcome": "accepted", "outcomeTimestamp": "t"})
    assert store.ping() is False
    store.dispose()


def test_a_response_that_cannot_be_stored_is_an_audit_error(store: AuditStore) -> None:
    with pytest.raises(AuditError):
        store.record(make_record(response={"not-json": object()}))
    assert store.count() == 0
