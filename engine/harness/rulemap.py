"""What the compiled rules say about themselves, so invariants follow the pack instead of a list.

Teammates add drugs and rules continuously; an invariant that names "baclofen.pregnancy" or
"nine drugs" would silently stop covering new content. Everything an invariant needs to know about
a drug (which rules flag pregnancy or an interaction class, where its age and renal cut-offs are,
which dose statements depend on weight) is read here from ``CompiledPack``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.compiler.conditions import Test, holds
from engine.compiler.model import CompiledPack, CompiledRule, DrugRules

SET_FIELDS = ("conditions", "comed_ingredients", "comed_classes", "allergy_ingredients", "allergy_classes")
FLAG_FIELDS = ("pregnant", "breastfeeding")
RENAL_FIELDS = ("renal_ml_min", "egfr_ml_min")


@dataclass(frozen=True)
class FlagRule:
    """A rule with a top-level test that holds when the patient has one of ``values``."""

    rule: CompiledRule
    test: Test
    field: str
    values: frozenset[str]


def positive_values(test: Test) -> frozenset[str]:
    """Values whose presence makes ``test`` true (empty for negative tests such as excludes)."""
    if test.op == "includes" or (test.op == "eq" and isinstance(test.value, str)):
        return frozenset({str(test.value)})
    if test.op in ("includes_any", "in"):
        return frozenset(str(v) for v in test.value)
    return frozenset()


def applies(rule: CompiledRule, action: str) -> bool:
    return rule.rule.applies_to in ("any", action)


def others_hold(
    rule: CompiledRule, fact: Mapping[str, Any], derived: Mapping[str, Iterable[str]], skip: Test | None = None
) -> bool:
    """Every condition of ``rule`` except ``skip`` holds (reference semantics)."""
    if not applies(rule, str(fact.get("action"))):
        return False
    if not all(holds(t, fact) for t in rule.patient_tests if t is not skip):
        return False
    return all(set(derived.get(name, ())) & set(values) for name, values in rule.derived_tests)


def _numbers(test: Test, fields: tuple[str, ...]) -> Iterable[float]:
    if test.op in ("any_of", "all_of"):
        for child in test.children:
            yield from _numbers(child, fields)
    elif test.field in fields and isinstance(test.value, float):
        yield test.value


@dataclass(frozen=True)
class DrugMap:
    drug: str
    rules: DrugRules

    def flag_rules(self, field: str, value: str | None = None) -> list[FlagRule]:
        """Rules with a top-level positive test on ``field`` (for tri-state flags: on ``value``)."""
        out = []
        for rule in self.rules.rules:
            for t in rule.patient_tests:
                vals = positive_values(t) if t.field == field else frozenset()
                if vals and (value is None or value in vals):
                    out.append(FlagRule(rule, t, field, vals))
        return out

    def thresholds(self, fields: tuple[str, ...]) -> list[float]:
        found = {v for r in self.rules.rules for t in r.patient_tests for v in _numbers(t, fields)}
        return sorted(found)

    def weight_dependent(self) -> frozenset[str]:
        """Rules whose dose needs a weight (weight-based start or a mg/kg maximum)."""
        return frozenset(
            r.id
            for r in self.rules.rules
            if r.then.dose is not None and (r.then.dose.weight_based_start or r.then.dose.max_mg_per_kg_day)
        )

    def category_rules(self, category: str) -> list[CompiledRule]:
        return [r for r in self.rules.rules if r.then.finding is not None and r.then.finding.category == category]


def drug_map(pack: CompiledPack, drug: str) -> DrugMap:
    return DrugMap(drug, pack.drugs[drug])


def age_group_bounds(pack: CompiledPack) -> tuple[float, float]:
    """(pediatric below, older adult from) as the shared age-group derivations define them."""
    child, older = 18.0, 65.0
    for rule in pack.rules.values():
        band = (rule.then.derive or {}).get("age_group")
        for t in rule.patient_tests:
            if t.field == "age_years" and band == "pediatric" and t.op == "lt":
                child = float(t.value)
            if t.field == "age_years" and band == "older-adult" and t.op == "gte":
                older = float(t.value)
    return child, older


def derived_of(pack: CompiledPack, fired: Iterable[str]) -> dict[str, frozenset[str]]:
    """The derived facts the fired derivation rules asserted."""
    out: dict[str, set[str]] = {}
    for rid in fired:
        rule = pack.rules.get(rid)
        for name, value in ((rule.then.derive or {}) if rule else {}).items():
            out.setdefault(name, set()).add(value)
    return {k: frozenset(v) for k, v in out.items()}
