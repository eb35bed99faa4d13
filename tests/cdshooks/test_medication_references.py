"""A ``medicationReference`` to a Medication the EHR did not send is read, or named as not checked.

The drug of ``medicationReference: Medication/123`` is unknown until that Medication is read. The
prefetch asks for it with ``_include``; what is still missing is read from ``fhirServer`` (token
only there, within the call's budget, at most ``MAX_MEDICATION_READS`` per call). Whatever still
cannot be resolved is on the "Not checked" card, naming the reference and the order.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from engine.cdshooks.fhirclient import FhirFetcher
from engine.cdshooks.medrefs import MAX_MEDICATION_READS, read_medications
from tests.cdshooks.conftest import card_with_rule, cards_of, check_card_invariants
from tests.cdshooks.fhirdata import full_prefetch, hook_request, med_request, order_context, patient
from tests.cdshooks.servers import StubServer, fhir_routes

SELECT = "/cds-services/muscle-relaxant-dosing-order-select"
SIGN = "/cds-services/muscle-relaxant-dosing-order-sign"
REVIEW = "/cds-services/muscle-relaxant-review"
TOKEN = "ehr-token-medref"


def medication(mid: str, name: str) -> dict[str, Any]:
    return {"resourceType": "Medication", "id": mid, "code": {"text": name}}


def by_reference(rid: str, ref: str, *, status: str = "draft", dose: float = 20, per_day: int = 3) -> dict[str, Any]:
    mr = med_request(rid, "unused", status=status, dose=dose, per_day=per_day)
    del mr["medicationCodeableConcept"]
    mr["medicationReference"] = {"reference": ref}
    return mr


def _server(fhir: StubServer) -> dict[str, Any]:
    return {"fhirServer": fhir.url, "fhirAuthorization": {"access_token": TOKEN, "token_type": "Bearer"}}


def _not_checked(cards: list[dict[str, Any]]) -> str:
    hits = [c for c in cards if c["source"]["topic"]["code"] == "not-checked"]
    assert len(hits) == 1, [c["summary"] for c in cards]
    return str(hits[0]["detail"])


def test_a_draft_medication_reference_is_read_from_fhir_server(client: httpx.Client, fhir: StubServer) -> None:
    fhir.routes = fhir_routes([medication("med-1", "Baclofen 10 MG Oral Tablet")])
    draft = by_reference("b1", "Medication/med-1")
    body = hook_request("order-select", order_context(draft, selected=["MedicationRequest/b1"]), full_prefetch())
    cards = cards_of(client.post(SELECT, json=body | _server(fhir)))
    check_card_invariants(cards)
    dosing = [c for c in cards if c["source"]["topic"]["code"] == "dosing"]
    assert dosing and "baclofen" in dosing[0]["summary"].lower()
    (read,) = fhir.requests_for("Medication")
    assert read.path == "/Medication/med-1" and read.headers["authorization"] == f"Bearer {TOKEN}"


def test_the_medication_search_includes_the_medications(client: httpx.Client, fhir: StubServer) -> None:
    on_baclofen = by_reference("rx-1", "Medication/med-2", status="active", dose=20, per_day=3)
    fhir.routes = fhir_routes([on_baclofen, medication("med-2", "Baclofen 10 MG Oral Tablet")])
    prefetch = full_prefetch(egfr=38.0)
    del prefetch["medications"]  # read with the template: MedicationRequest?...&_include=MedicationRequest:medication
    cards = cards_of(client.post(REVIEW, json=hook_request("patient-view", {}, prefetch) | _server(fhir)))
    check_card_invariants(cards)
    assert "60 mg/day" in card_with_rule(cards, "engine.dose-range")["summary"]
    (search,) = fhir.requests_for("MedicationRequest")
    assert search.query["_include"] == ["MedicationRequest:medication"]
    assert fhir.requests_for("Medication") == [], "the included Medication is not read again"


def test_a_medication_the_server_does_not_have_is_named(client: httpx.Client, fhir: StubServer) -> None:
    fhir.routes = fhir_routes([])
    body = hook_request("order-sign", order_context(by_reference("b2", "Medication/gone")), full_prefetch())
    cards = cards_of(client.post(SIGN, json=body | _server(fhir)))
    check_card_invariants(cards)
    detail = _not_checked(cards)
    assert "Medication/gone (drug of MedicationRequest/b2)" in detail
    assert "not found on the FHIR server (HTTP 404)" in detail


def test_without_fhir_server_an_unresolved_reference_is_named(client: httpx.Client) -> None:
    on_list = by_reference("rx-3", "Medication/med-3", status="active")
    body = hook_request("patient-view", {}, full_prefetch(meds=[on_list]))
    detail = _not_checked(cards_of(client.post(REVIEW, json=body)))
    assert "Medication/med-3 (drug of MedicationRequest/rx-3)" in detail and "no fhirServer" in detail


def test_a_reference_outside_fhir_server_is_not_followed(client: httpx.Client, fhir: StubServer) -> None:
    other = StubServer()
    try:
        other.routes = fhir_routes([medication("m9", "Baclofen 10 MG Oral Tablet")])
        fhir.routes = fhir_routes([])
        draft = by_reference("b4", f"{other.url}/Medication/m9")
        body = hook_request("order-sign", order_context(draft), full_prefetch())
        detail = _not_checked(cards_of(client.post(SIGN, json=body | _server(fhir))))
        assert other.seen == [], "neither the read nor the token goes to another server"
        assert "outside fhirServer" in detail
    finally:
        other.close()


def test_an_id_that_is_not_a_fhir_id_is_not_read(client: httpx.Client, fhir: StubServer) -> None:
    fhir.routes = fhir_routes([])
    draft = by_reference("b5", "Medication/..%2F..%2FPatient%2Fx")
    body = hook_request("order-sign", order_context(draft), full_prefetch())
    detail = _not_checked(cards_of(client.post(SIGN, json=body | _server(fhir))))
    assert fhir.requests_for("Medication") == []
    assert "not a valid FHIR id" in detail


def test_reads_are_capped_per_call_and_the_rest_named(client: httpx.Client, fhir: StubServer) -> None:
    n = MAX_MEDICATION_READS + 2
    meds = [medication(f"m{i}", "Baclofen 10 MG Oral Tablet") for i in range(n)]
    orders = [by_reference(f"rx-{i}", f"Medication/m{i}", status="active") for i in range(n)]
    fhir.routes = fhir_routes(meds)
    body = hook_request("patient-view", {}, full_prefetch(meds=orders, patient=patient(born="1980-02-02")))
    detail = _not_checked(cards_of(client.post(REVIEW, json=body | _server(fhir))))
    assert len(fhir.requests_for("Medication")) == MAX_MEDICATION_READS
    assert detail.count(f"more than {MAX_MEDICATION_READS} Medication reads in one call") == 2


def test_reads_stop_when_the_call_budget_is_spent() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json=medication("m1", "Baclofen 10 MG Oral Tablet"))

    async def run() -> Any:
        async with FhirFetcher("https://ehr.example.org/fhir", TOKEN, 1.0, 0.0, httpx.MockTransport(answer)) as f:
            return await read_medications(["Medication/m1"], f)

    got = asyncio.run(run())
    assert seen == [] and got.found.resources == []
    assert "time budget for FHIR reads used up" in got.why_not["Medication/m1"]


def test_a_contained_medication_needs_no_read(client: httpx.Client, fhir: StubServer) -> None:
    fhir.routes = fhir_routes([])
    draft = by_reference("b6", "#med")
    draft["contained"] = [medication("med", "Baclofen 10 MG Oral Tablet")]
    body = hook_request("order-sign", order_context(draft), full_prefetch())
    cards = cards_of(client.post(SIGN, json=body | _server(fhir)))
    check_card_invariants(cards)
    assert fhir.requests_for("Medication") == []
    assert all("#med" not in c["detail"] for c in cards if c["source"]["topic"]["code"] == "not-checked")
    assert any("baclofen" in c["summary"].lower() for c in cards)


def test_a_missing_contained_medication_is_named(client: httpx.Client) -> None:
    body = hook_request("order-sign", order_context(by_reference("b7", "#nowhere")), full_prefetch())
    detail = _not_checked(cards_of(client.post(SIGN, json=body)))
    assert "nowhere (drug of MedicationRequest/b7): contained Medication" in detail
