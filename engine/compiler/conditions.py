"""Parse ``when:`` lists into condition nodes, reading what is allowed from the language table.

Every field a rule may test is declared in ``engine.compiler.language.FIELDS`` (or declared as a
derived fact by a shared rule file), so an unknown field is a compile error and evaluation never
meets one. Which operators a field takes, and what value follows each, is the table's ``OpSpec``
and ``KindSpec``; this module only walks the YAML and says precisely what is wrong where.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, assert_never

from engine.compiler.language import (
    ANY_OF,
    CLASS_COUNT,
    FIELDS,
    KINDS,
    OPS,
    AllOf,
    AnyOf,
    Cmp,
    FieldSpec,
    Kind,
    Node,
    Op,
    Operand,
    Universe,
    Value,
    count_field,
)
from engine.compiler.yaml_source import Pointer
from engine.terminology import Terminology


class ConditionError(Exception):
    def __init__(self, path: Pointer, code: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.code = code
        self.message = message


@dataclass
class CompiledConditions:
    patient_tests: list[Node]
    derived_tests: dict[str, tuple[str, ...]]  # derived name -> accepted values


def usage(kind: Kind) -> str:
    """The shapes a field of this kind takes, for error messages."""
    spec = KINDS[kind]
    by_operand: dict[Operand, list[str]] = {}
    for name, op in spec.operators().items():
        by_operand.setdefault(spec.operand(op), []).append(name)
    shapes = [f"{{{'|'.join(names)}: {operand}}}" for operand, names in by_operand.items()]
    if spec.bare is not None:
        shapes.insert(0, str(spec.operand(spec.bare)))
    return ", ".join(shapes[:-1]) + f", or {shapes[-1]}" if len(shapes) > 1 else shapes[0]


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
                out.patient_tests.append(self._node(name, spec, (i, name)))
        return out

    def _split(self, cond: Any, path: Pointer) -> tuple[str, Any]:
        if not isinstance(cond, dict) or len(cond) != 1:
            raise ConditionError(
                path, "E206", "a condition is a mapping with exactly one key, e.g. {age_years: {gte: 65}}"
            )
        ((name, spec),) = cond.items()
        return str(name), spec

    def _derived_values(self, name: str, spec: Any, path: Pointer) -> tuple[str, ...]:
        values = spec if isinstance(spec, list) else [spec]
        if isinstance(spec, dict):
            if set(spec) != {Op.IN.value} or not isinstance(spec[Op.IN], list):
                raise ConditionError(path, "E202", f"derived fact {name!r} takes a value or a list of values")
            values = spec[Op.IN]
        allowed = self.derived[name]
        for v in values:
            if str(v) not in allowed:
                raise ConditionError(path, "E205", f"{name!r} has no value {v!r}; declared values: {list(allowed)}")
        return tuple(str(v) for v in values)

    def _node(self, name: str, spec: Any, path: Pointer) -> Node:
        if name == ANY_OF:
            return self._any_of(spec, path)
        if name == CLASS_COUNT:
            return self._class_count(spec, path)
        field = FIELDS.get(name)
        if field is None:
            known = sorted([*FIELDS, *self.derived, CLASS_COUNT, ANY_OF])
            raise ConditionError(path, "E201", f"unknown field {name!r}; known fields: {', '.join(known)}")
        kind = KINDS[field.kind]
        if not isinstance(spec, dict):
            if kind.bare is None or (kind.operand(kind.bare) == Operand.NUMBER and not _is_number(spec)):
                raise ConditionError(path, "E202", f"{field.name} takes {usage(field.kind)}")
            return self._cmp(field, kind.bare, spec, path)
        if not spec:
            raise ConditionError(path, "E202", f"{field.name} takes {usage(field.kind)}")
        allowed = kind.operators()
        ops: list[Op] = []
        for key in spec:
            op = allowed.get(str(key))
            if op is None:
                raise ConditionError(
                    path, "E202", f"unknown operator {key!r} for {field.kind} field {field.name}: {usage(field.kind)}"
                )
            ops.append(op)
        if len(ops) > 1:
            alone = next((op for op in ops if OPS[op].alone), None)
            if alone is not None:
                raise ConditionError(path, "E202", f"'{alone}: {kind.operand(alone)}' stands alone")
            if not kind.several:
                raise ConditionError(path, "E202", f"{field.name} takes one operator: {usage(field.kind)}")
        tests = [self._cmp(field, op, spec[op.value], path) for op in ops]
        return tests[0] if len(tests) == 1 else AllOf(tuple(tests))

    def _any_of(self, spec: Any, path: Pointer) -> Node:
        if not isinstance(spec, list) or len(spec) < 2:
            raise ConditionError(path, "E206", "any_of takes a list of at least two conditions")
        kids = []
        for j, c in enumerate(spec):
            kname, kspec = self._split(c, (*path, j))
            if kname in self.derived:
                raise ConditionError(
                    (*path, j), "E206", f"derived fact {kname!r} cannot be inside any_of; list its values instead"
                )
            kids.append(self._node(kname, kspec, (*path, j, kname)))
        return AnyOf(tuple(kids))

    def _cmp(self, field: FieldSpec, op: Op, raw: Any, path: Pointer) -> Cmp:
        """One comparison, its operand checked against the shape the table gives for this field's kind."""
        kind = KINDS[field.kind]
        compiled = kind.synonyms.get(op, op)
        shape = kind.operand(op)
        value: Value
        match shape:
            case Operand.NUMBER:
                if not _is_number(raw):
                    raise ConditionError(path, "E202", f"{field.name} {op}: {raw!r} is not a number")
                value = float(raw)
            case Operand.FLAG:
                if not isinstance(raw, bool):
                    raise ConditionError(path, "E202", f"{field.name} {op}: takes true or false")
                value = raw
            case Operand.ONE:
                if isinstance(raw, list):
                    plural = next((o for o, s in OPS.items() if s.any_of == op), None)
                    hint = f"; use {plural} for a list" if plural else ""
                    raise ConditionError(path, "E202", f"{op} takes one id{hint}")
                value = self._member(field, raw, path)
            case Operand.MANY | Operand.ONE_OR_MANY:
                if shape == Operand.MANY and not isinstance(raw, list):
                    raise ConditionError(path, "E202", f"{op} takes a list")
                items = raw if isinstance(raw, list) else [raw]
                value = tuple(self._member(field, v, path) for v in items)
                single = OPS[compiled].one_value
                if single is not None and len(value) == 1:
                    compiled, value = single, value[0]
            case _:
                assert_never(shape)
        return Cmp(field.name, compiled, value)

    def _member(self, field: FieldSpec, raw: Any, path: Pointer) -> str:
        """One enumerated value or terminology id, normalised (YAML ``true`` is the value "true")."""
        if field.kind == Kind.ENUM:
            value = str(raw).lower() if isinstance(raw, bool) else str(raw)
            if value not in field.values:
                raise ConditionError(path, "E203", f"{field.name} has no value {raw!r}; allowed: {list(field.values)}")
            return value
        if field.universe is None:
            raise ConditionError(path, "E202", f"{field.name} takes numbers, not ids")
        self._check_member(field.universe, str(raw), path)
        return str(raw)

    def _check_member(self, universe: Universe, value: str, path: Pointer) -> None:
        known: Mapping[str, object]
        match universe:
            case Universe.VALUE_SET:
                known = self.term.value_sets
            case Universe.DRUG_CLASS:
                known = self.term.class_members
            case Universe.INGREDIENT:
                known = self.term.ingredients
            case _:
                assert_never(universe)
        if value not in known:
            raise ConditionError(path, "E204", f"unknown {universe} {value!r} (not in rules/terminology/)")

    def _class_count(self, spec: Any, path: Pointer) -> Cmp:
        shape = f"{CLASS_COUNT} takes {{class: id, gte: n}} (one comparison)"
        if not isinstance(spec, dict) or "class" not in spec or len(spec) != 2:
            raise ConditionError(path, "E202", shape)
        cls = str(spec["class"])
        self._check_member(Universe.DRUG_CLASS, cls, path)
        ((key, v),) = ((k, x) for k, x in spec.items() if k != "class")
        op = COUNT_OPS.get(str(key))
        if op is None or not _is_number(v):
            raise ConditionError(path, "E202", f"{CLASS_COUNT}: {key}: {v!r} is not a comparison with a number")
        return Cmp(count_field(cls), op, float(v))


COUNT_OPS = {name: op for name, op in KINDS[Kind.NUMBER].operators().items() if OPS[op].interval is not None}
"""The comparisons ``comed_class_count`` takes next to its ``class``."""


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)
