"""Liveness, readiness and Prometheus metrics, through the app as a load balancer would see it."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from engine.settings import Settings
from tests.apps import sqlite_settings
from tests.audit.records import BODY


@pytest.fixture
def api(tmp_path: Path, make_client: Callable[[Settings], TestClient]) -> TestClient:
    return make_client(sqlite_settings(tmp_path))


def samples(api: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of /metrics, keyed by name and labels (parsed, so the format itself is checked)."""
    r = api.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(snap: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return snap.get((name, frozenset(labels.items())), 0.0)


def test_healthz_is_alive(api: TestClient) -> None:
    r = api.get("/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


def test_readyz_reports_rules_and_database(api: TestClient) -> None:
    r = api.get("/readyz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ready"
    assert body["database"] == "ok"
    assert body["backend"] == "sqlite"
    assert body["rules"]["digest"].startswith("sha256:")
    assert "baclofen" in body["rules"]["drugs"]
    assert isinstance(body["worker_pid"], int)


def test_metrics_count_requests_cards_and_rules(api: TestClient) -> None:
    before = samples(api)
    r = api.post("/v1/evaluate", json=BODY)
    assert r.status_code == 200
    resp = r.json()
    bad = api.post("/v1/evaluate", json={"patient": {}, "drug": {"name": "no-such-drug"}})
    assert bad.status_code == 422
    after = samples(api)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    ok = {"endpoint": "/v1/evaluate", "method": "POST", "outcome": "ok"}
    assert delta("cdsrules_http_requests_total", **ok) == 1
    assert delta("cdsrules_http_requests_total", **{**ok, "outcome": "rejected"}) == 1
    assert delta("cdsrules_http_request_duration_seconds_count", endpoint="/v1/evaluate", outcome="ok") == 1
    assert delta("cdsrules_decisions_total", endpoint="/v1/evaluate") == 1
    assert resp["findings"], "this patient gets findings; none would make the card check vacuous"
    for f in resp["findings"]:
        n = sum(1 for g in resp["findings"] if (g["category"], g["severity"]) == (f["category"], f["severity"]))
        assert delta("cdsrules_cards_total", category=f["category"], severity=f["severity"]) == n
    for t in resp["trace"]:
        assert delta("cdsrules_rules_fired_total", rule_id=t["rule_id"]) == 1
    assert delta("cdsrules_audit_write_duration_seconds_count", kind="decision") == 1


def test_metric_labels_are_route_templates_not_ids(api: TestClient) -> None:
    decision_id = api.post("/v1/evaluate", json=BODY).json()["decision_id"]
    api.get(f"/v1/decisions/{decision_id}")
    api.get("/no/such/path")
    text = api.get("/metrics").text
    assert 'endpoint="/v1/decisions/{decision_id}"' in text
    assert decision_id not in text
    assert 'endpoint="unmatched"' in text
    assert "/no/such/path" not in text


def test_request_and_decision_ids_come_back_as_headers(api: TestClient) -> None:
    r = api.post("/v1/evaluate", json=BODY, headers={"x-request-id": "ehr-trace-42"})
    assert r.headers["x-request-id"] == "ehr-trace-42"
    assert r.headers["x-decision-id"] == r.json()["decision_id"]
    weird = api.get("/healthz", headers={"x-request-id": "<script>spaces, too long " * 5})
    assert re.fullmatch(r"[0-9a-f]{32}", weird.headers["x-request-id"])  # replaced, not echoed
    assert "x-decision-id" not in weird.headers


def test_readyz_is_503_before_the_app_has_state() -> None:
    # a worker that is still compiling rules must not receive traffic
    from fastapi import FastAPI

    from engine.observability.http import install

    bare = FastAPI()
    install(bare)
    with TestClient(bare) as client:
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200
