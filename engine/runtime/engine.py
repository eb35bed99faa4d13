"""The engine facade: one compiled pack, one call per patient, the same answer for every adapter.

``Engine.evaluate`` is what ``/v1/evaluate``, CDS Hooks, the CLI and the test harness all call.
It holds no per-request state: facts go into an isolated durable-rules session that is deleted
before the call returns. What every answer shares (each rule's static output, the ruleset
reference, the drug block) is built once here, at construction (issue 8, BENCHMARKS.md).
"""

from __future__ import annotations

import uuid
from typing import Literal

from engine.compiler.model import CompiledPack
from engine.errors import InputError, InputProblem
from engine.runtime.completeness import dependences, not_checked
from engine.runtime.durable_host import DurableRuleset, Firing
from engine.runtime.facts import PatientFacts, build_facts
from engine.runtime.outcome import RuleOutputs, combine, finding_key
from engine.runtime.reference import evaluate_reference
from engine.runtime.route import is_oral, other_route_answer
from schemas.api import (
    DrugOut,
    DrugRef,
    EvaluateRequest,
    EvaluateResponse,
    RenalAssessment,
    RulesetRef,
)

Backend = Literal["durable", "reference"]


class Engine:
    def __init__(self, pack: CompiledPack, backend: Backend = "durable") -> None:
        self.pack = pack
        self.backend = backend
        self._rulesets: dict[str, DurableRuleset] = {}
        if backend == "durable":
            for drug, dr in pack.drugs.items():
                derivations = {
                    name: pack.rules[rid].then.derive or {}
                    for name, rid in dr.durable_names.items()
                    if pack.rules[rid].is_derivation
                }
                label = f"{drug}@{pack.version}-{pack.digest[7:19]}"
                self._rulesets[drug] = DurableRuleset(label, dr.durable_definition, derivations)
        # shared, read-only parts of every answer (see engine.runtime.outcome)
        self._outputs = RuleOutputs(pack.rules.values())
        self._ruleset_ref = RulesetRef(version=pack.version, digest=pack.digest)
        self._drug_out = {d: DrugOut(name=d, rxcui=pack.terminology.ingredients.get(d)) for d in pack.drugs}
        self._depends = {d: dependences(dr) for d, dr in pack.drugs.items()}

    @property
    def ruleset_ref(self) -> RulesetRef:
        return self._ruleset_ref

    def close(self) -> None:
        for rs in self._rulesets.values():
            rs.close()  # closed rulesets stay: a late evaluate() gets EngineError "retired", not a KeyError

    def resolve_drug(self, req: EvaluateRequest) -> str:
        """The ingredient id whose rules apply, or an ``InputError`` naming the field."""
        term = self.pack.terminology
        drug = req.drug
        by_code = term.by_rxcui.get(drug.rxcui) if drug.rxcui else None
        by_ndc = (term.match_drug(DrugRef(ndc=drug.ndc)).ingredients or None) if drug.ndc else None
        by_name = term.resolve_drug_name(drug.name) if drug.name else None
        coded = by_code or by_ndc
        if drug.rxcui and by_code is None and not by_ndc and not by_name:
            raise InputError([InputProblem("/drug/rxcui", f"unknown RxNorm code {drug.rxcui}", "unknown-code")])
        if drug.ndc and by_ndc is None and not by_code and not by_name:
            raise InputError([InputProblem("/drug/ndc", f"unknown NDC {drug.ndc}", "unknown-code")])
        if coded and by_name and not (coded & by_name):
            what = f"rxcui {drug.rxcui}" if by_code else f"NDC {drug.ndc}"
            msg = f"{what} is {'/'.join(sorted(coded))} but name {drug.name!r} is not"
            raise InputError([InputProblem("/drug/rxcui" if by_code else "/drug/ndc", msg, "conflict")])
        found = coded or by_name or frozenset()
        pointer = "/drug/rxcui" if by_code else "/drug/ndc" if by_ndc else "/drug/name"
        if not found:
            raise InputError([InputProblem(pointer, f"unknown drug {drug.name!r}", "unknown-drug")])
        if len(found) > 1:
            msg = f"combination product ({', '.join(sorted(found))}); order the single ingredient"
            raise InputError([InputProblem(pointer, msg, "unsupported-drug")])
        (ingredient,) = found
        if ingredient not in self.pack.drugs:
            supported = ", ".join(sorted(self.pack.drugs))
            raise InputError(
                [InputProblem(pointer, f"no rules for {ingredient}; supported: {supported}", "unsupported-drug")]
            )
        return ingredient

    def facts(self, req: EvaluateRequest) -> tuple[str, PatientFacts]:
        ingredient = self.resolve_drug(req)
        return ingredient, build_facts(req, ingredient, self.pack.terminology)

    def fire(self, ingredient: str, fact: dict[str, object]) -> Firing:
        """Fired rule ids and derived facts for one patient fact."""
        dr = self.pack.drugs[ingredient]
        if self.backend == "reference":
            return evaluate_reference(dr, fact)
        raw = self._rulesets[ingredient].evaluate(fact)
        return Firing(frozenset(dr.durable_names[n] for n in raw.fired), raw.derived)

    def evaluate(self, req: EvaluateRequest, decision_id: str | None = None) -> EvaluateResponse:
        if not is_oral(req.drug.route):  # oral rules only: say so rather than give oral advice
            drug = self._drug_out[self.resolve_drug(req)]
            return other_route_answer(req.drug.route, drug, req.drug.action, self._ruleset_ref, decision_id)
        ingredient, pf = self.facts(req)
        firing = self.fire(ingredient, pf.fact)
        dr = self.pack.drugs[ingredient]
        outputs = self._outputs
        fired = [outputs[rid] for rid in firing.fired]
        outcome = combine(fired, pf.fact, firing.derived, dr.profile, req.drug.ordered_dose, outputs, pf.active)
        findings = outcome.findings
        if pf.unrecognized:
            findings = sorted([*findings, *not_checked(pf.unrecognized, self._depends[ingredient])], key=finding_key)
        bands = sorted(firing.derived.get("renal_band", frozenset()))
        return EvaluateResponse(
            decision_id=decision_id or str(uuid.uuid4()),
            ruleset=self._ruleset_ref,
            drug=self._drug_out[ingredient],
            action=req.drug.action,
            contraindicated=outcome.contraindicated,
            dose=outcome.dose,
            findings=findings,
            monitoring=outcome.monitoring,
            missing_data=outcome.missing_data,
            unrecognized=pf.unrecognized,
            renal=RenalAssessment(
                value_ml_min=pf.renal.value_ml_min,
                method=pf.renal.method,
                band="/".join(bands) or "not derived",
            ),
            trace=outcome.trace,
        )
