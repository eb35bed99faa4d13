"""One patient under check: the request, what was meant to be in it, and the engine's answers.

Invariant checks share this so a cohort run evaluates each patient once for all single-answer
invariants, and so every violation carries what a reviewer needs to reproduce it: the invariant,
the drug, the rule ids involved and the exact request body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from engine.harness.rulemap import DrugMap, age_group_bounds, derived_of, drug_map
from engine.harness.synth import Truth
from engine.runtime.engine import Engine
from engine.terminology import Terminology
from schemas.api import EvaluateRequest, EvaluateResponse

EPS = 1e-6


@dataclass(frozen=True)
class Violation:
    invariant: str
    case_id: str
    drug: str
    message: str
    rule_ids: tuple[str, ...]
    patient: dict[str, Any]

    def __str__(self) -> str:
        rules = f" (rules: {', '.join(self.rule_ids)})" if self.rule_ids else ""
        body = json.dumps(self.patient, sort_keys=True)
        return f"{self.invariant} [{self.drug}] {self.case_id}: {self.message}{rules}\n    request: {body}"

    def as_json(self) -> dict[str, Any]:
        return {
            "invariant": self.invariant,
            "id": self.case_id,
            "drug": self.drug,
            "message": self.message,
            "rule_ids": list(self.rule_ids),
            "request": self.patient,
        }


@dataclass
class Case:
    id: str
    request: EvaluateRequest
    truth: Truth | None = None
    cache: dict[str, Any] = field(default_factory=dict, repr=False)


def request_json(req: EvaluateRequest) -> dict[str, Any]:
    return req.model_dump(mode="json", exclude_none=True, exclude_defaults=True)


def truth_from_request(term: Terminology, req: EvaluateRequest, ordered: str) -> Truth:
    """What the request contains by terminology lookup (for cohorts that come without a Truth)."""
    p = req.patient
    comeds = frozenset(i for m in p.co_medications for i in term.resolve_drug(m))
    allergies = frozenset(i for a in p.allergies for i in term.resolve_drug(a))
    conditions = frozenset(vs for c in p.conditions for vs in term.resolve_condition(c))
    return Truth(ordered, comeds, allergies, conditions)


def dose_pair(resp: EvaluateResponse) -> tuple[float, float]:
    """(start mg/day, max mg/day); no dose counts as the most conservative answer, 0."""
    if resp.dose is None:
        return 0.0, 0.0
    return resp.dose.start.total_daily_mg, resp.dose.max_daily_mg


def fired_ids(resp: EvaluateResponse) -> frozenset[str]:
    return frozenset(t.rule_id for t in resp.trace)


class Checker:
    """Evaluates cases with one engine and knows the pack's structure per drug."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.pack = engine.pack
        self.maps: dict[str, DrugMap] = {d: drug_map(self.pack, d) for d in self.pack.drugs}
        self.child_below, self.older_from = age_group_bounds(self.pack)

    def drug(self, case: Case) -> str:
        if "drug" not in case.cache:
            case.cache["drug"] = self.engine.resolve_drug(case.request)
        drug: str = case.cache["drug"]
        return drug

    def response(self, case: Case) -> EvaluateResponse:
        if "response" not in case.cache:
            case.cache["response"] = self.engine.evaluate(case.request, decision_id="harness")
        resp: EvaluateResponse = case.cache["response"]
        return resp

    def evaluate(self, req: EvaluateRequest) -> EvaluateResponse:
        return self.engine.evaluate(req, decision_id="harness")

    def fact(self, case: Case) -> dict[str, Any]:
        if "fact" not in case.cache:
            case.cache["fact"] = self.engine.facts(case.request)[1].fact
        fact: dict[str, Any] = case.cache["fact"]
        return fact

    def derived(self, case: Case) -> dict[str, frozenset[str]]:
        return derived_of(self.pack, fired_ids(self.response(case)))

    def truth(self, case: Case) -> Truth:
        if case.truth is None:
            case.truth = truth_from_request(self.pack.terminology, case.request, self.drug(case))
        return case.truth

    def sent_sets(self, case: Case) -> dict[str, frozenset[str]]:
        """The set fields as the generator (or, for foreign cohorts, the terminology) says they are.

        Cached in the case (every flag invariant asks); callers must not change the sets.
        """
        cached: dict[str, frozenset[str]] | None = case.cache.get("sent_sets")
        if cached is not None:
            return cached
        term, truth, drug = self.pack.terminology, self.truth(case), self.drug(case)
        comeds = truth.comed_ingredients - {drug}
        conditions = frozenset(a for vs in truth.conditions for a in term.vs_ancestors.get(vs, frozenset({vs})))
        sets = case.cache["sent_sets"] = {
            "comed_ingredients": comeds,
            "comed_classes": term.classes_for(comeds),
            "allergy_ingredients": truth.allergy_ingredients,
            "allergy_classes": term.classes_for(truth.allergy_ingredients),
            "conditions": conditions,
        }
        return sets

    def violation(
        self, name: str, case: Case, message: str, rule_ids: tuple[str, ...] = (), req: EvaluateRequest | None = None
    ) -> Violation:
        return Violation(name, case.id, self.drug(case), message, rule_ids, request_json(req or case.request))


def with_patient(req: EvaluateRequest, action: str | None = None, **changes: Any) -> EvaluateRequest:
    """A copy of ``req`` with patient fields replaced (``None`` removes a field); validated again."""
    body = request_json(req)
    for key, value in changes.items():
        if value is None:
            body["patient"].pop(key, None)
        else:
            body["patient"][key] = value
    if action is not None:
        body["drug"]["action"] = action
        if action != "start":
            body["drug"].pop("ordered_dose", None)
    return EvaluateRequest.model_validate(body)
