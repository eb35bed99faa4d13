"""Invariants that vary one thing about a patient and compare the answers.

Monotonicity: worse kidney function, worse liver class or an age further from the adult band never
yields a higher start or maximum, everything else held fixed (renal function is given as eGFR
with creatinine removed, so age and weight cannot move it). A missing dose counts as 0, the most
conservative answer; 'unknown' renal/hepatic values are not ordered and are not compared here.
Missing data: without renal data (and no dialysis or CKD stage 4-5 on record) a renally cleared drug reports it
and does not dose as if the kidneys were normal; a child without a weight gets no weight-based dose and is told why.
Determinism: the same request, repeated, reordered, or after another patient, gives one answer.
"""

from __future__ import annotations

import itertools
from typing import Any

from engine.harness.case import EPS, Case, Checker, Violation, dose_pair, request_json, with_patient
from engine.harness.physiology import child_medians
from engine.harness.rulemap import RENAL_FIELDS
from schemas.api import EvaluateRequest, EvaluateResponse

HEPATIC_WORST_FIRST = ("severe", "moderate", "mild", "none")
NO_RENAL_DATA: dict[str, Any] = {
    "serum_creatinine_mg_dl": None,
    "serum_creatinine_umol_l": None,
    "egfr_ml_min_1_73m2": None,
}
MAX_REPORTED = 3  # violations per case and invariant; one is enough to reproduce, three show a pattern


def _higher(worse: EvaluateResponse, better: EvaluateResponse) -> str | None:
    (ws, wm), (bs, bm) = dose_pair(worse), dose_pair(better)
    if ws > bs + EPS or wm > bm + EPS:
        return f"start {ws:g} / max {wm:g} mg/day vs {bs:g} / {bm:g}"
    return None


def _rules(resp: EvaluateResponse) -> tuple[str, ...]:
    return tuple(resp.dose.rule_ids) if resp.dose else ()


def _chain(ck: Checker, case: Case, name: str, worst_first: list[tuple[str, EvaluateRequest]]) -> list[Violation]:
    """Each step from worse to better may only keep or raise the dose."""
    out: list[Violation] = []
    answers = [(label, req, ck.evaluate(req)) for label, req in worst_first]
    for (wl, wreq, worse), (bl, _, better) in itertools.pairwise(answers):
        diff = _higher(worse, better)
        if diff and len(out) < MAX_REPORTED:
            msg = f"{wl} gets more than {bl}: {diff}"
            out.append(ck.violation(name, case, msg, _rules(worse) + _rules(better), wreq))
    return out


def renal_grid(ck: Checker, drug: str) -> list[float]:
    cuts = ck.maps[drug].thresholds(RENAL_FIELDS)
    grid = {1.0, 150.0} | {round(v, 1) for t in cuts for v in (t - 0.5, t, t + 0.5)}
    return sorted(v for v in grid if 0 <= v <= 250)


def renal_monotonic(ck: Checker, case: Case) -> list[Violation]:
    drug = ck.drug(case)
    base = with_patient(case.request, action="start", on_dialysis=False, **NO_RENAL_DATA)
    grid = renal_grid(ck, drug)
    chain = [("dialysis", with_patient(base, on_dialysis=True, egfr_ml_min_1_73m2=grid[0]))]
    chain += [(f"eGFR {v:g}", with_patient(base, egfr_ml_min_1_73m2=v)) for v in grid]
    return _chain(ck, case, "renal-monotonic", chain)


def hepatic_monotonic(ck: Checker, case: Case) -> list[Violation]:
    base = with_patient(case.request, action="start")
    chain = [(f"hepatic {c}", with_patient(base, hepatic_impairment=c)) for c in HEPATIC_WORST_FIRST]
    return _chain(ck, case, "hepatic-monotonic", chain)


def _distance(ck: Checker, age: float) -> tuple[str, float]:
    if age < ck.child_below:
        return "child", ck.child_below - age
    if age >= ck.older_from:
        return "older", age - ck.older_from + 0.001
    return "adult", 0.0


def age_monotonic(ck: Checker, case: Case) -> list[Violation]:
    """Moving away from the adult band (younger child, older adult) never raises the dose."""
    drug = ck.drug(case)
    start = with_patient(case.request, action="start")
    renal = ck.engine.facts(start)[1].renal.value_ml_min
    fixed_renal = None if renal is None else min(round(renal, 1), 250.0)
    fixed: dict[str, Any] = {**NO_RENAL_DATA, "egfr_ml_min_1_73m2": fixed_renal, "birth_date": None}
    base = with_patient(start, **fixed)
    cuts = ck.maps[drug].thresholds(("age_years",))
    ages = sorted({a for t in cuts for a in (round(t - 0.01, 2), t) if 0 <= a <= 125} | {100.0})
    points = [(a, *_distance(ck, a)) for a in ages]
    adult = [a for a, side, _ in points if side == "adult"] or [ck.child_below]
    adult_answers = [(a, ck.evaluate(with_patient(base, age_years=a))) for a in adult]
    strictest_adult = min(adult_answers, key=lambda x: dose_pair(x[1]))
    out: list[Violation] = []
    for side in ("child", "older"):
        # the most restrictive adult age, then this side's ages moving away from the adult band:
        # adjacent steps suffice (transitivity), and the first failure is the one nearest the band
        chain = [strictest_adult]
        chain += [
            (a, ck.evaluate(with_patient(base, age_years=a)))
            for a, s, _ in sorted(points, key=lambda p: p[2])
            if s == side
        ]
        for (a, nearer), (b, further) in itertools.pairwise(chain):
            diff = _higher(further, nearer)
            if diff and len(out) < MAX_REPORTED:
                msg = f"age {b:g} gets more than age {a:g}: {diff}"
                out.append(ck.violation("age-monotonic", case, msg, _rules(further), with_patient(base, age_years=b)))
    return out


