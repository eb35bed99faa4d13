"""durable-rules against the pure-Python reference evaluator, on the same compiled conditions.

A disagreement names the rule ids each side fired and the request; Hypothesis shrinks it to the
smallest patient that still disagrees. The last test plants a wrong rule in a reference engine to
show the check can fail (it is not comparing an engine with itself).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.harness.case import Case
from engine.harness.differential import Differential
from engine.runtime.durable_host import Firing
from engine.runtime.engine import Engine
from tests.harness.conftest import DRUGS, HARNESS, PACK, examples
from tests.harness.strategies import cases


def test_differential_on_synthetic_cohort(differential: Differential, cohort_cases: dict[str, list[Case]]) -> None:
    all_cases = [c for group in cohort_cases.values() for c in group]
    assert len(all_cases) >= 3000
    disagreements = [d for c in all_cases if (d := differential.compare(c.id, c.request)) is not None]
    assert not disagreements, "\n".join(str(d) for d in disagreements[:10])


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
