"""Hepatic function from liver tests and a recorded Child-Pugh class, as build_profile reads them."""

from __future__ import annotations

from typing import Any

import pytest

from engine.fhir import build_profile
from tests.cdshooks.fhirdata import LOINC, observation, patient


def lab(code: str, value: float, unit: str, *, low: float | None = None, high: float | None = None, **q: Any) -> Any:
    o = observation(code, value, unit, "2026-11-01")
    limits = {k: {"value": v} for k, v in (("low", low), ("high", high)) if v is not None}
    if limits:
        o["referenceRange"] = [limits]
    o["valueQuantity"].update(q)
    return o


def normal_odwg() -> list[dict[str, Any]]:
    return [lab("1975-2", 0.8, "mg/dL", high=1.2), lab("1920-8", 30, "U/L", high=40)]


def child_pugh(value: dict[str, Any], code: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "cp-1",
        "status": "final",
        "code": code or {"coding": [{"system": LOINC, "code": "98153-0", "display": "Child-Pugh panel"}]},
        "effectiveDateTime": "2026-10-01",
        **value,
    }


def hepatic(*resources: dict[str, Any]) -> tuple[str, str]:
    profile = build_profile([patient(), *resources])
    facts = " | ".join(e for e in profile.evidence if "hepatic" in e or "liver" in e)
    return profile.patient.hepatic_impairment, facts + " | " + " | ".join(profile.notes)


def test_alt_above_uln_is_not_normal_even_with_normal_bilirubin_and_ast() -> None:
    grade, facts = hepatic(*normal_odwg(), lab("1742-6", 88, "U/L", high=40))
    assert grade == "mild"
    assert "ALT above ULN" in facts and "ALT 88 U/L (ULN 40" in facts


def test_normal_bilirubin_ast_and_alt_are_no_hepatic_impairment_documented() -> None:
    grade, facts = hepatic(*normal_odwg(), lab("1742-6", 25, "U/L", high=40), lab("1751-7", 4.1, "g/dL", low=3.5))
    assert grade == "none"
    assert "no hepatic impairment documented" in facts and "ALT 25 U/L" in facts and "albumin 4.1 g/dL" in facts


def test_ast_above_uln_without_bilirubin_is_at_least_mild_and_says_it_may_be_worse() -> None:
    grade, facts = hepatic(lab("1920-8", 95, "U/L", high=40))
    assert grade == "mild"
    assert "may be higher" in facts


def test_normal_alt_alone_does_not_claim_normal_hepatic_function() -> None:
    grade, facts = hepatic(lab("1742-6", 20, "U/L", high=40))
    assert grade == "unknown"
    assert "not graded" in facts and "AST" in facts


def test_low_albumin_and_high_inr_give_a_child_pugh_b_lower_bound_read_as_moderate() -> None:
    grade, facts = hepatic(
        *normal_odwg(), lab("1751-7", 2.5, "g/dL", low=3.5), lab("6301-6", 2.5, "{INR}", low=0.9, high=1.1)
    )
    # bilirubin 0.8 (1) + albumin 2.5 (3) + INR 2.5 (3) + ascites and encephalopathy at their minimum (1 + 1)
    assert grade == "moderate"
    assert "Child-Pugh lower bound 9 (class B)" in facts and "ascites and encephalopathy not recorded" in facts
    assert "vitamin K antagonists" in facts


def test_si_units_are_converted_and_a_lower_bound_of_class_c_is_severe() -> None:
    grade, facts = hepatic(
        lab("1975-2", 60, "umol/L", high=21),  # 3.51 mg/dL: 3 points
        lab("1920-8", 30, "U/L", high=40),
        lab("1751-7", 25, "g/L", low=35),  # 2.5 g/dL: 3 points
        lab("34714-6", 2.5, "{INR}", high=1.2),
    )
    assert grade == "severe"
    assert "Child-Pugh lower bound 11 (class C)" in facts
    assert "total bilirubin 3.51 mg/dL" in facts and "converted from 60" in facts


