"""Every invariant catches the bug it exists for: each test plants that bug in an engine's answer.

Without these, a green invariant suite could mean "the checks are vacuous". The planted bugs are
applied to a reference engine's responses (the real rules, then one deliberate fault), so each
test shows a specific invariant firing with a useful message, and no other reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from engine.harness.case import Case, Checker
from engine.harness.invariants import INVARIANTS
from engine.runtime.engine import Engine
from schemas.api import DoseSuggestion, EvaluateRequest, EvaluateResponse, Finding, StartDose, TraceEntry
from tests.conftest import request
from tests.harness.conftest import PACK

Tamper = Callable[[EvaluateRequest, EvaluateResponse], EvaluateResponse]


class Tampered(Engine):
    def __init__(self, tamper: Tamper) -> None:
        super().__init__(PACK, backend="reference")
        self.tamper = tamper

    def evaluate(self, req: EvaluateRequest, decision_id: str | None = None) -> EvaluateResponse:
        return self.tamper(req, super().evaluate(req, decision_id))


def _violations(name: str, tamper: Tamper, req: EvaluateRequest) -> list[str]:
    ck = Checker(Tampered(tamper))
    return [str(v) for v in INVARIANTS[name][0](ck, Case("planted", req))]


def _with_dose(resp: EvaluateResponse, start: float, maximum: float) -> EvaluateResponse:
    dose = DoseSuggestion(
        start=StartDose(dose_mg=start, times_per_day=1, total_daily_mg=start),
        titration=None,
        max_daily_mg=maximum,
        rule_ids=["planted"],
    )
    return resp.model_copy(update={"dose": dose})


def _drop_rules(resp: EvaluateResponse, prefix: str) -> EvaluateResponse:
    return resp.model_copy(
        update={
            "trace": [t for t in resp.trace if not t.rule_id.startswith(prefix)],
            "findings": [f for f in resp.findings if not f.rule_id.startswith(prefix)],
        }
    )


def test_untampered_baseline_is_clean() -> None:
    req = request(pregnant=True, sex="female", co_medications=[{"name": "oxycodone"}], allergies=[{"name": "baclofen"}])
    for name in INVARIANTS:
        assert _violations(name, lambda _, r: r, req) == [], name


def test_dose_above_label_is_caught() -> None:
    found = _violations("dose-within-limits", lambda _, r: _with_dose(r, 90, 120), request())
    assert any("above label max 80" in v for v in found)


def test_dose_above_pediatric_cap_is_caught() -> None:
    req = request(age_years=5, weight_kg=18, height_cm=110, serum_creatinine_mg_dl=0.4, egfr_ml_min_1_73m2=None)
    found = _violations("dose-within-limits", lambda _, r: _with_dose(r, 10, 60), req)
    assert any("pediatric cap 36" in v for v in found)  # min(40 mg/day, 2 mg/kg x 18 kg)


def test_contraindicated_with_dose_and_unsourced_critical_are_caught() -> None:
    def tamper(_: EvaluateRequest, r: EvaluateResponse) -> EvaluateResponse:
        r = _with_dose(r, 5, 10)
        bare = Finding(
            rule_id=r.trace[0].rule_id, category="allergy", severity="critical", summary="x", detail="y", sources=[]
        )
        return r.model_copy(update={"findings": [*r.findings, bare]})

    found = _violations("contraindication-and-sources", tamper, request(allergies=[{"name": "baclofen"}]))
    assert any("yet a dose was suggested" in v for v in found)
    assert any("without a locatable source" in v for v in found)


def test_pregnancy_not_flagged_and_flagged_when_absent_are_caught() -> None:
    present = request(sex="female", pregnant=True)
    assert any(
        "no pregnancy finding" in v
        for v in _violations("pregnancy-flag", lambda _, r: _drop_rules(r, "baclofen.pregnancy"), present)
    )

    def add_pregnancy(_: EvaluateRequest, r: EvaluateResponse) -> EvaluateResponse:
        planted = Finding(
            rule_id="baclofen.monitor.standard",
            category="pregnancy",
            severity="info",
            summary="planted",
            detail="d",
            sources=[],
        )
        return r.model_copy(update={"findings": [*r.findings, planted]})

    absent = request(sex="female", pregnant=False)
    assert any("pregnancy finding was given" in v for v in _violations("pregnancy-flag", add_pregnancy, absent))


def test_missed_interaction_and_allergy_are_caught() -> None:
    req = request(co_medications=[{"name": "oxycodone"}], allergies=[{"name": "baclofen"}])
    found = _violations("interaction-flag", lambda _, r: _drop_rules(r, "baclofen.interaction.opioid"), req)
    assert any("baclofen.interaction.opioid did not fire (sent: opioid)" in v for v in found)
    found = _violations("allergy-flag", lambda _, r: _drop_rules(r, "baclofen.allergy"), req)
    assert any("baclofen.allergy did not fire (sent: baclofen)" in v for v in found)


def test_interaction_flagged_without_the_co_medication_is_caught() -> None:
    def add_opioid_rule(_: EvaluateRequest, r: EvaluateResponse) -> EvaluateResponse:
        entry = TraceEntry(rule_id="baclofen.interaction.opioid", version="1.0.0", matched={})
        return r.model_copy(update={"trace": [*r.trace, entry]})

    found = _violations("interaction-flag", add_opioid_rule, request(co_medications=[{"name": "gabapentin"}]))
    assert any("baclofen.interaction.opioid fired (none of its triggers was sent)" in v for v in found)


def _scaled_when(test: Callable[[EvaluateRequest], bool]) -> Tamper:
    def tamper(req: EvaluateRequest, r: EvaluateResponse) -> EvaluateResponse:
        return _with_dose(r, r.dose.start.total_daily_mg + 10, r.dose.max_daily_mg) if r.dose and test(req) else r

    return tamper


@pytest.mark.parametrize(
    ("name", "when", "expect"),
    [
        ("renal-monotonic", lambda q: (q.patient.egfr_ml_min_1_73m2 or 200) < 30, "gets more than"),
        ("hepatic-monotonic", lambda q: q.patient.hepatic_impairment == "severe", "hepatic severe gets more"),
        ("age-monotonic", lambda q: (q.patient.age_years or 0) >= 100, "age 100 gets more"),
    ],
)
def test_non_monotonic_doses_are_caught(name: str, when: Callable[[EvaluateRequest], bool], expect: str) -> None:
    assert any(expect in v for v in _violations(name, _scaled_when(when), request(age_years=45)))


def test_unreported_missing_data_is_caught() -> None:
    def drop_missing(_: EvaluateRequest, r: EvaluateResponse) -> EvaluateResponse:
        return r.model_copy(update={"missing_data": []})

    found = _violations("missing-data-reported", drop_missing, request(age_years=6, weight_kg=20, height_cm=115))
    assert any("renal-function is not in missing_data" in v for v in found)
    assert any("weight is not in missing_data" in v for v in found)


def test_order_dependent_answer_is_caught() -> None:
    def first_comed_matters(req: EvaluateRequest, r: EvaluateResponse) -> EvaluateResponse:
        first: Any = req.patient.co_medications[0].name if req.patient.co_medications else None
        return r.model_copy(update={"missing_data": ["sex"]}) if first == "oxycodone" else r

    req = request(co_medications=[{"name": "oxycodone"}, {"name": "gabapentin"}, {"name": "clonidine"}])
    found = _violations("deterministic", first_comed_matters, req)
    assert any("reordered lists: answer differs in missing_data" in v for v in found)
