"""What the terminology covers, value set by value set, and which rule concepts lean on text alone.

A rule that tests ``conditions: {contains: hepatitis}`` is only as good as the codes behind
``hepatitis``: a set with no SNOMED CT or ICD-10-CM member matches a coded problem list never, and a
drug class whose ingredients carry no RxNorm code matches a code-only medication feed never.
``cdsrules terminology coverage`` prints this per value set (members by system and by source), so a
deployer sees where to import an expansion. Read from the files with the schema models, beside the
loader, so it works on any pack the gate accepts.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from engine.compiler.language import FIELDS, Cmp, Node, Universe
from engine.compiler.model import CompiledPack
from engine.terminology.provenance import terminology_files
from schemas.terminology import DrugClassesFile, IngredientsFile, RxNormFile, ValueSetFile, ValueSetsFile

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class SetCoverage:
    id: str
    title: str
    domain: str  # condition | medication
    files: list[str] = field(default_factory=list)
    by_system: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # snomed, icd10cm, rxnorm, ...
    by_source: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # source label -> members
    text: int = 0  # free-text names
    include: list[str] = field(default_factory=list)
    used_by: list[str] = field(default_factory=list)  # rule ids whose when: names this set

    @property
    def codes(self) -> int:
        return sum(n for s, n in self.by_system.items() if s != "ingredient-name")

    @property
    def text_only(self) -> bool:
        return self.codes == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "domain": self.domain,
            "files": self.files,
            "by_system": dict(sorted(self.by_system.items())),
            "by_source": dict(sorted(self.by_source.items())),
            "text": self.text,
            "include": self.include,
            "codes": self.codes,
            "text_only": self.text_only,
            "used_by": sorted(self.used_by),
        }


def _load(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=_Loader)


def catalogue(root: Path) -> dict[str, SetCoverage]:
    """Every value set and drug class of the pack, members counted by system and source."""
    sets: dict[str, SetCoverage] = {}
    rxcui_of: dict[str, str | None] = {}
    classes: list[tuple[str, DrugClassesFile]] = []

    def entry(vs_id: str, title: str, domain: str, rel: str) -> SetCoverage:
        cov = sets.setdefault(vs_id, SetCoverage(vs_id, title, domain))
        cov.files.append(rel)
        return cov

    for path in terminology_files(root):
        rel = path.relative_to(root).as_posix()
        try:
            data = _load(path)
        except (OSError, ValueError, yaml.YAMLError):
            continue  # the gate reports unreadable files; coverage counts what loads
        kind = data.get("kind") if isinstance(data, dict) else None
        try:
            if kind == "value-set":
                vs = ValueSetFile.model_validate(data)
                cov = entry(vs.id, vs.title, vs.domain, rel)
                labels = {s.id: s.label for s in vs.sources}
                for g in vs.members:
                    cov.by_system[g.system] += len(g.codes)
                    cov.by_source[labels.get(g.source, g.source)] += len(g.codes)
                if vs.icd10cm_prefixes:
                    cov.by_system["icd10cm-prefix"] += len(vs.icd10cm_prefixes)
                cov.by_system["ingredient-name"] += len(vs.ingredients) if not vs.members else 0
                cov.text += len(vs.text)
                cov.include += vs.include
            elif kind == "value-sets":
                for old in ValueSetsFile.model_validate(data).value_sets:
                    cov = entry(old.id, old.title, "condition", rel)
                    cov.by_system["snomed"] += len(old.snomed)
                    cov.by_system["icd10cm-prefix"] += len(old.icd10cm_prefixes)
                    n = len(old.snomed) + len(old.icd10cm_prefixes)
                    if n:
                        cov.by_source["; ".join(s.label for s in old.sources)] += n
                    cov.text += len(old.synonyms)
                    cov.include += old.include_value_sets
            elif kind == "drug-classes":
                classes.append((rel, DrugClassesFile.model_validate(data)))
            elif kind == "ingredients":
                for ing in IngredientsFile.model_validate(data).ingredients:
                    rxcui_of[ing.id] = ing.rxcui
            elif kind == "rxnorm":  # products map to ingredients; every class with coded ingredients gains them
                rx = RxNormFile.model_validate(data)
                cov = entry("rxnorm-release", f"RxNorm release {rx.release}", "medication", rel)
                cov.by_system["rxnorm-product"] += len(rx.products)
                cov.by_system["ndc"] += sum(len(p.ndc) for p in rx.products)
                cov.by_source[rx.sources[0].label] += len(rx.products)
        except ValidationError:
            continue
    for rel, file in classes:
        for cls in file.classes:
            cov = entry(cls.id, cls.title, "medication", rel)
            coded = [m for m in cls.members if rxcui_of.get(m)]
            cov.by_system["rxnorm-ingredient"] += len(coded)
            cov.by_system["ingredient-name"] += len(cls.members) - len(coded)
            if coded:
                cov.by_source["ingredients.yaml (RxNorm IN codes)"] += len(coded)
            cov.text += len(cls.members)
            cov.include += cls.include_classes
    return sets


def _walk(node: Node) -> list[Cmp]:
    if isinstance(node, Cmp):
        return [node]
    return [c for child in node.children for c in _walk(child)]


def rule_references(pack: CompiledPack) -> dict[str, set[str]]:
    """Value-set and drug-class ids each rule's ``when:`` names -> the rule ids naming them."""
    used: dict[str, set[str]] = defaultdict(set)
    for rule in pack.rules.values():
        for node in rule.patient_tests:
            for cmp in _walk(node):
                spec = FIELDS.get(cmp.field)
                if spec is not None and spec.universe in (Universe.VALUE_SET, Universe.DRUG_CLASS):
                    for v in cmp.values:
                        used[v].add(rule.id)
    return used