def test_albumin_in_a_unit_we_do_not_know_is_not_scored_and_the_card_says_so() -> None:
    grade, facts = hepatic(*normal_odwg(), lab("1751-7", 25, "mg/mL", system="http://example.org/units"))
    assert grade == "none"  # nothing abnormal that could be read; the albumin is named as unusable
    assert "unit 'mg/ml' not understood" in facts


def test_an_inr_without_a_range_still_counts_by_the_child_pugh_cut_off() -> None:
    grade, facts = hepatic(*normal_odwg(), lab("6301-6", 1.9, "1"))
    assert grade == "mild"
    assert "INR 1.9 2 pt" in facts


def test_albumin_reported_below_a_cut_off_scores_as_below_it() -> None:
    grade, facts = hepatic(*normal_odwg(), lab("1751-7", 2.8, "g/dL", comparator="<"))
    assert "albumin 2.79 g/dL 3 pt" in facts and "reported as <2.8" in facts
    # bilirubin 0.8 mg/dL 1 pt, albumin 3 pt, INR missing 1 pt, ascites 1, encephalopathy 1
    assert "Child-Pugh lower bound 7 (class B)" in facts
    assert grade == "moderate"


@pytest.mark.parametrize(
    ("value", "grade"),
    [
        ({"valueInteger": 8}, "moderate"),
        ({"valueString": "C"}, "severe"),
        ({"valueCodeableConcept": {"text": "Class A"}}, "mild"),
        ({"valueQuantity": {"value": 11, "unit": "{score}"}}, "severe"),
    ],
)
def test_a_recorded_child_pugh_panel_grades_hepatic_impairment(value: dict[str, Any], grade: str) -> None:
    got, facts = hepatic(*normal_odwg(), child_pugh(value))
    assert got == grade
    assert "recorded Child-Pugh class" in facts and "Observation/cp-1" in facts


def test_a_child_pugh_observation_named_in_text_only_is_read() -> None:
    code = {"text": "Child-Turcotte-Pugh classification"}
    got, facts = hepatic(child_pugh({"valueString": "B"}, code))
    assert got == "moderate" and "recorded Child-Pugh class B" in facts


def test_a_worse_lab_lower_bound_wins_over_a_recorded_class_and_both_are_named() -> None:
    got, facts = hepatic(
        *normal_odwg(),
        lab("1751-7", 2.5, "g/dL", low=3.5),
        lab("6301-6", 2.5, "1", high=1.1),
        child_pugh({"valueString": "A"}),
    )
    assert got == "moderate"
    assert "recorded Child-Pugh class A" in facts and "Child-Pugh lower bound 9 (class B)" in facts


def test_a_child_pugh_answer_out_of_range_is_not_used_and_does_not_allow_none() -> None:
    got, facts = hepatic(*normal_odwg(), child_pugh({"valueInteger": 20}))
    assert got == "unknown"  # a Child-Pugh score was recorded: normal tests alone do not say "none"
    assert "Child-Pugh score 20 is not a whole number from 5 to 15" in facts


def test_normal_liver_tests_older_than_the_lab_age_limit_do_not_say_none() -> None:
    # the renal lab age bound applies to liver tests too, one way: an old normal result says nothing
    # about the liver today (grade unset), while an old abnormal one still counts
    import datetime as dt

    def aged(o: dict[str, Any], days: int) -> dict[str, Any]:
        return {**o, "effectiveDateTime": (dt.date.today() - dt.timedelta(days=days)).isoformat()}

    def grade(*labs: dict[str, Any]) -> tuple[str | None, str]:
        profile = build_profile([patient(), *labs], renal_max_age_days=365)
        return profile.patient.hepatic_impairment, " | ".join(profile.evidence + profile.notes)

    bili, ast = normal_odwg()
    assert grade(aged(bili, 30), aged(ast, 30))[0] == "none"
    old, facts = grade(aged(bili, 400), aged(ast, 30))
    assert old in (None, "unknown") and "over 365 days old" in facts
    high_ast = lab("1920-8", 95, "U/L", high=40)
    assert grade(aged(bili, 400), aged(high_ast, 400))[0] == "mild"
