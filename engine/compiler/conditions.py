"""The condition language of rule files, compiled twice: to durable-rules tests and to Python.

Every field a rule may test is declared in ``FIELDS`` (or declared as a derived fact by a shared
rule file), so an unknown field is a compile error and evaluation never meets one. The Python
predicate is the reference semantics: the differential check runs both and compares.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from engine.terminology import Terminology

Kind = Literal["number", "enum", "set"]
TRISTATE = ("true", "false", "unknown")


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: Kind
    description: str
    values: tuple[str, ...] = ()  # enum: allowed values
    universe: str = ""  # set: "value-set" | "drug-class" | "ingredient"


FIELDS: dict[str, FieldSpec] = {
    f.name: f
    for f in (
        FieldSpec("age_years", "number", "Age in years (from age_years or birth_date)."),
        FieldSpec("sex", "enum", "Administrative sex.", ("female", "male", "other", "unknown")),
        FieldSpec("weight_kg", "number", "Actual body weight."),
        FieldSpec("height_cm", "number", "Height."),
        FieldSpec("renal_ml_min", "number", "Renal function used for dosing (see renal_method)."),
        FieldSpec("crcl_ml_min", "number", "Cockcroft-Gault creatinine clearance (adults)."),
        FieldSpec("egfr_ml_min", "number", "eGFR as reported, or bedside Schwartz for children."),
        FieldSpec("on_dialysis", "enum", "On chronic dialysis.", TRISTATE),
        FieldSpec(
            "hepatic_impairment",
            "enum",
            "Hepatic impairment class.",
            ("none", "mild", "moderate", "severe", "unknown"),
        ),
        FieldSpec("pregnant", "enum", "Pregnancy status.", TRISTATE),
        FieldSpec("breastfeeding", "enum", "Breastfeeding status.", TRISTATE),
        FieldSpec("action", "enum", "What the order does.", ("start", "stop")),
        FieldSpec(
            "ordered_drug_on_med_list",
            "enum",
            "The ordered drug is already on the medication list.",
            ("true", "false"),
        ),
        FieldSpec("conditions", "set", "Value sets the problem list falls in.", universe="value-set"),
        FieldSpec("comed_ingredients", "set", "Ingredients of co-medications.", universe="ingredient"),
        FieldSpec("comed_classes", "set", "Drug classes of co-medications.", universe="drug-class"),
        FieldSpec("allergy_ingredients", "set", "Ingredients the patient is allergic to.", universe="ingredient"),
        FieldSpec("allergy_classes", "set", "Drug classes of documented allergies.", universe="drug-class"),
    )
}
CLASS_COUNT = "comed_class_count"  # {comed_class_count: {class: cns-active, gte: 2}}
NUMBER_OPS = ("eq", "ne", "lt", "lte", "gt", "gte")
_DURABLE_OP = {"eq": "$eq", "ne": "$neq", "lt": "$lt", "lte": "$lte", "gt": "$gt", "gte": "$gte"}


def count_field(class_id: str) -> str:
    return "n_comed_" + class_id.replace("-", "_")


def size_field(set_field: str) -> str:
    return "n_" + set_field


@dataclass(frozen=True)
class Test:
    """One compiled test on the patient fact (``field`` may be a count field)."""

    field: str
    op: str
    value: Any
    children: tuple[Test, ...] = ()

    def fields(self) -> tuple[str, ...]:
        if self.op in ("any_of", "all_of"):  # composite tests: their children name the fields
            return tuple(f for c in self.children for f in c.fields())
        return (self.field,)


class ConditionError(Exception):
    def __init__(self, path: tuple[str | int, ...], code: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.code = code
        self.message = message


@dataclass
class CompiledConditions:
    patient_tests: list[Test]
    derived_tests: dict[str, tuple[str, ...]]  # derived name -> accepted values


class ConditionCompiler:
    """Validates ``when:`` lists against the field catalog, terminology and derived declarations."""

    def __init__(self, terminology: Terminology, derived: Mapping[str, tuple[str, ...]]) -> None:
        self.term = terminology
        self.derived = derived

    def compile(self, when: list[Any]) -> CompiledConditions:
        out = CompiledConditions([], {})
        for i, cond in enumerate(when):
            name, spec = self._split(cond, (i,))
            if name in self.derived:
                if name in out.derived_tests:
                    raise ConditionError((i,), "E206", f"{name!r} is tested twice; list the values in one test")
                out.derived_tests[name] = self._derived_values(name, spec, (i, name))
            else:
                out.patient_tests.append(self._test(name, spec, (i, name)))
        return out

    def _split(self, cond: Any, path: tuple[str | int, ...]) -> tuple[str, Any]:
        if not isinstance(cond, dict) or len(cond) != 1:
            raise ConditionError(
                path, "E206", "a condition is a mapping with exactly one key, e.g. {age_years: {gte: 65}}"
            )
        ((name, spec),) = cond.items()
        return str(name), spec

    def _derived_values(self, name: str, spec: Any, path: tuple[str | int, ...]) -> tuple[str, ...]:
        values = spec if isinstance(spec, list) else [spec]
        if isinstance(spec, dict):
            if set(spec) != {"in"} or not isinstance(spec["in"], list):
                raise ConditionError(path, "E202", f"derived fact {name!r} takes a value or a list of values")
            values = spec["in"]
        allowed = self.derived[name]
        for v in values:
            if str(v) not in allowed:
                raise ConditionError(path, "E205", f"{name!r} has no value {v!r}; declared values: {list(allowed)}")
        return tuple(str(v) for v in values)

    def _test(self, name: str, spec: Any, path: tuple[str | int, ...]) -> Test:
        if name == "any_of":
            if not isinstance(spec, list) or len(spec) < 2:
                raise ConditionError(path, "E206", "any_of takes a list of at least two conditions")
            kids = []
            for j, c in enumerate(spec):
                kname, kspec = self._split(c, (*path, j))
                if kname in self.derived:
                    raise ConditionError(
                        (*path, j),
                        "E206",
                        f"derived fact {kname!r} cannot be inside any_of; list its values instead",
                    )
                kids.append(self._test(kname, kspec, (*path, j, kname)))
            return Test("any_of", "any_of", None, tuple(kids))
        if name == CLASS_COUNT:
            return self._class_count(spec, path)
        field = FIELDS.get(name)
        if field is None:
            known = sorted([*FIELDS, *self.derived, CLASS_COUNT, "any_of"])
            raise ConditionError(path, "E201", f"unknown field {name!r}; known fields: {', '.join(known)}")
        if field.kind == "number":
            return self._number(field, spec, path)
        if field.kind == "enum":
            return self._enum(field, spec, path)
        return self._set(field, spec, path)

    def _number(self, field: FieldSpec, spec: Any, path: tuple[str | int, ...]) -> Test:
        if _is_number(spec):
            return Test(field.name, "eq", float(spec))
        if not isinstance(spec, dict) or not spec:
            raise ConditionError(path, "E202", f"{field.name} takes a number or {{op: number}} with op in {NUMBER_OPS}")
        if "known" in spec:
            if len(spec) != 1 or not isinstance(spec["known"], bool):
                raise ConditionError(path, "E202", "'known: true|false' stands alone")
            return Test(field.name, "known", spec["known"])
        tests = []
        for op, v in spec.items():
            if op not in NUMBER_OPS:
                raise ConditionError(path, "E202", f"unknown operator {op!r} for number field {field.name}")
            if not _is_number(v):
                raise ConditionError(path, "E202", f"{field.name} {op}: {v!r} is not a number")
            tests.append(Test(field.name, op, float(v)))
        return tests[0] if len(tests) == 1 else Test("any_of", "all_of", None, tuple(tests))

    def _enum(self, field: FieldSpec, spec: Any, path: tuple[str | int, ...]) -> Test:
        op, values = "in", spec
        if isinstance(spec, dict):
            if len(spec) != 1 or next(iter(spec)) not in ("in", "ne", "not_in"):
                raise ConditionError(path, "E202", f"{field.name} takes a value, a list, {{ne: v}} or {{not_in: [..]}}")
            ((op, values),) = spec.items()
        vals = values if isinstance(values, list) else [values]
        norm = []
        for v in vals:
            s = str(v).lower() if isinstance(v, bool) else str(v)
            if s not in field.values:
                raise ConditionError(path, "E203", f"{field.name} has no value {v!r}; allowed: {list(field.values)}")
            norm.append(s)
        if op == "ne":
            op = "not_in"
        if op == "in" and len(norm) == 1:
            return Test(field.name, "eq", norm[0])
        return Test(field.name, op, tuple(norm))

    def _set(self, field: FieldSpec, spec: Any, path: tuple[str | int, ...]) -> Test:
        if (
            not isinstance(spec, dict)
            or len(spec) != 1
            or next(iter(spec)) not in ("includes", "includes_any", "excludes")
        ):
            raise ConditionError(
                path,
                "E202",
                f"{field.name} takes {{includes: id}}, {{includes_any: [ids]}} or {{excludes: id}}",
            )
        ((op, value),) = spec.items()
        values = value if isinstance(value, list) else [value]
        if op == "includes_any" and not isinstance(value, list):
            raise ConditionError(path, "E202", "includes_any takes a list")
        if op != "includes_any" and isinstance(value, list):
            raise ConditionError(path, "E202", f"{op} takes one id; use includes_any for a list")
        for v in values:
            self._check_member(field.universe, str(v), path)
        if op == "includes_any":
            return Test(field.name, op, tuple(str(v) for v in values))
        return Test(field.name, op, str(value))

    def _check_member(self, universe: str, value: str, path: tuple[str | int, ...]) -> None:
        known: Mapping[str, object]
        if universe == "value-set":
            known = self.term.value_sets
        elif universe == "drug-class":
            known = self.term.class_members
        else:
            known = self.term.ingredients
        if value not in known:
            raise ConditionError(path, "E204", f"unknown {universe} {value!r} (not in rules/terminology/)")

    def _class_count(self, spec: Any, path: tuple[str | int, ...]) -> Test:
        if not isinstance(spec, dict) or "class" not in spec or len(spec) != 2:
            raise ConditionError(path, "E202", f"{CLASS_COUNT} takes {{class: id, gte: n}} (one comparison)")
        cls = str(spec["class"])
        self._check_member("drug-class", cls, path)
        ((op, v),) = ((k, x) for k, x in spec.items() if k != "class")
        if op not in NUMBER_OPS or not _is_number(v):
            raise ConditionError(path, "E202", f"{CLASS_COUNT}: {op}: {v!r} is not a comparison with a number")
        return Test(count_field(cls), op, float(v))


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


# ---- the two back ends ------------------------------------------------------------------------


def to_durable(test: Test) -> dict[str, Any]:
    """durable-rules JSON for one test (alpha-node syntax)."""
    if test.op == "any_of":
        return {"$or": [to_durable(c) for c in test.children]}
    if test.op == "all_of":
        return {"$and": [to_durable(c) for c in test.children]}
    if test.op == "known":
        return {("$ex" if test.value else "$nex"): {test.field: 1}}
    if test.op in _DURABLE_OP:
        if test.op == "eq":
            return {test.field: test.value}
        return {_DURABLE_OP[test.op]: {test.field: test.value}}
    if test.op == "in":
        return {"$or": [{test.field: v} for v in test.value]}
    if test.op == "not_in":
        return {"$and": [{"$neq": {test.field: v}} for v in test.value]}
    if test.op == "includes":
        return {"$iany": {test.field: {"$i": test.value}}}
    if test.op == "includes_any":
        return {"$or": [{"$iany": {test.field: {"$i": v}}} for v in test.value]}
    if test.op == "excludes":
        # $iall over an empty list is false in durable-rules, so an empty list is tested by its size
        return {"$or": [{size_field(test.field): 0}, {"$iall": {test.field: {"$neq": {"$i": test.value}}}}]}
    raise AssertionError(f"no durable form for {test.op}")


_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
}


def holds(test: Test, fact: Mapping[str, Any]) -> bool:
    """Reference semantics of one test over the patient fact (a missing field never matches)."""
    if test.op == "any_of":
        return any(holds(c, fact) for c in test.children)
    if test.op == "all_of":
        return all(holds(c, fact) for c in test.children)
    present = test.field in fact
    if test.op == "known":
        return present is bool(test.value)
    if not present:
        return False
    v = fact[test.field]
    if test.op in _CMP:
        return _CMP[test.op](v, test.value)
    if test.op == "in":
        return v in test.value
    if test.op == "not_in":
        return v not in test.value
    if test.op == "includes":
        return test.value in v
    if test.op == "includes_any":
        return any(x in v for x in test.value)
    if test.op == "excludes":
        return test.value not in v
    raise AssertionError(f"no reference form for {test.op}")
