"""Compile a rule pack: the directory ``rules/`` in named stages, every error collected.

Stages: parse YAML -> validate schema -> resolve terminology -> check ids and conflicts ->
build durable-rules rulesets. A pack with any error never loads (``RuleSetError`` lists all of
them as ``file:line: code: message``); a pack that compiles is immutable.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from engine.compiler.conditions import ConditionCompiler, ConditionError
from engine.compiler.durable_form import build_definition
from engine.compiler.model import SHARED, CompiledPack, CompiledRule, DrugRules, LocatedExample
from engine.compiler.monitoring import MONITORING_FILE, load_library
from engine.compiler.problems import validation_problems
from engine.compiler.yaml_source import YamlDocument, load_yaml
from engine.errors import RuleProblem, RuleSetError
from engine.terminology import Terminology, load_terminology
from schemas.rulefile import DrugProfile, RuleFile

PACK_FILE = "pack.yaml"
TERMINOLOGY_DIR = "terminology"


@dataclass
class _ParsedFile:
    doc: YamlDocument
    model: RuleFile


def pack_digest(root: Path) -> str:
    """sha256 over every YAML file's path and content (line endings normalised)."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()):
        rel = path.relative_to(root).as_posix()
        h.update(rel.encode() + b"\0")
        h.update(path.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return "sha256:" + h.hexdigest()


def compile_ruleset(root: Path) -> CompiledPack:
    """Compile ``root`` (usually ``rules/``) or raise ``RuleSetError`` with every problem found."""
    pack, problems = compile_with_problems(root)
    errors = [p for p in problems if p.severity == "error"]
    if errors or pack is None:
        raise RuleSetError(errors or problems)
    return pack


def compile_with_problems(root: Path) -> tuple[CompiledPack | None, list[RuleProblem]]:
    root = root.resolve()
    display = root.parent
    problems: list[RuleProblem] = []
    if not root.is_dir():
        return None, [RuleProblem(str(root), 1, "E002", "rules directory does not exist")]

    version = _pack_version(root, display, problems)
    # stage 1+2: parse and validate every rule file
    library = load_library(root, display, problems)
    parsed: list[_ParsedFile] = []
    for path in sorted(root.rglob("*.y*ml")):
        rel = path.relative_to(root)
        if rel.parts[0] == TERMINOLOGY_DIR or rel.as_posix() in (PACK_FILE, MONITORING_FILE):
            continue
        shown = path.relative_to(display).as_posix()
        doc = load_yaml(path, shown)
        if isinstance(doc, RuleProblem):
            problems.append(doc)
            continue
        try:
            parsed.append(_ParsedFile(doc, RuleFile.model_validate(doc.data, context=library.context())))
        except ValidationError as exc:
            problems.extend(validation_problems(doc, exc, "E002"))
        _check_folder(rel, doc, problems)

    # stage 3: terminology, then conditions resolved against it
    term_dir = root / TERMINOLOGY_DIR
    if term_dir.is_dir():
        term, term_problems = load_terminology(term_dir, display)
        problems.extend(term_problems)
    else:
        term = Terminology()
        problems.append(RuleProblem(root.relative_to(display).as_posix(), 1, "E101", "no terminology/ folder"))

    derived = _derived_declarations(parsed, problems)
    compiler = ConditionCompiler(term, derived)
    rules: dict[str, CompiledRule] = {}
    profiles: dict[str, DrugProfile] = {}
    examples: list[LocatedExample] = []
    for pf in parsed:
        _compile_file(pf, term, compiler, derived, rules, profiles, examples, problems)

    # stage 4: ids and cross-references
    _check_examples(examples, rules, problems)
    for drug in sorted({r.drug for r in rules.values()} - {SHARED}):
        if drug not in profiles:
            r = next(r for r in rules.values() if r.drug == drug)
            problems.append(RuleProblem(r.file, 1, "E303", f"drug {drug!r} has rules but no 'profile:' block"))

    # stage 5: durable-rules rulesets, one per drug
    drugs: dict[str, DrugRules] = {}
    shared = [r for r in rules.values() if r.drug == SHARED]
    for drug, profile in sorted(profiles.items()):
        own = [r for r in rules.values() if r.drug == drug]
        definition, names, limit_problems = build_definition(shared + own)
        problems.extend(limit_problems)
        drugs[drug] = DrugRules(drug, profile, tuple(shared + own), definition, names)

    if any(p.severity == "error" for p in problems):
        return None, problems
    pack = CompiledPack(
        version=version,
        digest=pack_digest(root),
        terminology=term,
        derived=derived,
        drugs=drugs,
        rules=rules,
        examples=examples,
        files=[pf.doc.path for pf in parsed] + ([library.file] if library.file else []) + term.files,
        warnings=problems,
    )
    return pack, problems


def _pack_version(root: Path, display: Path, problems: list[RuleProblem]) -> str:
    path = root / PACK_FILE
    shown = path.relative_to(display).as_posix()
    if not path.exists():
        problems.append(RuleProblem(shown, 1, "E003", "missing pack.yaml (version: x.y.z)"))
        return "0.0.0"
    doc = load_yaml(path, shown)
    if isinstance(doc, RuleProblem):
        problems.append(doc)
        return "0.0.0"
    version = doc.data.get("version") if isinstance(doc.data, dict) else None
    if not isinstance(version, str) or version.count(".") != 2:
        problems.append(RuleProblem(shown, doc.line_of(("version",)), "E003", "version must be 'x.y.z' (quoted)"))
        return "0.0.0"
    return version


def _check_folder(rel: Path, doc: YamlDocument, problems: list[RuleProblem]) -> None:
    drug = doc.data.get("drug") if isinstance(doc.data, dict) else None
    folder = rel.parts[0] if len(rel.parts) > 1 else ""
    expected = SHARED if folder == "shared" else folder
    if isinstance(drug, str) and drug != expected:
        msg = f"file in rules/{folder or '.'}/ says drug: {drug!r}; expected {expected!r}"
        problems.append(RuleProblem(doc.path, doc.line_of(("drug",)), "E302", msg))


def _derived_declarations(parsed: list[_ParsedFile], problems: list[RuleProblem]) -> dict[str, tuple[str, ...]]:
    derived: dict[str, tuple[str, ...]] = {}
    for pf in parsed:
        for name, decl in pf.model.derived.items():
            line = pf.doc.line_of(("derived", name))
            if pf.model.drug != SHARED:
                problems.append(RuleProblem(pf.doc.path, line, "E304", "derived facts are declared in shared files"))
            elif name in derived:
                problems.append(RuleProblem(pf.doc.path, line, "E301", f"derived fact {name!r} declared twice"))
            derived[name] = tuple(decl.values)
    return derived


def _compile_file(
    pf: _ParsedFile,
    term: Terminology,
    compiler: ConditionCompiler,
    derived: dict[str, tuple[str, ...]],
    rules: dict[str, CompiledRule],
    profiles: dict[str, DrugProfile],
    examples: list[LocatedExample],
    problems: list[RuleProblem],
) -> None:
    doc, model = pf.doc, pf.model
    if model.drug != SHARED and model.drug not in term.ingredients:
        problems.append(RuleProblem(doc.path, doc.line_of(("drug",)), "E204", f"unknown ingredient {model.drug!r}"))
    if model.profile is not None:
        line = doc.line_of(("profile",))
        if model.profile.ingredient != model.drug:
            problems.append(RuleProblem(doc.path, line, "E302", "profile.ingredient must equal the file's drug"))
        elif model.drug in profiles:
            problems.append(RuleProblem(doc.path, line, "E301", f"second profile for {model.drug!r}"))
        else:
            profiles[model.drug] = model.profile
    for i, rule in enumerate(model.rules):
        base = ("rules", i)
        line = doc.line_of(base)
        if rule.id in rules:
            other = rules[rule.id]
            msg = f"duplicate rule id {rule.id!r} (first at {other.file}:{other.line})"
            problems.append(RuleProblem(doc.path, line, "E301", msg))
            continue
        if model.drug != SHARED and not rule.id.startswith(model.drug + "."):
            problems.append(RuleProblem(doc.path, line, "E305", f"rule ids in this file start with '{model.drug}.'"))
        if rule.then.derive is not None:
            if model.drug != SHARED:
                problems.append(RuleProblem(doc.path, line, "E304", "only shared files may derive facts"))
            for name, value in rule.then.derive.items():
                if name not in derived or value not in derived[name]:
                    problems.append(
                        RuleProblem(doc.path, line, "E205", f"derives {name}={value!r}, which is not declared")
                    )
        try:
            conds = compiler.compile(rule.when)
        except ConditionError as exc:
            problems.append(RuleProblem(doc.path, doc.line_of((*base, "when", *exc.path)), exc.code, exc.message))
            continue
        rules[rule.id] = CompiledRule(
            rule=rule,
            file=doc.path,
            line=line,
            drug=model.drug,
            patient_tests=tuple(conds.patient_tests),
            derived_tests=tuple(sorted(conds.derived_tests.items())),
        )
    for i, ex in enumerate(model.examples):
        examples.append(LocatedExample(ex, ex.drug or model.drug, doc.path, doc.line_of(("examples", i))))


def _check_examples(
    examples: list[LocatedExample], rules: dict[str, CompiledRule], problems: list[RuleProblem]
) -> None:
    for ex in examples:
        for rid in (*ex.example.expect.fires, *ex.example.expect.not_fires):
            if rid not in rules:
                problems.append(
                    RuleProblem(ex.file, ex.line, "E501", f"example {ex.example.name!r}: unknown rule {rid!r}")
                )
        if ex.drug == SHARED and ex.example.drug is None:
            problems.append(
                RuleProblem(ex.file, ex.line, "E502", "examples in shared files must name the ordered 'drug:'")
            )
