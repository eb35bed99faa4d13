"""Cards word a written frequency as the order did: "every 8 hours" from an interval, "three times daily" otherwise."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.cdshooks.conftest import card_with_rule, cards_of, check_card_invariants
from tests.cdshooks.fhirdata import baclofen_draft, full_prefetch, hook_request, order_context

SIGN = "/cds-services/muscle-relaxant-dosing-order-sign"


def _sign(client: httpx.Client, draft: dict[str, Any]) -> list[dict[str, Any]]:
    cards = cards_of(client.post(SIGN, json=hook_request("order-sign", order_context(draft), full_prefetch())))
    check_card_invariants(cards)
    return cards


@pytest.mark.parametrize(
    "timing",
    [
        {"repeat": {"frequency": 1, "period": 8, "periodUnit": "h"}},
        {"code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation", "code": "Q8H"}]}},
    ],
)
def test_an_interval_order_is_worded_every_8_hours(client: httpx.Client, timing: dict[str, Any]) -> None:
    draft = baclofen_draft(dose=30, per_day=3)
    draft["dosageInstruction"][0]["timing"] = timing
    over = card_with_rule(_sign(client, draft), "engine.dose-range")
    assert "90 mg/day" in over["summary"]
    assert "The order is 30 mg every 8 hours (90 mg/day)" in over["detail"]
    assert "written as 30 mg every 8 hours" in over["detail"]
    assert "times a day" not in over["detail"]


def test_a_count_per_day_is_worded_three_times_daily(client: httpx.Client) -> None:
    over = card_with_rule(_sign(client, baclofen_draft(dose=30, per_day=3)), "engine.dose-range")
    assert "The order is 30 mg three times daily (90 mg/day)" in over["detail"]
    assert "Suggested start for this patient: 5 mg once daily" in over["detail"]  # eGFR 42: moderate band
    assert "every 8 hours" not in over["detail"]
