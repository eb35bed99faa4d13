"""Rules in words: "fires when", "does not fire when" and "what it does", for people, not parsers.

Pharmacists review rules by reading them. The rule docs (``engine.authoring.docs``) and the author
page (``engine.api.author``) both need the same wording, generated from the compiled conditions so
it can never disagree with what the engine evaluates. Derived bands are explained by the title of
the shared rule that derives them ("renal_band is moderate: Renal function 30 to under 50 mL/min").
"""

from __future__ import annotations

from engine.compiler.conditions import Test, count_field
from engine.compiler.model import CompiledPack, CompiledRule
from schemas.rulefile import DoseAction, Then

_LABEL = {
    "age_years": ("age", " years"),
    "weight_kg": ("weight", " kg"),
    "height_cm": ("height", " cm"),
    "renal_ml_min": ("renal function", " mL/min"),
    "crcl_ml_min": ("creatinine clearance", " mL/min"),
    "egfr_ml_min": ("eGFR", " mL/min"),
}
_SYM = {"eq": "=", "ne": "≠", "lt": "<", "lte": "≤", "gt": ">", "gte": "≥"}
_NEG = {"eq": "ne", "ne": "eq", "lt": "gte", "lte": "gt", "gt": "lte", "gte": "lt"}
_SET_WORDS = {
    "conditions": "conditions",
    "comed_ingredients": "co-medications",
    "comed_classes": "co-medication classes",
    "allergy_ingredients": "allergies",
    "allergy_classes": "allergy classes",
}
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

    def _number(self, field: str, op: str, value: float) -> str:
        if field in self._count_class:
            return f"number of {self._count_class[field]} co-medications {_SYM[op]} {value:g}"
        label, unit = _LABEL.get(field, (field, ""))
        return f"{label} {_SYM[op]} {value:g}{unit}"

    def test(self, t: Test) -> str:
        if t.op == "any_of":
            return "any of: " + "; ".join(self.test(c) for c in t.children)
        if t.op == "all_of":
            label, unit = _LABEL.get(t.children[0].field, (t.children[0].field, ""))
            return f"{label} " + " and ".join(f"{_SYM[c.op]} {c.value:g}" for c in t.children) + unit
        if t.op in _SYM and isinstance(t.value, float):
            return self._number(t.field, t.op, t.value)
        if t.op == "known":
            return f"{_LABEL.get(t.field, (t.field, ''))[0]} {'is known' if t.value else 'is not known'}"
        if t.field in _SET_WORDS:
            where = _SET_WORDS[t.field]
            if t.op == "includes":
                return f"{where} include {t.value}"
            if t.op == "includes_any":
                return f"{where} include any of {', '.join(t.value)}"
            return f"{where} do not include {t.value}"
        if t.op == "eq":
            return f"{t.field} is {t.value}"
        if t.op == "in":
            return f"{t.field} is {' or '.join(t.value)}"
        return f"{t.field} is not {' nor '.join(t.value)}"

    def negated(self, t: Test) -> str:
        if t.op == "any_of":
            return "none of: " + "; ".join(self.test(c) for c in t.children)
        if t.op == "all_of":
            parts = " or ".join(self._number(c.field, _NEG[c.op], c.value) for c in t.children)
            return f"{parts}, or {_LABEL.get(t.children[0].field, ('the value', ''))[0]} is not known"
        if t.op in _SYM and isinstance(t.value, float):
            label = _LABEL.get(t.field, (t.field, ""))[0] if t.field not in self._count_class else "the count"
            return f"{self._number(t.field, _NEG[t.op], t.value)}, or {label} is not known"
        if t.op == "known":
            return self.test(Test(t.field, "known", not t.value))
        if t.field in _SET_WORDS:
            where = _SET_WORDS[t.field]
            if t.op == "includes":
                return f"{where} do not include {t.value}"
            if t.op == "includes_any":
                return f"{where} include none of {', '.join(t.value)}"
            return f"{where} include {t.value}"
        values = (t.value,) if t.op == "eq" else tuple(t.value)
        if t.op == "not_in":
            return f"{t.field} is {' or '.join(values)}"
        return f"{t.field} is not {' nor '.join(values)}"

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
        parts.append(f"start {s.dose_mg:g} mg {s.times_per_day}x daily ({s.dose_mg * s.times_per_day:g} mg/day)")
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
