"""Orders by a route the pack does not cover: an answer that says so, instead of oral advice or a 422.

Every dose, band and suggestion in the rule pack is for oral use. An intrathecal baclofen order
(micrograms by pump) or a transdermal product checked against oral rules would get a dangerous
answer, and refusing it with a 422 hides the order from the caller. So the native API accepts any
``drug.route`` and answers one finding, "not covered by these rules: route X", with no dose.
"""

from __future__ import annotations

import re
import uuid

from schemas.api import DrugOut, EvaluateResponse, Finding, RenalAssessment, RulesetRef

_ORAL = re.compile(r"^\s*(oral|orally|po|p\.o\.|by mouth|per os|oral route)\s*$", re.IGNORECASE)
ROUTE_RULE_ID = "route.not-covered"


def is_oral(route: str) -> bool:
    return bool(_ORAL.match(route))


def other_route_answer(
    route: str, drug: DrugOut, action: str, ruleset: RulesetRef, decision_id: str | None
) -> EvaluateResponse:
    finding = Finding(
        rule_id=ROUTE_RULE_ID,
        category="dose-range",
        severity="warning",
        summary=f"Not covered by these rules: route {route.strip()}",
        detail=(
            f"These rules give oral {drug.name} dosing only; no dose, renal, interaction or population check was "
            f"done for the {route.strip()} route. Check the order against the product's own labelling."
        ),
        sources=[],
    )
    return EvaluateResponse(
        decision_id=decision_id or str(uuid.uuid4()),
        ruleset=ruleset,
        drug=drug,
        action="stop" if action == "stop" else "start",
        contraindicated=False,
        dose=None,
        findings=[finding],
        monitoring=[],
        missing_data=[],
        unrecognized=[],
        renal=RenalAssessment(value_ml_min=None, method="not assessed (route not covered)", band="not derived"),
        trace=[],
    )
