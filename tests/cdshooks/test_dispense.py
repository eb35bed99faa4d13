"""Accepting a new dose brings a dispense quantity for that dose, or none and the reason: never the old one."""

from __future__ import annotations

from typing import Any

import httpx

from tests.cdshooks.conftest import assert_valid_r4, cards_of, check_card_invariants
from tests.cdshooks.fhirdata import UCUM, full_prefetch, hook_request, med_request, order_context

SELECT = "/cds-services/muscle-relaxant-dosing-order-select"
TABLETS = {"unit": "tablet", "system": UCUM, "code": "{tbl}"}
DAYS_30 = {"value": 30, "unit": "days", "system": UCUM, "code": "d"}


def _draft(product: str, dispense: dict[str, Any], dose: float = 20) -> dict[str, Any]:
    draft = med_request("d1", product, status="draft", dose=dose, per_day=3)
    draft["dispenseRequest"] = {"numberOfRepeatsAllowed": 1, **dispense}
    return draft


def _suggested(client: httpx.Client, draft: dict[str, Any]) -> tuple[dict[str, Any], str]:
    ctx = order_context(draft, selected=["MedicationRequest/d1"])
    cards = cards_of(client.post(SELECT, json=hook_request("order-select", ctx, full_prefetch(egfr=95.0))))
    check_card_invariants(cards)  # every suggested resource parses as R4 (fhir.resources R4B)
    (dosing,) = [c for c in cards if c["source"]["topic"]["code"] == "dosing"]
    assert "5 mg three times daily" in dosing["summary"]  # normal renal function: the labelled start
    (action,) = dosing["suggestions"][0]["actions"]
    assert_valid_r4(action["resource"])
    return action["resource"], action["description"]


def test_quantity_is_recomputed_from_the_supply_duration(client: httpx.Client) -> None:
    draft = _draft(
        "Baclofen 5 MG Oral Tablet", {"quantity": {"value": 360, **TABLETS}, "expectedSupplyDuration": DAYS_30}
    )
    resource, description = _suggested(client, draft)
    dispense = resource["dispenseRequest"]
    assert dispense["quantity"] == {"value": 90, **TABLETS}  # 1 tablet x 3 a day x 30 days
    assert dispense["expectedSupplyDuration"] == DAYS_30 and dispense["numberOfRepeatsAllowed"] == 1
    assert "90 tablets for 30 days (was 360)" in description


def test_quantity_is_recomputed_from_the_supply_the_old_quantity_implied(client: httpx.Client) -> None:
    draft = _draft("Baclofen 5 MG Oral Tablet", {"quantity": {"value": 180, **TABLETS}})  # 12 a day: 15 days
    resource, description = _suggested(client, draft)
    assert resource["dispenseRequest"]["quantity"]["value"] == 45
    assert "expectedSupplyDuration" not in resource["dispenseRequest"]
    assert "45 tablets for 15 days (was 180)" in description and "implied by the old quantity" in description


def test_an_uneven_supply_is_rounded_up_to_whole_tablets(client: httpx.Client) -> None:
    draft = _draft("Baclofen 5 MG Oral Tablet", {"quantity": {"value": 100, **TABLETS}})  # 12 a day: 8.33 days
    resource, _ = _suggested(client, draft)
    assert resource["dispenseRequest"]["quantity"]["value"] == 25  # 3 a day x 8.33 = 25.0


def test_split_tablets_drop_the_quantity_and_say_why(client: httpx.Client) -> None:
    draft = _draft(
        "Baclofen 10 MG Oral Tablet", {"quantity": {"value": 180, **TABLETS}, "expectedSupplyDuration": DAYS_30}
    )
    resource, description = _suggested(client, draft)
    assert resource["dispenseRequest"] == {"numberOfRepeatsAllowed": 1}
    assert "dispense quantity removed" in description
    assert "5 mg is not a whole number of 10 mg tablets (split tablets)" in description


def test_a_dosage_schedule_drops_the_quantity_and_says_why(client: httpx.Client) -> None:
    draft = _draft(
        "Baclofen 5 MG Oral Tablet", {"quantity": {"value": 360, **TABLETS}, "expectedSupplyDuration": DAYS_30}
    )
    first = draft["dosageInstruction"][0]
    draft["dosageInstruction"] = [{**first, "sequence": 1}, {**first, "sequence": 2}]
    resource, description = _suggested(client, draft)
    assert "quantity" not in resource["dispenseRequest"]
    assert "expectedSupplyDuration" not in resource["dispenseRequest"]
    assert "2 dosage lines (a schedule)" in description


def test_a_quantity_in_mg_is_not_a_tablet_count(client: httpx.Client) -> None:
    draft = _draft(
        "Baclofen 5 MG Oral Tablet", {"quantity": {"value": 1800, "unit": "mg", "system": UCUM, "code": "mg"}}
    )
    resource, description = _suggested(client, draft)
    assert "quantity" not in resource["dispenseRequest"]
    assert "not a count of tablets" in description
