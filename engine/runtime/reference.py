"""A pure-Python evaluator of the same compiled rules: the reference for differential checks.

It applies the documented semantics (engine.compiler.language.holds) by naive forward chaining
to a fixpoint. It is deliberately simple; if it and durable-rules ever disagree, one of them is
wrong and the harness reports the rule ids and the patient.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.compiler.language import holds
from engine.compiler.model import CompiledRule, DrugRules
from engine.runtime.durable_host import Firing


def rule_matches(rule: CompiledRule, fact: Mapping[str, Any], derived: Mapping[str, set[str]]) -> bool:
    if rule.rule.applies_to != "any" and fact.get("action") != rule.rule.applies_to:
        return False
    if not all(holds(t, fact) for t in rule.patient_tests):
        return False
    return all(derived.get(name, set()) & set(values) for name, values in rule.derived_tests)


def evaluate_reference(drug_rules: DrugRules, fact: Mapping[str, Any]) -> Firing:
    """Fired rule ids and derived facts, by the reference semantics."""
    fired: set[str] = set()
    derived: dict[str, set[str]] = {}
    changed = True
    while changed:
        changed = False
        for rule in drug_rules.rules:
            if rule.id in fired or not rule_matches(rule, fact, derived):
                continue
            fired.add(rule.id)
            changed = True
            for name, value in (rule.then.derive or {}).items():
                derived.setdefault(name, set()).add(value)
    return Firing(frozenset(fired), {k: frozenset(v) for k, v in derived.items()})
