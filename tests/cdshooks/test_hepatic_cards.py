"""Hepatic function over CDS Hooks for tizanidine, metaxalone and diazepam, against the native API.

Each FHIR chart is answered as /v1/evaluate answers the native patient with the hepatic_impairment
the liver tests grade to: the same hepatic rules and the same start. The cards name the facts.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.cdshooks.conftest import cards_of, check_card_invariants
from tests.cdshooks.fhirdata import bundle, full_prefetch, hook_request, med_request, observation, order_context

DOSING = "/cds-services/muscle-relaxant-dosing"
DRUGS = {
    "tizanidine": "Tizanidine 4 MG Oral Tablet",
    "metaxalone": "Metaxalone 800 MG Oral Tablet",
    "diazepam": "Diazepam 5 MG Oral Tablet",
}
BORN = "1980-02-02"
NATIVE = {"sex": "female", "birth_date": BORN, "weight_kg": 70, "height_cm": 165, "egfr_ml_min_1_73m2": 90.0}


def lab(code: str, value: float, unit: str, *, low: float | None = None, high: float | None = None) -> dict[str, Any]:
    o = observation(code, value, unit, "2026-11-01")
    o["referenceRange"] = [{k: {"value": v} for k, v in (("low", low), ("high", high)) if v is not None}]
    return o


NORMAL = {"bilirubin": lab("1975-2", 0.7, "mg/dL", high=1.2), "ast": lab("1920-8", 28, "U/L", high=40)}
ALT_HIGH = {**NORMAL, "alt": lab("1742-6", 88, "U/L", high=40)}
SYNTHETIC = {  # albumin 2.5 and INR 2.5: Child-Pugh lower bound 9, class B
    **NORMAL,
    "albumin": lab("1751-7", 2.5, "g/dL", low=3.5),
    "inr": lab("6301-6", 2.5, "{INR}", high=1.1),
}


def _select(client: httpx.Client, drug: str, **keys: Any) -> list[dict[str, Any]]:
    draft = med_request("draft-1", DRUGS[drug], status="draft")
    prefetch = full_prefetch(egfr=90.0)
    prefetch["patient"]["birthDate"] = BORN
    prefetch.update(
        {k: bundle(v) if isinstance(v, dict) and v.get("resourceType") != "Bundle" else v for k, v in keys.items()}
    )
    body = hook_request("order-select", order_context(draft, selected=["MedicationRequest/draft-1"]), prefetch)
    cards = cards_of(client.post(DOSING, json=body))
    check_card_invariants(cards)
    return cards


def _native(client: httpx.Client, drug: str, hepatic: str) -> dict[str, Any]:
    body = {"patient": {**NATIVE, "hepatic_impairment": hepatic}, "drug": {"name": drug, "action": "start"}}
    resp = client.post("/v1/evaluate", json=body)
    assert resp.status_code == 200, resp.text
    out: dict[str, Any] = resp.json()
    return out


def _hepatic_rules(cards: list[dict[str, Any]]) -> set[str]:
    return {
        m.group(1)
        for c in cards
        if c["source"]["topic"]["code"] == "hepatic"
        for m in [re.search(r"- Rule `([^`]+)`", c["detail"])]
        if m
    }


def _start_mg_day(cards: list[dict[str, Any]]) -> float | None:
    dosing = [c for c in cards if c["source"]["topic"]["code"] == "dosing"]
    assert len(dosing) <= 1
    if not dosing:
        return None
    m = re.search(r"\(([\d.]+) mg/day\) to start", dosing[0]["summary"])
    assert m, dosing[0]["summary"]
    return float(m.group(1))


def _same_as_native(client: httpx.Client, drug: str, cards: list[dict[str, Any]], hepatic: str) -> None:
    native = _native(client, drug, hepatic)
    expected = {f["rule_id"] for f in native["findings"] if f["category"] == "hepatic"}
    assert _hepatic_rules(cards) == expected
    start = native["dose"]["start"]["total_daily_mg"] if native["dose"] else None
    assert _start_mg_day(cards) == start


def _gaps(cards: list[dict[str, Any]]) -> str:
    return " ".join(c["detail"] for c in cards if c["source"]["topic"]["code"] == "not-checked")


@pytest.mark.parametrize("drug", sorted(DRUGS))
def test_normal_liver_tests_and_no_liver_disease_say_so_once_and_keep_the_normal_start(
    client: httpx.Client, drug: str
) -> None:
    cards = _select(client, drug, **NORMAL)
    said = [c for c in cards if "no hepatic impairment documented" in c["detail"]]
    assert len(said) == 1 and said[0]["indicator"] == "info", [c["summary"] for c in said]
    assert not [c for c in cards if c["source"]["topic"]["code"] == "hepatic"]
    assert "hepatic function" not in _gaps(cards)
    _same_as_native(client, drug, cards, "none")


@pytest.mark.parametrize(
    ("drug", "facts", "grade"),
    [(d, ALT_HIGH, "mild") for d in sorted(DRUGS)] + [(d, SYNTHETIC, "moderate") for d in sorted(DRUGS)],
)
def test_abnormal_liver_tests_fire_the_hepatic_rules_as_the_native_grade_does(
    client: httpx.Client, drug: str, facts: dict[str, Any], grade: str
) -> None:
    cards = _select(client, drug, **facts)
    _same_as_native(client, drug, cards, grade)
    hepatic = [c for c in cards if c["source"]["topic"]["code"] == "hepatic"]
    assert hepatic, "an abnormal liver test must reach a hepatic rule"
    for card in hepatic:  # every hepatic card names the values, the ULN and the grading basis
        assert f"hepatic impairment {grade}" in card["detail"]
        if facts is ALT_HIGH:
            assert "ALT 88 U/L (ULN 40" in card["detail"] and "ALT above ULN" in card["detail"]
        else:
            assert "Child-Pugh lower bound 9 (class B)" in card["detail"] and "INR 2.5" in card["detail"]


@pytest.mark.parametrize("drug", sorted(DRUGS))
def test_a_recorded_child_pugh_class_c_is_severe_hepatic_impairment(client: httpx.Client, drug: str) -> None:
    panel = {
        "resourceType": "Observation",
        "id": "cp-1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "98153-0"}]},
        "effectiveDateTime": "2026-10-01",
        "valueString": "C",
    }
    cards = _select(client, drug, child_pugh=panel, **NORMAL)
    _same_as_native(client, drug, cards, "severe")
    assert any("recorded Child-Pugh class C" in c["detail"] for c in cards if c["source"]["topic"]["code"] == "hepatic")


@pytest.mark.parametrize("drug", sorted(DRUGS))
def test_no_liver_tests_and_no_liver_disease_keep_the_not_supplied_card(client: httpx.Client, drug: str) -> None:
    cards = _select(client, drug)
    assert f"hepatic function (needed for {drug})" in _gaps(cards)
    assert f"{drug}.hepatic.unknown" in _hepatic_rules(cards)
    assert not any("no hepatic impairment documented" in c["detail"] for c in cards)
    _same_as_native(client, drug, cards, "unknown")
