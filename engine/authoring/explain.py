"""Rules in words: "fires when", "does not fire when" and "what it does", for people, not parsers.

Pharmacists review rules by reading them. The rule docs (``engine.authoring.docs``) and the author
page (``engine.api.author``) both need the same wording, generated from the compiled conditions so
it can never disagree with what the engine evaluates. Derived bands are explained by the title of
the shared rule that derives them ("renal_band is moderate: Renal function 30 to under 50 mL/min").
"""

from __future__ import annotations

from typing import assert_never

from engine.compiler.language import FIELDS, AllOf, AnyOf, Cmp, Kind, Node, count_field, kind_of
from engine.compiler.model import CompiledPack, CompiledRule
from engine.runtime.frequency import frequency_words
from schemas.rulefile import DoseAction, Then

_APPLIES = {"start": "the order starts the drug", "stop": "the order stops the drug", "any": "any order"}


class Explainer:
    def __init__(self, pack: CompiledPack) -> None:
        self.pack = pack
        self._count_class = {count_field(c): c for c in pack.terminology.class_members}
        self._derived_title: dict[tuple[str, str], str] = {}
        for r in pack.rules.values():
            for name, value in (r.then.derive or {}).items():
                self._derived_title.setdefault((name, value), r.rule.title)

    # ---- conditions ---------------------------------------------------------------------------

    def fires_when(self, rule: CompiledRule) -> list[str]:
        out = [] if rule.rule.applies_to == "any" else [_APPLIES[rule.rule.applies_to]]
        out += [self.test(t) for t in rule.patient_tests]
        out += [self.derived(name, values) for name, values in rule.derived_tests]
        return out or ["always (no conditions)"]

    def does_not_fire_when(self, rule: CompiledRule) -> list[str]:
        out = []
        if rule.rule.applies_to != "any":
            out.append(_APPLIES["stop" if rule.rule.applies_to == "start" else "start"])
        out += [self.negated(t) for t in rule.patient_tests]
        out += [self.derived(name, values, negate=True) for name, values in rule.derived_tests]
        return out

    def derived(self, name: str, values: tuple[str, ...], negate: bool = False) -> str:
        verb = "is not" if negate else "is"
        joined = " or ".join(values) if not negate else " nor ".join(values)
        meaning = "; ".join(self._derived_title.get((name, v), v) for v in values)
        return f"{name} {verb} {joined} ({meaning})"

    def _label(self, field: str) -> tuple[str, str]:
        """How a field is named in text, and its unit with a leading space ("age", " years")."""
        spec = FIELDS.get(field)
        if spec is None:
            return field, ""
        return spec.said, f" {spec.unit}" if spec.unit else ""

    def _number(self, field: str, symbol: str, value: float) -> str:
        if field in self._count_class:
            return f"number of {self._count_class[field]} co-medications {symbol} {value:g}"
        label, unit = self._label(field)
        return f"{label} {symbol} {value:g}{unit}"

    def test(self, node: Node) -> str:
        match node:
            case AnyOf(children=kids):
                return "any of: " + "; ".join(self.test(c) for c in kids)
            case AllOf(children=kids):
                number = _one_number(kids)
                if number is None:
                    return "all of: " + "; ".join(self.test(c) for c in kids)
                field, parts = number
                label, unit = self._label(field)
                return f"{label} " + " and ".join(f"{c.spec.symbol} {v:g}" for c, v in parts) + unit
            case Cmp():
                return self._cmp(node, negate=False)
            case _:
                assert_never(node)

    def negated(self, node: Node) -> str:
        match node:
            case AnyOf(children=kids):
                return "none of: " + "; ".join(self.test(c) for c in kids)
            case AllOf(children=kids):
                number = _one_number(kids)
                if number is None:
                    return "not all of: " + "; ".join(self.test(c) for c in kids)
                field, parts = number
                failing = " or ".join(self._number(field, c.spec.negated_symbol(), v) for c, v in parts)
                return f"{failing}, or {self._label(field)[0] if field in FIELDS else 'the value'} is not known"
            case Cmp():
                return self._cmp(node, negate=True)
            case _:
                assert_never(node)

    def _cmp(self, t: Cmp, *, negate: bool) -> str:
        spec, value = t.spec, t.value
        label = self._label(t.field)[0]
        match value:
            case bool():  # known: true|false; "does not fire when" says the opposite
                return f"{label} {spec.phrase(negate=value == negate).verb}"
            case float():
                if not negate:
                    return self._number(t.field, spec.symbol, value)
                who = "the count" if t.field in self._count_class else label
                return f"{self._number(t.field, spec.negated_symbol(), value)}, or {who} is not known"
            case str() | tuple():
                # enumerated fields are shown by the name authors write: "hepatic_impairment is moderate"
                subject = t.field if kind_of(t.field) == Kind.ENUM else label
                return spec.phrase(negate=negate).say(subject, t.values)
            case _:
                assert_never(value)

    # ---- actions ------------------------------------------------------------------------------

    def does(self, then: Then) -> list[str]:
        out: list[str] = []
        if then.derive:
            out += [f"derives {k} = {v}" for k, v in then.derive.items()]
        if then.contraindicated:
            out.append("marks the drug contraindicated (no dose)")
        if then.dose is not None:
            out.append(dose_text(then.dose))
        if then.finding is not None:
            f = then.finding
            out.append(f"{f.severity} {f.category} finding: {f.summary}")
        out += [f"monitoring ({m.code}): {m.prompt} ({m.when})" for m in then.monitor]
        if then.missing_data:
            out.append(f"reports missing data: {', '.join(then.missing_data)}")
        return out


def dose_text(d: DoseAction) -> str:
    if d.withhold:
        return "withholds the dose (no safe start can be computed)"
    parts = []
    if d.start is not None:
        s = d.start
        daily = s.dose_mg * s.times_per_day
        parts.append(f"start {s.dose_mg:g} mg {frequency_words(s.times_per_day)} ({daily:g} mg/day)")
    if d.weight_based_start is not None:
        w = d.weight_based_start
        cap = f", at most {w.max_dose_mg:g} mg per dose" if w.max_dose_mg else ""
        parts.append(f"start {w.mg_per_kg_day:g} mg/kg/day in {w.times_per_day} doses{cap}")
    if d.max_daily_mg is not None:
        parts.append(f"maximum {d.max_daily_mg:g} mg/day")
    if d.max_mg_per_kg_day is not None:
        parts.append(f"maximum {d.max_mg_per_kg_day:g} mg/kg/day")
    if d.titration:
        parts.append(f"titration: {d.titration}")
    return "dose: " + "; ".join(parts)


def _one_number(kids: tuple[Node, ...]) -> tuple[str, list[tuple[Cmp, float]]] | None:
    """The field and comparisons of an ``all_of`` of number tests on one field (``{gte: 2, lt: 8}``)."""
    parts = [(k, k.value) for k in kids if isinstance(k, Cmp) and isinstance(k.value, float)]
    fields = {k.field for k, _ in parts}
    if len(parts) != len(kids) or len(fields) != 1:
        return None
    return fields.pop(), parts
