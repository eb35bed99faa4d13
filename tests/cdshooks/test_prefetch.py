"""Every prefetch path of the issue, with a FHIR server stub on loopback where one is needed."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from tests.cdshooks.conftest import card_with_rule, cards_of, check_card_invariants
from tests.cdshooks.fhirdata import (
    PID,
    baclofen_draft,
    bundle,
    full_prefetch,
    hook_request,
    med_request,
    observation,
    operation_outcome,
    order_context,
    patient,
)
from tests.cdshooks.servers import StubServer, fhir_routes, searchset

DOSING = "/cds-services/muscle-relaxant-dosing"
TOKEN = "ehr-issued-token-7b2c"
SELECT = order_context(baclofen_draft(), selected=["MedicationRequest/request-123"])


def _call(client: httpx.Client, prefetch: dict[str, Any] | None, fhir: StubServer | None = None) -> httpx.Response:
    extra: dict[str, Any] = {}
    if fhir is not None:
        extra = {"fhirServer": fhir.url, "fhirAuthorization": {"access_token": TOKEN, "token_type": "Bearer"}}
    return client.post(DOSING, json=hook_request("order-select", SELECT, prefetch, **extra))


def _gaps(cards: list[dict[str, Any]]) -> str:
    hits = [c for c in cards if c["source"]["topic"]["code"] == "not-checked"]
    assert len(hits) == 1, "expected a card saying what was not checked"
    return str(hits[0]["detail"])


def test_absent_keys_are_read_from_fhir_server_with_the_bearer_token(client: httpx.Client, fhir: StubServer) -> None:
    fhir.routes = fhir_routes(
        [
            patient(born="1980-02-02"),
            observation("33914-3", 90, "mL/min/{1.73_m2}", "2022-01-01"),
            observation("62238-1", 40, "mL/min/{1.73_m2}", "2024-08-01"),
            observation("29463-7", 70, "kg", "2024-08-01"),
        ]
    )
    cards = cards_of(_call(client, {"patient": patient(born="1980-02-02")}, fhir))
    check_card_invariants(cards)
    assert "40 mL/min" in card_with_rule(cards, "baclofen.renal.moderate")["detail"]  # newest across eGFR codes
    obs = fhir.requests_for("Observation")
    # egfr, creatinine, weight, height, pregnancy, breastfeeding, bilirubin, AST, ALT, albumin, INR, Child-Pugh
    assert len(obs) == 12
    assert all(r.query["_sort"] == ["-date"] and r.query["patient"] == [PID] for r in obs)
    assert any("http://loinc.org|33914-3" in r.query["code"][0] for r in obs)
    assert not fhir.requests_for("Patient"), "the prefetched Patient is not read again"
    assert {r.headers["authorization"] for r in fhir.seen} == {f"Bearer {TOKEN}"}


@pytest.mark.parametrize("nothing", [None, bundle(), {"resourceType": "Bundle", "entry": []}])
def test_null_or_empty_means_looked_and_found_nothing(client: httpx.Client, fhir: StubServer, nothing: Any) -> None:
    prefetch = {key: nothing for key in full_prefetch()}
    prefetch["patient"] = patient(born="1980-02-02")
    cards = cards_of(_call(client, prefetch, fhir))
    assert fhir.seen == [], "null / empty answers are not refetched"
    assert "renal function" in _gaps(cards)  # no eGFR and no creatinine: renal dosing not checked
    assert card_with_rule(cards, "baclofen.renal.unknown")["indicator"] == "warning"


def test_operation_outcome_means_unavailable_not_a_crash(client: httpx.Client) -> None:
    prefetch = full_prefetch(
        egfr=None,
        medications=operation_outcome("MedicationRequest search timed out"),
    )
    prefetch["egfr"] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": operation_outcome("lab system offline"), "search": {"mode": "outcome"}}],
    }
    cards = cards_of(_call(client, prefetch))
    check_card_invariants(cards)
    gaps = _gaps(cards)
    assert "interactions and duplicate therapy with the medication list" in gaps
    assert "MedicationRequest search timed out" in gaps
    assert "renal function (eGFR)" in gaps and "lab system offline" in gaps


@pytest.mark.parametrize(
    ("prefetch", "routes"),
    [
        pytest.param({}, None, id="absent-no-fhir-server"),
        pytest.param({"patient": None}, None, id="null"),
        pytest.param({"patient": operation_outcome("denied")}, None, id="operation-outcome"),
        pytest.param({}, {}, id="fhir-server-404"),
    ],
)
def test_patient_unobtainable_is_412(
    client: httpx.Client, fhir: StubServer, prefetch: dict[str, Any], routes: dict[str, Any] | None
) -> None:
    if routes is not None:
        fhir.routes = fhir_routes([])
    resp = _call(client, prefetch, fhir if routes is not None else None)
    assert resp.status_code == 412
    outcome = resp.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == ["prefetch.patient"]
    assert f"Patient/{PID}" in outcome["issue"][0]["diagnostics"]


def test_slow_or_failing_fhir_server_leaves_checks_undone(client: httpx.Client, fhir: StubServer) -> None:
    fhir.routes = fhir_routes(
        [patient(born="1980-02-02"), observation("33914-3", 40, "mL/min/{1.73_m2}", "2024-01-01")]
    )
    fhir.routes["AllergyIntolerance"] = lambda _p, _q: (500, operation_outcome("allergy store down"))
    fhir.delays["Observation"] = 4.0  # longer than the app's per-call timeout (1.5 s)
    prefetch = {"patient": patient(born="1980-02-02"), "conditions": None, "medications": None}
    cards = cards_of(_call(client, prefetch, fhir))
    gaps = _gaps(cards)
    assert "did not answer in time" in gaps
    assert "allergies: FHIR server answered HTTP 500" in gaps and "allergy store down" in gaps


def test_paginated_search_is_followed_but_only_on_the_fhir_server(client: httpx.Client, fhir: StubServer) -> None:
    elsewhere = StubServer()
    try:
        oxycodone = med_request("rx-oxy", "oxycodone hydrochloride 5 MG Oral Tablet", rxcui="1049621")
        page2 = searchset([oxycodone])
        fhir.routes = {"page2": lambda _p, _q: (200, page2)}
        first = searchset([], link=[{"relation": "next", "url": f"{fhir.url}/page2?token=abc"}])
        cards = cards_of(_call(client, full_prefetch(egfr=95.0, medications=first), fhir))
        assert card_with_rule(cards, "baclofen.interaction.opioid")["indicator"] == "warning"
        assert fhir.requests_for("page2")[0].headers["authorization"] == f"Bearer {TOKEN}"

        foreign = searchset([], link=[{"relation": "next", "url": f"{elsewhere.url}/page2"}])
        cards = cards_of(_call(client, full_prefetch(egfr=95.0, medications=foreign), fhir))
        assert elsewhere.seen == [], "the token is never sent outside fhirServer"
        assert not [c for c in cards if "- Rule `baclofen.interaction.opioid`" in c["detail"]]
    finally:
        elsewhere.close()


def test_creatinine_in_umol_per_litre_is_converted(client: httpx.Client) -> None:
    prefetch = full_prefetch(
        egfr=None,
        patient=patient(gender="male", born="1970-01-01"),
        creatinine=bundle(observation("14682-9", 177, "umol/L", "2024-07-01")),
        weight=bundle(observation("29463-7", 80, "kg", "2024-07-01")),
    )
    cards = cards_of(_call(client, prefetch))
    dose = next(c for c in cards if c["source"]["topic"]["code"] == "dosing")
    assert "serum creatinine 2 mg/dL (LOINC 14682-9, 2024-07-01; converted from 177 µmol/L)" in dose["detail"]
    assert "cockcroft-gault" in dose["detail"]


def test_access_token_is_never_logged(client: httpx.Client, fhir: StubServer, caplog: pytest.LogCaptureFixture) -> None:
    fhir.routes = fhir_routes([patient()])
    caplog.set_level(logging.DEBUG)
    cards_of(_call(client, {"patient": patient()}, fhir))
    assert fhir.seen, "the stub was called with the token"
    logged = "\n".join(f"{r.getMessage()} {json.dumps(r.__dict__, default=str)}" for r in caplog.records)
    assert TOKEN not in logged
