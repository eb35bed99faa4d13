"""The rule-file JSON Schema: every bundled rule file matches it, and it rejects what the compiler rejects.

Editors validate with the committed schema while the author types, so it must neither flag a
valid rule nor let a misspelt field or a mistyped value through. The conditions below are run
through both the schema (with the ``jsonschema`` library) and the compiler, and must get the same
verdict from each.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from engine.compiler.conditions import ConditionCompiler, ConditionError
from engine.compiler.model import CompiledPack
from engine.compiler.monitoring import MONITORING_FILE
from engine.compiler.pack import compile_pack
from engine.settings import BUNDLED_RULES
from tests.conftest import REPO

SCHEMA = json.loads((REPO / "schemas" / "rule-file.schema.json").read_text(encoding="utf-8"))
VALIDATOR = Draft202012Validator(SCHEMA)


def _rule_files() -> list[Path]:
    skip = {"pack.yaml", MONITORING_FILE}
    return [
        p
        for p in sorted(BUNDLED_RULES.rglob("*.yaml"))
        if p.relative_to(BUNDLED_RULES).parts[0] != "terminology"
        and p.relative_to(BUNDLED_RULES).as_posix() not in skip
    ]


def _file(when: list[Any], monitor: list[Any] | None = None) -> dict[str, Any]:
    then: dict[str, Any] = {
        "finding": {"category": "disease", "severity": "info", "summary": "a test note", "detail": "test detail"}
    }
    if monitor is not None:
        then = {"monitor": monitor}
    rule = {
        "id": "baclofen.t.x",
        "title": "A test",
        "version": "1.0.0",
        "sources": [{"label": "Test source", "section": "1.1"}],
    }
    return {"drug": "baclofen", "rules": [rule | {"when": when, "then": then}]}


def _errors(doc: Any) -> list[str]:
    return [f"/{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(doc)]


@pytest.fixture(scope="module")
def pack() -> CompiledPack:
    return compile_pack(BUNDLED_RULES)


def test_the_schema_is_a_valid_2020_12_schema() -> None:
    Draft202012Validator.check_schema(SCHEMA)


def test_every_bundled_rule_file_matches_the_schema() -> None:
    files = _rule_files()
    assert len(files) > 30, "the scan found too few rule files"
    bad = {p.relative_to(REPO).as_posix(): _errors(yaml.safe_load(p.read_text(encoding="utf-8"))) for p in files}
    assert {k: v[:3] for k, v in bad.items() if v} == {}


@pytest.mark.parametrize(
    ("condition", "accepted"),
    [
        ("age_years: 3", True),
        ("age_years: {gte: 2, lt: 8}", True),
        ("age_years: {known: false}", True),
        ("sex: female", True),
        ("sex: [female, unknown]", True),
        ("sex: {in: [female]}", True),
        ("sex: {ne: male}", True),
        ("pregnant: true", True),
        ("on_dialysis: [false, unknown]", True),
        ("conditions: {includes: stroke}", True),
        ("comed_classes: {includes_any: [opioid, benzodiazepine]}", True),
        ("allergy_ingredients: {excludes: baclofen}", True),
        ("comed_class_count: {class: cns-active, gte: 2}", True),
        ("any_of: [{renal_ml_min: {lt: 60}}, {on_dialysis: true}]", True),
        ("renal_band: moderate", True),
        ("renal_band: [severe, dialysis]", True),
        ("renal_band: {in: [mild]}", True),
        ("age_yaers: 3", False),
        ("age_years: {gte: three}", False),
        ("age_years: {about: 3}", False),
        ("age_years: {known: true, gte: 3}", False),
        ("age_years: true", False),
        ("age_years: [1, 2]", False),
        ("sex: martian", False),
        ("sex: {in: female, ne: male}", False),
        ("conditions: stroke", False),
        ("conditions: {includes: [stroke]}", False),
        ("conditions: {includes_any: stroke}", False),
        ("renal_band: modrate", False),
        ("renal_band: {in: moderate}", False),
        ("{age_years: 3, sex: male}", False),
        ("any_of: [{renal_band: mild}, {age_years: 3}]", False),
        ("any_of: [{age_years: 3}]", False),
        ("comed_class_count: {class: cns-active}", False),
        ("comed_class_count: {class: cns-active, known: true}", False),
        ("not: {age_years: 3}", False),
    ],
)
def test_schema_and_compiler_agree(pack: CompiledPack, condition: str, accepted: bool) -> None:
    cond = yaml.safe_load(condition)
    try:
        ConditionCompiler(pack.terminology, pack.derived).compile([cond])
        compiled = True
    except ConditionError:
        compiled = False
    errors = _errors(_file([cond]))
    assert compiled is accepted, f"compiler: {condition}"
    assert (not errors) is accepted, f"schema: {condition}: {errors}"


@pytest.mark.parametrize(
    ("monitor", "accepted"),
    [
        (["sedation", "falls"], True),
        ([{"use": "sedation", "when": "at the start"}], True),
        ([{"code": "sedation", "prompt": "Check alertness.", "when": "daily"}], True),
        (["sedaton"], False),
        ([{"use": "sedation", "code": "falls"}], False),
        ([{"code": "sedaton", "prompt": "Check alertness.", "when": "daily"}], False),
    ],
)
def test_the_schema_knows_the_monitoring_library(monitor: list[Any], accepted: bool) -> None:
    errors = _errors(_file([], monitor))
    assert (not errors) is accepted, errors
