"""Can a rule ever fire? A small satisfiability check over the condition language.

A rule whose conditions contradict each other (``age_years >= 65`` with ``age_years < 18``, or
``age_group: older-adult`` with ``age_years < 18``) compiles and then silently never fires; the
clinician who wrote it believes it protects patients. The conditions are expanded into a
disjunction of plain conjunctions (``any_of``, ``includes_any`` and derived facts, whose meaning is
the shared rules that derive them) and each conjunction is folded field by field. The check is
exact for the language as it stands; it does not know drug-class hierarchies, so ``includes:
opioid`` with ``excludes: cns-active`` is not reported.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

from engine.compiler.conditions import FIELDS, Test
from engine.compiler.model import CompiledPack, CompiledRule
from engine.compiler.regions import NON_NEGATIVE, IntervalSet, from_op, intersect

MAX_ALTERNATIVES = 512  # beyond this many expanded alternatives we assume the rule can fire

_SYMBOL = {"eq": "=", "ne": "≠", "lt": "<", "lte": "≤", "gt": ">", "gte": "≥"}


@dataclass(frozen=True)
class Atom:
    test: Test
    origin: str = ""  # e.g. "age_group: older-adult" when the test comes from a derivation

    def __str__(self) -> str:
        t = self.test
        if t.op in _SYMBOL:
            text = f"{t.field} {_SYMBOL[t.op]} {t.value:g}" if isinstance(t.value, float) else f"{t.field} = {t.value}"
        elif t.op == "known":
            text = f"{t.field} {'known' if t.value else 'not known'}"
        elif t.op in ("in", "not_in"):
            text = f"{t.field} {'in' if t.op == 'in' else 'not in'} [{', '.join(t.value)}]"
        else:
            text = f"{t.field} {t.op} {t.value}"
        return f"{text} (from {self.origin})" if self.origin else text


@dataclass
class _Numeric:
    ivs: IntervalSet = NON_NEGATIVE
    missing_ok: bool = True
    atoms: list[Atom] = field(default_factory=list)


@dataclass
class _Store:
    numbers: dict[str, _Numeric] = field(default_factory=dict)
    enums: dict[str, tuple[set[str], list[Atom]]] = field(default_factory=dict)
    includes: dict[tuple[str, str], Atom] = field(default_factory=dict)
    excludes: dict[tuple[str, str], Atom] = field(default_factory=dict)

    def add(self, atom: Atom) -> str | None:
        """Fold one test in; a sentence saying why the conjunction is empty, or None."""
        t = atom.test
        spec = FIELDS.get(t.field)
        if spec is not None and spec.kind == "enum":
            universe = set(spec.values)
            allowed, atoms = self.enums.setdefault(t.field, (universe, []))
            before = list(atoms)
            atoms.append(atom)
            values = {t.value} if t.op == "eq" else set(t.value)
            allowed &= universe - values if t.op == "not_in" else values
            return _clash(before, atom) if not allowed else None
        if spec is None or spec.kind == "number":  # numbers and comed class counts
            num = self.numbers.setdefault(t.field, _Numeric())
            before = list(num.atoms)
            num.atoms.append(atom)
            if t.op == "known":
                num.ivs = num.ivs if t.value else ()
                num.missing_ok = num.missing_ok and not t.value
            else:
                num.ivs = intersect(num.ivs, from_op(t.op, float(t.value)))
                num.missing_ok = False
            if not num.ivs and not num.missing_ok:
                return _clash(before, atom)
            return None
        key = (t.field, str(t.value))
        if t.op == "includes":
            self.includes[key] = atom
            other = self.excludes.get(key)
        elif t.op == "excludes":
            self.excludes[key] = atom
            other = self.includes.get(key)
        else:
            return None
        return _clash([other], atom) if other is not None else None


def _clash(before: list[Atom], atom: Atom) -> str:
    shown = "; ".join(str(a) for a in before) or "the field's possible values"
    return f"{atom} contradicts {shown}"


class Satisfiability:
    def __init__(self, pack: CompiledPack) -> None:
        self._derivations: dict[tuple[str, str], list[CompiledRule]] = {}
        for r in pack.rules.values():
            for name, value in (r.then.derive or {}).items():
                self._derivations.setdefault((name, value), []).append(r)

    def why_never(self, rule: CompiledRule) -> str | None:
        """None if some patient can fire ``rule``; otherwise the first contradiction found."""
        groups: list[list[list[Atom]]] = []
        if rule.rule.applies_to != "any":
            groups.append([[Atom(Test("action", "eq", rule.rule.applies_to), "applies_to")]])
        groups.extend(self._expand(t) for t in rule.patient_tests)
        for name, values in rule.derived_tests:
            alts: list[list[Atom]] = []
            for v in values:
                makers = self._derivations.get((name, v), [])
                for maker in makers:
                    sub = [self._expand(t, f"{name}: {v}") for t in maker.patient_tests] or [[[]]]
                    alts.extend(_product(sub))
            if not alts:
                return f"no shared rule ever derives {name}: {' or '.join(values)}"
            groups.append(alts)
        if _count(groups) > MAX_ALTERNATIVES:
            return None
        first_reason = None
        for conj in _product(groups):
            store = _Store()
            reason = next((r for r in (store.add(a) for a in conj) if r), None)
            if reason is None:
                return None
            first_reason = first_reason or reason
        return first_reason

    def _expand(self, t: Test, origin: str = "") -> list[list[Atom]]:
        if t.op == "any_of":
            return [alt for c in t.children for alt in self._expand(c, origin)]
        if t.op == "all_of":
            return list(_product([self._expand(c, origin) for c in t.children]))
        if t.op == "includes_any":
            return [[Atom(Test(t.field, "includes", v), origin)] for v in t.value]
        return [[Atom(t, origin)]]


def _count(groups: list[list[list[Atom]]]) -> int:
    n = 1
    for g in groups:
        n *= max(len(g), 1)
    return n


def _product(groups: list[list[list[Atom]]]) -> Iterator[list[Atom]]:
    for combo in itertools.product(*groups):
        yield [a for part in combo for a in part]
