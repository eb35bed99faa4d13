"""durable-rules against the pure-Python reference evaluator, on the same compiled conditions.

A disagreement names the rule ids each side fired and the request; Hypothesis shrinks it to the
smallest patient that still disagrees. The durable side is read from the answer the engine gave
(its trace), so one test shows that equals a fresh durable-rules firing exactly; the last tests
plant a wrong rule on either side to show the check can fail (it is not comparing an engine with
itself), in the comparison alone and through a cohort run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.harness.case import Case, fired_ids
from engine.harness.cohort import Checks, Runtime, evaluate_lines
from engine.harness.differential import Differential
from engine.harness.rulemap import derived_of
from engine.runtime.durable_host import Firing
from engine.runtime.engine import Engine
from schemas.api import EvaluateResponse
from tests.harness.conftest import DRUGS, HARNESS, PACK, examples
from tests.harness.strategies import cases


@pytest.mark.slow
def test_differential_on_synthetic_cohort(differential: Differential, cohort_cases: dict[str, list[Case]]) -> None:
    all_cases = [c for group in cohort_cases.values() for c in group]
    assert len(all_cases) >= 3000
    disagreements = [d for c in all_cases if (d := differential.compare(c.id, c.request)) is not None]
    assert not disagreements, "\n".join(str(d) for d in disagreements[:10])


@pytest.mark.slow
@pytest.mark.parametrize("drug", DRUGS)
def test_differential_property(drug: str, differential: Differential) -> None:
    @settings(HARNESS, max_examples=examples(150))
    @given(data=st.data())
    def prop(data: st.DataObject) -> None:
        case = data.draw(cases(PACK, drug), label="patient")
        d = differential.compare(case.id, case.request)
        assert d is None, str(d)

    prop()


class _DropsOneRule(Engine):
    """A reference engine that 'forgets' one rule: what a durable-rules bug would look like."""

    def __init__(self, dropped: str) -> None:
        super().__init__(PACK, backend="reference")
        self.dropped = dropped

    def fire(self, ingredient: str, fact: Mapping[str, Any]) -> Firing:
        real = super().fire(ingredient, dict(fact))
        return Firing(real.fired - {self.dropped}, real.derived)


def test_differential_reports_a_planted_disagreement(
    durable_engine: Engine, cohort_cases: dict[str, list[Case]]
) -> None:
    drug = next(d for d in DRUGS if cohort_cases[d])
    case = cohort_cases[drug][0]
    fired = durable_engine.fire(
        *durable_engine.facts(case.request)[:1], durable_engine.facts(case.request)[1].fact
    ).fired
    dropped = sorted(fired)[0]
    d = Differential(durable_engine, _DropsOneRule(dropped)).compare(case.id, case.request)
    assert d is not None
    assert d.only_durable == (dropped,) and d.only_reference == ()
    assert case.id in str(d) and dropped in str(d) and '"patient"' in str(d)


def test_answer_trace_is_exactly_the_durable_firing(
    durable_engine: Engine, cohort_cases: dict[str, list[Case]]
) -> None:
    """What ``compare_answer`` reads from an answer is what a separate durable-rules run fires and derives."""
    checked = 0
    derivations = 0
    for case in (c for group in cohort_cases.values() for c in group[:150]):
        ingredient, pf = durable_engine.facts(case.request)
        firing = durable_engine.fire(ingredient, dict(pf.fact))
        fired = fired_ids(durable_engine.evaluate(case.request))
        assert fired == firing.fired, case.id
        assert derived_of(PACK, fired) == dict(firing.derived), case.id
        checked += 1
        derivations += bool(firing.derived)
    assert checked >= 500 and derivations >= 500  # real derived facts (age group, renal band) were compared


def _without(resp: EvaluateResponse, rule_id: str) -> EvaluateResponse:
    """The answer durable-rules would give had it missed ``rule_id``."""
    return resp.model_copy(update={"trace": [t for t in resp.trace if t.rule_id != rule_id]})


def test_a_wrong_durable_answer_is_a_disagreement(
    differential: Differential, durable_engine: Engine, cohort_cases: dict[str, list[Case]]
) -> None:
    case = next(c for d in DRUGS for c in cohort_cases[d] if c.request.drug.action == "start")
    ingredient, pf = durable_engine.facts(case.request)
    answer = durable_engine.evaluate(case.request)
    assert differential.compare_answer(case.id, case.request, ingredient, pf.fact, answer) is None

    own = sorted(r for r in fired_ids(answer) if not PACK.rules[r].is_derivation)[0]
    d = differential.compare_answer(case.id, case.request, ingredient, pf.fact, _without(answer, own))
    assert d is not None and d.only_reference == (own,) and d.only_durable == ()
    assert d.derived_durable == d.derived_reference

    derivation = next(r for r in sorted(fired_ids(answer)) if PACK.rules[r].is_derivation)
    d = differential.compare_answer(case.id, case.request, ingredient, pf.fact, _without(answer, derivation))
    assert d is not None and derivation in d.only_reference
    assert d.derived_durable != d.derived_reference
    assert "derived facts" in str(d)


@pytest.mark.slow
def test_cohort_run_reports_a_planted_disagreement_only_when_checking(cohort_cases: dict[str, list[Case]]) -> None:
    """Through ``evaluate_lines``: a reference that forgets a rule shows up per patient, unless switched off."""
    drug = next(d for d in DRUGS if len(cohort_cases[d]) >= 20)
    lines = [(i + 1, case.request.model_dump_json()) for i, case in enumerate(cohort_cases[drug][:20])]
    rt = Runtime.build(PACK)
    try:
        unchecked = evaluate_lines(rt, lines, "planted", Checks(differential=False, invariants=False)).to_state()
        fires = unchecked["counts"]["rule_fires"]
        dropped = max(sorted(fires), key=lambda r: (PACK.rules[r].is_derivation, fires[r]))  # a derivation, often fired
        rt.differential = Differential(rt.durable, _DropsOneRule(dropped))
        checked = evaluate_lines(rt, lines, "planted", Checks(invariants=False)).to_state()
    finally:
        rt.close()
    assert PACK.rules[dropped].is_derivation and fires[dropped] > 0
    found = checked["lists"]["disagreements"]
    assert len(found) == fires[dropped] and all(d["only_durable"] == [dropped] for d in found)
    assert checked["counts"]["checks"] == {"differential": 20}
    assert "disagreements" not in unchecked["lists"] and "checks" not in unchecked["counts"]
    assert checked["counts"]["rule_fires"] == fires
