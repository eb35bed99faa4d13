"""Safety invariants, each its own test per drug: over a synthetic cohort and as Hypothesis properties.

The cohort tests check realistic patients (every single-answer invariant on every patient of
that drug; the invariants that re-evaluate variants on the first ``VARIANT_PATIENTS``); the
properties search the corners (cut-off ages and renal values, every flag) and shrink a failure to
the smallest patient. A failure prints each violation with its rule ids and the exact request.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.harness.case import Case, Checker
from engine.harness.invariants import INVARIANTS
from tests.harness.conftest import DRUGS, HARNESS, PACK, examples
from tests.harness.strategies import cases

pytestmark = pytest.mark.slow  # every invariant x every drug, on the cohort and by hypothesis: minutes

NAMES = sorted(INVARIANTS)
VARIANT_PATIENTS = 40
PROPERTY_EXAMPLES = {False: 60, True: 25}  # keyed by "re-evaluates variants"


def _report(violations: Sequence[object]) -> str:
    return f"{len(violations)} violation(s):\n" + "\n".join(str(v) for v in violations[:10])


@pytest.mark.parametrize("drug", DRUGS)
@pytest.mark.parametrize("name", NAMES)
def test_invariant_on_synthetic_cohort(
    name: str, drug: str, checker: Checker, cohort_cases: dict[str, list[Case]]
) -> None:
    check, variants = INVARIANTS[name]
    patients = cohort_cases[drug][:VARIANT_PATIENTS] if variants else cohort_cases[drug]
    assert patients, f"no synthetic patient ordered {drug}: the cohort is too small to check it"
    violations = [v for case in patients for v in check(checker, case)]
    assert not violations, _report(violations)


def _property(name: str) -> object:
    check, variants = INVARIANTS[name]

    @settings(HARNESS, max_examples=examples(PROPERTY_EXAMPLES[variants]))
    @given(data=st.data())
    def prop(drug: str, checker: Checker, data: st.DataObject) -> None:
        case = data.draw(cases(PACK, drug), label="patient")
        violations = check(checker, case)
        assert not violations, _report(violations)

    return prop


@pytest.mark.parametrize("drug", DRUGS)
@pytest.mark.parametrize("name", NAMES)
def test_invariant_property(name: str, drug: str, checker: Checker) -> None:
    prop = _property(name)
    prop(drug, checker)  # type: ignore[operator]
