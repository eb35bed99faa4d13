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
from typing import assert_never

from engine.compiler.language import FIELDS, AllOf, AnyOf, Cmp, Kind, Node, Op, kind_of
from engine.compiler.model import CompiledPack, CompiledRule
from engine.compiler.regions import NON_NEGATIVE, IntervalSet, intersect

MAX_ALTERNATIVES = 512  # beyond this many expanded alternatives we assume the rule can fire


@dataclass(frozen=True)
class Atom:
    test: Cmp
    origin: str = ""  # e.g. "age_group: older-adult" when the test comes from a derivation

    def __str__(self) -> str:
        t, value = self.test, self.test.value
        symbol = t.spec.symbol
        match value:
            case bool():
                text = f"{t.field} {'' if value else 'not '}{symbol}"
            case float():
                text = f"{t.field} {symbol} {value:g}"
            case str():
                text = f"{t.field} {symbol} {value}"
            case tuple():
                text = f"{t.field} {symbol} [{', '.join(value)}]"
            case _:
                assert_never(value)
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
    members: dict[tuple[str, str, Op], Atom] = field(default_factory=dict)  # (set field, id, operator)

    def add(self, atom: Atom) -> str | None:
        """Fold one test in; a sentence saying why the conjunction is empty, or None."""
        t = atom.test
        spec = t.spec
        kind = kind_of(t.field)
        match kind:
            case Kind.ENUM:
                universe = frozenset(FIELDS[t.field].values)
                allowed, atoms = self.enums.setdefault(t.field, (set(universe), []))
                before = list(atoms)
                atoms.append(atom)
                if spec.admits is not None:
                    allowed &= spec.admits(universe, t.values)
                return _clash(before, atom) if not allowed else None
            case Kind.NUMBER:  # catalog numbers and comed class counts
                num = self.numbers.setdefault(t.field, _Numeric())
                before = list(num.atoms)
                num.atoms.append(atom)
                if isinstance(t.value, bool):  # known: true|false speaks of presence, not of a value
                    num.ivs = num.ivs if t.value else ()
                    num.missing_ok = num.missing_ok and not t.value
                elif spec.interval is not None and isinstance(t.value, float):
                    num.ivs = intersect(num.ivs, spec.interval(t.value))
                    num.missing_ok = False
                if not num.ivs and not num.missing_ok:
                    return _clash(before, atom)
                return None
            case Kind.SET:
                if not isinstance(t.value, str):
                    return None  # list operators were expanded into one test per id
                self.members[(t.field, t.value, t.op)] = atom
                other = self.members.get((t.field, t.value, spec.negation)) if spec.negation else None
                return _clash([other], atom) if other is not None else None
            case _:
                assert_never(kind)


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
            groups.append([[Atom(Cmp("action", Op.EQ, rule.rule.applies_to), "applies_to")]])
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

    def _expand(self, node: Node, origin: str = "") -> list[list[Atom]]:
        match node:
            case AnyOf(children=kids):
                return [alt for c in kids for alt in self._expand(c, origin)]
            case AllOf(children=kids):
                return list(_product([self._expand(c, origin) for c in kids]))
            case Cmp():
                each = node.spec.any_of
                if each is not None:  # includes_any: one alternative per id
                    return [[Atom(Cmp(node.field, each, v), origin)] for v in node.values]
                return [[Atom(node, origin)]]
            case _:
                assert_never(node)


def _count(groups: list[list[list[Atom]]]) -> int:
    n = 1
    for g in groups:
        n *= max(len(g), 1)
    return n


def _product(groups: list[list[list[Atom]]]) -> Iterator[list[Atom]]:
    for combo in itertools.product(*groups):
        yield [a for part in combo for a in part]
