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
from tests.cdshooks.fhirdata import observation
from tests.cdshooks.servers import StubServer, fhir_routes
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


def _summaries(got: list[dict[str, Any]]) -> str:
    return " | ".join(c["summary"] for c in got)


def test_w2_the_highest_dosage_step_is_checked(client: httpx.Client) -> None:
    got = cards(client, "W2-second-dosage-sequence-not-checked.json")
    assert "Ordered 105 mg/day of baclofen is above the labelled maximum of 80 mg/day" in _summaries(got)


def test_s3a_vendor_timing_code_tid_is_read(client: httpx.Client) -> None:
    got = cards(client, "S3a-timing-code-text-TID-not-read.json")
    assert "Ordered 60 mg/day" in _summaries(got)
    assert "Not checked: dose range" not in _summaries(got)


def test_s3b_time_of_day_counts_three_doses(client: httpx.Client) -> None:
    got = cards(client, "S3b-timeOfDay-not-read-overdose-missed.json")
    assert "Ordered 90 mg/day of baclofen is above the labelled maximum of 80 mg/day" in _summaries(got)


def test_w3a_egfr_below_30_is_severe(client: httpx.Client) -> None:
    got = cards(client, "W3a-egfr-less-than-30.json")
    assert "Severe renal impairment" in _summaries(got)
    assert "max 26.5 mg/day" in _summaries(got)
    assert any("treated as below 30" in c["detail"] for c in got)


def test_w3b_egfr_below_60_at_78_gets_beers(client: httpx.Client) -> None:
    got = cards(client, "W3b-egfr-less-than-60-older.json")
    assert got[0]["indicator"] == "critical" and "Beers" in got[0]["summary"]


def test_s4_unit_coded_in_snomed_is_read_from_its_text(client: httpx.Client) -> None:
    got = cards(client, "S4-unit-coded-in-snomed.json")
    assert "No creatinine or eGFR" not in _summaries(got)
    assert any("122 µmol/L" in c["detail"] for c in got)


def test_w8_egfr_under_mdrd_code_48642_3(client: httpx.Client) -> None:
    got = cards(client, "W8-egfr-48642-3-older-no-creatinine.json")
    assert got[0]["indicator"] == "critical" and "Beers" in got[0]["summary"]
    assert "Severe renal impairment" in _summaries(got)


def test_w8b_egfr_in_a_component(client: httpx.Client) -> None:
    got = cards(client, "W8b-egfr-in-components-f205.json")
    assert "Mild renal impairment" in _summaries(got)
    assert any("eGFR 60" in c["detail"] for c in got)


def test_w4_prefetch_for_another_patient_is_412(client: httpx.Client) -> None:
    resp = answer(client, "W4-patientId-mismatch-accepted.json")
    assert resp.status_code == 412
    outcome = resp.json()
    assert outcome["resourceType"] == "OperationOutcome"
    (issue,) = outcome["issue"]
    assert issue["expression"] == ["prefetch.patient"]
    assert "Patient/p1" in issue["diagnostics"] and "'p2'" in issue["diagnostics"]


def test_w4_a_resource_about_another_patient_is_left_out_visibly(client: httpx.Client) -> None:
    body = report("W4-patientId-mismatch-accepted.json")
    body["prefetch"]["patient"]["id"] = "p2"  # the Patient now matches; the eGFR is still p1's
    got = cards_of(client.post("/cds-services/muscle-relaxant-dosing-order-select", json=body))
    check_card_invariants(got)
    details = " ".join(c["detail"] for c in got)
    assert "Patient/p1" in details and "left out" in details
    assert "eGFR 90" not in details


def test_s7_selection_not_in_draft_orders_is_visible(client: httpx.Client) -> None:
    got = cards(client, "S7-selection-not-in-draftOrders-silent.json")
    assert any("MedicationRequest/typo" in c["summary"] + c["detail"] for c in got)


def test_s1_a_product_code_alone_is_identified_and_checked(client: httpx.Client) -> None:
    """RxNorm 197446 (carisoprodol 350 MG Oral Tablet) with no display: the terminology maps the
    product code to its ingredient, so the order gets carisoprodol's dosing, not silence."""
    got = cards(client, "S1-product-code-only-silent.json")
    dosing = [c for c in got if c["source"]["topic"]["code"] == "dosing"]
    assert dosing and dosing[0]["summary"].startswith("Carisoprodol"), _summaries(got)


def test_w6_medication_statement_counts(client: httpx.Client) -> None:
    got = cards(client, "W6-medicationstatement-ignored.json")
    assert "Opioid on the medication list" in _summaries(got)
    assert any("MedicationStatement" in c["detail"] or "Opioid" in c["summary"] for c in got)


def test_w7a_percocet_by_ndc_gives_the_opioid_interaction(client: httpx.Client) -> None:
    got = cards(client, "W7a-percocet-ndc-not-identified.json")
    interaction = [c for c in got if c["source"]["topic"]["code"] == "drug-interaction"]
    assert any("Opioid" in c["summary"] for c in interaction), _summaries(got)
    assert not any("not recognised" in c["summary"] for c in got), _summaries(got)


