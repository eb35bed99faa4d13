"""The condition language of rule files as data: its fields, its operators and its compiled nodes.

Pharmacists extend this language (a new operator, a new field), so one operator is one entry of
``OPS`` and one field is one ``FieldSpec`` (the model is json-rules-engine's operator table). An
``OpSpec`` says where an author may write the operator and with what value, its reference
semantics, its durable-rules form, the values it admits (the lint's region arithmetic), its
symbol, negation and words. The parser (``engine.compiler.conditions``), both back ends
(``holds`` and ``to_durable`` below), the lint (``satisfy``, ``dimensions``), the explanations,
the harness, the JSON Schema and the table in docs/rule-language.md read this module and keep no
list of their own. The table is built by a ``match`` on the operator and interpreters match on
the node type, each ending in ``assert_never``: a forgotten case is a mypy error, not a silent
fall-through.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, assert_never

from engine.compiler.regions import INF, Interval, IntervalSet


class Kind(StrEnum):
    NUMBER = "number"
    ENUM = "enum"
    SET = "set"


class Universe(StrEnum):
    """Where the ids of a set field are defined (rules/terminology/)."""

    VALUE_SET = "value-set"
    DRUG_CLASS = "drug-class"
    INGREDIENT = "ingredient"


class Operand(StrEnum):
    """What an author writes after an operator (the values are the docs' wording)."""

    NUMBER = "a number"
    FLAG = "true or false"
    ONE = "one value"
    MANY = "a list"
    ONE_OR_MANY = "a value or a list"


class Op(StrEnum):
    EQ = "eq"
    NE = "ne"
    LT = "lt"
    LTE = "lte"
    GT = "gt"
    GTE = "gte"
    KNOWN = "known"
    IN = "in"
    NOT_IN = "not_in"
    INCLUDES = "includes"
    INCLUDES_ANY = "includes_any"
    EXCLUDES = "excludes"


@dataclass(frozen=True)
class Words:
    """How explanations say a test: ``<subject> <verb> <values joined>``."""

    verb: str
    joiner: str = " or "

    def say(self, subject: str, values: tuple[str, ...]) -> str:
        return f"{subject} {self.verb} {self.joiner.join(values)}"


def _never(_operand: Any) -> bool:
    return False


@dataclass(frozen=True)
class OpSpec:
    op: Op
    written: Mapping[Kind, Operand]  # where authors may write it, and what follows it
    meaning: str  # the docs table
    holds: Callable[[Any, Any], bool]  # reference semantics on a present value: (patient value, operand)
    durable: Callable[[str, Any], dict[str, Any]]  # durable-rules alpha-node test: (field, operand)
    symbol: str  # lint messages and number explanations: "≥", "in", "includes"
    words: Words | None = None  # enum and set explanations: "conditions include stroke" (numbers use symbol)
    negated: Words | None = None  # the "does not fire when" pages: "conditions do not include stroke"
    negation: Op | None = None  # holds exactly when this operator fails on a present value
    interval: Callable[[float], IntervalSet] | None = None  # number operators: the x with "x op v"
    admits: Callable[[frozenset[str], tuple[str, ...]], frozenset[str]] | None = None  # enum: values admitted
    any_of: Op | None = None  # a list operand means this operator on any one of its values
    one_value: Op | None = None  # compiled as this operator when the list has one value
    positive: bool = False  # the values it names make it true by being present (harness triggers)
    alone: bool = False  # the only operator of its mapping
    if_missing: Callable[[Any], bool] = _never  # a missing value satisfies no comparison

    def phrase(self, *, negate: bool = False) -> Words:
        """How an enumerated or set test is said (numbers are said with ``symbol``)."""
        words = self.negated if negate else self.words
        if words is None:
            raise ValueError(f"operator {self.op} is said with its symbol, not words")
        return words

    def negated_symbol(self) -> str:
        if self.negation is None:
            raise ValueError(f"operator {self.op} has no negation")
        return OPS[self.negation].symbol


def _cmp(durable_op: str) -> Callable[[str, Any], dict[str, Any]]:
    return lambda name, v: {durable_op: {name: v}}


def _exclusion(name: str, value: Any) -> dict[str, Any]:
    # $iall over an empty list is false in durable-rules, so an empty list is tested by its size
    return {"$or": [{size_field(name): 0}, {"$iall": {name: {"$neq": {"$i": value}}}}]}


_NUM = {Kind.NUMBER: Operand.NUMBER}
_SAME = Words("is", " or ")
_NOT = Words("is not", " nor ")


def _spec(op: Op) -> OpSpec:
    """One operator's entry; the match is exhaustive, so a new ``Op`` without an entry fails mypy."""
    match op:
        case Op.EQ:
            return OpSpec(
                op, written=_NUM, meaning="equal to (`age_years: 3` is the same)", holds=operator.eq,
                durable=lambda name, v: {name: v}, symbol="=", words=_SAME, negated=_NOT, negation=Op.NE,
                interval=lambda v: (Interval(v, True, v, True),), admits=lambda _u, vs: frozenset(vs), positive=True,
            )  # fmt: skip
        case Op.NE:
            return OpSpec(
                op, written={Kind.NUMBER: Operand.NUMBER, Kind.ENUM: Operand.ONE_OR_MANY},
                meaning="not equal to; on an enumerated field the same as `not_in`", holds=operator.ne,
                durable=_cmp("$neq"), symbol="≠", words=_NOT, negated=_SAME, negation=Op.EQ,
                interval=lambda v: (Interval(-INF, False, v, False), Interval(v, False, INF, False)),
                admits=lambda u, vs: u - frozenset(vs),
            )  # fmt: skip
        case Op.LT:
            return OpSpec(
                op, written=_NUM, meaning="below", holds=operator.lt, durable=_cmp("$lt"), symbol="<",
                negation=Op.GTE, interval=lambda v: (Interval(-INF, False, v, False),),
            )  # fmt: skip
        case Op.LTE:
            return OpSpec(
                op, written=_NUM, meaning="at most", holds=operator.le, durable=_cmp("$lte"), symbol="≤",
                negation=Op.GT, interval=lambda v: (Interval(-INF, False, v, True),),
            )  # fmt: skip
        case Op.GT:
            return OpSpec(
                op, written=_NUM, meaning="above", holds=operator.gt, durable=_cmp("$gt"), symbol=">",
                negation=Op.LTE, interval=lambda v: (Interval(v, False, INF, False),),
            )  # fmt: skip
        case Op.GTE:
            return OpSpec(
                op, written=_NUM, meaning="at least", holds=operator.ge, durable=_cmp("$gte"), symbol="≥",
                negation=Op.LT, interval=lambda v: (Interval(v, True, INF, False),),
            )  # fmt: skip
        case Op.KNOWN:
            return OpSpec(
                op, written={Kind.NUMBER: Operand.FLAG},
                meaning="the value is present (`true`) or missing (`false`); stands alone",
                holds=lambda _value, want: bool(want), durable=lambda name, v: {("$ex" if v else "$nex"): {name: 1}},
                symbol="known", words=Words("is known"), negated=Words("is not known"), alone=True,
                if_missing=lambda want: not want,
            )  # fmt: skip
        case Op.IN:
            return OpSpec(
                op, written={Kind.ENUM: Operand.ONE_OR_MANY},
                meaning="one of the values (`sex: [female, unknown]` is the same)", holds=lambda value, vs: value in vs,
                durable=lambda name, vs: {"$or": [{name: v} for v in vs]}, symbol="in", words=_SAME, negated=_NOT,
                negation=Op.NOT_IN, admits=lambda _u, vs: frozenset(vs), one_value=Op.EQ, positive=True,
            )  # fmt: skip
        case Op.NOT_IN:
            return OpSpec(
                op, written={Kind.ENUM: Operand.ONE_OR_MANY}, meaning="none of the values",
                holds=lambda value, vs: value not in vs,
                durable=lambda name, vs: {"$and": [{"$neq": {name: v}} for v in vs]}, symbol="not in", words=_NOT,
                negated=_SAME, negation=Op.IN, admits=lambda u, vs: u - frozenset(vs),
            )  # fmt: skip
        case Op.INCLUDES:
            return OpSpec(
                op, written={Kind.SET: Operand.ONE}, meaning="the set contains the id", holds=operator.contains,
                durable=lambda name, v: {"$iany": {name: {"$i": v}}}, symbol="includes", words=Words("include"),
                negated=Words("do not include"), negation=Op.EXCLUDES, positive=True,
            )  # fmt: skip
        case Op.INCLUDES_ANY:
            return OpSpec(
                op, written={Kind.SET: Operand.MANY}, meaning="the set contains at least one of the ids",
                holds=lambda value, vs: any(v in value for v in vs),
                durable=lambda name, vs: {"$or": [{"$iany": {name: {"$i": v}}} for v in vs]},
                symbol="includes any of", words=Words("include any of", ", "), negated=Words("include none of", ", "),
                any_of=Op.INCLUDES, positive=True,
            )  # fmt: skip
        case Op.EXCLUDES:
            return OpSpec(
                op, written={Kind.SET: Operand.ONE},
                meaning="the set does not contain the id (an empty set contains nothing)",
                holds=lambda value, v: v not in value, durable=_exclusion, symbol="excludes",
                words=Words("do not include"), negated=Words("include"), negation=Op.INCLUDES,
            )  # fmt: skip
        case _:
            assert_never(op)


OPS: Mapping[Op, OpSpec] = {op: _spec(op) for op in Op}


@dataclass(frozen=True)
class KindSpec:
    kind: Kind
    meaning: str  # the docs table
    example: str  # the docs table
    bare: Op | None = None  # what a bare value (or list) means: `age_years: 3` is eq, `sex: [f, u]` is in
    several: bool = False  # several operators in one mapping, all required: {gte: 2, lt: 8}
    synonyms: Mapping[Op, Op] = field(default_factory=dict)  # written -> compiled: enum {ne: v} is {not_in: [v]}

    def operators(self) -> dict[str, Op]:
        """The operators an author may write on a field of this kind, by name."""
        return {op.value: op for op, spec in OPS.items() if self.kind in spec.written}

    def operand(self, op: Op) -> Operand:
        return OPS[op].written[self.kind]


KINDS: Mapping[Kind, KindSpec] = {
    Kind.NUMBER: KindSpec(
        Kind.NUMBER, "a number (a missing value satisfies no comparison)", "age_years: {gte: 2, lt: 8}", Op.EQ, True
    ),
    Kind.ENUM: KindSpec(
        Kind.ENUM, "one of the listed values", "sex: [female, unknown]", Op.IN, synonyms={Op.NE: Op.NOT_IN}
    ),
    Kind.SET: KindSpec(
        Kind.SET, "a set of terminology ids (rules/terminology/)", "conditions: {includes_any: [copd, sleep-apnea]}"
    ),
}


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: Kind
    description: str
    values: tuple[str, ...] = ()  # enum: the values it can take
    universe: Universe | None = None  # set: where its ids are defined
    label: str = ""  # how lint and explanations name it ("age", "co-medications"); enums are shown by name
    unit: str = ""  # number: "years", "mL/min"
    measures: str = ""  # a clinical quantity several fields estimate, e.g. "renal" (harness cut-offs)

    @property
    def said(self) -> str:
        return self.label or self.name


TRISTATE = ("true", "false", "unknown")
RENAL = "renal"


def _number(name: str, description: str, label: str, unit: str, measures: str = "") -> FieldSpec:
    return FieldSpec(name, Kind.NUMBER, description, label=label, unit=unit, measures=measures)


def _enum(name: str, description: str, values: tuple[str, ...], label: str = "") -> FieldSpec:
    return FieldSpec(name, Kind.ENUM, description, values, label=label)


def _set(name: str, description: str, universe: Universe, label: str) -> FieldSpec:
    return FieldSpec(name, Kind.SET, description, universe=universe, label=label)


FIELDS: Mapping[str, FieldSpec] = {
    f.name: f
    for f in (
        _number("age_years", "Age in years (from age_years or birth_date).", "age", "years"),
        _enum("sex", "Administrative sex.", ("female", "male", "other", "unknown")),
        _number("weight_kg", "Actual body weight.", "weight", "kg"),
        _number("height_cm", "Height.", "height", "cm"),
        _number(
            "renal_ml_min", "Renal function used for dosing (see renal_method).", "renal function", "mL/min", RENAL
        ),
        _number(
            "crcl_ml_min", "Cockcroft-Gault creatinine clearance (adults).", "creatinine clearance", "mL/min", RENAL
        ),
        _number("egfr_ml_min", "eGFR as reported, or bedside Schwartz for children.", "eGFR", "mL/min", RENAL),
        _enum("on_dialysis", "On chronic dialysis.", TRISTATE),
        _enum(
            "hepatic_impairment",
            "Hepatic impairment class.",
            ("none", "mild", "moderate", "severe", "unknown"),
            "hepatic impairment",
        ),
        _enum("pregnant", "Pregnancy status.", TRISTATE),
        _enum("breastfeeding", "Breastfeeding status.", TRISTATE),
        _enum("action", "What the order does (normally use the rule's `applies_to`).", ("start", "stop")),
        _enum("ordered_drug_on_med_list", "The ordered drug is already on the medication list.", ("true", "false")),
        _set("conditions", "Value sets the problem list falls in.", Universe.VALUE_SET, "conditions"),
        _set("comed_ingredients", "Ingredients of co-medications.", Universe.INGREDIENT, "co-medications"),
        _set("comed_classes", "Drug classes of co-medications.", Universe.DRUG_CLASS, "co-medication classes"),
        _set("allergy_ingredients", "Ingredients the patient is allergic to.", Universe.INGREDIENT, "allergies"),
        _set("allergy_classes", "Drug classes of documented allergies.", Universe.DRUG_CLASS, "allergy classes"),
    )
}
CLASS_COUNT = "comed_class_count"  # {comed_class_count: {class: cns-active, gte: 2}}: a number field per class
ANY_OF = "any_of"


def fields_of(kind: Kind | None = None, measures: str = "") -> tuple[str, ...]:
    """Names of the catalog fields of one kind, or measuring one quantity, in catalog order."""
    return tuple(
        f.name for f in FIELDS.values() if (kind is None or f.kind == kind) and (not measures or f.measures == measures)
    )


def count_field(class_id: str) -> str:
    return "n_comed_" + class_id.replace("-", "_")


def size_field(set_field: str) -> str:
    return "n_" + set_field


def kind_of(name: str) -> Kind:
    """The kind of a fact field; count fields (``n_comed_*``) are numbers."""
    spec = FIELDS.get(name)
    return spec.kind if spec is not None else Kind.NUMBER


# ---- compiled conditions -----------------------------------------------------------------------

Value = float | bool | str | tuple[str, ...]


@dataclass(frozen=True)
class Cmp:
    """One test of one fact field (a number, a flag for ``known``, one id or value, or several)."""

    field: str
    op: Op
    value: Value

    @property
    def values(self) -> tuple[str, ...]:
        """The ids or enumerated values the test names (empty for numbers and flags)."""
        if isinstance(self.value, str):
            return (self.value,)
        return self.value if isinstance(self.value, tuple) else ()

    @property
    def spec(self) -> OpSpec:
        return OPS[self.op]


@dataclass(frozen=True)
class AnyOf:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class AllOf:
    children: tuple[Node, ...]


Node = Cmp | AnyOf | AllOf


def fields_of_node(node: Node) -> Iterator[str]:
    match node:
        case Cmp(field=name):
            yield name
        case AnyOf(children=kids) | AllOf(children=kids):
            for kid in kids:
                yield from fields_of_node(kid)
        case _:
            assert_never(node)


def holds(node: Node, fact: Mapping[str, Any]) -> bool:
    """Reference semantics of one node over the patient fact (a missing field never matches a comparison)."""
    match node:
        case Cmp(field=name, op=op, value=value):
            spec = OPS[op]
            return spec.holds(fact[name], value) if name in fact else spec.if_missing(value)
        case AnyOf(children=kids):
            return any(holds(k, fact) for k in kids)
        case AllOf(children=kids):
            return all(holds(k, fact) for k in kids)
        case _:
            assert_never(node)


def to_durable(node: Node) -> dict[str, Any]:
    """durable-rules JSON for one node (alpha-node syntax)."""
    match node:
        case Cmp(field=name, op=op, value=value):
            return OPS[op].durable(name, value)
        case AnyOf(children=kids):
            return {"$or": [to_durable(k) for k in kids]}
        case AllOf(children=kids):
            return {"$and": [to_durable(k) for k in kids]}
        case _:
            assert_never(node)