def coverage(root: Path, pack: CompiledPack | None) -> list[SetCoverage]:
    sets = catalogue(root)
    if pack is not None:
        for vs_id, rules in rule_references(pack).items():
            if vs_id in sets:
                sets[vs_id].used_by = sorted(rules)
    return sorted(sets.values(), key=lambda c: (c.domain, c.id))


def render_text(rows: list[SetCoverage]) -> str:
    lines: list[str] = []
    for c in rows:
        systems = ", ".join(f"{s} {n}" for s, n in sorted(c.by_system.items()) if n) or "no codes"
        flag = "  TEXT ONLY" if c.text_only else ""
        lines.append(f"{c.domain:<10} {c.id:<40} {systems}; text {c.text}{flag}")
        for label, n in sorted(c.by_source.items()):
            if n:
                lines.append(f"{'':<11}source: {label} ({n})")
        if c.used_by:
            lines.append(f"{'':<11}used by: {', '.join(c.used_by)}")
    relied = sorted(c.id for c in rows if c.text_only and c.used_by)
    lines.append("")
    lines.append(f"{len(rows)} value sets; rule concepts relying on text alone: {len(relied)}")
    lines += [f"  {vs_id}" for vs_id in relied]
    return "\n".join(lines) + "\n"


# ---- the generated rule docs: a value-set page, and a link from each rule that names a set -------------


def _anchor(vs_id: str) -> str:
    return vs_id  # ids are lowercase-dashed already: the Markdown heading anchor is the id itself


def value_sets_page(rows: list[SetCoverage], header: str) -> str:
    """``value-sets.md``: every value set and drug class with its members by system and its sources."""

    out = [
        header.rstrip("\n"),
        "# Value sets and drug classes",
        "",
        "Members by code system and the sources they come from "
        "(`cdsrules terminology coverage` prints the same). TEXT ONLY: no code, free text alone.",
        "",
    ]
    for c in rows:
        out += [f"## {c.id}", "", f"{c.title} ({c.domain}){' — TEXT ONLY' if c.text_only else ''}", ""]
        systems = ", ".join(f"{s}: {n}" for s, n in sorted(c.by_system.items()) if n) or "no codes"
        out.append(f"- members: {systems}; free-text names: {c.text}")
        out += [f"- source: {label} ({n})" for label, n in sorted(c.by_source.items()) if n]
        if c.include:
            out.append("- includes: " + ", ".join(f"[{i}](#{_anchor(i)})" for i in c.include))
        out.append(f"- files: {', '.join(c.files)}")
        out.append("")
    return "\n".join(out)


def link_value_sets(pages: dict[str, str], root: Path, pack: CompiledPack, header: str) -> None:
    """Add ``value-sets.md`` to the generated docs and, on each rule page, links to the sets it names.

    ``header`` marks the page as generated (``cdsrules docs`` removes stale generated pages)."""
    rows = coverage(root, pack)
    if not rows:
        return
    pages["value-sets.md"] = value_sets_page(rows, header)
    by_rule: dict[str, list[str]] = defaultdict(list)
    for c in rows:
        for rule_id in c.used_by:
            by_rule[rule_id].append(c.id)
    for rel in list(pages):
        rule_id = rel.rsplit("/", 1)[-1].removesuffix(".md")
        if "/" in rel and rule_id in by_rule:
            links = ", ".join(f"[{v}](../value-sets.md#{_anchor(v)})" for v in sorted(by_rule[rule_id]))
            pages[rel] = pages[rel].rstrip("\n") + f"\n\n## Value sets\n\n{links}\n"
