"""Load ``rules/terminology/`` into a ``Terminology``, every problem located, none raised.

The loader is part of the compiler (it reports ``file:line`` problems like every other stage);
the lookup it fills lives in ``engine.terminology`` and knows nothing about files. The folder is
read recursively: value sets sit one per file under ``value-sets/``, and a deployer's imports
(``cdsrules terminology import``) under ``imported/``. The RxNorm release import is JSON (a release
has hundreds of thousands of products; YAML with line tracking would take minutes to load).

A product code anywhere in a medication value set is mapped to *all* of its ingredients by reading
its published display ("oxycodone hydrochloride 5 MG / acetaminophen 325 MG Oral Tablet") with the
same reader that reads a medication list, so a code sent without its name is still recognised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from engine.compiler.problems import validation_problems
from engine.compiler.yaml_source import YamlDocument, load_yaml
from engine.errors import RuleProblem
from engine.terminology.context import ContextGuard, ContextRulesError
from engine.terminology.drugs import NameReader
from engine.terminology.lookup import (
    Terminology,
    TerminologySource,
    invert,
    normalise_icd,
    normalise_ndc,
    normalise_text,
)
from engine.terminology.text import Abbreviations, content, tokens
from schemas.terminology import (
    AbbreviationsFile,
    BrandsFile,
    ContextRulesFile,
    DrugClassesFile,
    IngredientsFile,
    ProductsFile,
    RxNormFile,
    SetSource,
    ValueSetFile,
    ValueSetsFile,
)

_MODELS: dict[str, type[BaseModel]] = {
    "ingredients": IngredientsFile,
    "drug-classes": DrugClassesFile,
    "products": ProductsFile,
    "value-sets": ValueSetsFile,
    "value-set": ValueSetFile,
    "abbreviations": AbbreviationsFile,
    "brands": BrandsFile,
    "context-rules": ContextRulesFile,
    "rxnorm": RxNormFile,
}


@dataclass
class _Doc:
    path: str
    doc: YamlDocument | None  # None for JSON files (no line numbers: problems point at line 1)
    model: BaseModel

    def line(self, *pointer: str | int) -> int:
        return self.doc.line_of(pointer) if self.doc is not None else 1


def load_terminology(folder: Path, display_root: Path) -> tuple[Terminology, list[RuleProblem]]:
    """Load every terminology file under ``folder``; problems are collected, never raised."""
    problems: list[RuleProblem] = []
    parsed: dict[str, list[_Doc]] = {k: [] for k in _MODELS}
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml", ".json"))
    for path in paths:
        shown = str(path.relative_to(display_root)) if path.is_relative_to(display_root) else str(path)
        loaded = _parse(path, shown, problems)
        if loaded is not None:
            parsed[loaded[0]].append(loaded[1])
    term = Terminology(files=[d.path for group in parsed.values() for d in group])
    med_abbrev = [
        (a.short, a.expansions[0])
        for d in parsed["abbreviations"]
        for a in _as(d, AbbreviationsFile).abbreviations
        if a.domain in ("medication", "any")
    ]
    term.names = NameReader(Abbreviations.of(med_abbrev))
    _build_ingredients(term, parsed["ingredients"], problems)
    _build_rxnorm(term, parsed["rxnorm"], problems)
    _build_brands(term, parsed["brands"], problems)
    _build_products(term, parsed["products"], problems)
    _build_classes(term, parsed["drug-classes"], [d for d in parsed["value-set"] if _is_med(d)], problems)
    _build_value_sets(term, parsed["value-sets"], [d for d in parsed["value-set"] if not _is_med(d)], problems)
    term.condition_abbreviations = Abbreviations.of(
        (a.short, a.expansions[0])
        for d in parsed["abbreviations"]
        for a in _as(d, AbbreviationsFile).abbreviations
        if a.domain in ("condition", "any")
    )
    _build_context(term, parsed["context-rules"], problems)
    term.provenance = _provenance(parsed, folder.parent, display_root)
    return term, problems


def _parse(path: Path, shown: str, problems: list[RuleProblem]) -> tuple[str, _Doc] | None:
    if path.suffix == ".json":
        # validated in one pass by pydantic-core: 2.6 s for a 300k-product release against 3.7 s
        # for json.loads then validation (BENCHMARKS.md section 6); reloads run off the request path
        try:
            return "rxnorm", _Doc(shown, None, RxNormFile.model_validate_json(path.read_bytes()))
        except ValidationError as exc:
            first = exc.errors()[0]
            if first["type"] == "json_invalid":
                problems.append(RuleProblem(shown, 1, "E001", f"not valid JSON: {first['msg']}"))
            elif any(e["loc"][:1] == ("kind",) for e in exc.errors()):
                problems.append(RuleProblem(shown, 1, "E101", "a JSON terminology file must have kind 'rxnorm'"))
            else:
                where = "/".join(str(p) for p in first["loc"])
                msg = f"{where}: {first['msg']} ({exc.error_count()} error(s))"
                problems.append(RuleProblem(shown, 1, "E102", msg))
            return None
    doc = load_yaml(path, shown)
    if isinstance(doc, RuleProblem):
        problems.append(doc)
        return None
    kind = doc.data.get("kind") if isinstance(doc.data, dict) else None
    if kind not in _MODELS or kind == "rxnorm":
        allowed = sorted(k for k in _MODELS if k != "rxnorm")
        problems.append(RuleProblem(shown, doc.line_of(("kind",)), "E101", f"'kind' must be one of {allowed}"))
        return None
    try:
        return kind, _Doc(shown, doc, _MODELS[kind].model_validate(doc.data))
    except ValidationError as exc:
        problems.extend(validation_problems(doc, exc, "E102"))
        return None


_M = TypeVar("_M", bound=BaseModel)


def _as(d: _Doc, model: type[_M]) -> _M:
    assert isinstance(d.model, model)
    return d.model


def _is_med(d: _Doc) -> bool:
    return _as(d, ValueSetFile).domain == "medication"


# ---- ingredients, products, brands ---------------------------------------------------------------


def _name(term: Terminology, name: str, ingredient: str, d: _Doc, line: int, out: list[RuleProblem]) -> None:
    key = normalise_text(name)
    other = term.by_name.get(key)
    if other and other != ingredient:
        out.append(RuleProblem(d.path, line, "E105", f"name {name!r} names both {other!r} and {ingredient!r}"))
        return
    term.by_name[key] = ingredient
    term.names.add_ingredient_name(name, ingredient)


def _build_ingredients(term: Terminology, files: list[_Doc], out: list[RuleProblem]) -> None:
    for d in files:
        for i, ing in enumerate(_as(d, IngredientsFile).ingredients):
            line = d.line("ingredients", i)
            if ing.id in term.ingredients:
                out.append(RuleProblem(d.path, line, "E103", f"ingredient {ing.id!r} is defined twice"))
                continue
            term.ingredients[ing.id] = ing.rxcui
            if ing.rxcui:
                if ing.rxcui in term.by_rxcui:
                    out.append(RuleProblem(d.path, line, "E104", f"RxCUI {ing.rxcui} is used twice"))
                term.by_rxcui[ing.rxcui] = frozenset({ing.id})
            for name in (ing.id.replace("-", " "), *ing.synonyms):
                _name(term, name, ing.id, d, line, out)


def _build_rxnorm(term: Terminology, files: list[_Doc], out: list[RuleProblem]) -> None:
    """A deployer's RxNorm release: ingredients we know keep our id (matched by RxCUI, then name);
    the rest become ingredients of their own, so their products are recognised (as no class)."""
    ours_by_rxcui = {rx: ing for ing, rx in term.ingredients.items() if rx}
    for d in files:
        rx = _as(d, RxNormFile)
        ing_of: dict[str, str] = {}
        for item in rx.ingredients:
            ours = ours_by_rxcui.get(item.rxcui) or term.by_name.get(normalise_text(item.name))
            if ours is None:
                ours = "-".join(normalise_text(item.name).split()) or f"rxcui-{item.rxcui}"
                if ours not in term.ingredients:
                    term.ingredients[ours] = item.rxcui
                    term.by_name.setdefault(normalise_text(item.name), ours)
                    term.names.add_ingredient_name(item.name, ours)
            ing_of[item.rxcui] = ours
            term.by_rxcui.setdefault(item.rxcui, frozenset({ours}))
        for prod in rx.products:
            missing = [c for c in prod.ingredients if c not in ing_of]
            if missing:
                msg = f"product {prod.rxcui}: ingredient RxCUI(s) {missing} not in this release's ingredients"
                out.append(RuleProblem(d.path, 1, "E107", msg))
                continue
            ings = frozenset(ing_of[c] for c in prod.ingredients)
            term.by_rxcui[prod.rxcui] = ings
            for ndc in prod.ndc:
                key = normalise_ndc(ndc)
                if key is not None:
                    term.by_ndc[key] = ings


def _build_brands(term: Terminology, files: list[_Doc], out: list[RuleProblem]) -> None:
    for d in files:
        for i, brand in enumerate(_as(d, BrandsFile).brands):
            unknown = [ing for ing in brand.ingredients if ing not in term.ingredients]
            if unknown:
                msg = f"brand {brand.name!r}: unknown ingredient(s) {unknown}"
                out.append(RuleProblem(d.path, d.line("brands", i), "E107", msg))
                continue
            ings = frozenset(brand.ingredients)
            term.brands[brand.name] = ings
            term.names.add_brand(brand.name, ings)
            if brand.rxcui:
                term.by_rxcui.setdefault(brand.rxcui, ings)


def _build_products(term: Terminology, files: list[_Doc], out: list[RuleProblem]) -> None:
    for d in files:
        for i, prod in enumerate(_as(d, ProductsFile).products):
            line = d.line("products", i)
            unknown = [ing for ing in prod.ingredients if ing not in term.ingredients]
            if unknown:
                out.append(RuleProblem(d.path, line, "E107", f"product {prod.rxcui}: unknown ingredient(s) {unknown}"))
                continue
            if prod.rxcui in term.by_rxcui and term.by_rxcui[prod.rxcui] != frozenset(prod.ingredients):
                out.append(RuleProblem(d.path, line, "E104", f"RxCUI {prod.rxcui} is used twice"))
            term.by_rxcui[prod.rxcui] = frozenset(prod.ingredients)


# ---- medication classes (old drug-classes.yaml and medication value sets) ------------------------


def _closure(
    direct: dict[str, set[str]], includes: dict[str, list[str]], what: str, out: list[RuleProblem], where: str
) -> dict[str, frozenset[str]]:
    """Members of each group, following include lists; cycles are problems."""
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


def _build_classes(term: Terminology, old: list[_Doc], sets: list[_Doc], out: list[RuleProblem]) -> None:
    direct: dict[str, set[str]] = {}
    includes: dict[str, list[str]] = {}
    where: dict[str, tuple[_Doc, int]] = {}
    for d in old:
        for i, cls in enumerate(_as(d, DrugClassesFile).classes):
            _declare(
                term,
                cls.id,
                cls.title,
                set(cls.members),
                list(cls.include_classes),
                d,
                d.line("classes", i),
                direct,
                includes,
                where,
                out,
            )
    for d in sets:
        vs = _as(d, ValueSetFile)
        _declare(
            term, vs.id, vs.title, set(vs.ingredients), list(vs.include), d, d.line("id"), direct, includes, where, out
        )
        term.catalogue[vs.id] = vs
    for cid, kids in includes.items():
        d, line = where[cid]
        for inc in kids:
            if inc not in direct:
                out.append(RuleProblem(d.path, line, "E107", f"class {cid!r}: unknown class {inc!r}"))
    first = next(iter(where.values()), None)
    term.class_members = _closure(direct, includes, "drug class", out, first[0].path if first else "terminology")
    term.classes_of = invert(term.class_members)
    for d in sets:
        _medication_members(term, _as(d, ValueSetFile), d, out)


def _declare(
    term: Terminology,
    cid: str,
    title: str,
    members: set[str],
    includes_of: list[str],
    d: _Doc,
    line: int,
    direct: dict[str, set[str]],
    includes: dict[str, list[str]],
    where: dict[str, tuple[_Doc, int]],
    out: list[RuleProblem],
) -> None:
    if cid in direct:
        out.append(RuleProblem(d.path, line, "E103", f"drug class {cid!r} is defined twice"))
    for m in sorted(members):
        if m not in term.ingredients:
            out.append(RuleProblem(d.path, line, "E107", f"class {cid!r}: unknown ingredient {m!r}"))
    direct[cid] = members
    includes[cid] = includes_of
    where[cid] = (d, line)
    term.class_titles[cid] = title


def _medication_members(term: Terminology, vs: ValueSetFile, d: _Doc, out: list[RuleProblem]) -> None:
    """Each RxNorm/NDC member -> all the ingredients its display names."""
    own = term.class_members.get(vs.id, frozenset())
    for g, group in enumerate(vs.members):
        if group.system not in ("rxnorm", "ndc"):
            msg = f"value set {vs.id!r}: a medication set holds RxNorm or NDC codes, not {group.system}"
            out.append(RuleProblem(d.path, d.line("members", g), "E102", msg))
            continue
        for c, (code, display) in enumerate(group.codes):
            reading = term.names.read(display)
            line = d.line("members", g, "codes", c)
            if not reading.ingredients:
                msg = f"{group.system} {code} {display!r}: its display names no ingredient the pack knows"
                out.append(RuleProblem(d.path, line, "E109", msg))
                continue
            if own and not (reading.ingredients & own):
                msg = (
                    f"{group.system} {code} {display!r} reads as {sorted(reading.ingredients)}, "
                    f"none of which is in {vs.id!r}"
                )
                out.append(RuleProblem(d.path, line, "W101", msg, severity="warning"))
            if group.system == "rxnorm":
                known = term.by_rxcui.get(code)
                term.by_rxcui[code] = reading.ingredients if known is None else known | reading.ingredients
            else:
                key = normalise_ndc(code)
                if key is None:
                    out.append(RuleProblem(d.path, line, "E102", f"NDC {code!r} is not a 10- or 11-digit NDC"))
                    continue
                term.by_ndc[key] = term.by_ndc.get(key, frozenset()) | reading.ingredients


# ---- condition value sets -------------------------------------------------------------------------


def _build_value_sets(term: Terminology, old: list[_Doc], sets: list[_Doc], out: list[RuleProblem]) -> None:
    includes: dict[str, list[str]] = {}
    where: dict[str, tuple[_Doc, int]] = {}
    icd_prefix: dict[str, str] = {}
    prefix_file: dict[str, str] = {}
    snomed: dict[str, set[str]] = {}
    icd: dict[str, set[str]] = {}
    excludes: dict[str, tuple[tuple[str, ...], ...]] = {}
    current: set[str] = set()

    def declare(vid: str, title: str, d: _Doc, line: int, prefixes: Sequence[str], names: Sequence[str]) -> None:
        if vid in term.value_sets or vid in term.class_members:
            out.append(RuleProblem(d.path, line, "E103", f"value set {vid!r} is defined twice"))
        term.value_sets[vid] = title
        where[vid] = (d, line)
        for prefix in prefixes:
            key = normalise_icd(prefix)
            if key in icd_prefix and icd_prefix[key] != vid:
                msg = f"ICD-10-CM prefix {prefix} is in both {icd_prefix[key]!r} ({prefix_file[key]}) and {vid!r}"
                out.append(RuleProblem(d.path, line, "E108", msg))
            icd_prefix[key] = vid
            prefix_file[key] = d.path
        for name in (title, *names):
            term.vs_by_name.setdefault(normalise_text(name), vid)
            term.condition_text.add(name, vid)

    for d in old:
        for i, old_vs in enumerate(_as(d, ValueSetsFile).value_sets):
            line = d.line("value_sets", i)
            declare(old_vs.id, old_vs.title, d, line, old_vs.icd10cm_prefixes, old_vs.synonyms)
            includes[old_vs.id] = list(old_vs.include_value_sets)
            for code in old_vs.snomed:
                snomed.setdefault(code, set()).add(old_vs.id)
    for d in sets:
        vs = _as(d, ValueSetFile)
        line = d.line("id")
        declare(vs.id, vs.title, d, line, vs.icd10cm_prefixes, vs.text)
        includes[vs.id] = list(vs.include)
        term.catalogue[vs.id] = vs
        if vs.current_only:
            current.add(vs.id)
        excludes[vs.id] = tuple(p for p in (content(tokens(x)) for x in vs.text_excludes) if p)
        if vs.ingredients:
            out.append(RuleProblem(d.path, d.line("ingredients"), "E102", "a condition set has no ingredients"))
        for g, group in enumerate(vs.members):
            table = {"snomed": snomed, "icd10cm": icd}.get(group.system)
            if table is None:
                msg = f"value set {vs.id!r}: a condition set holds SNOMED CT or ICD-10-CM codes, not {group.system}"
                out.append(RuleProblem(d.path, d.line("members", g), "E102", msg))
                continue
            for code, display in group.codes:
                key = normalise_icd(code) if group.system == "icd10cm" else code
                table.setdefault(key, set()).add(vs.id)
                term.condition_text.add(display, vs.id)
    for vid, kids in includes.items():
        for inc in kids:
            if inc not in term.value_sets:
                d, line = where[vid]
                out.append(RuleProblem(d.path, line, "E107", f"value set {vid!r}: unknown value set {inc!r}"))
    first = next(iter(where.values()), None)
    members = _closure(
        {k: {k} for k in term.value_sets}, includes, "value set", out, first[0].path if first else "terminology"
    )
    term.vs_ancestors = {k: frozenset(v) for k, v in invert(members).items()}
    for k in term.value_sets:
        term.vs_ancestors.setdefault(k, frozenset({k}))
    term.snomed = {k: frozenset(v) for k, v in snomed.items()}
    term.icd_codes = {k: frozenset(v) for k, v in icd.items()}
    term.icd_prefixes = sorted(icd_prefix.items(), key=lambda kv: -len(kv[0]))
    term.text_excludes = {k: v for k, v in excludes.items() if v}
    term.current_only = frozenset(current)


def _build_context(term: Terminology, files: list[_Doc], out: list[RuleProblem]) -> None:
    if not files:
        return
    if len(files) > 1:
        out.append(RuleProblem(files[1].path, 1, "E103", "a pack has one context-rules file"))
    try:
        term.context = ContextGuard.from_file(_as(files[0], ContextRulesFile))
    except ContextRulesError as exc:
        out.append(RuleProblem(files[0].path, files[0].line("triggers"), "E102", f"context rules: {exc}"))


def _provenance(parsed: dict[str, list[_Doc]], root: Path, display_root: Path) -> list[TerminologySource]:
    """Every source of every loaded file (what the pack serves, not what is on disk now)."""
    out: list[TerminologySource] = []
    prefix = root.relative_to(display_root).as_posix() + "/" if root.is_relative_to(display_root) else ""
    for kind, docs in sorted(parsed.items()):
        for d in docs:
            file = d.path.removeprefix(prefix)
            sources: Sequence[object] = getattr(d.model, "sources", ())
            for s in sources:
                label = getattr(s, "label", str(s))
                version = s.version if isinstance(s, SetSource) else None
                if isinstance(d.model, RxNormFile):
                    version = version or d.model.release
                out.append(TerminologySource(kind, file, label, version))
    return out
