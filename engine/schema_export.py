"""The JSON Schema of rule files (schemas/rule-file.schema.json), so editors check rules as authors type.

The structure comes from the pydantic models (``schemas.rulefile``). What the models cannot say
is generated here: a ``when:`` item from the condition language table (each field with the value
shapes its kind takes, ``comed_class_count``, ``any_of``) plus the derived facts the pack's shared
files declare, with their values; and the names of the monitoring library. An editor then flags
``age_yaers: 3``, ``{gte: three}``, ``renal_band: modrate`` or ``monitor: [sedaton]`` on the spot.
Terminology ids are left to the compiler (E204): they change with every terminology update, and
a schema that listed them would be stale the day a value set is added.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, assert_never

from pydantic import ValidationError

from engine.compiler.conditions import COUNT_OPS
from engine.compiler.language import ANY_OF, CLASS_COUNT, FIELDS, KINDS, OPS, FieldSpec, Kind, Op, Operand
from engine.compiler.monitoring import MONITORING_FILE, load_library
from engine.compiler.problems import validation_problems
from engine.compiler.yaml_source import load_yaml
from engine.errors import RuleProblem, RuleSetError
from schemas.rulefile import DerivedFact, RuleFile

JsonSchema = dict[str, Any]


@dataclass(frozen=True)
class Vocabulary:
    """The words a pack adds to the language: derived facts (rules/shared/) and library prompts."""

    derived: Mapping[str, DerivedFact]
    monitoring: tuple[str, ...]


def pack_vocabulary(rules: Path) -> Vocabulary:
    """Read the shared files of a pack (not the whole pack: the schema must not depend on drug rules)."""
    rules = rules.resolve()
    problems: list[RuleProblem] = []
    library = load_library(rules, rules.parent, problems)
    derived: dict[str, DerivedFact] = {}
    for path in sorted((rules / "shared").glob("*.y*ml")):
        if path.relative_to(rules).as_posix() == MONITORING_FILE:
            continue
        doc = load_yaml(path, path.relative_to(rules.parent).as_posix())
        if isinstance(doc, RuleProblem):
            problems.append(doc)
            continue
        try:
            derived.update(RuleFile.model_validate(doc.data, context=library.context()).derived)
        except ValidationError as exc:
            problems.extend(validation_problems(doc, exc, "E002"))
    if problems:
        raise RuleSetError(problems)
    return Vocabulary(dict(sorted(derived.items())), tuple(sorted(library.items)))


def rule_file_schema(rules: Path) -> JsonSchema:
    """The schema of rule files for the pack at ``rules`` (its derived facts and library names)."""
    vocab = pack_vocabulary(rules)
    schema = RuleFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://cdsrules.invalid/schemas/rule-file.schema.json"
    schema["title"] = "cdsrules rule file"
    defs = schema["$defs"]
    defs["Rule"]["properties"]["when"]["items"] = {"$ref": "#/$defs/Condition"}
    defs.update(condition_defs(vocab.derived))
    if vocab.monitoring:
        names = list(vocab.monitoring)
        (name_item,) = (i for i in defs["Then"]["properties"]["monitor"]["items"]["anyOf"] if i.get("type") == "string")
        name_item["enum"] = names
        defs["MonitorUse"]["properties"]["use"]["enum"] = names
    return schema


def condition_defs(derived: Mapping[str, DerivedFact]) -> dict[str, JsonSchema]:
    """``Condition`` (a ``when:`` item), ``PatientCondition`` (inside ``any_of``) and the tests they refer to."""
    defs: dict[str, JsonSchema] = {}
    patient: dict[str, JsonSchema] = {}
    for name, spec in FIELDS.items():
        ref = _test_name(spec)
        defs.setdefault(ref, _field(spec))  # fields of one shape (all numbers, ids of one universe) share it
        patient[name] = {"$ref": f"#/$defs/{ref}", "description": spec.description}
    patient[CLASS_COUNT] = {"$ref": "#/$defs/ClassCount"}
    patient[ANY_OF] = {
        "description": "Any one of at least two conditions (derived facts cannot be inside: list their values).",
        "type": "array",
        "minItems": 2,
        "items": {"$ref": "#/$defs/PatientCondition"},
    }
    top = patient | {name: _derived(fact) for name, fact in derived.items()}
    return defs | {
        "Condition": _one_key(top, "One test, written {field: test}; see docs/rule-language.md."),
        "PatientCondition": _one_key(patient, "A condition on the patient's own fields (inside any_of)."),
        "ClassCount": {
            "description": "How many co-medications fall in a drug class: {class: cns-active, gte: 2}.",
            "type": "object",
            "properties": {"class": {"type": "string", "description": "A drug-class id (rules/terminology/)."}}
            | {name: {"type": "number"} for name in COUNT_OPS},
            "required": ["class"],
            "minProperties": 2,
            "maxProperties": 2,
            "additionalProperties": False,
        },
    }


def _test_name(spec: FieldSpec) -> str:
    match spec.kind:
        case Kind.NUMBER:
            return "NumberTest"
        case Kind.ENUM:
            return f"EnumTest.{spec.name}"
        case Kind.SET:
            return f"SetTest.{spec.universe}"
        case _:
            assert_never(spec.kind)


def _one_key(properties: dict[str, JsonSchema], description: str) -> JsonSchema:
    return {
        "description": description,
        "type": "object",
        "properties": properties,
        "minProperties": 1,
        "maxProperties": 1,
        "additionalProperties": False,
    }


def _item(spec: FieldSpec) -> JsonSchema:
    """One value of the field: an enumerated value (YAML's true/false too), an id, or a number."""
    match spec.kind:
        case Kind.ENUM:
            flags = [v == "true" for v in spec.values if v in ("true", "false")]
            return {"enum": [*spec.values, *flags]}
        case Kind.SET:
            return {"type": "string", "description": f"A {spec.universe} id (rules/terminology/)."}
        case Kind.NUMBER:
            return {"type": "number"}
        case _:
            assert_never(spec.kind)


def _operand(operand: Operand, item: JsonSchema) -> list[JsonSchema]:
    """The shapes that may follow an operator (several for ``a value or a list``)."""
    match operand:
        case Operand.NUMBER:
            return [{"type": "number"}]
        case Operand.FLAG:
            return [{"type": "boolean"}]
        case Operand.ONE:
            return [item]
        case Operand.MANY:
            return [{"type": "array", "items": item}]
        case Operand.ONE_OR_MANY:
            return [item, {"type": "array", "items": item}]
        case _:
            assert_never(operand)


def _either(shapes: list[JsonSchema]) -> JsonSchema:
    return shapes[0] if len(shapes) == 1 else {"oneOf": shapes}


def _field(spec: FieldSpec) -> JsonSchema:
    """Every shape a field takes: its bare form, one mapping of operators, and operators that stand alone."""
    kind = KINDS[spec.kind]
    item = _item(spec)
    shapes: list[JsonSchema] = []
    if kind.bare is not None:
        shapes += _operand(kind.operand(kind.bare), item)
    ops = kind.operators()
    together = {name: _either(_operand(kind.operand(op), item)) for name, op in ops.items() if not OPS[op].alone}
    mapping: JsonSchema = {"type": "object", "properties": together, "minProperties": 1, "additionalProperties": False}
    if not kind.several:
        mapping["maxProperties"] = 1
    shapes.append(mapping)
    for name, op in ops.items():
        if OPS[op].alone:
            alone = {name: _either(_operand(kind.operand(op), item))}
            shapes.append({"type": "object", "properties": alone, "required": [name], "additionalProperties": False})
    return {"oneOf": shapes}


def _derived(fact: DerivedFact) -> JsonSchema:
    values: JsonSchema = {"enum": list(fact.values)}
    listed: JsonSchema = {"type": "array", "items": values}
    return {
        "description": f"Derived fact (rules/shared/): {fact.title}",
        "oneOf": [
            values,
            listed,
            {
                "type": "object",
                "properties": {Op.IN.value: listed},
                "required": [Op.IN.value],
                "additionalProperties": False,
            },
        ],
    }
