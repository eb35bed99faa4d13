"""Project a rule's conditions onto one clinical dimension (renal, age, weight, hepatic class).

Dose bands are written in several ways: ``renal_ml_min: {lt: 30}``, ``renal_band: severe``,
``any_of: [{renal_ml_min: {lt: 25}}, {on_dialysis: true}]``, ``age_group: older-adult``. To compare
them, each is projected onto its dimension as a ``Region``; derived bands are translated through
the shared rules that derive them (``renal_band: severe`` means what ``shared.renal-band.severe``
tests), so the lint needs no hard-coded band table and follows ``rules/shared/`` when it changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import assert_never

from engine.compiler.language import FIELDS, AllOf, AnyOf, Cmp, Node
from engine.compiler.model import CompiledPack, CompiledRule
from engine.compiler.regions import DIALYSIS, MISSING, NON_NEGATIVE, Region, intersect

HEPATIC = FIELDS["hepatic_impairment"]
HEPATIC_ORDER = tuple(v for v in HEPATIC.values if v != "unknown")
DIALYSIS_FIELD = FIELDS["on_dialysis"]


@dataclass(frozen=True)
class Dimension:
    name: str  # the numeric field, or the enumerated field for hepatic_impairment
    label: str
    numeric: bool
    universe: Region

    def owns(self, field: str) -> bool:
        return field == self.name or (self.name == "renal_ml_min" and field == "on_dialysis")


def _numeric(name: str, *extra: str) -> Dimension:
    spec = FIELDS[name]
    return Dimension(name, f"{spec.said} ({spec.unit})", True, Region(NON_NEGATIVE, frozenset({MISSING, *extra})))


DIMENSIONS: tuple[Dimension, ...] = (
    _numeric("renal_ml_min", DIALYSIS),
    _numeric("crcl_ml_min"),
    _numeric("egfr_ml_min"),
    _numeric("age_years"),
    _numeric("weight_kg"),
    Dimension(HEPATIC.name, HEPATIC.said, False, Region((), frozenset(HEPATIC.values))),
)
BY_NAME = {d.name: d for d in DIMENSIONS}


class Projector:
    """Regions of rules on one dimension, with derived facts translated via the pack's shared rules."""

    def __init__(self, pack: CompiledPack, dim: Dimension) -> None:
        self.dim = dim
        self._derived: dict[str, dict[str, Region]] = {}
        derivations = [r for r in pack.rules.values() if r.then.derive]
        for name in pack.derived:
            makers = [r for r in derivations if name in (r.then.derive or {})]
            table: dict[str, Region] = {}
            for r in makers:
                region = self._projection(r.patient_tests) if not r.derived_tests else None
                if region is None:
                    break  # some derivation of this fact is not about this dimension
                value = (r.then.derive or {})[name]
                table[value] = table.get(value, Region()) | region
            else:
                if makers:
                    self._derived[name] = table

    def translates(self, name: str) -> bool:
        return name in self._derived

    def _projection(self, tests: Iterable[Node]) -> Region | None:
        """A derivation's band on this dimension, its other conditions set aside (None if it has none here).

        ``shared.renal-band.severe`` tests renal_ml_min < 30, not on dialysis, and no dialysis on the
        problem list: on the renal dimension that is the band 0 <= x < 30. A branch of an ``any_of``
        on this dimension suffices on its own (dialysis: on_dialysis true, or a problem-list entry).
        """
        region = self.dim.universe
        touched = False
        for t in tests:
            piece = self._sufficient(t)
            if piece is not None:
                region = region & piece
                touched = True
        return region if touched else None

    def _sufficient(self, node: Node) -> Region | None:
        """``exact``, or for an ``any_of`` mixing dimensions the union of its own-dimension branches."""
        piece = self.exact(node)
        if piece is None and isinstance(node, AnyOf):
            kids = [k for k in (self.exact(c) for c in node.children) if k is not None]
            piece = _union(kids) if kids else None
        return piece

    def exact(self, node: Node) -> Region | None:
        """The region where ``node`` holds, when it depends on this dimension only; else None."""
        match node:
            case AnyOf(children=kids) | AllOf(children=kids):
                regions = [self.exact(c) for c in kids]
                known = [r for r in regions if r is not None]
                if len(known) < len(regions) or not known:
                    return None
                out = known[0]
                for r in known[1:]:
                    out = (out | r) if isinstance(node, AnyOf) else (out & r)
                return out
            case Cmp():
                return self._cmp(node) if self.dim.owns(node.field) else None
            case _:
                assert_never(node)

    def _cmp(self, t: Cmp) -> Region | None:
        spec = t.spec
        if t.field == DIALYSIS_FIELD.name:
            if spec.admits is None:
                return None
            allowed = spec.admits(frozenset(DIALYSIS_FIELD.values), t.values)
            rest = self.dim.universe - Region((), frozenset({DIALYSIS}))
            out = Region((), frozenset({DIALYSIS})) if "true" in allowed else Region()
            return out | rest if allowed & {"false", "unknown"} else out
        if not self.dim.numeric:
            return Region((), spec.admits(self.dim.universe.tokens, t.values)) if spec.admits else None
        if isinstance(t.value, bool):  # known: true|false
            return Region(NON_NEGATIVE) if t.value else Region((), frozenset({MISSING}))
        if spec.interval is not None and isinstance(t.value, float):
            return Region(intersect(spec.interval(t.value), NON_NEGATIVE))
        return None

    def derived(self, name: str, values: tuple[str, ...]) -> Region | None:
        table = self._derived.get(name)
        if table is None:
            return None
        out = Region()
        for v in values:
            out = out | table.get(v, Region())
        return out

    def exact_rule(self, rule: CompiledRule) -> Region | None:
        """Where the rule fires, if that depends on this dimension only (and it tests it at all)."""
        tests = [self.exact(t) for t in rule.patient_tests] + [self.derived(n, v) for n, v in rule.derived_tests]
        if not tests or any(x is None for x in tests):
            return None
        out = self.dim.universe
        for x in tests:
            out = out & x  # type: ignore[operator]
        return out

    def guaranteed(self, rule: CompiledRule) -> Region | None:
        """Values of this dimension for which the rule fires whatever else is true of the patient.

        None when the rule does not test this dimension at all. ``any_of`` mixing this dimension
        with others counts by its own-dimension branches (they suffice on their own).
        """
        out = self.dim.universe
        touched = False
        for t in rule.patient_tests:
            piece = self._sufficient(t)
            touched = touched or piece is not None
            out = out & (piece if piece is not None else Region())
        for name, values in rule.derived_tests:
            piece = self.derived(name, values)
            touched = touched or piece is not None
            out = out & (piece if piece is not None else Region())
        return out if touched else None

    def necessary(self, rule: CompiledRule) -> Region:
        """Values of this dimension the rule cannot fire outside of (the universe if untested)."""
        out = self.dim.universe
        for t in rule.patient_tests:
            piece = self.exact(t)
            if piece is not None:
                out = out & piece
        for name, values in rule.derived_tests:
            piece = self.derived(name, values)
            if piece is not None:
                out = out & piece
        return out


def _union(regions: list[Region]) -> Region:
    out = Region()
    for r in regions:
        out = out | r
    return out
