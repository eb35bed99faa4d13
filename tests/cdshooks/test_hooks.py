"""Each hook with realistic FHIR R4 requests, against the running app (black box over HTTP)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.cdshooks.conftest import card_with_rule, cards_of, check_card_invariants
from tests.cdshooks.fhirdata import (
    PID,
    RXNORM,
    baclofen_draft,
    bundle,
    full_prefetch,
    hook_request,
    med_request,
    observation,
    order_context,
    patient,
)
from tests.cdshooks.servers import RunningApp, StubServer, fhir_routes, searchset

DOSING = "/cds-services/muscle-relaxant-dosing"
REVIEW = "/cds-services/muscle-relaxant-review"
TOKEN = "sandbox-fhir-access-token-4f1e"


def _dose_action(card: dict[str, Any]) -> dict[str, Any]:
    (suggestion,) = card["suggestions"]
    (action,) = suggestion["actions"]
    assert isinstance(action, dict)
    return action


def test_sandbox_shaped_order_select(client: httpx.Client, fhir: StubServer) -> None:
    """Shaped like cds-hooks/sandbox: untyped draftOrders Bundle, {pill} dose in the STU3 place, only
    the prefetch keys it could satisfy, and fhirAuthorization for the rest."""
    draft = {
        "resourceType": "MedicationRequest",
        "id": "request-123",
        "authoredOn": "2026-11-21",
        "status": "draft",
        "subject": {"reference": f"Patient/{PID}"},
        "dosageInstruction": [
            {
                "doseQuantity": {"value": 1, "system": "http://unitsofmeasure.org", "code": "{pill}"},
                "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}},
            }
        ],
        "medicationCodeableConcept": {
            "text": "Baclofen 10 MG Oral Tablet",
            "coding": [{"display": "Baclofen 10 MG Oral Tablet", "system": RXNORM, "code": "197391"}],
        },
    }
    fhir.routes = fhir_routes(
        [patient(born="1980-02-02"), observation("33914-3", 41, "mL/min/{1.73_m2}", "2024-05-01")]
    )
    body = {
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "hook": "order-select",
        "fhirServer": fhir.url,
        "context": {
            "patientId": PID,
            "userId": "Practitioner/COREPRACTITIONER1",
            "selections": ["MedicationRequest/request-123"],
            "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": draft}]},
        },
        "fhirAuthorization": {
            "access_token": TOKEN,
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": "patient/*.read user/*.read",
            "subject": "48163c5e-88b5-4cb3-92d3-23b800caa927",
        },
        "prefetch": {"patient": patient(born="1980-02-02"), "medications": searchset([])},
    }
    cards = cards_of(client.post(DOSING, json=body))
    check_card_invariants(cards)
    renal = card_with_rule(cards, "baclofen.renal.moderate")
    assert renal["indicator"] == "warning"
    dose = next(c for c in cards if c["source"]["topic"]["code"] == "dosing")
    action = _dose_action(dose)
    assert action["type"] == "update"
    resource = action["resource"]
    assert resource["id"] == "request-123" and resource["resourceType"] == "MedicationRequest"
    assert resource["medicationCodeableConcept"] == draft["medicationCodeableConcept"]  # whole resource
    assert resource["subject"] == draft["subject"]
    (dosage,) = resource["dosageInstruction"]
    quantity = dosage["doseAndRate"][0]["doseQuantity"]
    assert quantity["code"] == "mg"
    assert f"{quantity['value']:g} mg" in dose["suggestions"][0]["label"]
    # keys the sandbox did not prefetch were read from fhirServer with the bearer token; the others were not
    fetched = {s.path.strip("/").split("/")[0] for s in fhir.seen}
    assert fetched == {"Observation", "Condition", "AllergyIntolerance", "MedicationStatement"}
    assert all(s.headers["authorization"] == f"Bearer {TOKEN}" for s in fhir.seen)


def test_card_says_what_v1_evaluate_says(client: httpx.Client) -> None:
    """Same patient through CDS Hooks and /v1/evaluate: same findings, severities, dose and maximum."""
    prefetch = full_prefetch(egfr=42.0)
    cards = cards_of(
        client.post(
            DOSING,
            json=hook_request(
                "order-select", order_context(baclofen_draft(), selected=["MedicationRequest/request-123"]), prefetch
            ),
        )
    )
    native = client.post(
        "/v1/evaluate",
        json={
            "patient": {
                "birth_date": "1961-03-14",
                "sex": "female",
                "egfr_ml_min_1_73m2": 42.0,
                "weight_kg": 70,
                "height_cm": 165,
            },
            "drug": {"name": "baclofen", "action": "start"},
        },
    ).json()
    assert native["findings"], "the comparison needs a patient with findings"
    for finding in native["findings"]:
        card = card_with_rule(cards, finding["rule_id"])
        assert card["indicator"] == finding["severity"]
        assert finding["summary"][:100] in card["summary"]
        assert finding["detail"][:60] in card["detail"]
        assert card["source"]["topic"]["code"] == finding["category"]
        linked = [src for src in finding["sources"] if src.get("url")]
        if linked:  # label and url of the same citation
            assert (card["source"]["label"], card["source"]["url"]) == (linked[0]["label"], linked[0]["url"])
    finding_cards = [c for c in cards if c["source"]["topic"]["code"] not in ("dosing", "not-checked")]
    assert len(finding_cards) == len(native["findings"])
    dose = next(c for c in cards if c["source"]["topic"]["code"] == "dosing")
    start = native["dose"]["start"]
    label = dose["suggestions"][0]["label"]
    assert f"{start['dose_mg']:g} mg" in label and f"({start['total_daily_mg']:g} mg/day)" in label
    assert f"max {native['dose']['max_daily_mg']:g} mg/day" in dose["summary"]
    quantity = _dose_action(dose)["resource"]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]
    assert quantity["value"] == start["dose_mg"]


def test_order_sign_checks_the_written_dose(client: httpx.Client) -> None:
    draft = med_request(
        "rx-9", "Baclofen 10 MG Oral Tablet", status="draft", dose=2, unit="{pill}", per_day=3, r4_dose=False
    )
    body = hook_request(
        "order-sign", order_context(draft), full_prefetch(egfr=42.0, patient=patient(born="1980-02-02"))
    )
    cards = cards_of(client.post(DOSING, json=body))
    check_card_invariants(cards)
    card = card_with_rule(cards, "engine.dose-range")
    # 2 x 10 mg tablets 3 times a day = 60 mg/day > 40 mg/day (moderate renal band): a renal cap is a hard limit
    assert card["indicator"] == "critical"
    assert "60 mg/day" in card["summary"]
    action = _dose_action(card)
    assert action["resource"]["id"] == "rx-9" and card["selectionBehavior"] == "at-most-one"
    assert card["overrideReasons"] and all(r["display"] for r in card["overrideReasons"])


def test_order_sign_within_range_has_no_dose_range_card(client: httpx.Client) -> None:
    draft = baclofen_draft(dose=2.5, per_day=3)
    body = hook_request(
        "order-sign", order_context(draft), full_prefetch(egfr=42.0, patient=patient(born="1980-02-02"))
    )
    cards = cards_of(client.post(DOSING, json=body))
    assert not [c for c in cards if "- Rule `engine.dose-range`" in c["detail"]]
    assert card_with_rule(cards, "baclofen.renal.moderate")["indicator"] == "warning"


def test_non_selected_drafts_count_as_co_medications(client: httpx.Client) -> None:
    other = med_request("rx-cbz", "Cyclobenzaprine hydrochloride 10 MG Oral Tablet", status="draft", rxcui="828348")
    ctx = order_context(baclofen_draft(), other, selected=["MedicationRequest/request-123"])
    cards = cards_of(client.post(DOSING, json=hook_request("order-select", ctx, full_prefetch(egfr=95.0))))
    check_card_invariants(cards)
    assert card_with_rule(cards, "baclofen.duplicate.muscle-relaxant")["indicator"] == "info"
    assert card_with_rule(cards, "baclofen.interaction.muscle-relaxant")["indicator"] == "warning"
    assert not any("- Rule `cyclobenzaprine." in c["detail"] for c in cards), "only the selection is evaluated"
    # order-sign evaluates every draft
    signed = cards_of(client.post(DOSING, json=hook_request("order-sign", ctx, full_prefetch(egfr=95.0))))
    assert any("- Rule `cyclobenzaprine." in c["detail"] for c in signed)


def test_patient_view_reviews_baclofen_after_egfr_fell(client: httpx.Client) -> None:
    on_baclofen = med_request("rx-bac", "Baclofen 10 MG Oral Tablet", dose=20, per_day=3)
    egfr = bundle(
        observation("33914-3", 88, "mL/min/{1.73_m2}", "2023-01-10"),
        observation("33914-3", 38, "mL/min/{1.73_m2}", "2024-09-02"),
    )
    prefetch = full_prefetch(meds=[on_baclofen], patient=patient(born="1980-02-02"), egfr=None)
    prefetch["egfr"] = egfr
    cards = cards_of(client.post(REVIEW, json=hook_request("patient-view", {}, prefetch)))
    check_card_invariants(cards)
    renal = card_with_rule(cards, "baclofen.renal.moderate")
    assert "38 mL/min" in renal["detail"] and "2024-09-02" in renal["detail"]  # the latest value, with its date
    over = card_with_rule(cards, "engine.dose-range")
    assert over["indicator"] == "critical" and "60 mg/day" in over["summary"]  # above the renal cap of 40 (B3)
    assert "suggestions" not in over  # an active prescription is reviewed, not rewritten
    assert not [c for c in cards if "- Rule `baclofen.duplicate.same-drug`" in c["detail"]], (
        "its own order is no duplicate"
    )


def _tizanidine_rules(running: RunningApp) -> bool:
    return "tizanidine" in running.state.engine.pack.drugs and any(
        r.startswith("tizanidine.interaction.cyp1a2") for r in running.state.engine.pack.rules
    )


def test_tizanidine_with_new_ciprofloxacin(client: httpx.Client, running: RunningApp) -> None:
    assert _tizanidine_rules(running), "the pack must hold tizanidine's CYP1A2 rules"
    tiz = med_request("rx-tiz", "tizanidine 4 MG Oral Tablet", dose=4, per_day=3)
    cipro = med_request("rx-cip", "Ciprofloxacin 500 MG Oral Tablet", dose=500, per_day=2)
    # patient-view: both active
    review = cards_of(
        client.post(REVIEW, json=hook_request("patient-view", {}, full_prefetch(egfr=95.0, meds=[tiz, cipro])))
    )
    assert card_with_rule(review, "tizanidine.interaction.cyp1a2-strong")["indicator"] == "critical"
    # order-select: ciprofloxacin is the new order; only what it adds is reported
    draft = {**cipro, "id": "rx-new", "status": "draft"}
    ctx = order_context(draft, selected=["MedicationRequest/rx-new"])
    cards = cards_of(client.post(DOSING, json=hook_request("order-select", ctx, full_prefetch(egfr=95.0, meds=[tiz]))))
    check_card_invariants(cards)
    card = card_with_rule(cards, "tizanidine.interaction.cyp1a2-strong")
    assert card["indicator"] == "critical" and "Ciprofloxacin" in card["detail"]
    assert all("- Rule `tizanidine.interaction.cyp1a2" in c["detail"] for c in cards if c["indicator"] != "info")


def test_nothing_to_say_is_an_empty_card_list(client: httpx.Client) -> None:
    amoxicillin = med_request("rx-amx", "Amoxicillin 500 MG Oral Capsule", status="draft", dose=500, per_day=3)
    ctx = order_context(amoxicillin, selected=["MedicationRequest/rx-amx"])
    resp = client.post(DOSING, json=hook_request("order-select", ctx, full_prefetch()))
    assert resp.status_code == 200 and resp.json() == {"cards": []}


def test_every_call_is_audited_before_the_answer(client: httpx.Client, running: RunningApp) -> None:
    body = hook_request(
        "order-select",
        order_context(baclofen_draft(), selected=["MedicationRequest/request-123"]),
        full_prefetch(),
        fhirServer="http://127.0.0.1:9",
        fhirAuthorization={"access_token": "secret-token-never-stored", "token_type": "Bearer"},
    )
    cards = cards_of(client.post(DOSING, json=body))
    rows = [r for r in running.state.audit.list(limit=1000) if r["hook_instance"] == body["hookInstance"]]
    assert len(rows) == 1
    row = rows[0]
    assert row["endpoint"] == DOSING and row["hook"] == "order-select" and row["service_id"] == "muscle-relaxant-dosing"
    assert row["patient_ref_hash"] and row["patient_ref_hash"] != PID
    assert row["drug"] == "baclofen"
    assert {c["uuid"] for c in row["response"]["cards"]} == {c["uuid"] for c in cards}
    assert "secret-token-never-stored" not in json.dumps(row)


def test_an_order_whose_drug_cannot_be_identified_is_reported(client: httpx.Client) -> None:
    draft = {
        "resourceType": "MedicationRequest",
        "id": "rx-ref",
        "status": "draft",
        "intent": "order",
        "medicationReference": {"reference": "Medication/not-in-the-request"},
    }
    ctx = order_context(draft, selected=["MedicationRequest/rx-ref"])
    cards = cards_of(client.post(DOSING, json=hook_request("order-select", ctx, full_prefetch())))
    (card,) = cards
    assert card["indicator"] == "info" and card["source"]["topic"]["code"] == "not-checked"
    assert "MedicationRequest/rx-ref" in card["summary"]


def test_two_drafts_of_one_drug_are_one_card_with_the_summed_dose(client: httpx.Client) -> None:
    from tests.cdshooks.fhirdata import baclofen_draft, full_prefetch, hook_request, order_context

    ctx = order_context(baclofen_draft("a", dose=15, per_day=3), baclofen_draft("b", dose=15, per_day=3))
    cards = cards_of(client.post(f"{DOSING}-order-sign", json=hook_request("order-sign", ctx, full_prefetch())))
    check_card_invariants(cards)
    ranged = [c for c in cards if c["source"]["topic"]["code"] == "dose-range"]
    assert len(ranged) == 1, [c["summary"] for c in cards]
    assert "90 mg/day" in ranged[0]["summary"]


def test_patient_view_does_not_reflag_a_maintenance_dose(client: httpx.Client) -> None:
    from tests.cdshooks.fhirdata import full_prefetch, hook_request, med_request

    active = med_request("m1", "baclofen 10 MG Oral Tablet", dose=10, per_day=3)
    body = hook_request("patient-view", {}, full_prefetch(egfr=95, meds=[active]))
    cards = cards_of(client.post("/cds-services/muscle-relaxant-review", json=body))
    assert not any("above the suggested starting dose" in c["summary"] for c in cards)
