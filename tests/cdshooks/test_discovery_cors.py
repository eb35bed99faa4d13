"""Discovery document shape, and CORS on preflights and on every response, errors included."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from engine.runtime.engine import Engine
from tests.cdshooks.conftest import EHR_ORIGIN, assert_spec_json, cards_of
from tests.cdshooks.fhirdata import baclofen_draft, full_prefetch, hook_request, order_context
from tests.cdshooks.servers import RunningApp

DOSING = "/cds-services/muscle-relaxant-dosing"


def test_discovery_gives_each_hook_its_own_id(client: httpx.Client) -> None:
    resp = client.get("/cds-services")
    assert resp.status_code == 200
    doc = resp.json()
    assert set(doc) == {"services"}
    assert_spec_json(doc)
    pairs = {(s["id"], s["hook"]) for s in doc["services"]}
    assert pairs == {
        ("muscle-relaxant-dosing-order-select", "order-select"),
        ("muscle-relaxant-dosing-order-sign", "order-sign"),
        ("muscle-relaxant-review", "patient-view"),
    }
    assert len({s["id"] for s in doc["services"]}) == len(doc["services"]), "ids must be unique by default"
    for service in doc["services"]:
        assert set(service) == {"hook", "title", "description", "id", "prefetch"}


def test_prefetch_templates(client: httpx.Client) -> None:
    for service in client.get("/cds-services").json()["services"]:
        prefetch: dict[str, str] = service["prefetch"]
        assert prefetch["patient"] == "Patient/{{context.patientId}}"
        for key, template in prefetch.items():
            tokens = set(re.findall(r"\{\{([^}]*)\}\}", template))
            assert tokens <= {"context.patientId", "context.userId"}, key
            if template.startswith("Observation?"):
                assert "_sort=-date" in template and "sort:desc" not in template, key
        observations = " ".join(t for t in prefetch.values() if t.startswith("Observation?"))
        for code in ("98979-8", "62238-1", "33914-3", "2160-0", "14682-9", "29463-7", "8302-2", "82810-3"):
            assert f"http://loinc.org|{code}" in observations, code
        types = {t.split("?")[0].split("/")[0] for t in prefetch.values()}
        assert types == {
            "Patient",
            "Observation",
            "Condition",
            "MedicationRequest",
            "MedicationStatement",
            "AllergyIntolerance",
        }
        assert "status=active" in prefetch["medications"]


def test_every_discovered_service_answers_its_hook(client: httpx.Client) -> None:
    for service in client.get("/cds-services").json()["services"]:
        ctx: dict[str, Any] = {}
        if service["hook"] != "patient-view":
            ctx = order_context(baclofen_draft(), selected=["MedicationRequest/request-123"])
        resp = client.post(f"/cds-services/{service['id']}", json=hook_request(service["hook"], ctx, full_prefetch()))
        cards_of(resp)


def test_preflight_allows_listed_origin_only(client: httpx.Client) -> None:
    headers = {
        "Origin": EHR_ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    ok = client.options(DOSING, headers=headers)
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == EHR_ORIGIN
    assert "POST" in ok.headers["access-control-allow-methods"]
    assert "authorization" in ok.headers["access-control-allow-headers"].lower()
    refused = client.options(DOSING, headers={**headers, "Origin": "https://evil.example.com"})
    assert "access-control-allow-origin" not in refused.headers


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/cds-services", None, 200),
        ("POST", DOSING, hook_request("order-select", {}, full_prefetch()), 400),
        ("POST", "/cds-services/nope", {}, 404),
        ("POST", "/cds-services/muscle-relaxant-review", hook_request("patient-view", {}), 412),
    ],
)
def test_real_responses_carry_cors_headers(
    client: httpx.Client, method: str, path: str, body: dict[str, Any] | None, status: int
) -> None:
    resp = client.request(method, path, json=body, headers={"Origin": EHR_ORIGIN})
    assert resp.status_code == status
    assert resp.headers["access-control-allow-origin"] == EHR_ORIGIN
    other = client.request(method, path, json=body, headers={"Origin": "https://evil.example.com"})
    assert "access-control-allow-origin" not in other.headers


def test_unexpected_500_still_carries_cors_headers(
    client: httpx.Client, running: RunningApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Engine, *args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(Engine, "evaluate", broken)
    ctx = order_context(baclofen_draft(), selected=["MedicationRequest/request-123"])
    resp = client.post(DOSING, json=hook_request("order-select", ctx, full_prefetch()), headers={"Origin": EHR_ORIGIN})
    assert resp.status_code == 500
    assert resp.headers["access-control-allow-origin"] == EHR_ORIGIN
    assert "simulated bug" not in resp.text


def test_shared_id_discovery_is_a_setting() -> None:
    from engine.cdshooks.discovery import discovery_document

    pairs = {(s["id"], s["hook"]) for s in discovery_document("shared")["services"]}
    assert pairs == {
        ("muscle-relaxant-dosing", "order-select"),
        ("muscle-relaxant-dosing", "order-sign"),
        ("muscle-relaxant-review", "patient-view"),
    }


def test_a_per_hook_id_refuses_the_other_hook(client: httpx.Client) -> None:
    ctx = order_context(baclofen_draft(), selected=["MedicationRequest/request-123"])
    resp = client.post(
        "/cds-services/muscle-relaxant-dosing-order-sign", json=hook_request("order-select", ctx, full_prefetch())
    )
    assert resp.status_code == 400
    assert "order-sign" in resp.text and "order-select" in resp.text
