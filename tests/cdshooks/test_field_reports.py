"""The field-report requests (``../shared/field-reports/fhir/``), each with what a clinician expects.

Each body was built from public FHIR R4, US Core, CDS Hooks and vendor examples and got a wrong or
silent answer once; the README beside them says what the right answer is. They are read in place
(``tests/needs.py``: skip locally without the shared folder, fail under CI).
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.cdshooks.conftest import cards_of, check_card_invariants
from tests.needs import shared_path

REPORTS = ("field-reports", "fhir")


def report(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(shared_path(*REPORTS, name).read_text(encoding="utf-8"))
    return body


def answer(client: httpx.Client, name: str) -> httpx.Response:
    body = report(name)
    service = "muscle-relaxant-review" if body["hook"] == "patient-view" else f"muscle-relaxant-dosing-{body['hook']}"
    return client.post(f"/cds-services/{service}", json=body)


def cards(client: httpx.Client, name: str) -> list[dict[str, Any]]:
    got = cards_of(answer(client, name))
    check_card_invariants(got)
    return got


def test_w1_intrathecal_order_gets_no_oral_advice(client: httpx.Client) -> None:
    got = cards(client, "W1-intrathecal-gets-oral-mg-regimen.json")
    assert len(got) == 1, [c["summary"] for c in got]
    (card,) = got
    assert "not covered by these rules: route intrathecal" in card["summary"]
    assert "suggestions" not in card
    assert " mg " not in card["summary"]