def test_w5b_dialysis_dependence_by_snomed_gives_the_dialysis_band(client: httpx.Client) -> None:
    got = cards(client, "W5b-dialysis-snomed-105502003.json")
    dosing = next(c for c in got if c["source"]["topic"]["code"] == "dosing")
    assert "(5 mg/day)" in dosing["summary"] and "max 5 mg/day" in dosing["summary"], dosing["summary"]
    assert any(c["source"]["topic"]["code"] == "renal" and "dialysis" in c["summary"] for c in got)


def test_s6_cirrhosis_on_the_problem_list_gives_the_baclofen_hepatic_card(client: httpx.Client) -> None:
    got = cards(client, "S6-cirrhosis-no-baclofen-hepatic-card.json")
    hepatic = [c for c in got if c["source"]["topic"]["code"] == "hepatic"]
    assert hepatic and hepatic[0]["indicator"] == "info", _summaries(got)


def test_w7b_medication_ingredients_are_drugs(client: httpx.Client) -> None:
    got = cards(client, "W7b-medication-ingredients-ignored.json")
    assert "sedative" in _summaries(got)


def test_stopped_and_entered_in_error_statements_do_not_count(client: httpx.Client) -> None:
    body = report("W6-medicationstatement-ignored.json")
    for status in ("stopped", "completed", "entered-in-error"):
        body["prefetch"]["medications"]["entry"][0]["resource"]["status"] = status
        got = cards_of(client.post("/cds-services/muscle-relaxant-dosing-order-select", json=body))
        assert "Opioid" not in _summaries(got), status


def test_w9_accepted_suggestion_keeps_prn_and_drops_the_old_dispense(client: httpx.Client) -> None:
    got = cards(client, "W9-update-drops-prn-keeps-dispense.json")
    draft = report("W9-update-drops-prn-keeps-dispense.json")["context"]["draftOrders"]["entry"][0]["resource"]
    card = next(c for c in got if "suggestions" in c)
    (action,) = card["suggestions"][0]["actions"]
    resource = action["resource"]
    first = resource["dosageInstruction"][0]
    old = draft["dosageInstruction"][0]
    for key in ("asNeededBoolean", "asNeededCodeableConcept", "additionalInstruction", "patientInstruction", "route"):
        if key in old:
            assert first[key] == old[key], key
    assert "quantity" not in resource.get("dispenseRequest", {})
    assert "expectedSupplyDuration" not in resource.get("dispenseRequest", {})
    assert "dispense quantity removed" in action["description"]
    assert "not a whole or half 10 mg tablet" in action["description"]  # 2.5 mg of a 10 mg tablet


def test_w10_low_criticality_intolerance_is_a_caution_naming_the_reaction(client: httpx.Client) -> None:
    got = cards(client, "W10-intolerance-called-hypersensitivity.json")
    assert all(c["indicator"] != "critical" for c in got), _summaries(got)
    caution = next(c for c in got if "intolerance" in c["summary"])
    assert caution["indicator"] == "warning" and "drowsiness" in caution["summary"]
    assert "AllergyIntolerance/a1" in caution["detail"]


def test_w10_the_same_entry_as_a_high_criticality_allergy_contraindicates(client: httpx.Client) -> None:
    body = report("W10-intolerance-called-hypersensitivity.json")
    entry = body["prefetch"]["allergies"]["entry"][0]["resource"]
    entry.update(type="allergy", criticality="high")
    got = cards_of(client.post(f"/cds-services/muscle-relaxant-dosing-{body['hook']}", json=body))
    assert got[0]["indicator"] == "critical" and "hypersensitivity" in got[0]["summary"].lower()


def test_s5_us_core_individual_sex_is_read(client: httpx.Client) -> None:
    got = cards(client, "S5-uscore-individual-sex-ignored.json")
    assert any("sex female" in c["detail"] for c in got)


def _pregnancy_body(**condition: Any) -> dict[str, Any]:
    body = report("W5a-pregnant-snomed-77386006.json")
    body["prefetch"]["conditions"]["entry"][0]["resource"].update(condition)
    return body


def _post(client: httpx.Client, body: dict[str, Any]) -> list[dict[str, Any]]:
    got = cards_of(client.post(f"/cds-services/muscle-relaxant-dosing-{body['hook']}", json=body))
    check_card_invariants(got)
    return got


def _pregnancy_cards(got: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in got if c["source"]["topic"]["code"] == "pregnancy"]


def test_w5a_undated_pregnancy_condition_warns_to_confirm_pregnancy(client: httpx.Client) -> None:
    got = cards(client, "W5a-pregnant-snomed-77386006.json")
    (warning,) = _pregnancy_cards(got)
    assert warning["indicator"] == "warning" and "confirm" in warning["summary"]
    assert "Condition/c1" in warning["detail"] and "Pregnant (finding)" in warning["detail"]
    assert "could be current and must be confirmed before prescribing baclofen" in warning["detail"]
    assert "- Rule `" not in warning["detail"], "no drug-specific pregnancy rule: pregnancy is not assumed"
    notes = next(c for c in got if c["source"]["topic"]["code"] == "not-checked")
    assert "pregnancy status" in notes["summary"], "the native pregnancy fact stays unknown"


