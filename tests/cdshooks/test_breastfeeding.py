"""Breastfeeding status (LOINC 63895-7) as the native breastfeeding field, and over CDS Hooks."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from engine.fhir import build_profile
from tests.cdshooks.conftest import card_with_rule, cards_of, check_card_invariants
from tests.cdshooks.fhirdata import (
    LOINC,
    baclofen_draft,
    bundle,
    full_prefetch,
    hook_request,
    order_context,
    patient,
)

DOSING = "/cds-services/muscle-relaxant-dosing"


def status(answer: dict[str, Any], when: str = "2026-11-01") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"bf-{when}",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "63895-7", "display": "Breastfeeding status"}]},
        "effectiveDateTime": when,
        **answer,
    }


def coded(code: str, display: str) -> dict[str, Any]:
    return {"valueCodeableConcept": {"coding": [{"system": LOINC, "code": code, "display": display}]}}


YES = coded("LA29252-6", "Currently breastfeeding")
NO = coded("LA29253-4", "Not currently breastfeeding")


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (YES, True),
        (NO, False),
        (coded("LA4489-6", "Unknown"), None),
        ({"valueBoolean": True}, True),
        ({"valueString": "not breastfeeding"}, False),
    ],
)
def test_breastfeeding_status_answers_map_to_the_native_field(answer: dict[str, Any], expected: bool | None) -> None:
    profile = build_profile([patient(born="1994-05-05"), status(answer)])
    assert profile.patient.breastfeeding is expected
    assert any(e.startswith("breastfeeding status ") and "63895-7" in e for e in profile.evidence)


def test_the_newest_answer_wins_and_an_unreadable_one_is_named() -> None:
    profile = build_profile(
        [
            patient(born="1994-05-05"),
            status(YES, "2025-01-01"),
            status(NO, "2026-10-01"),
            status({"valueString": "sometimes"}, "2026-11-01"),
        ]
    )
    assert profile.patient.breastfeeding is False
    assert any("'sometimes' not understood" in n for n in profile.notes)


def _select(client: httpx.Client, **keys: Any) -> list[dict[str, Any]]:
    prefetch = full_prefetch(egfr=95.0)
    prefetch["patient"]["birthDate"] = "1994-05-05"
    prefetch.update(keys)
    body = hook_request(
        "order-select", order_context(baclofen_draft(), selected=["MedicationRequest/request-123"]), prefetch
    )
    cards = cards_of(client.post(DOSING, json=body))
    check_card_invariants(cards)
    return cards


def test_currently_breastfeeding_fires_the_baclofen_lactation_rule(client: httpx.Client) -> None:
    cards = _select(client, breastfeeding=bundle(status(YES)))
    card = card_with_rule(cards, "baclofen.lactation")
    assert card["indicator"] == "info"
    assert "breastfeeding status currently breastfeeding (LOINC 63895-7, 2026-11-01)" in card["detail"]


def test_not_breastfeeding_gives_no_lactation_card_and_no_not_checked(client: httpx.Client) -> None:
    cards = _select(client, breastfeeding=bundle(status(NO)))
    assert not [c for c in cards if c["source"]["topic"]["code"] == "lactation"]
    gaps = " ".join(c["detail"] for c in cards if c["source"]["topic"]["code"] == "not-checked")
    assert "breastfeeding" not in gaps


def test_breastfeeding_not_prefetched_and_no_fhir_server_is_said_not_checked(client: httpx.Client) -> None:
    prefetch = full_prefetch(egfr=95.0)
    del prefetch["breastfeeding"]
    body = hook_request(
        "order-select", order_context(baclofen_draft(), selected=["MedicationRequest/request-123"]), prefetch
    )
    cards = cards_of(client.post(DOSING, json=body))
    gaps = [c for c in cards if c["source"]["topic"]["code"] == "not-checked"]
    assert len(gaps) == 1 and "breastfeeding status" in gaps[0]["detail"]


@pytest.mark.parametrize(("gender", "named"), [("male", False), ("female", True), ("unknown", True)])
def test_pregnancy_and_breastfeeding_not_read_are_named_except_for_a_man(
    client: httpx.Client, gender: str, named: bool
) -> None:
    prefetch = full_prefetch(egfr=95.0)
    prefetch["patient"] = patient(gender=gender, born="1994-05-05")
    del prefetch["breastfeeding"], prefetch["pregnancy"]
    body = hook_request(
        "order-select", order_context(baclofen_draft(), selected=["MedicationRequest/request-123"]), prefetch
    )
    cards = cards_of(client.post(DOSING, json=body))
    check_card_invariants(cards)
    gaps = " ".join(c["detail"] for c in cards if c["source"]["topic"]["code"] == "not-checked")
    assert ("breastfeeding status" in gaps) is named
    assert ("pregnancy status" in gaps) is named
