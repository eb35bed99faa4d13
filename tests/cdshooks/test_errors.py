"""Bad requests get 400 with an OperationOutcome naming the field; imperfect real payloads are accepted."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.cdshooks.conftest import card_with_rule, cards_of
from tests.cdshooks.fhirdata import (
    baclofen_draft,
    full_prefetch,
    hook_request,
    med_request,
    order_context,
    patient,
)

DOSING = "/cds-services/muscle-relaxant-dosing"
REVIEW = "/cds-services/muscle-relaxant-review"
SELECT = order_context(baclofen_draft(), selected=["MedicationRequest/request-123"])


def _outcome(resp: httpx.Response, status: int = 400) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/fhir+json")
    body: dict[str, Any] = resp.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"]
    assert all(i["severity"] == "error" and i["diagnostics"] for i in body["issue"])
    return body


def _expressions(body: dict[str, Any]) -> set[str]:
    return {e for i in body["issue"] for e in i.get("expression", [])}


def test_malformed_json(client: httpx.Client) -> None:
    body = _outcome(
        client.post(DOSING, content=b'{"hook": "order-select",', headers={"content-type": "application/json"})
    )
    assert body["issue"][0]["code"] == "structure" and "malformed JSON" in body["issue"][0]["diagnostics"]
    assert _outcome(client.post(DOSING, json=["not", "an", "object"]))["issue"][0]["code"] == "structure"


@pytest.mark.parametrize("field", ["hook", "hookInstance", "context"])
def test_missing_required_request_fields(client: httpx.Client, field: str) -> None:
    request = hook_request("order-select", SELECT, full_prefetch())
    del request[field]
    body = _outcome(client.post(DOSING, json=request))
    assert _expressions(body) == {field}
    assert body["issue"][0]["code"] == "required"


@pytest.mark.parametrize(
    ("hook", "context", "field"),
    [
        ("order-select", order_context(baclofen_draft()), "context.selections"),
        ("order-select", order_context(baclofen_draft(), selected=[]), "context.selections"),
        ("order-select", {"selections": ["MedicationRequest/request-123"]}, "context.draftOrders"),
        ("order-sign", {}, "context.draftOrders"),
        ("order-sign", {"draftOrders": "not a bundle"}, "context.draftOrders"),
    ],
)
def test_missing_hook_context(client: httpx.Client, hook: str, context: dict[str, Any], field: str) -> None:
    body = _outcome(client.post(DOSING, json=hook_request(hook, context, full_prefetch())))
    assert _expressions(body) == {field}


def test_missing_patient_id(client: httpx.Client) -> None:
    request = hook_request("patient-view", {}, full_prefetch())
    del request["context"]["patientId"]
    assert _expressions(_outcome(client.post(REVIEW, json=request))) == {"context.patientId"}


@pytest.mark.parametrize(
    ("path", "hook"), [(DOSING, "patient-view"), (REVIEW, "order-select"), (DOSING, "order-dispatch")]
)
def test_hook_the_service_is_not_registered_for(client: httpx.Client, path: str, hook: str) -> None:
    body = _outcome(client.post(path, json=hook_request(hook, SELECT, full_prefetch())))
    assert _expressions(body) == {"hook"} and body["issue"][0]["code"] == "not-supported"


def test_fhir_authorization_without_fhir_server(client: httpx.Client) -> None:
    auth = {"access_token": "token-for-nobody-93", "token_type": "Bearer"}
    resp = client.post(DOSING, json=hook_request("order-select", SELECT, full_prefetch(), fhirAuthorization=auth))
    assert _expressions(_outcome(resp)) == {"fhirServer"}
    assert "token-for-nobody-93" not in resp.text


def test_unknown_service_is_404(client: httpx.Client) -> None:
    body = _outcome(client.post("/cds-services/no-such-service", json=hook_request("order-select", SELECT)), 404)
    assert body["issue"][0]["code"] == "not-found"
    assert client.post("/cds-services/no-such-service/feedback", json={"feedback": []}).status_code == 404


def test_extensions_and_unknown_prefetch_keys_are_ignored(client: httpx.Client) -> None:
    plain = cards_of(client.post(DOSING, json=hook_request("order-select", SELECT, full_prefetch())))
    extended = hook_request(
        "order-select",
        {**SELECT, "extension": {"com.example.flag": True}},
        {**full_prefetch(), "someoneElsesKey": {"resourceType": "Basic", "id": "x"}, "user": None},
        extension={"com.example.timestamp": "2017-11-27T22:13:25Z", "com.example.nested": {"a": [1, 2]}},
    )
    got = cards_of(client.post(DOSING, json=extended))
    assert [(c["indicator"], c["summary"]) for c in got] == [(c["indicator"], c["summary"]) for c in plain]


def test_imperfect_real_world_payloads_are_accepted(client: httpx.Client) -> None:
    """No Bundle.type, category as an object, STU3 string statuses, product-level RxNorm, {pill} units."""
    seizure = {
        "resourceType": "Condition",
        "id": "c1",
        "clinicalStatus": "active",  # STU3 style string
        "category": {"coding": [{"code": "problem-list-item"}]},  # an object, not a list
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "84757009", "display": "Epilepsy"}]},
    }
    resolved_stroke = {
        "resourceType": "Condition",
        "id": "c2",
        "clinicalStatus": {"coding": [{"code": "resolved"}]},
        "code": {"text": "Stroke"},
    }
    allergy = {
        "resourceType": "AllergyIntolerance",
        "id": "a1",
        "category": "medication",  # a string, as in the malformed SMART sample
        "code": {"text": "Penicillin"},
    }
    draft = med_request(
        "rx-1",
        "Baclofen 10 MG Oral Tablet",
        status="draft",
        rxcui="197391",
        dose=1,
        unit="{pill}",
        per_day=3,
        r4_dose=False,
    )
    prefetch = full_prefetch(
        conditions={"resourceType": "Bundle", "entry": [{"resource": seizure}, {"resource": resolved_stroke}]},
        allergies={"resourceType": "Bundle", "entry": [{"resource": allergy}]},
        patient=patient(born="1980-02-02"),
    )
    cards = cards_of(client.post(DOSING, json=hook_request("order-sign", order_context(draft), prefetch)))
    assert card_with_rule(cards, "baclofen.disease.seizure-disorder")["indicator"] == "warning"
    assert not [c for c in cards if "- Rule `baclofen.disease.stroke`" in c["detail"]], (
        "resolved conditions do not count"
    )
    written = card_with_rule(cards, "engine.dose-range")  # 1 {pill} of 10 mg 3 times a day was read as 30 mg/day
    assert "30 mg/day" in written["summary"] and written["indicator"] == "info"