def missing_data_reported(ck: Checker, case: Case) -> list[Violation]:
    name, out = "missing-data-reported", []
    drug = ck.drug(case)
    start = with_patient(case.request, action="start")
    dm = ck.maps[drug]
    band_on_problem_list = {
        v for d in dm.deriving("renal_band", ["dialysis", "severe"]) for v in dm.trigger_values(d, "conditions")
    }
    # dialysis or CKD stage 4-5 recorded on the problem list is known renal function, not missing data
    if ck.pack.drugs[drug].profile.renally_cleared and not band_on_problem_list & ck.sent_sets(case)["conditions"]:
        unknown_req = with_patient(start, on_dialysis=False, **NO_RENAL_DATA)
        unknown = ck.evaluate(unknown_req)
        if "renal-function" not in unknown.missing_data:
            msg = "renally cleared drug, no creatinine or eGFR, but renal-function is not in missing_data"
            out.append(ck.violation(name, case, msg, _rules(unknown), unknown_req))
        normal_egfr = max([90.0, *ck.maps[drug].thresholds(RENAL_FIELDS)]) + 20
        normal = ck.evaluate(with_patient(unknown_req, egfr_ml_min_1_73m2=normal_egfr))
        diff = _higher(unknown, normal)
        if diff:
            msg = f"unknown renal function gets more than eGFR {normal_egfr:g} (assumed normal?): {diff}"
            out.append(ck.violation(name, case, msg, _rules(unknown), unknown_req))
    p = case.request.patient
    age = p.resolved_age_years()
    if age is not None and age < ck.child_below:
        weight = p.weight_kg or round(child_medians(age, p.sex or "female").weight_kg, 1)
        weighed = ck.evaluate(with_patient(start, weight_kg=weight))
        dependent = ck.maps[drug].weight_dependent()
        if weighed.dose and set(weighed.dose.rule_ids) & dependent:
            no_weight_req = with_patient(start, weight_kg=None)
            no_weight = ck.evaluate(no_weight_req)
            if "weight" not in no_weight.missing_data:
                msg = "child whose dose is weight-based, sent without a weight, but weight is not in missing_data"
                out.append(ck.violation(name, case, msg, _rules(weighed), no_weight_req))
            if no_weight.dose and set(no_weight.dose.rule_ids) & dependent:
                msg = "weight-based dose suggested without a weight"
                out.append(ck.violation(name, case, msg, _rules(no_weight), no_weight_req))
    return out


def comparable_answer(resp: EvaluateResponse) -> dict[str, Any]:
    """The response without its per-call id; unrecognised inputs compared without their positions."""
    body = resp.model_dump(mode="json", exclude={"decision_id"})
    body["unrecognized"] = sorted((u["field"], u["value"]) for u in body["unrecognized"])
    return body


def _reordered(req: EvaluateRequest) -> EvaluateRequest:
    body = request_json(req)
    for key in ("co_medications", "conditions", "allergies"):
        items = body["patient"].get(key)
        if items:
            body["patient"][key] = items[1:][::-1] + items[:1]
    return EvaluateRequest.model_validate(body)


def _other_patient(drug: str) -> EvaluateRequest:
    return EvaluateRequest.model_validate(
        {
            "patient": {
                "age_years": 71,
                "sex": "female",
                "weight_kg": 58,
                "egfr_ml_min_1_73m2": 24,
                "pregnant": False,
                "breastfeeding": True,
                "hepatic_impairment": "severe",
                "co_medications": [{"name": "oxycodone"}, {"name": "lorazepam"}, {"name": "fluvoxamine"}],
                "allergies": [{"name": drug.replace("-", " ")}],
                "conditions": ["epilepsy", "COPD"],
            },
            "drug": {"name": drug.replace("-", " ")},
        }
    )


def deterministic(ck: Checker, case: Case) -> list[Violation]:
    name, out = "deterministic", []
    first = comparable_answer(ck.evaluate(case.request))
    ck.evaluate(_other_patient(ck.drug(case)))
    again = comparable_answer(ck.evaluate(case.request))
    reordered_req = _reordered(case.request)
    reordered = comparable_answer(ck.evaluate(reordered_req))
    for label, other, req in (("repeated", again, case.request), ("reordered lists", reordered, reordered_req)):
        if other != first:
            keys = sorted(k for k in first if first[k] != other.get(k))
            out.append(ck.violation(name, case, f"{label}: answer differs in {', '.join(keys)}", (), req))
    return out
