"""What the compiled rules say about themselves, so invariants follow the pack instead of a list.

Teammates add drugs and rules continuously; an invariant that names "baclofen.pregnancy" or
"nine drugs" would silently stop covering new content. Everything an invariant needs to know about
a drug (which rules can fire because of pregnancy or an interaction class, directly or through a
derived fact such as ``pregnancy: pregnant``; where its age and renal cut-offs are; which dose
statements depend on weight) is read here from ``CompiledPack``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import assert_never

from engine.compiler.language import RENAL, AllOf, AnyOf, Cmp, Kind, Node, Op, fields_of
from engine.compiler.model import CompiledPack, CompiledRule, DrugRules

SET_FIELDS = fields_of(Kind.SET)
RENAL_FIELDS = fields_of(Kind.NUMBER, measures=RENAL)


def positive_values(test: Cmp) -> frozenset[str]:
    """Values whose presence makes ``test`` true (empty for negative tests such as excludes)."""
    return frozenset(test.values) if test.spec.positive else frozenset()


def triggers(node: Node, field: str) -> frozenset[str]:
    """Values of ``field`` that make ``node`` true on their own (an any_of: any child's)."""
    match node:
        case AnyOf(children=kids):
            return frozenset(v for child in kids for v in triggers(child, field))
        case AllOf():
            return frozenset()  # no single value suffices: every part must hold
        case Cmp():
            return positive_values(node) if node.field == field else frozenset()
        case _:
            assert_never(node)


def applies(rule: CompiledRule, action: str) -> bool:
    return rule.rule.applies_to in ("any", action)


def _numbers(node: Node, fields: tuple[str, ...]) -> Iterable[float]:
    match node:
        case AnyOf(children=kids) | AllOf(children=kids):
            for child in kids:
                yield from _numbers(child, fields)
        case Cmp(field=name, value=float() as value):
            if name in fields:
                yield value
        case Cmp():
            pass
        case _:
            assert_never(node)


class DrugMap:
    """One drug's compiled rules, with the structural questions invariants ask (answers cached)."""

    def __init__(self, drug: str, rules: DrugRules) -> None:
        self.drug = drug
        self.rules = rules
        self._triggers: dict[tuple[str, str], frozenset[str]] = {}
        self._reaching: dict[tuple[str, ...], tuple[CompiledRule, ...]] = {}

    def deriving(self, name: str, values: Iterable[str]) -> list[CompiledRule]:
        """Derivation rules that assert ``name`` with one of ``values``."""
        wanted = set(values)
        return [r for r in self.rules.rules if (r.then.derive or {}).get(name) in wanted]

    def trigger_values(self, rule: CompiledRule, field: str, depth: int = 3) -> frozenset[str]:
        """Values of ``field`` through which ``rule`` can fire: its own tests, or (for a test on a
        derived fact such as ``pregnancy: pregnant``) the tests of the rules that derive it."""
        found = {v for t in rule.patient_tests for v in triggers(t, field)}
        if depth > 0:
            for name, values in rule.derived_tests:
                for d in self.deriving(name, values):
                    found |= self.trigger_values(d, field, depth - 1)
        return frozenset(found)

    def reaches(self, rule: CompiledRule, fields: Iterable[str]) -> bool:
        return any(self.cached_triggers(rule, f) for f in fields)

    def reaching(self, fields: tuple[str, ...]) -> tuple[CompiledRule, ...]:
        """The drug's rules (in pack order) that can fire through ``fields``; cached, as invariants
        ask this for every patient and most rules reach none of a given invariant's fields."""
        found = self._reaching.get(fields)
        if found is None:
            found = self._reaching[fields] = tuple(r for r in self.rules.rules if self.reaches(r, fields))
        return found

    def cached_triggers(self, rule: CompiledRule, field: str) -> frozenset[str]:
        key = (rule.id, field)
        if key not in self._triggers:
            self._triggers[key] = self.trigger_values(rule, field)
        return self._triggers[key]

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
            if not isinstance(t, Cmp) or t.field != "age_years" or not isinstance(t.value, float):
                continue
            if band == "pediatric" and t.op == Op.LT:
                child = t.value
            if band == "older-adult" and t.op == Op.GTE:
                older = t.value
    return child, older


def derived_of(pack: CompiledPack, fired: Iterable[str]) -> dict[str, frozenset[str]]:
    """The derived facts the fired derivation rules asserted."""
    out: dict[str, set[str]] = {}
    for rid in fired:
        rule = pack.rules.get(rid)
        for name, value in ((rule.then.derive or {}) if rule else {}).items():
            out.setdefault(name, set()).add(value)
    return {k: frozenset(v) for k, v in out.items()}
