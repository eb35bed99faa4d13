"""Renal estimates, terminology matching and the facts the rules see."""

from __future__ import annotations

import pytest

from engine.compiler.model import CompiledPack
from engine.runtime import renal
from engine.runtime.engine import Engine
from engine.terminology import normalise_text
from schemas.api import CodeableConcept, Coding, DrugRef
from tests.conftest import request


def test_cockcroft_gault_reference_values() -> None:
    # (140-67)*62/(72*1.3)*0.85 = 4526/93.6*0.85 = 41.10
    assert renal.cockcroft_gault(67, 62, 1.3, female=True) == pytest.approx(41.10, abs=0.01)
    assert renal.cockcroft_gault(58, 72, 2.0, female=False) == pytest.approx(41.0, abs=0.01)


def test_ckd_epi_2021_reference_values() -> None:
    # female 50 y, SCr 0.7 (= kappa): 142 * 0.9938**50 * 1.012 = 105.3
    # male 60 y, SCr 1.0: 142 * (1.0/0.9)**-1.2 * 0.9938**60 = 86.2
    assert renal.ckd_epi_2021(50, 0.7, female=True) == pytest.approx(105.3, abs=0.1)
    assert renal.ckd_epi_2021(60, 1.0, female=False) == pytest.approx(86.2, abs=0.1)


def test_renal_estimate_prefers_the_lower_and_says_which() -> None:
    est = renal.estimate(58, "male", 72, 175, 2.0, 37)
    assert est.value_ml_min == 37 and est.crcl_ml_min == pytest.approx(41.0, abs=0.1)
    assert est.method.startswith("lower of cockcroft-gault and reported eGFR")
    assert renal.estimate(45, "male", None, None, None, None).value_ml_min is None
    child = renal.estimate(7, "male", 22, 120, 0.4, None)
    assert child.method == "bedside-schwartz" and child.value_ml_min == pytest.approx(123.9, abs=0.1)
    unknown_sex = renal.estimate(50, None, 70, None, 1.0, None)
    assert "female factor used" in unknown_sex.method


def test_creatinine_in_umol_is_converted(engine: Engine) -> None:
    a = engine.facts(request(serum_creatinine_umol_l=176.8, egfr_ml_min_1_73m2=None))[1]
    b = engine.facts(request(serum_creatinine_mg_dl=2.0, egfr_ml_min_1_73m2=None))[1]
    assert a.fact["renal_ml_min"] == pytest.approx(b.fact["renal_ml_min"], abs=0.2)


@pytest.mark.parametrize(
    "cond",
    [
        "Epilepsy",
        "EPILEPSY!",
        CodeableConcept(coding=[Coding(system="http://snomed.info/sct", code="84757009")]),
        CodeableConcept(coding=[Coding(system="http://hl7.org/fhir/sid/icd-10-cm", code="G40.909")]),
        CodeableConcept(coding=[Coding(system="http://hl7.org/fhir/sid/icd-10-cm", code="g40909")]),
    ],
)
def test_condition_matching(pack: CompiledPack, cond: CodeableConcept | str) -> None:
    assert "seizure-disorder" in pack.terminology.resolve_condition(cond)


def test_text_normalisation() -> None:
    assert normalise_text("  Multiple-Sclerosis (MS) ") == "multiple sclerosis ms"


@pytest.mark.parametrize(
    ("ref", "ingredients"),
    [
        (DrugRef(rxcui="7804"), {"oxycodone"}),
        (DrugRef(name="OxyContin"), {"oxycodone"}),
        (DrugRef(name="Oxycodone Hydrochloride 5 MG Oral Tablet"), {"oxycodone"}),
        (
            DrugRef(name="Acetaminophen 325 MG / Oxycodone Hydrochloride 5 MG Oral Tablet"),
            {"acetaminophen", "oxycodone"},
        ),
        (DrugRef(name="Lioresal"), {"baclofen"}),
        (DrugRef(name="nothing-known"), set()),
    ],
)
def test_drug_matching(pack: CompiledPack, ref: DrugRef, ingredients: set[str]) -> None:
    assert set(pack.terminology.resolve_drug(ref)) == ingredients


def test_ordered_drug_is_not_its_own_comedication(engine: Engine) -> None:
    _, pf = engine.facts(request(co_medications=[{"name": "baclofen"}, {"name": "gabapentin"}]))
    assert pf.fact["ordered_drug_on_med_list"] == "true"
    assert "baclofen" not in pf.fact["comed_ingredients"]
    assert pf.fact["n_comed_skeletal_muscle_relaxant"] == 0.0
    assert pf.fact["n_comed_gabapentinoid"] == 1.0


def test_male_patient_is_not_asked_about_pregnancy(engine: Engine) -> None:
    resp = engine.evaluate(request(sex="male"))
    assert "pregnancy-status" not in resp.missing_data
    resp = engine.evaluate(request(sex="female", age_years=30))
    assert "pregnancy-status" in resp.missing_data


def test_same_input_same_output_any_comed_order(engine: Engine) -> None:
    meds = [{"name": "oxycodone"}, {"name": "gabapentin"}, {"name": "lorazepam"}]
    a = engine.evaluate(request(age_years=70, co_medications=meds)).model_dump(exclude={"decision_id"})
    b = engine.evaluate(request(age_years=70, co_medications=meds[::-1])).model_dump(exclude={"decision_id"})
    assert a == b
