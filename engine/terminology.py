"""Terminology: resolve what an EHR sends (RxNorm, SNOMED CT, ICD-10-CM, free text) to our ids.

Loaded and validated once with the rule pack; lookups at request time are dictionary hits plus a
free-text scan cached by the text as sent, so a medication list of product names costs microseconds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ValidationError

from engine.compiler.problems import validation_problems
from engine.compiler.yaml_source import YamlDocument, load_yaml
from engine.errors import RuleProblem
from schemas.api import ICD10CM, SNOMED, CodeableConcept, DrugRef
from schemas.terminology import (
    DrugClassesFile,
    IngredientsFile,
    ProductsFile,
    ValueSetsFile,
)

_NON_WORD = re.compile(r"[^a-z0-9]+")
CACHED_TEXT_MAX = 256  # longer free text is resolved uncached, so odd input cannot fill the caches


def normalise_text(text: str) -> str:
    """Case- and punctuation-insensitive form used for every free-text match."""
    return _NON_WORD.sub(" ", text.lower()).strip()


def normalise_icd(code: str) -> str:
    return code.replace(".", "").upper().strip()


@dataclass(eq=False)  # identity hash: the lru_caches below key on the instance
class Terminology:
    ingredients: dict[str, str | None] = field(default_factory=dict)  # id -> rxcui
    by_rxcui: dict[str, frozenset[str]] = field(default_factory=dict)  # ingredient or product code
    by_name: dict[str, str] = field(default_factory=dict)  # normalised synonym -> ingredient id
    class_members: dict[str, frozenset[str]] = field(default_factory=dict)
    classes_of: dict[str, frozenset[str]] = field(default_factory=dict)  # ingredient -> classes
    class_titles: dict[str, str] = field(default_factory=dict)
    value_sets: dict[str, str] = field(default_factory=dict)  # id -> title
    vs_ancestors: dict[str, frozenset[str]] = field(default_factory=dict)  # id -> itself + broader
    snomed: dict[str, str] = field(default_factory=dict)
    icd_prefixes: list[tuple[str, str]] = field(default_factory=list)  # longest first
    vs_by_name: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    # ---- drugs -------------------------------------------------------------------------------
    def resolve_drug(self, ref: DrugRef) -> frozenset[str]:
        """Ingredient ids for a drug reference; empty when nothing is recognised."""
        if ref.rxcui and ref.rxcui in self.by_rxcui:
            return self.by_rxcui[ref.rxcui]
        if ref.name:
            return self.resolve_drug_name(ref.name)
        return frozenset()

    def resolve_drug_name(self, name: str) -> frozenset[str]:
        """Ingredient ids named in free text, as sent (normalised here)."""
        if len(name) > CACHED_TEXT_MAX:
            return self._scan_ingredients(normalise_text(name))
        return self._drug_name(name)

    @lru_cache(maxsize=8192)  # noqa: B019 - one Terminology per rule pack, lives as long as the pack
    def _drug_name(self, name: str) -> frozenset[str]:
        return self._scan_ingredients(normalise_text(name))

    def _scan_ingredients(self, text: str) -> frozenset[str]:
        if text in self.by_name:
            return frozenset({self.by_name[text]})
        padded = f" {text} "
        found = {ing for name, ing in self.by_name.items() if f" {name} " in padded}
        return frozenset(found)

    def classes_for(self, ingredients: Iterable[str]) -> frozenset[str]:
        out: set[str] = set()
        for ing in ingredients:
            out |= self.classes_of.get(ing, frozenset())
        return frozenset(out)

    # ---- conditions --------------------------------------------------------------------------
    def resolve_condition(self, cond: CodeableConcept | str) -> frozenset[str]:
        """Value-set ids (with broader sets) a condition belongs to; empty when unrecognised."""
        if isinstance(cond, str):
            return (
                self._condition_text(cond)
                if len(cond) <= CACHED_TEXT_MAX
                else self._with_ancestors(self._vs_in_text(cond))
            )
        hits: set[str] = set()
        for coding in cond.coding:
            if coding.system == SNOMED and coding.code in self.snomed:
                hits.add(self.snomed[coding.code])
            elif coding.system == ICD10CM:
                code = normalise_icd(coding.code)
                for prefix, vs in self.icd_prefixes:
                    if code.startswith(prefix):
                        hits.add(vs)
                        break
        if not hits and cond.text:
            hits |= self._vs_in_text(cond.text)
        if not hits:
            for coding in cond.coding:
                if coding.display:
                    hits |= self._vs_in_text(coding.display)
        return self._with_ancestors(hits)

    def _with_ancestors(self, hits: Iterable[str]) -> frozenset[str]:
        out: set[str] = set()
        for vs in hits:
            out |= self.vs_ancestors[vs]
        return frozenset(out)

    @lru_cache(maxsize=8192)  # noqa: B019
    def _condition_text(self, raw: str) -> frozenset[str]:
        return self._with_ancestors(self._vs_in_text(raw))

    def _vs_in_text(self, raw: str) -> frozenset[str]:
        text = normalise_text(raw)
        if text in self.vs_by_name:
            return frozenset({self.vs_by_name[text]})
        return frozenset()


_MODELS: dict[str, type[BaseModel]] = {
    "ingredients": IngredientsFile,
    "drug-classes": DrugClassesFile,
    "products": ProductsFile,
    "value-sets": ValueSetsFile,
}


def load_terminology(folder: Path, display_root: Path) -> tuple[Terminology, list[RuleProblem]]:
    """Load every ``*.yaml`` in ``folder``; problems are collected, never raised."""
    problems: list[RuleProblem] = []
    parsed: dict[str, list[tuple[YamlDocument, BaseModel]]] = {k: [] for k in _MODELS}
    for path in sorted(folder.glob("*.y*ml")):
        shown = str(path.relative_to(display_root)) if path.is_relative_to(display_root) else str(path)
        doc = load_yaml(path, shown)
        if isinstance(doc, RuleProblem):
            problems.append(doc)
            continue
        kind = doc.data.get("kind") if isinstance(doc.data, dict) else None
        if kind not in _MODELS:
            problems.append(
                RuleProblem(shown, doc.line_of(("kind",)), "E101", f"'kind' must be one of {sorted(_MODELS)}")
            )
            continue
        try:
            parsed[kind].append((doc, _MODELS[kind].model_validate(doc.data)))
        except ValidationError as exc:
            problems.extend(validation_problems(doc, exc, "E102"))
    term = Terminology(files=[d.path for group in parsed.values() for d, _ in group])
    _build_ingredients(term, parsed["ingredients"], problems)
    _build_classes(term, parsed["drug-classes"], problems)
    _build_products(term, parsed["products"], problems)
    _build_value_sets(term, parsed["value-sets"], problems)
    return term, problems


def _build_ingredients(term: Terminology, files: list[tuple[YamlDocument, BaseModel]], out: list[RuleProblem]) -> None:
    for doc, model in files:
        assert isinstance(model, IngredientsFile)
        for i, ing in enumerate(model.ingredients):
            line = doc.line_of(("ingredients", i))
            if ing.id in term.ingredients:
                out.append(RuleProblem(doc.path, line, "E103", f"ingredient {ing.id!r} is defined twice"))
                continue
            term.ingredients[ing.id] = ing.rxcui
            if ing.rxcui:
                if ing.rxcui in term.by_rxcui:
                    out.append(RuleProblem(doc.path, line, "E104", f"RxCUI {ing.rxcui} is used twice"))
                term.by_rxcui[ing.rxcui] = frozenset({ing.id})
            for name in (ing.id.replace("-", " "), *ing.synonyms):
                key = normalise_text(name)
                other = term.by_name.get(key)
                if other and other != ing.id:
                    out.append(
                        RuleProblem(doc.path, line, "E105", f"name {name!r} names both {other!r} and {ing.id!r}")
                    )
                term.by_name[key] = ing.id


def _closure(
    direct: dict[str, set[str]], includes: dict[str, list[str]], what: str, out: list[RuleProblem], where: str
) -> dict[str, frozenset[str]]:
    """Members of each group, following include lists; cycles and unknown ids are problems."""
    result: dict[str, frozenset[str]] = {}

    def visit(gid: str, stack: tuple[str, ...]) -> frozenset[str]:
        if gid in result:
            return result[gid]
        if gid in stack:
            out.append(RuleProblem(where, 1, "E106", f"{what} include cycle: {' -> '.join((*stack, gid))}"))
            return frozenset()
        members = set(direct.get(gid, set()))
        for child in includes.get(gid, []):
            members |= visit(child, (*stack, gid))
        result[gid] = frozenset(members)
        return result[gid]

    for gid in direct:
        visit(gid, ())
    return result


def _build_classes(term: Terminology, files: list[tuple[YamlDocument, BaseModel]], out: list[RuleProblem]) -> None:
    direct: dict[str, set[str]] = {}
    includes: dict[str, list[str]] = {}
    where = "rules/terminology"
    for doc, model in files:
        assert isinstance(model, DrugClassesFile)
        where = doc.path
        for i, cls in enumerate(model.classes):
            line = doc.line_of(("classes", i))
            if cls.id in direct:
                out.append(RuleProblem(doc.path, line, "E103", f"drug class {cls.id!r} is defined twice"))
            direct[cls.id] = set(cls.members)
            includes[cls.id] = list(cls.include_classes)
            term.class_titles[cls.id] = cls.title
            for m in cls.members:
                if m not in term.ingredients:
                    out.append(RuleProblem(doc.path, line, "E107", f"class {cls.id!r}: unknown ingredient {m!r}"))
    for doc, model in files:
        assert isinstance(model, DrugClassesFile)
        for i, cls in enumerate(model.classes):
            for inc in cls.include_classes:
                if inc not in direct:
                    line = doc.line_of(("classes", i))
                    out.append(RuleProblem(doc.path, line, "E107", f"class {cls.id!r}: unknown class {inc!r}"))
    term.class_members = _closure(direct, includes, "drug class", out, where)
    classes_of: dict[str, set[str]] = {}
    for cid, members in term.class_members.items():
        for m in members:
            classes_of.setdefault(m, set()).add(cid)
    term.classes_of = {k: frozenset(v) for k, v in classes_of.items()}


def _build_products(term: Terminology, files: list[tuple[YamlDocument, BaseModel]], out: list[RuleProblem]) -> None:
    for doc, model in files:
        assert isinstance(model, ProductsFile)
        for i, prod in enumerate(model.products):
            line = doc.line_of(("products", i))
            unknown = [ing for ing in prod.ingredients if ing not in term.ingredients]
            if unknown:
                out.append(
                    RuleProblem(doc.path, line, "E107", f"product {prod.rxcui}: unknown ingredient(s) {unknown}")
                )
                continue
            if prod.rxcui in term.by_rxcui and term.by_rxcui[prod.rxcui] != frozenset(prod.ingredients):
                out.append(RuleProblem(doc.path, line, "E104", f"RxCUI {prod.rxcui} is used twice"))
            term.by_rxcui[prod.rxcui] = frozenset(prod.ingredients)


def _build_value_sets(term: Terminology, files: list[tuple[YamlDocument, BaseModel]], out: list[RuleProblem]) -> None:
    includes: dict[str, list[str]] = {}
    where = "rules/terminology"
    icd: dict[str, str] = {}
    for doc, model in files:
        assert isinstance(model, ValueSetsFile)
        where = doc.path
        for i, vs in enumerate(model.value_sets):
            line = doc.line_of(("value_sets", i))
            if vs.id in term.value_sets:
                out.append(RuleProblem(doc.path, line, "E103", f"value set {vs.id!r} is defined twice"))
            term.value_sets[vs.id] = vs.title
            includes[vs.id] = list(vs.include_value_sets)
            for code in vs.snomed:
                if code in term.snomed and term.snomed[code] != vs.id:
                    msg = f"SNOMED {code} is in both {term.snomed[code]!r} and {vs.id!r}"
                    out.append(RuleProblem(doc.path, line, "E108", msg))
                term.snomed[code] = vs.id
            for prefix in vs.icd10cm_prefixes:
                key = normalise_icd(prefix)
                if key in icd and icd[key] != vs.id:
                    msg = f"ICD-10-CM {prefix} is in both {icd[key]!r} and {vs.id!r}"
                    out.append(RuleProblem(doc.path, line, "E108", msg))
                icd[key] = vs.id
            for name in (vs.title, *vs.synonyms):
                key = normalise_text(name)
                if key in term.vs_by_name and term.vs_by_name[key] != vs.id:
                    msg = f"text {name!r} names both {term.vs_by_name[key]!r} and {vs.id!r}"
                    out.append(RuleProblem(doc.path, line, "E108", msg))
                term.vs_by_name[key] = vs.id
    for doc, model in files:
        assert isinstance(model, ValueSetsFile)
        for i, vs in enumerate(model.value_sets):
            for inc in vs.include_value_sets:
                if inc not in term.value_sets:
                    line = doc.line_of(("value_sets", i))
                    out.append(RuleProblem(doc.path, line, "E107", f"value set {vs.id!r}: unknown value set {inc!r}"))
    members = _closure({k: {k} for k in term.value_sets}, includes, "value set", out, where)
    ancestors: dict[str, set[str]] = {k: set() for k in term.value_sets}
    for parent, kids in members.items():
        for kid in kids:
            ancestors.setdefault(kid, set()).add(parent)
    term.vs_ancestors = {k: frozenset(v) for k, v in ancestors.items()}
    term.icd_prefixes = sorted(icd.items(), key=lambda kv: -len(kv[0]))
