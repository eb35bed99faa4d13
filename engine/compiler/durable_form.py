"""Build durable-rules ruleset JSON from compiled rules, inside the engine's hard limits.

durable-rules 2.0.28 fails in the C layer (error 303, infinite loops, segfaults) when an alpha
node has too many children or too many rules share a pattern; see docs/durable-rules.md. We check
those limits here, at compile time, with margins, so a rule pack that would cross them never loads.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

from engine.compiler.language import to_durable
from engine.compiler.model import CompiledRule
from engine.errors import RuleProblem

SENTINEL_RULE = "__sentinel"
SENTINEL_FACT_TYPE = "__eval__"
PATIENT_FACT_TYPE = "patient"
DERIVED_FACT_TYPE = "derived"

# Hard limits in durable-rules' C source, and the margins we keep below them.
MAX_PASSING_CHILDREN = 64  # events.c MAX_STACK_SIZE: more alpha tests passed from one node -> error 303
MAX_SIBLING_TESTS = 512  # rete.c: more sibling tests -> create_ruleset never returns
MAX_RULES_PER_PATTERN = 255  # BETA_LIST_LENGTH: 256 segfaults on the first assert
MAX_RULES_PER_RULESET = 4096  # MAX_ACTIONS
MAX_TESTS_PER_PATTERN = 31  # MAX_SEQUENCE_EXPRESSIONS
SAFE_PASSING_CHILDREN = 48
SAFE_SIBLINGS = 400
SAFE_RULES_PER_PATTERN = 200
SAFE_RULES_PER_RULESET = 2000


def patient_pattern(rule: CompiledRule) -> dict[str, Any]:
    tests: list[dict[str, Any]] = [{"t": PATIENT_FACT_TYPE}]
    if rule.rule.applies_to != "any":
        tests.append({"action": rule.rule.applies_to})
    tests.extend(to_durable(t) for t in rule.patient_tests)
    return {"$and": tests}


def derived_pattern(name: str, values: tuple[str, ...]) -> dict[str, Any]:
    value_test: dict[str, Any] = {"value": values[0]} if len(values) == 1 else {"$or": [{"value": v} for v in values]}
    return {"$and": [{"t": DERIVED_FACT_TYPE}, {"name": name}, value_test]}


def durable_rule(rule: CompiledRule) -> dict[str, Any]:
    patterns: list[dict[str, Any]] = [{"p": patient_pattern(rule)}]
    for i, (name, values) in enumerate(rule.derived_tests):
        patterns.append({f"d{i}": derived_pattern(name, values)})
    return {"all": patterns}


def build_definition(
    rules: list[CompiledRule],
) -> tuple[dict[str, Any], dict[str, str], list[RuleProblem]]:
    """Ruleset JSON, the durable-name -> rule-id table, and any limit problems."""
    definition: dict[str, Any] = {SENTINEL_RULE: {"all": [{"m": {"t": SENTINEL_FACT_TYPE}}]}}
    names: dict[str, str] = {}
    for i, rule in enumerate(rules):
        # rule ids contain dots; durable names are kept opaque so no id can collide with its syntax
        name = f"r{i}"
        definition[name] = durable_rule(rule)
        names[name] = rule.id
    return definition, names, check_limits(rules, definition)


def _may_pass_together(children: dict[str, dict[str, Any]]) -> int:
    """Upper bound of sibling tests one fact can pass at once.

    Plain equality tests on one field are mutually exclusive (at most one passes); every other
    test (ranges, list membership, or/and groups) may pass together with its siblings.
    """
    equality_fields: set[str] = set()
    others = 0
    for test in children.values():
        ((key, value),) = test.items()
        if not key.startswith("$") and not isinstance(value, dict | list):
            equality_fields.add(key)
        else:
            others += 1
    return len(equality_fields) + others


def check_limits(rules: list[CompiledRule], definition: dict[str, Any]) -> list[RuleProblem]:
    problems: list[RuleProblem] = []
    first = rules[0] if rules else None
    where = (first.file, first.line) if first else ("rules", 1)
    if len(definition) > SAFE_RULES_PER_RULESET:
        problems.append(
            RuleProblem(*where, "E401", f"{len(definition)} rules in one ruleset (limit {SAFE_RULES_PER_RULESET})")
        )
    children: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    same_pattern: Counter[str] = Counter()
    owner: dict[str, CompiledRule] = {}
    for rule, body in zip(rules, list(definition.values())[1:], strict=True):
        for binding in body["all"]:
            (pattern,) = binding.values()
            raw: list[dict[str, Any]] = pattern["$and"]
            tests = [json.dumps(t, sort_keys=True) for t in raw]
            if len(tests) > MAX_TESTS_PER_PATTERN:
                problems.append(
                    RuleProblem(rule.file, rule.line, "E401", f"{rule.id}: {len(tests)} tests in one pattern (max 31)")
                )
            for depth in range(1, len(tests)):
                parent = "|".join(tests[:depth])
                children[parent][tests[depth]] = raw[depth]
                owner.setdefault(parent, rule)
            full = "|".join(tests)
            same_pattern[full] += 1
            owner.setdefault(full, rule)
    for parent, kids in children.items():
        passing = _may_pass_together(kids)
        if passing > SAFE_PASSING_CHILDREN or len(kids) > SAFE_SIBLINGS:
            r = owner[parent]
            problems.append(
                RuleProblem(
                    r.file,
                    r.line,
                    "E401",
                    f"{len(kids)} different tests follow the same condition prefix and up to {passing} can hold at "
                    f"once (safe limits {SAFE_SIBLINGS} and {SAFE_PASSING_CHILDREN}; durable-rules fails at "
                    f"{MAX_SIBLING_TESTS} and {MAX_PASSING_CHILDREN}); start these rules with a more selective "
                    "condition, such as an equality test",
                )
            )
    for full, count in same_pattern.items():
        if count > SAFE_RULES_PER_PATTERN:
            r = owner[full]
            problems.append(
                RuleProblem(
                    r.file,
                    r.line,
                    "E401",
                    f"{count} rules share one identical pattern (safe limit {SAFE_RULES_PER_PATTERN}; "
                    f"durable-rules crashes at {MAX_RULES_PER_PATTERN + 1})",
                )
            )
    return problems
