"""The compiler's stages over one rule pack directory, each appending to ``Compilation.problems``.

``engine.pipeline`` runs them in order (and then the clinical lint and the examples) as the one gate
every entry point shares. Each stage reads what the previous ones left on the ``Compilation`` and
never raises for a bad pack: every problem is collected as ``file:line: code: message`` so an
author sees all of them at once. ``compile_pack`` runs just these stages, for tools that need a
well-formed pack and no examples (tests of the compiler itself).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from engine.compiler.conditions import ConditionCompiler, ConditionError
from engine.compiler.durable_form import build_definition
from engine.compiler.model import SHARED, CompiledPack, CompiledRule, DrugRules, LocatedExample
from engine.compiler.monitoring import MONITORING_FILE, load_library
from engine.compiler.problems import validation_problems
from engine.compiler.terminology_files import load_terminology
from engine.compiler.yaml_source import YamlDocument, load_yaml
from engine.errors import RuleProblem, RuleSetError
from engine.terminology import Terminology
from schemas.rulefile import DrugProfile, RuleFile

PACK_FILE = "pack.yaml"
TERMINOLOGY_DIR = "terminology"


@dataclass
class ParsedFile:
    doc: YamlDocument
    rel: Path  # inside the pack: baclofen/renal.yaml
    model: RuleFile | None = None  # set by the schema stage when the file is valid


@dataclass
class Compilation:
    """What the stages know so far about one pack; stages fill it in order."""

    root: Path
    display: Path  # file names in problems are shown relative to this (the pack's parent)
    problems: list[RuleProblem] = field(default_factory=list)
    version: str = "0.0.0"
    pack_doc: YamlDocument | None = None
    files: list[ParsedFile] = field(default_factory=list)
    terminology: Terminology = field(default_factory=Terminology)
    derived: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rules: dict[str, CompiledRule] = field(default_factory=dict)
    profiles: dict[str, DrugProfile] = field(default_factory=dict)
    examples: list[LocatedExample] = field(default_factory=list)
    drugs: dict[str, DrugRules] = field(default_factory=dict)

    @classmethod
    def of(cls, root: Path) -> Compilation:
        root = root.resolve()
        return cls(root=root, display=root.parent)

    @property
    def failed(self) -> bool:
        return any(p.severity == "error" for p in self.problems)

    def shown(self, path: Path) -> str:
        return path.relative_to(self.display).as_posix() if path.is_relative_to(self.display) else str(path)

    @property
    def valid_files(self) -> list[tuple[YamlDocument, RuleFile]]:
        return [(f.doc, f.model) for f in self.files if f.model is not None]

    def pack(self) -> CompiledPack:
        """The compiled pack; only once every compile stage ran without an error."""
        assert not self.failed, "a pack with errors is never built"
        return CompiledPack(
            version=self.version,
            digest=pack_digest(self.root),
            terminology=self.terminology,
            derived=self.derived,
            drugs=self.drugs,
            rules=self.rules,
            examples=tuple(self.examples),
            files=tuple([d.path for d, _ in self.valid_files] + self.terminology.files),
        )


def pack_digest(root: Path) -> str:
    """sha256 over every YAML file's path and content (line endings normalised), and the JSON files
    under terminology/ (an imported RxNorm release), so a new import is a new digest."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if _digested(root, p)):
        rel = path.relative_to(root).as_posix()
        h.update(rel.encode() + b"\0")
        h.update(path.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return "sha256:" + h.hexdigest()


def _digested(root: Path, path: Path) -> bool:
    if path.suffix in (".yaml", ".yml"):
        return path.is_file()
    return path.suffix == ".json" and path.relative_to(root).parts[0] == TERMINOLOGY_DIR and path.is_file()


# ---- the stages ------------------------------------------------------------------------------------


def parse_files(c: Compilation) -> None:
    """Read pack.yaml and every rule file as YAML with line numbers (E001, E002, E003)."""
    if not c.root.is_dir():
        c.problems.append(RuleProblem(str(c.root), 1, "E004", "rules directory does not exist"))
        return
    path = c.root / PACK_FILE
    if not path.exists():
        c.problems.append(RuleProblem(c.shown(path), 1, "E003", "missing pack.yaml (version: x.y.z)"))
    else:
        doc = load_yaml(path, c.shown(path))
        if isinstance(doc, RuleProblem):
            c.problems.append(doc)
        else:
            c.pack_doc = doc
    for path in sorted(c.root.rglob("*.y*ml")):
        rel = path.relative_to(c.root)
        if rel.parts[0] == TERMINOLOGY_DIR or rel.as_posix() in (PACK_FILE, MONITORING_FILE):
            continue
        doc = load_yaml(path, c.shown(path))
        if isinstance(doc, RuleProblem):
            c.problems.append(doc)
        else:
            c.files.append(ParsedFile(doc, rel))


def validate_files(c: Compilation) -> None:
    """Each rule file against the schema, library prompts resolved; in its drug's folder (E002, E003, E302, E306)."""
    if c.pack_doc is not None:
        doc = c.pack_doc
        version = doc.data.get("version") if isinstance(doc.data, dict) else None
        if isinstance(version, str) and version.count(".") == 2:
            c.version = version
        else:
            c.problems.append(
                RuleProblem(doc.path, doc.line_of(("version",)), "E003", "version must be 'x.y.z' (quoted)")
            )
    library = load_library(c.root, c.display, c.problems)  # rules/shared/monitoring.yaml: names rules may use
    for pf in c.files:
        try:
            pf.model = RuleFile.model_validate(pf.doc.data, context=library.context())
        except ValidationError as exc:
            c.problems.extend(validation_problems(pf.doc, exc, "E002"))
        c.problems.extend(_check_folder(pf))


def load_terminology_files(c: Compilation) -> None:
    """Ingredients, classes, products and value sets under terminology/ (E1xx)."""
    term_dir = c.root / TERMINOLOGY_DIR
    if not c.root.is_dir():
        return
    if term_dir.is_dir():
        c.terminology, problems = load_terminology(term_dir, c.display)
        c.problems.extend(problems)
    else:
        c.problems.append(RuleProblem(c.shown(c.root), 1, "E101", "no terminology/ folder"))


def compile_conditions(c: Compilation) -> None:
    """Derived-fact declarations, then every rule's ``when:`` against fields and terminology (E2xx)."""
    c.derived = _derived_declarations(c)
    compiler = ConditionCompiler(c.terminology, c.derived)
    for doc, model in c.valid_files:
        _compile_file(c, doc, model, compiler)


def cross_references(c: Compilation) -> None:
    """Examples name real rules; every drug with rules has a profile (E3xx, E5xx)."""
    for ex in c.examples:
        for rid in (*ex.example.expect.fires, *ex.example.expect.not_fires):
            if rid not in c.rules:
                c.problems.append(
                    RuleProblem(ex.file, ex.line, "E501", f"example {ex.example.name!r}: unknown rule {rid!r}")
                )
        if ex.drug == SHARED and ex.example.drug is None:
            c.problems.append(
                RuleProblem(ex.file, ex.line, "E502", "examples in shared files must name the ordered 'drug:'")
            )
    for drug in sorted({r.drug for r in c.rules.values()} - {SHARED}):
        if drug not in c.profiles:
            r = next(r for r in c.rules.values() if r.drug == drug)
            c.problems.append(RuleProblem(r.file, 1, "E303", f"drug {drug!r} has rules but no 'profile:' block"))


def durable_limits(c: Compilation) -> None:
    """One durable-rules ruleset definition per drug, inside the C engine's hard limits (E4xx)."""
    shared = [r for r in c.rules.values() if r.drug == SHARED]
    for drug, profile in sorted(c.profiles.items()):
        own = [r for r in c.rules.values() if r.drug == drug]
        definition, names, limit_problems = build_definition(shared + own)
        c.problems.extend(limit_problems)
        c.drugs[drug] = DrugRules(drug, profile, tuple(shared + own), definition, names)


def compile_pack(root: Path) -> CompiledPack:
    """Only the compile stages (no lint, no examples); raises ``RuleSetError`` with every error."""
    c = Compilation.of(root)
    for stage in (
        parse_files,
        validate_files,
        load_terminology_files,
        compile_conditions,
        cross_references,
        durable_limits,
    ):
        stage(c)
    if c.failed:
        raise RuleSetError([p for p in c.problems if p.severity == "error"])
    return c.pack()


# ---- helpers -----------------------------------------------------------------------------------------


def _check_folder(pf: ParsedFile) -> list[RuleProblem]:
    doc, rel = pf.doc, pf.rel
    drug = doc.data.get("drug") if isinstance(doc.data, dict) else None
    folder = rel.parts[0] if len(rel.parts) > 1 else ""
    expected = SHARED if folder == "shared" else folder
    if isinstance(drug, str) and drug != expected:
        msg = f"file in rules/{folder or '.'}/ says drug: {drug!r}; expected {expected!r}"
        return [RuleProblem(doc.path, doc.line_of(("drug",)), "E302", msg)]
    return []


def _derived_declarations(c: Compilation) -> dict[str, tuple[str, ...]]:
    derived: dict[str, tuple[str, ...]] = {}
    for doc, model in c.valid_files:
        for name, decl in model.derived.items():
            line = doc.line_of(("derived", name))
            if model.drug != SHARED:
                c.problems.append(RuleProblem(doc.path, line, "E304", "derived facts are declared in shared files"))
            elif name in derived:
                c.problems.append(RuleProblem(doc.path, line, "E301", f"derived fact {name!r} declared twice"))
            derived[name] = tuple(decl.values)
    return derived


def _compile_file(c: Compilation, doc: YamlDocument, model: RuleFile, compiler: ConditionCompiler) -> None:
    problems = c.problems
    if model.drug != SHARED and model.drug not in c.terminology.ingredients:
        problems.append(RuleProblem(doc.path, doc.line_of(("drug",)), "E204", f"unknown ingredient {model.drug!r}"))
    if model.profile is not None:
        line = doc.line_of(("profile",))
        if model.profile.ingredient != model.drug:
            problems.append(RuleProblem(doc.path, line, "E302", "profile.ingredient must equal the file's drug"))
        elif model.drug in c.profiles:
            problems.append(RuleProblem(doc.path, line, "E301", f"second profile for {model.drug!r}"))
        else:
            c.profiles[model.drug] = model.profile
    for i, rule in enumerate(model.rules):
        base = ("rules", i)
        line = doc.line_of(base)
        if rule.id in c.rules:
            other = c.rules[rule.id]
            msg = f"duplicate rule id {rule.id!r} (first at {other.file}:{other.line})"
            problems.append(RuleProblem(doc.path, line, "E301", msg))
            continue
        if model.drug != SHARED and not rule.id.startswith(model.drug + "."):
            problems.append(RuleProblem(doc.path, line, "E305", f"rule ids in this file start with '{model.drug}.'"))
        if rule.then.derive is not None:
            if model.drug != SHARED:
                problems.append(RuleProblem(doc.path, line, "E304", "only shared files may derive facts"))
            for name, value in rule.then.derive.items():
                if name not in c.derived or value not in c.derived[name]:
                    problems.append(
                        RuleProblem(doc.path, line, "E205", f"derives {name}={value!r}, which is not declared")
                    )
        try:
            conds = compiler.compile(rule.when)
        except ConditionError as exc:
            problems.append(RuleProblem(doc.path, doc.line_of((*base, "when", *exc.path)), exc.code, exc.message))
            continue
        c.rules[rule.id] = CompiledRule(
            rule=rule,
            file=doc.path,
            line=line,
            drug=model.drug,
            patient_tests=tuple(conds.patient_tests),
            derived_tests=tuple(sorted(conds.derived_tests.items())),
        )
    for i, ex in enumerate(model.examples):
        c.examples.append(LocatedExample(ex, ex.drug or model.drug, doc.path, doc.line_of(("examples", i))))
