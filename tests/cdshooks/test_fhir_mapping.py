"""engine.fhir against real third-party bundles (read in place) and the odd shapes real systems send.

The Synthea tests skip, saying why, when the shared data is not beside the clone (they fail under CI).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.fhir import build_profile, med_order, profile_from_resources, unpack
from engine.fhir.bundle import ReferenceIndex
from tests.cdshooks.conftest import card_with_rule, cards_of
from tests.cdshooks.fhirdata import RXNORM, baclofen_draft, hook_request, observation, order_context, pregnancy
from tests.needs import shared_params

SYNTHEA = ("data", "synthea")  # third-party sample data, read in place from the shared folder (tests/needs.py)


def _r4_rows(synthea: Path) -> list[dict[str, str]]:
    with (synthea / "manifest.csv").open(encoding="utf-8") as fh:
        return [row for row in csv.DictReader(fh) if row["path"].startswith("r4/")]


def _load(synthea: Path, relative: str) -> Any:
    return json.loads((synthea / relative).read_text(encoding="utf-8"))


@pytest.mark.parametrize("row", shared_params(_r4_rows, *SYNTHEA, ids=lambda r: r["path"][3:30]))
def test_synthea_r4_bundles_agree_with_the_manifest(synthea: Path, row: dict[str, str]) -> None:
    profile = build_profile(_load(synthea, row["path"]))
    p = profile.patient
    assert str(p.birth_date) == row["birthDate"] and p.sex == row["gender"]
    if row["latest_eGFR"]:
        assert p.egfr_ml_min_1_73m2 == pytest.approx(float(row["latest_eGFR"]), abs=0.06)
    else:
        assert p.egfr_ml_min_1_73m2 is None
    assert len(profile.medications) == int(row["active_MedicationRequest"] or 0)
    assert len(p.co_medications) == len(profile.medications)


def test_synthea_pregnancy_conditions_count_only_while_active(synthea: Path) -> None:
    r4 = _r4_rows(synthea)
    active = build_profile(_load(synthea, next(r["path"] for r in r4 if r["path"].startswith("r4/Libbie_Shields"))))
    # an active "Tubal pregnancy" (79586000) in a woman over 55 is a problem-list leftover: left out, named
    assert not any(
        c.coding and c.coding[0].code == "79586000" for c in active.patient.conditions if not isinstance(c, str)
    )
    assert active.patient.pregnant is None
    assert any("'Tubal pregnancy' ignored" in n and "over 55" in n for n in active.notes)
    resolved = build_profile(_load(synthea, next(r["path"] for r in r4 if r["path"].startswith("r4/Karla_Kessler"))))
    assert not any(
        c.coding and c.coding[0].code == "72892002" for c in resolved.patient.conditions if not isinstance(c, str)
    )


def test_stu3_smart_patients_including_the_malformed_one(synthea: Path) -> None:
    folder = synthea / "stu3-smart-relaxants"
    carl = build_profile(_load(synthea, "stu3-smart-relaxants/patient-1768562.fhir-bundle.json"))
    cbz = [m for m in carl.medications if "Cyclobenzaprine" in m.label]
    assert cbz and cbz[0].ordered is not None
    assert (cbz[0].ordered.dose_mg, cbz[0].ordered.times_per_day) == (10.0, 3.0)  # 1 {tablet} of 10 MG, tid
    assert carl.patient.serum_creatinine_mg_dl == 1.2
    malformed, notes = profile_from_resources(
        [_load(synthea, f"stu3-smart-relaxants/{p.name}") for p in [folder / "patient-1685497.fhir-bundle.json"]]
    )
    assert "no Patient resource: age and sex unknown" in notes
    assert [a.name for a in malformed.allergies] == [
        "sulfonamide antibacterial"
    ]  # category "medication" as a string; peanut is food
    assert malformed.co_medications


def test_a_synthea_patient_through_order_select(client: httpx.Client, synthea: Path) -> None:
    row = next(
        r for r in _r4_rows(synthea) if r["category"] == "renal-impaired" and r["path"].startswith("r4/Dennis_Durgan")
    )
    found = unpack(_load(synthea, row["path"]))
    pid = found.of_type("Patient")[0]["id"]

    def search(rtype: str) -> dict[str, Any]:
        return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in found.of_type(rtype)]}

    prefetch = {
        "patient": found.of_type("Patient")[0],
        **{k: search("Observation") for k in ("egfr", "creatinine", "weight", "height", "pregnancy")},
        "conditions": search("Condition"),
        "medications": search("MedicationRequest"),
        "allergies": search("AllergyIntolerance"),
    }
    body = hook_request(
        "order-select", order_context(baclofen_draft(), selected=["MedicationRequest/request-123"]), prefetch
    )
    body["context"]["patientId"] = pid
    cards = cards_of(client.post("/cds-services/muscle-relaxant-dosing", json=body))
    severe = card_with_rule(cards, "baclofen.renal.severe")
    assert f"eGFR {float(row['latest_eGFR']):g} mL/min" in severe["detail"]
    assert card_with_rule(cards, "baclofen.geriatric.beers-renal")["indicator"] == "critical"


def test_creatinine_units_and_implausible_values() -> None:
    p = build_profile([observation("14682-9", 88.42, "umol/L", "2024-01-01")]).patient
    assert p.serum_creatinine_mg_dl == 1.0
    p = build_profile([observation("2160-0", 0.1, "mmol/L", "2024-01-01")]).patient
    assert p.serum_creatinine_mg_dl == pytest.approx(1.13, abs=0.01)
    profile = build_profile(
        [observation("2160-0", 500, "mg/dL", "2024-01-01"), observation("29463-7", 150, "[lb_av]", "2024-01-01")]
    )
    assert profile.patient.serum_creatinine_mg_dl is None
    assert any(n.startswith("serum_creatinine_mg_dl=500") for n in profile.notes)
    assert profile.patient.weight_kg == pytest.approx(68.0, abs=0.1)
    odd = build_profile([observation("33914-3", 50, "mg", "2024-01-01")])
    assert odd.patient.egfr_ml_min_1_73m2 is None and any("not understood" in n for n in odd.notes)


def test_latest_value_wins_across_codes_and_comparators() -> None:
    profile = build_profile(
        [
            observation("33914-3", 80, "mL/min/{1.73_m2}", "2024-01-01"),
            observation(
                "98979-8",
                60,
                "mL/min/{1.73_m2}",
                "2024-06-01",
                valueQuantity={"value": 60, "comparator": ">", "code": "mL/min/{1.73_m2}"},
            ),
            {**observation("62238-1", 20, "mL/min/{1.73_m2}", "2025-01-01"), "status": "entered-in-error"},
        ]
    )
    assert profile.patient.egfr_ml_min_1_73m2 == 60
    assert any("reported as >60" in e for e in profile.evidence)


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ([("LA15173-0", "Pregnant", "2024-01-01")], True),
        ([("LA15173-0", "Pregnant", "2023-01-01"), ("LA26683-5", "Not pregnant", "2024-01-01")], False),
        ([("LA4489-6", "Unknown", "2024-01-01")], None),
    ],
)
def test_pregnancy_status(answers: list[tuple[str, str, str]], expected: bool | None) -> None:
    female = {"resourceType": "Patient", "id": "p", "gender": "female", "birthDate": "1990-01-01"}
    profile = build_profile([female, *(pregnancy(code, text, when) for code, text, when in answers)])
    assert profile.patient.pregnant is expected


_UNDATED_PREGNANCY = {
    "resourceType": "Condition",
    "id": "c1",
    "clinicalStatus": {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
    },
    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "77386006", "display": "Pregnant (finding)"}]},
}


def test_an_undated_pregnancy_condition_is_possible_not_pregnant() -> None:
    female = {"resourceType": "Patient", "id": "p", "gender": "female", "birthDate": "1990-01-01"}
    profile = build_profile([female, _UNDATED_PREGNANCY])
    assert profile.patient.pregnant is None  # neither assumed nor ruled out
    assert profile.possible_pregnancy == ["Condition/c1 'Pregnant (finding)' is active with no onset or recorded date"]
    assert profile.patient.conditions == [], "the entry does not reach the rules as a pregnancy"


def test_a_pregnancy_status_observation_wins_over_an_undated_condition() -> None:
    female = {"resourceType": "Patient", "id": "p", "gender": "female", "birthDate": "1990-01-01"}
    profile = build_profile([female, _UNDATED_PREGNANCY, pregnancy("LA26683-5", "Not pregnant", "2024-01-01")])
    assert profile.patient.pregnant is False and profile.possible_pregnancy == []
    assert any("Condition/c1" in n and "82810-3" in n for n in profile.notes)


def test_medication_shapes() -> None:
    contained = {
        "resourceType": "MedicationRequest",
        "id": "m1",
        "status": "active",
        "contained": [
            {
                "resourceType": "Medication",
                "id": "med",
                "code": {"coding": [{"system": RXNORM, "code": "1292", "display": "baclofen"}]},
                "ingredient": [
                    {"strength": {"numerator": {"value": 5, "code": "mg"}, "denominator": {"value": 5, "code": "mL"}}}
                ],
            }
        ],
        "medicationReference": {"reference": "#med"},
        "dosageInstruction": [
            {
                "doseAndRate": {"doseQuantity": {"value": 10, "code": "mL"}},
                "timing": {
                    "code": {
                        "coding": [
                            {"system": "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation", "code": "BID"}
                        ]
                    }
                },
            }
        ],
    }
    order = med_order(contained)
    assert order.drug is not None and order.drug.rxcui == "1292"
    assert order.ordered is not None and (order.ordered.dose_mg, order.ordered.times_per_day) == (10.0, 2.0)

    bundled_med = {"resourceType": "Medication", "id": "x", "code": {"text": "Tizanidine 4 MG Oral Tablet"}}
    mr = {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "medicationReference": {"reference": "urn:uuid:abc"},
        "dosageInstruction": [{"text": "1 tab tid prn", "doseQuantity": {"value": 1, "code": "{tablet}"}}],
    }
    order = med_order(mr, ReferenceIndex([bundled_med], {"urn:uuid:abc": bundled_med}))
    assert order.label == "Tizanidine 4 MG Oral Tablet"
    assert order.ordered is not None and order.ordered.dose_mg == 4 and order.ordered.times_per_day == 3
    assert order.dose_note and "dosage text" in order.dose_note

    combo = med_order(
        {
            "resourceType": "MedicationRequest",
            "medicationCodeableConcept": {"text": "Kombiglyze XR Tablet 5/500mg"},
            "dosageInstruction": [
                {
                    "doseQuantity": {"value": 1, "code": "{pill}"},
                    "timing": {"repeat": {"frequency": 1, "periodUnit": "d"}},
                }
            ],
        }
    )
    assert combo.ordered is None and combo.dose_note and "could not be converted" in combo.dose_note


def test_conditions_and_bundles_as_real_systems_send_them() -> None:
    refuted = {
        "resourceType": "Condition",
        "verificationStatus": {"coding": [{"code": "refuted"}]},
        "code": {"text": "Epilepsy"},
    }
    ended = {"resourceType": "Condition", "abatementDateTime": "2020-01-01", "code": {"text": "Stroke"}}
    current = {"resourceType": "Condition", "category": {"text": "problem"}, "code": {"text": "Multiple sclerosis"}}
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "warning", "code": "informational"}]}
    untyped = {
        "resourceType": "Bundle",
        "entry": [
            {"resource": refuted},
            {"resource": ended},
            {"resource": current},
            {"resource": outcome},
            {"fullUrl": "x"},
        ],
    }
    found = unpack(untyped)
    assert len(found.resources) == 3 and found.outcomes == [outcome]
    conditions = build_profile(untyped).patient.conditions
    assert [c.text for c in conditions if not isinstance(c, str)] == ["Multiple sclerosis"]


def _liver(code: str, value: float, high: float, when: str = "2026-11-01") -> dict[str, Any]:
    o = observation(code, value, "mg/dL" if code == "1975-2" else "U/L", when)
    o["referenceRange"] = [{"high": {"value": high}}]
    return o


@pytest.mark.parametrize(
    ("bilirubin", "ast", "grade"),
    [(0.8, 30, "none"), (0.8, 60, "mild"), (1.5, 30, "mild"), (2.5, 30, "moderate"), (4.0, 30, "severe")],
)
def test_liver_tests_grade_hepatic_impairment_by_nci_odwg(bilirubin: float, ast: float, grade: str) -> None:
    from tests.cdshooks.fhirdata import patient

    profile = build_profile([patient(), _liver("1975-2", bilirubin, 1.2), _liver("1920-8", ast, 40)])
    assert profile.patient.hepatic_impairment == grade
    assert any("NCI ODWG" in e for e in profile.evidence)


def test_normal_liver_tests_with_cirrhosis_listed_are_not_none() -> None:
    from tests.cdshooks.fhirdata import patient

    cirrhosis = {
        "resourceType": "Condition",
        "id": "c1",
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "code": {"text": "Unspecified cirrhosis of liver"},
    }
    profile = build_profile([patient(), _liver("1975-2", 0.8, 1.2), _liver("1920-8", 30, 40), cirrhosis])
    assert profile.patient.hepatic_impairment == "unknown"


def test_liver_tests_without_a_reference_range_are_not_graded() -> None:
    from tests.cdshooks.fhirdata import patient

    bare = [observation("1975-2", 0.8, "mg/dL", "2026-11-01"), observation("1920-8", 30, "U/L", "2026-11-01")]
    assert build_profile([patient(), *bare]).patient.hepatic_impairment == "unknown"
