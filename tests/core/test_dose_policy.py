"""The ordered-dose policy (issue 13): organ-function and age caps are hard limits, the excess is said,
an active regimen of the same drug counts, organ titration text wins, and the renal weight is reported."""

from __future__ import annotations

from typing import Any

import pytest

from engine.runtime import renal
from engine.runtime.engine import Engine
from engine.runtime.outcome import DOSE_RANGE_RULE
from schemas.api import EvaluateRequest, EvaluateResponse, Finding


def _evaluate(
    engine: Engine, drug: str, ordered: tuple[float, float] | None = None, **patient: Any
) -> EvaluateResponse:
    base: dict[str, Any] = {"age_years": 45, "sex": "male", "weight_kg": 80, "egfr_ml_min_1_73m2": 100}
    base.update(patient)
    order: dict[str, Any] = {"name": drug}
    if ordered is not None:
        order["ordered_dose"] = {"dose_mg": ordered[0], "times_per_day": ordered[1]}
    return engine.evaluate(EvaluateRequest.model_validate({"patient": base, "drug": order}))


def _dose_range(resp: EvaluateResponse) -> Finding:
    (finding,) = [f for f in resp.findings if f.rule_id == DOSE_RANGE_RULE]
    return finding


@pytest.mark.parametrize("per_dose", [10.0, 20.0])
def test_order_above_a_dialysis_cap_is_critical_and_says_by_how_much(engine: Engine, per_dose: float) -> None:
    resp = _evaluate(engine, "baclofen", (per_dose, 3), on_dialysis=True, egfr_ml_min_1_73m2=None)
    f = _dose_range(resp)
    over = per_dose * 3 - 5
    assert f.severity == "critical"
    assert f"{over:g} mg/day" in f.summary and "renal maximum of 5 mg/day" in f.summary
    assert "at most 5 mg/day" in f.detail


def test_order_within_the_cap_but_above_the_start_stays_info(engine: Engine) -> None:
    f = _dose_range(_evaluate(engine, "baclofen", (10, 3)))
    assert f.severity == "info"


def test_order_above_a_geriatric_cap_is_critical(engine: Engine) -> None:
    f = _dose_range(_evaluate(engine, "diazepam", (5, 3), age_years=70))
    assert f.severity == "critical" and "geriatric maximum of 10 mg/day" in f.summary


def test_active_regimen_of_the_same_drug_counts_with_the_new_order(engine: Engine) -> None:
    active = [{"name": "baclofen", "dose": {"dose_mg": 20, "times_per_day": 3}}]
    with_active = _dose_range(_evaluate(engine, "baclofen", (10, 3), co_medications=active))
    alone = _dose_range(_evaluate(engine, "baclofen", (10, 3)))
    assert with_active.severity == "critical" and alone.severity == "info"
    assert "90 mg/day in total" in with_active.detail and "at most 20 mg/day more" in with_active.detail
    undosed = _dose_range(_evaluate(engine, "baclofen", (10, 3), co_medications=[{"name": "baclofen"}]))
    assert "no dose, so the total may be higher" in undosed.detail


def test_duplicate_finding_warns_against_stopping_abruptly(engine: Engine) -> None:
    resp = _evaluate(engine, "tizanidine", co_medications=[{"name": "tizanidine"}])
    (dup,) = [f for f in resp.findings if f.rule_id == "tizanidine.duplicate.same-drug"]
    assert "abruptly" in dup.detail


def test_organ_titration_text_wins_over_the_beers_text(engine: Engine) -> None:
    resp = _evaluate(engine, "baclofen", age_years=76, on_dialysis=True, egfr_ml_min_1_73m2=None)
    assert resp.dose is not None and resp.dose.titration is not None
    assert resp.dose.titration.startswith("Do not titrate")


def test_no_monitoring_plan_when_the_start_is_withheld(engine: Engine) -> None:
    resp = _evaluate(engine, "tizanidine", age_years=8, weight_kg=25, egfr_ml_min_1_73m2=None)
    assert resp.dose is None and resp.monitoring == []


def test_obese_patient_with_height_uses_adjusted_body_weight() -> None:
    est = renal.estimate(60, "male", 150, 175, 1.8, None)
    # IBW 70.5 kg; AdjBW 70.5 + 0.4 * 79.5 = 102.3; (80 * 102.3) / (72 * 1.8) = 63.1
    assert est.weight_used_kg == pytest.approx(102.3, abs=0.1)
    assert est.value_ml_min == pytest.approx(63.1, abs=0.2)
    assert "adjusted body weight 102.3 kg" in est.method


def test_weight_near_ideal_keeps_actual_weight() -> None:
    est = renal.estimate(58, "male", 72, 175, 2.0, None)
    assert est.weight_used_kg == 72 and est.value_ml_min == pytest.approx(41.0, abs=0.1)


def test_without_height_the_lower_of_cockcroft_gault_and_ckd_epi_is_used() -> None:
    est = renal.estimate(60, "male", 150, None, 1.8, None)
    assert est.value_ml_min == pytest.approx(renal.ckd_epi_2021(60, 1.8, female=False), abs=0.1)
    assert est.value_ml_min is not None and est.crcl_ml_min is not None and est.value_ml_min < est.crcl_ml_min
    assert est.method.startswith("lower of cockcroft-gault and ckd-epi-2021")
    lean = renal.estimate(40, "male", 70, None, 0.9, None)
    assert lean.method.startswith("cockcroft-gault") and lean.egfr_ml_min is None


def test_low_creatinine_in_an_older_patient_is_used_as_measured_and_said() -> None:
    est = renal.estimate(85, "female", 45, 155, 0.5, None)
    assert est.crcl_ml_min == pytest.approx(renal.cockcroft_gault(85, 45, 0.5, female=True), abs=0.1)
    assert "no floor" in est.method
