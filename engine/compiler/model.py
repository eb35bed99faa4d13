"""What the compiler produces: an immutable, validated rule pack ready for the runtime.

A ``CompiledPack`` is built once (at start-up or on reload) and shared read-only by every request.
Whether it also passed the clinical lint and its examples is recorded by ``engine.pipeline``
(``Prepared``), not on the pack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.compiler.conditions import Test
from engine.terminology import Terminology
from schemas.rulefile import DrugProfile, Example, Rule, Then

SHARED = "*"


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    file: str
    line: int
    drug: str  # ingredient id, or SHARED
    patient_tests: tuple[Test, ...]
    derived_tests: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def id(self) -> str:
        return self.rule.id

    @property
    def version(self) -> str:
        return self.rule.version

    @property
    def then(self) -> Then:
        return self.rule.then

    @property
    def is_derivation(self) -> bool:
        return self.rule.then.derive is not None

    def referenced_fields(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for t in self.patient_tests:
            for f in t.fields():
                seen[f] = None
        for name, _ in self.derived_tests:
            seen[name] = None
        return tuple(seen)


@dataclass(frozen=True)
class LocatedExample:
    example: Example
    drug: str
    file: str
    line: int


@dataclass(frozen=True)
class DrugRules:
    """Everything evaluated when this drug is ordered: shared derivations + its own rules."""

    drug: str
    profile: DrugProfile
    rules: tuple[CompiledRule, ...]
    durable_definition: dict[str, Any]
    durable_names: dict[str, str]  # durable rule name -> rule id


@dataclass(frozen=True)
class CompiledPack:
    version: str
    digest: str
    terminology: Terminology
    derived: dict[str, tuple[str, ...]]
    drugs: dict[str, DrugRules]
    rules: dict[str, CompiledRule]
    examples: tuple[LocatedExample, ...]
    files: tuple[str, ...]
