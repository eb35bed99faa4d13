"""The bundled condition value sets and their test fixture agree with each other and with the schema.

The condition sets under ``rules/terminology/value-sets/conditions/`` are data built from published
expansions, and ``tests/data/terminology/condition-codes.json`` holds real codes to run through the
engine. This checks the data alone, before any lookup code sees it: every file parses into
``ValueSetFile``, every member group names one of its file's sources, every ``include`` names a
condition set, every fixture code that was used to build a set is in that set (exactly, or under
one of its ICD-10-CM prefixes, or through an included set), and every negative lands in no set.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from engine.compiler.yaml_source import YamlDocument, load_yaml
from schemas.terminology import AbbreviationsFile, ValueSetFile
from tests.conftest import REPO

TERMINOLOGY = REPO / "rules" / "terminology"
CONDITION_DIR = TERMINOLOGY / "value-sets" / "conditions"
FIXTURE = REPO / "tests" / "data" / "terminology" / "condition-codes.json"


def _parse(path: Path) -> Any:
    doc = load_yaml(path)
    assert isinstance(doc, YamlDocument), f"{path}: {doc}"
    return doc.data


@cache
def _sets() -> dict[str, ValueSetFile]:
    out: dict[str, ValueSetFile] = {}
    for path in sorted(CONDITION_DIR.glob("*.yaml")):
        vs = ValueSetFile.model_validate(_parse(path))
        assert vs.id == path.stem, f"{path.name}: id {vs.id!r} differs from the file name"
        assert vs.id not in out, f"{vs.id} defined twice"
        out[vs.id] = vs
    return out


def _closure(set_id: str) -> set[str]:
    seen: set[str] = set()
    todo = [set_id]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(_sets()[current].include)
    return seen


def _members(set_id: str) -> set[tuple[str, str]]:
    return {(g.system, code) for s in _closure(set_id) for g in _sets()[s].members for code, _ in g.codes}


def _lands_in(set_id: str, system: str, code: str) -> bool:
    if (system, code) in _members(set_id):
        return True
    if system != "icd10cm":
        return False
    bare = code.replace(".", "")
    return any(bare.startswith(p.replace(".", "")) for s in _closure(set_id) for p in _sets()[s].icd10cm_prefixes)


def _fixture() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return data


def test_every_condition_file_is_a_valid_value_set_with_known_sources_and_includes() -> None:
    sets = _sets()
    assert sets, "no condition value sets found"
    for vs in sets.values():
        assert vs.domain == "condition", vs.id
        ids = [s.id for s in vs.sources]
        assert len(ids) == len(set(ids)), f"{vs.id}: duplicate source ids"
        for group in vs.members:
            assert group.source in ids, f"{vs.id}: member group names unknown source {group.source!r}"
            assert group.system in ("snomed", "icd10cm"), f"{vs.id}: {group.system} in a condition set"
            assert all(display.strip() for _, display in group.codes), f"{vs.id}: a member without display"
        for inc in vs.include:
            assert inc in sets, f"{vs.id}: includes unknown set {inc!r}"


def test_sets_that_describe_a_current_state_are_current_only() -> None:
    for set_id in ("pregnancy", "lactation", "recent-myocardial-infarction"):
        assert _sets()[set_id].current_only, set_id


def test_rule_files_only_name_condition_sets_that_exist() -> None:
    # the ids rule files already use must survive the conversion of the old conditions.yaml
    for set_id in ("liver-disease", "cirrhosis", "hepatitis", "dialysis-dependence", "glaucoma", "pregnancy"):
        assert set_id in _sets(), set_id


def test_fixture_codes_used_to_build_a_set_land_in_it() -> None:
    data = _fixture()
    built = [c for c in data["codes"] if not c["held_out"]]
    assert len(built) >= 300
    missing = [c for c in built if not _lands_in(c["set"], c["system"], c["code"])]
    assert not missing, missing[:5]


def test_fixture_negatives_land_in_no_set() -> None:
    negatives = [n for n in _fixture()["negatives"] if n["code"]]
    assert negatives, "no coded negatives"
    landed = [(n["code"], s) for n in negatives for s in _sets() if _lands_in(s, n["system"], n["code"])]
    assert not landed, landed[:5]


def test_fixture_sources_are_described() -> None:
    data = _fixture()
    for entry in data["codes"] + data["negatives"]:
        assert entry["source"] in data["sources"], entry
        if entry["set"] is not None:
            assert entry["set"] in _sets(), entry


def test_fixture_displays_are_the_published_ones_of_the_members() -> None:
    by_code = {
        (s.id, g.system, code): display for s in _sets().values() for g in s.members for code, display in g.codes
    }
    for c in _fixture()["codes"]:
        key = (c["set"], c["system"], c["code"])
        if not c["held_out"] and key in by_code:
            assert by_code[key] == c["display"], key


@pytest.mark.parametrize(
    "phrase",
    ["chronic hepatitis C", "cirrhosis of the liver", "afib", "recent MI", "ESRD on HD", "HFrEF", "BPH", "OSA"],
)
def test_review_phrases_are_written_as_text_of_some_set(phrase: str) -> None:
    texts = {t.lower() for s in _sets().values() for t in s.text}
    assert phrase.lower() in texts


def test_abbreviations_file_is_valid_and_every_abbreviation_has_a_source() -> None:
    abbreviations = AbbreviationsFile.model_validate(_parse(TERMINOLOGY / "abbreviations.yaml"))
    ids = {s.id for s in abbreviations.sources}
    shorts = [a.short.lower() for a in abbreviations.abbreviations]
    assert len(shorts) == len(set(shorts)), "an abbreviation listed twice"
    for a in abbreviations.abbreviations:
        assert a.source in ids, a.short
    for needed in ("hcv", "mg", "esrd", "hd", "ckd 3b", "afib", "chf", "oud"):
        assert needed in shorts, needed


def test_text_excludes_never_block_a_members_own_display() -> None:
    # a phrase that stops a text match must not also stop the published name of a member
    blocked = [
        (vs.id, phrase, display)
        for vs in _sets().values()
        for phrase in vs.text_excludes
        for group in vs.members
        for _, display in group.codes
        if re.search(rf"\b{re.escape(phrase.lower())}\b", display.lower())
    ]
    assert not blocked, blocked[:5]
