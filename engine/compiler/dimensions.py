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

from engine.compiler.conditions import NUMBER_OPS, Test
from engine.compiler.model import CompiledPack, CompiledRule
from engine.compiler.regions import DIALYSIS, MISSING, NON_NEGATIVE, Region, from_op, intersect

HEPATIC_ORDER = ("none", "mild", "moderate", "severe")


@dataclass(frozen=True)
class Dimension:
    name: str  # the numeric field, or the enumerated field for hepatic_impairment
    label: str
    numeric: bool
    universe: Region

    def owns(self, field: str) -> bool:
        return field == self.name or (self.name == "renal_ml_min" and field == "on_dialysis")


def _numeric(name: str, label: str, *extra: str) -> Dimension:
    return Dimension(name, label, True, Region(NON_NEGATIVE, frozenset({MISSING, *extra})))


DIMENSIONS: tuple[Dimension, ...] = (
    _numeric("renal_ml_min", "renal function (mL/min)", DIALYSIS),
    _numeric("crcl_ml_min", "creatinine clearance (mL/min)"),
    _numeric("egfr_ml_min", "eGFR (mL/min)"),
    _numeric("age_years", "age (years)"),
    _numeric("weight_kg", "weight (kg)"),
    Dimension(
        "hepatic_impairment",
        "hepatic impairment",
        False,
        Region((), frozenset({*HEPATIC_ORDER, "unknown"})),
    ),
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

    def _projection(self, tests: Iterable[Test]) -> Region | None:
        """A derivation's band on this dimension, its other conditions set aside (None if it has none here).

        ``shared.renal-band.severe`` tests renal_ml_min < 30, not on dialysis, and no dialysis on the
        problem list: on the renal dimension that is the band 0 <= x < 30. A branch of an ``any_of``
        on this dimension suffices on its own (dialysis: on_dialysis true, or a problem-list entry).
        """
        region = self.dim.universe
        touched = False
        for t in tests:
            piece = self.exact(t)
            if piece is None and t.op == "any_of":
                kids = [k for k in (self.exact(c) for c in t.children) if k is not None]
                piece = _union(kids) if kids else None
            if piece is not None:
                region = region & piece
                touched = True
        return region if touched else None

    def exact(self, t: Test) -> Region | None:
        """The region where ``t`` holds, when ``t`` depends on this dimension only; else None."""
        if t.op in ("any_of", "all_of"):
            kids = [self.exact(c) for c in t.children]
            if any(k is None for k in kids):
                return None
            out = kids[0]
            for k in kids[1:]:
                out = (out | k) if t.op == "any_of" else (out & k)  # type: ignore[operator]
            return out
        if not self.dim.owns(t.field):
            return None
        if t.field == "on_dialysis":
            allowed = {t.value} if t.op == "eq" else set(t.value)
            if t.op == "not_in":
                allowed = {"true", "false", "unknown"} - allowed
            rest = self.dim.universe - Region((), frozenset({DIALYSIS}))
            out = Region((), frozenset({DIALYSIS})) if "true" in allowed else Region()
            return out | rest if allowed & {"false", "unknown"} else out
        if not self.dim.numeric:
            values = {t.value} if t.op == "eq" else set(t.value)
            if t.op == "not_in":
                values = set(self.dim.universe.tokens) - values
            return Region((), frozenset(values))
        if t.op == "known":
            return Region(NON_NEGATIVE) if t.value else Region((), frozenset({MISSING}))
        if t.op in NUMBER_OPS:
            return Region(intersect(from_op(t.op, float(t.value)), NON_NEGATIVE))
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
            piece = self.exact(t)
            if piece is None and t.op == "any_of":
                kids = [k for k in (self.exact(c) for c in t.children) if k is not None]
                piece = _union(kids) if kids else None
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
