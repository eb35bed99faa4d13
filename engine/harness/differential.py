"""Compare durable-rules' answer with the pure-Python reference on the same patient fact.

durable-rules is an unmaintained C engine with known wrong-answer hazards (docs/durable-rules.md);
the reference evaluator applies the documented semantics of the same compiled conditions. Any
difference in the fired rule ids or the derived facts means one of them is wrong, so it is
reported with both rule sets and the request that produced it, never averaged away.

The durable side is read from the answer the engine actually gave (``compare_answer``), not from a
second durable-rules run: the trace has one entry per fired rule, and the derived facts are what
those rules' ``derive`` asserts, which is exactly how ``DurableRuleset`` builds them (it asserts
the derivations of each fired rule name and nothing else). That checks the answer a user saw and
costs one durable evaluation per patient instead of two (issue 8).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.harness.case import fired_ids, request_json
from engine.harness.rulemap import derived_of
from engine.runtime.durable_host import Firing
from engine.runtime.engine import Engine
from schemas.api import EvaluateRequest, EvaluateResponse


@dataclass(frozen=True)
class Disagreement:
    case_id: str
    drug: str
    only_durable: tuple[str, ...]
    only_reference: tuple[str, ...]
    derived_durable: dict[str, list[str]]
    derived_reference: dict[str, list[str]]
    request: dict[str, Any]

    def __str__(self) -> str:
        parts = [f"engines disagree on {self.case_id} ({self.drug})"]
        if self.only_durable:
            parts.append(f"fired only in durable-rules: {', '.join(self.only_durable)}")
        if self.only_reference:
            parts.append(f"fired only in the reference: {', '.join(self.only_reference)}")
        if self.derived_durable != self.derived_reference:
            parts.append(f"derived facts: durable {self.derived_durable} vs reference {self.derived_reference}")
        parts.append(f"request: {json.dumps(self.request, sort_keys=True)}")
        return "\n    ".join(parts)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.case_id,
            "drug": self.drug,
            "only_durable": list(self.only_durable),
            "only_reference": list(self.only_reference),
            "derived_durable": self.derived_durable,
            "derived_reference": self.derived_reference,
            "request": self.request,
        }


class Differential:
    """A durable engine and a reference engine over one compiled pack."""

    def __init__(self, durable: Engine, reference: Engine) -> None:
        if durable.pack is not reference.pack:
            raise ValueError("both engines must evaluate the same compiled pack")
        if durable.backend != "durable" or reference.backend != "reference":
            raise ValueError("need one durable and one reference engine")
        self.durable = durable
        self.reference = reference

    def compare(self, case_id: str, req: EvaluateRequest) -> Disagreement | None:
        """Evaluate ``req`` with durable-rules and check its answer against the reference."""
        ingredient, pf = self.durable.facts(req)
        return self.compare_answer(case_id, req, ingredient, pf.fact, self.durable.evaluate(req, decision_id="harness"))

    def reference_firing(self, ingredient: str, fact: Mapping[str, Any]) -> Firing:
        return self.reference.fire(ingredient, dict(fact))

    def compare_answer(
        self,
        case_id: str,
        req: EvaluateRequest,
        ingredient: str,
        fact: Mapping[str, Any],
        answer: EvaluateResponse,
        reference: Firing | None = None,
    ) -> Disagreement | None:
        """Check an answer durable-rules already gave for ``req`` (``fact``: its patient fact;
        ``reference``: ``reference_firing`` of that fact, when the caller already has it)."""
        fired = fired_ids(answer)
        derived = derived_of(self.durable.pack, fired)
        b = reference if reference is not None else self.reference_firing(ingredient, fact)
        if fired == b.fired and derived == dict(b.derived):
            return None
        da = {k: sorted(v) for k, v in sorted(derived.items())}
        db = {k: sorted(v) for k, v in sorted(b.derived.items())}
        return Disagreement(
            case_id=case_id,
            drug=ingredient,
            only_durable=tuple(sorted(fired - b.fired)),
            only_reference=tuple(sorted(b.fired - fired)),
            derived_durable=da,
            derived_reference=db,
            request=request_json(req),
        )
