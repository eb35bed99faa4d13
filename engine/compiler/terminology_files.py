"""Load ``rules/terminology/*.yaml`` into a ``Terminology``, every problem located, none raised.

The loader is part of the compiler (it reports ``file:line`` problems like every other stage);
the lookup class it fills lives in ``engine.terminology`` and knows nothing about files.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ValidationError

from engine.compiler.problems import validation_problems
from engine.compiler.yaml_source import YamlDocument, load_yaml
from engine.errors import RuleProblem
from engine.terminology import Terminology, normalise_icd, normalise_text
from schemas.terminology import (
    ContextRulesFile,
    DrugClassesFile,
    IngredientsFile,
    ProductsFile,
    ValueSetsFile,
)

_MODELS: dict[str, type[BaseModel]] = {
    "ingredients": IngredientsFile,
    "drug-classes": DrugClassesFile,
    "products": ProductsFile,
    "value-sets": ValueSetsFile,
    # Validated here so a broken trigger file fails the gate; engine.terminology.context uses it.
    "context-rules": ContextRulesFile,
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