def test_w5a_undated_pregnancy_condition_of_unknown_age_warns(client: httpx.Client) -> None:
    body = report("W5a-pregnant-snomed-77386006.json")
    del body["prefetch"]["patient"]["birthDate"]
    (warning,) = _pregnancy_cards(_post(client, body))
    assert warning["indicator"] == "warning" and "Condition/c1" in warning["detail"]


def test_w5a_undated_pregnancy_condition_at_58_is_only_not_checked(client: httpx.Client) -> None:
    import datetime as dt

    body = report("W5a-pregnant-snomed-77386006.json")
    body["prefetch"]["patient"]["birthDate"] = f"{dt.date.today().year - 58}-01-01"
    got = _post(client, body)
    assert _pregnancy_cards(got) == [] and all(c["indicator"] != "warning" for c in got)
    notes = next(c for c in got if c["source"]["topic"]["code"] == "not-checked")
    assert notes["indicator"] == "info" and "pregnancy status" in notes["summary"]
    assert "Condition/c1" in notes["detail"] and "over 55" in notes["detail"]


def test_w5a_pregnancy_condition_dated_over_42_weeks_ago_is_only_not_checked(client: httpx.Client) -> None:
    import datetime as dt

    got = _post(client, _pregnancy_body(recordedDate=(dt.date.today() - dt.timedelta(days=400)).isoformat()))
    assert _pregnancy_cards(got) == []
    notes = next(c for c in got if c["source"]["topic"]["code"] == "not-checked")
    assert "Condition/c1" in notes["detail"] and "over 42 weeks ago" in notes["detail"]


def test_w5a_recent_pregnancy_condition_warns_and_names_it(client: httpx.Client) -> None:
    import datetime as dt

    recent = (dt.date.today() - dt.timedelta(days=60)).isoformat()
    got = _post(client, _pregnancy_body(recordedDate=recent))
    preg = [c for c in got if c["source"]["topic"]["code"] == "pregnancy"]
    assert preg and "Condition/c1" in preg[0]["detail"]


def test_old_pregnancy_condition_in_a_woman_of_58_does_not_make_her_pregnant(client: httpx.Client) -> None:
    import datetime as dt

    body = _pregnancy_body(recordedDate=(dt.date.today() - dt.timedelta(days=60)).isoformat())
    body["prefetch"]["patient"]["birthDate"] = str(dt.date.today().year - 58) + "-01-01"
    got = _post(client, body)
    assert all(c["source"]["topic"]["code"] != "pregnancy" for c in got)
    assert any("over 55" in c["detail"] for c in got)


def test_s2_withdrawn_newest_result_is_replaced_by_the_valid_older_one(client: httpx.Client, fhir: StubServer) -> None:
    body = report("S2-newest-entered-in-error-hides-older.json")
    withdrawn = body["prefetch"]["egfr"]["entry"][0]["resource"]
    valid = observation("98979-8", 25, "mL/min/{1.73_m2}", "2026-10-01", pid="p1")
    fhir.routes = fhir_routes([withdrawn, valid])
    body["fhirServer"] = fhir.url
    got = _post(client, body)
    assert "Severe renal impairment" in _summaries(got)
    assert any("eGFR 25" in c["detail"] for c in got)
    searches = fhir.requests_for("Observation")
    (search,) = [r for r in searches if "98979-8" in r.query["code"][0]]
    assert search.query["status"] == ["final,amended,corrected,preliminary"]


def test_s2_without_a_fhir_server_the_withdrawn_result_is_said(client: httpx.Client) -> None:
    got = cards(client, "S2-newest-entered-in-error-hides-older.json")
    assert any("entered-in-error" in c["detail"] for c in got)


def test_fallback_search_values_are_percent_encoded() -> None:
    from engine.cdshooks.discovery import PREFETCH
    from engine.cdshooks.prefetch import fill

    url = fill(PREFETCH["egfr"], "p 1")
    assert "http%3A%2F%2Floinc.org%7C98979-8,http%3A%2F%2Floinc.org%7C62238-1" in url
    assert "patient=p%201" in url and "|" not in url


def test_a_renal_lab_older_than_the_default_max_age_is_stale_and_unknown() -> None:
    from engine.fhir import build_profile
    from engine.settings import Settings

    days = Settings().renal_lab_max_age_days
    assert days == 365
    body = report("W3a-egfr-less-than-30.json")
    resources = [body["prefetch"]["patient"], *(e["resource"] for e in body["prefetch"]["egfr"]["entry"])]
    import datetime as dt

    resources[1] = dict(resources[1], effectiveDateTime=(dt.date.today() - dt.timedelta(days=30)).isoformat())
    fresh = build_profile(resources, days)
    assert fresh.patient.egfr_ml_min_1_73m2 == 29.9 and not fresh.stale
    resources[1] = dict(resources[1], effectiveDateTime="2010-01-05")
    old = build_profile(resources, days)
    assert old.patient.egfr_ml_min_1_73m2 is None
    assert old.stale and "2010-01-05" in old.stale[0] and "treated as unknown" in old.stale[0]
