"""The bundled medication terminology data holds together: value sets, ingredients, brands, fixtures.

The value sets under ``rules/terminology/value-sets/medications/`` carry RxNorm codes copied from
published expansions, and the recognition tests run the fixtures in ``tests/data/terminology/``
through the engine. Those tests can only be trusted if the data itself is consistent: every member
group cites a source of its file, every ingredient and included set exists, a fixture code marked as
bundled really is a member of its set (code and display as published) and a held-out code really is
not. These checks read the files with the schemas alone, so they do not depend on the lookup code.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.settings import BUNDLED_RULES
from schemas.terminology import BrandsFile, IngredientsFile, ValueSetFile
from tests.conftest import REPO

TERMINOLOGY = BUNDLED_RULES / "terminology"
MED_SETS = TERMINOLOGY / "value-sets" / "medications"
FIXTURES = REPO / "tests" / "data" / "terminology"
NO_RULE_SETS = {"statin", "anticoagulant", "antidiabetic"}


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _sets() -> dict[str, ValueSetFile]:
    return {p.stem: ValueSetFile.model_validate(_yaml(p)) for p in sorted(MED_SETS.glob("*.yaml"))}


SETS = _sets()
INGREDIENTS = IngredientsFile.model_validate(_yaml(TERMINOLOGY / "ingredients.yaml"))
INGREDIENT_IDS = {i.id for i in INGREDIENTS.ingredients}


def _words(text: str) -> str:
    return " " + re.sub(r"[^a-z0-9]+", " ", text.lower()).strip() + " "


def _names(ingredient_ids: set[str]) -> list[str]:
    out = []
    for i in INGREDIENTS.ingredients:
        if i.id in ingredient_ids:
            out += [_words(i.id.replace("-", " ")), *(_words(s) for s in i.synonyms)]
    return out


def _closure(set_id: str, seen: frozenset[str] = frozenset()) -> set[str]:
    assert set_id not in seen, f"include cycle through {set_id}"
    vs = SETS[set_id]
    out = set(vs.ingredients)
    for inner in vs.include:
        out |= _closure(inner, seen | {set_id})
    return out


def _members(set_id: str) -> dict[str, str]:
    return {code: display for g in SETS[set_id].members for code, display in g.codes}


def test_medication_sets_exist_and_are_named_by_id() -> None:
    assert len(SETS) >= 30
    for stem, vs in SETS.items():
        assert vs.id == stem
        assert vs.domain == "medication"


@pytest.mark.parametrize("set_id", sorted(SETS))
def test_set_refers_only_to_known_ingredients_sets_and_sources(set_id: str) -> None:
    vs = SETS[set_id]
    assert set(vs.ingredients) <= INGREDIENT_IDS, set(vs.ingredients) - INGREDIENT_IDS
    assert set(vs.include) <= set(SETS), set(vs.include) - set(SETS)
    source_ids = [s.id for s in vs.sources]
    assert len(source_ids) == len(set(source_ids)), "source ids repeat"
    by_id = {s.id: s for s in vs.sources}
    codes: list[str] = []
    for group in vs.members:
        assert group.source in by_id, f"member group cites unknown source {group.source}"
        src = by_id[group.source]
        assert src.url and src.version and src.note, (
            f"{src.id}: an expansion needs its URL, version and where it was read"
        )
        codes += [c for c, _ in group.codes]
    assert len(codes) == len(set(codes)), "a code is listed twice"


@pytest.mark.parametrize("set_id", sorted(s for s in SETS if SETS[s].members))
def test_every_member_display_names_an_ingredient_of_its_set(set_id: str) -> None:
    names = _names(_closure(set_id))
    strays = [(c, d) for c, d in _members(set_id).items() if not any(n in _words(d) for n in names)]
    assert not strays, strays[:5]


def _fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize("name", ["medication-codes.json", "unrelated-codes.json"])
def test_fixture_codes_are_members_unless_held_out(name: str) -> None:
    data = _fixture(name)
    assert data["codes"]
    for row in data["codes"]:
        assert row["source"] in data["sources"], row
        assert data["sources"][row["source"]].get("url"), row["source"]
        members = _members(row["set"])
        if row["held_out"]:
            assert row["code"] not in members, f"held-out code {row['code']} is bundled in {row['set']}"
            assert any(n in _words(row["display"]) for n in _names(_closure(row["set"]))), row
        else:
            assert members.get(row["code"]) == row["display"], row


def test_fixtures_cover_every_set_with_members_and_include_held_out_codes() -> None:
    meds = _fixture("medication-codes.json")["codes"]
    covered = {r["set"] for r in meds}
    with_members = {s for s, vs in SETS.items() if vs.members and s not in NO_RULE_SETS}
    assert with_members <= covered, with_members - covered
    assert len(meds) >= 300
    assert sum(r["held_out"] for r in meds) >= 40


def test_unrelated_codes_name_no_interaction_ingredient() -> None:
    interaction = set().union(*(_closure(s) for s in SETS if s not in NO_RULE_SETS))
    names = _names(interaction)
    for row in _fixture("unrelated-codes.json")["codes"]:
        assert row["set"] in NO_RULE_SETS
        hits = [n.strip() for n in names if n in _words(row["display"])]
        assert not hits, (row, hits)


@cache
def _brands() -> dict[str, list[str]]:
    found = [p for p in TERMINOLOGY.rglob("*.yaml") if 'kind: "brands"' in p.read_text(encoding="utf-8")]
    assert len(found) == 1, found
    doc = BrandsFile.model_validate(_yaml(found[0]))
    source_ids = {s.id for s in doc.sources}
    for brand in doc.brands:
        assert brand.source in source_ids, brand.name
        assert set(brand.ingredients) <= INGREDIENT_IDS, brand.name
    return {b.name.lower(): b.ingredients for b in doc.brands}


@pytest.mark.parametrize(
    ("brand", "ingredients"),
    [
        ("Percocet", {"acetaminophen", "oxycodone"}),
        ("Norco", {"acetaminophen", "hydrocodone"}),
        ("Vicodin", {"acetaminophen", "hydrocodone"}),
        ("Lortab", {"acetaminophen", "hydrocodone"}),
        ("Tylenol #3", {"acetaminophen", "codeine"}),
        ("Tylenol #4", {"acetaminophen", "codeine"}),
        ("Ultracet", {"acetaminophen", "tramadol"}),
        ("Suboxone", {"buprenorphine", "naloxone"}),
        ("Fioricet with Codeine", {"acetaminophen", "butalbital", "caffeine", "codeine"}),
        ("Tylenol PM", {"acetaminophen", "diphenhydramine"}),
        ("Advil PM", {"ibuprofen", "diphenhydramine"}),
        ("NyQuil", {"acetaminophen", "dextromethorphan", "doxylamine"}),
    ],
)
def test_combination_brands_map_to_every_ingredient(brand: str, ingredients: set[str]) -> None:
    assert set(_brands()[brand.lower()]) == ingredients
