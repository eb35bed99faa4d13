"""A FHIR DSTU2 ``MedicationOrder`` is not read, and every hook says so on a "Not checked" card.

This service reads FHIR R4. A DSTU2 order sent as a draft (order-select, order-sign) or on the
medication list (patient-view) used to be dropped without a word: the clinician saw no card, or
cards that looked complete without it.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.cdshooks.conftest import cards_of, check_card_invariants
from tests.cdshooks.fhirdata import PID, RXNORM, UCUM, baclofen_draft, bundle, full_prefetch, hook_request, med_request

DSTU2_WORDS = "FHIR DSTU2 resource, not read; this service reads FHIR R4"


def medication_order(rid: str = "mo-1", status: str = "draft") -> dict[str, Any]:
    """Shaped like the DSTU2 MedicationOrder example (hl7.org/fhir/DSTU2/medicationorder-example-f001)."""
    return {
        "resourceType": "MedicationOrder",
        "id": rid,
        "status": status,
        "patient": {"reference": f"Patient/{PID}"},
        "dateWritten": "2024-06-01",
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": "197446", "display": "carisoprodol 350 MG Oral Tablet"}],
            "text": "carisoprodol 350 MG Oral Tablet",
        },
        "dosageInstruction": [
            {
                "timing": {"repeat": {"frequency": 4, "period": 1, "periodUnits": "d"}},
                "doseQuantity": {"value": 350, "unit": "mg", "system": UCUM, "code": "mg"},
            }
        ],
    }


def _not_checked(cards: list[dict[str, Any]]) -> dict[str, Any]:
    check_card_invariants(cards)
    hits = [c for c in cards if c["source"]["topic"]["code"] == "not-checked"]
    assert len(hits) == 1, [c["summary"] for c in cards]
    assert hits[0]["indicator"] == "info"
    return hits[0]


def test_order_select_of_a_dstu2_draft_is_named_not_silent(client: httpx.Client) -> None:
    ctx = {"draftOrders": bundle(medication_order(), typed=False), "selections": ["MedicationOrder/mo-1"]}
    body = hook_request("order-select", ctx, full_prefetch())
    card = _not_checked(cards_of(client.post("/cds-services/muscle-relaxant-dosing-order-select", json=body)))
    assert "MedicationOrder/mo-1" in card["summary"]
    assert DSTU2_WORDS in card["detail"] and "carisoprodol" in card["detail"]


def test_order_sign_with_a_dstu2_draft_beside_an_r4_one(client: httpx.Client) -> None:
    ctx = {"draftOrders": bundle(baclofen_draft(), medication_order(), typed=False)}
    body = hook_request("order-sign", ctx, full_prefetch())
    got = cards_of(client.post("/cds-services/muscle-relaxant-dosing-order-sign", json=body))
    card = _not_checked(got)
    assert "MedicationOrder/mo-1" in card["detail"] and DSTU2_WORDS in card["detail"]
    assert any("baclofen" in c["summary"].lower() for c in got if c is not card), "the R4 draft is still checked"


def test_patient_view_with_a_dstu2_order_on_the_medication_list(client: httpx.Client) -> None:
    baclofen = med_request("mr-1", "Baclofen 10 MG Oral Tablet", dose=10, per_day=3)
    meds = bundle(baclofen, medication_order("mo-7", status="active"))
    body = hook_request("patient-view", {}, full_prefetch(egfr=25.0, medications=meds))
    card = _not_checked(cards_of(client.post("/cds-services/muscle-relaxant-review", json=body)))
    assert "MedicationOrder/mo-7" in card["detail"] and DSTU2_WORDS in card["detail"]


def test_patient_view_with_only_a_dstu2_order_still_answers(client: httpx.Client) -> None:
    body = hook_request("patient-view", {}, full_prefetch(medications=bundle(medication_order("mo-8", "active"))))
    card = _not_checked(cards_of(client.post("/cds-services/muscle-relaxant-review", json=body)))
    assert "MedicationOrder/mo-8" in card["summary"]
