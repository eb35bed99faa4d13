"""Generate browsable rule docs (``cdsrules docs --out docs/rules``) from the rule files alone.

Reviewers and clinicians who never open YAML need one page per rule: what it does, when it fires
and when it does not, its evidence, its examples and its version history, plus an index per drug.
Everything is derived from the compiled pack and ``rules/CHANGELOG.md``; the output is
deterministic (sorted, no timestamps) so a test can regenerate it and fail when the committed
docs drift from the rules.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, StrictUndefined, Template

from engine.authoring import docs_templates as tpl
from engine.authoring.explain import Explainer
from engine.compiler.model import SHARED, CompiledPack, CompiledRule, LocatedExample
from engine.compiler.pack import compile_pack
from engine.terminology_tools.coverage import link_value_sets
from schemas.common import Source

CHANGELOG = "CHANGELOG.md"


@dataclass(frozen=True)
class ChangelogEntry:
    version: str
    lines: tuple[str, ...]  # one Markdown bullet each, continuation lines joined


def parse_changelog(text: str) -> list[ChangelogEntry]:
    entries: list[ChangelogEntry] = []
    version = ""
    bullets: list[str] = []
    for raw in [*text.splitlines(), "## end"]:
        line = raw.rstrip()
        if line.startswith("## "):
            if version:
                entries.append(ChangelogEntry(version, tuple(bullets)))
            version, bullets = line[3:].strip(), []
        elif line.startswith("- "):
            bullets.append(line)
        elif line.strip() and bullets:
            bullets[-1] += " " + line.strip()
    return entries


def source_line(s: Source) -> str:
    out = f"- {s.label}"
    if s.section:
        out += f", {s.section}"
    if s.url:
        out += f" <{s.url}>"
    if s.note:
        out += f" (note: {s.note})"
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(", ", ": "), ensure_ascii=False)


class DocsBuilder:
    def __init__(self, pack: CompiledPack, changelog: str) -> None:
        self.pack = pack
        self.changelog = parse_changelog(changelog)
        self.explain = Explainer(pack)
        self.env = Environment(keep_trailing_newline=True, undefined=StrictUndefined, autoescape=False)
        self.env.filters["e"] = _cell
        self.env.globals.update(header=tpl.HEADER, source=source_line, version=pack.version)
        self._compiled: dict[str, Template] = {}

    def render(self) -> dict[str, str]:
        """Relative path -> Markdown for every page."""
        pages: dict[str, str] = {"index.md": self._index()}
        folders = [*sorted(self.pack.drugs), SHARED]
        for drug in folders:
            folder = "shared" if drug == SHARED else drug
            rules = sorted((r for r in self.pack.rules.values() if r.drug == drug), key=lambda r: (r.file, r.line))
            pages[f"{folder}/index.md"] = self._drug(drug, rules)
            for r in rules:
                pages[f"{folder}/{r.id}.md"] = self._rule(r, drug)
        return pages

    def _template(self, text: str) -> Callable[..., str]:
        if text not in self._compiled:
            self._compiled[text] = self.env.from_string(text)
        return self._compiled[text].render

    def _index(self) -> str:
        drugs = [
            {
                "id": d,
                "title": dr.profile.title,
                "count": sum(1 for r in self.pack.rules.values() if r.drug == d),
                "max": f"{dr.profile.labelled_max_daily_mg:g} mg/day",
            }
            for d, dr in sorted(self.pack.drugs.items())
        ]
        return self._template(tpl.INDEX)(
            digest=self.pack.digest,
            drugs=drugs,
            shared_count=sum(1 for r in self.pack.rules.values() if r.drug == SHARED),
            changelog=self.changelog,
        )

    def _drug(self, drug: str, rules: list[CompiledRule]) -> str:
        profile = self.pack.drugs[drug].profile if drug in self.pack.drugs else None
        groups: dict[str, list[dict[str, Any]]] = {}
        for r in rules:
            does = self.explain.does(r.then)
            groups.setdefault(r.file, []).append(
                {"id": r.id, "title": r.rule.title, "version": r.version, "does": does}
            )
        return self._template(tpl.DRUG)(
            title=profile.title if profile else "Shared derivations (every drug)",
            profile=profile,
            groups=[{"file": f, "rules": rs} for f, rs in groups.items()],
        )

    def _rule(self, r: CompiledRule, drug: str) -> str:
        profile = self.pack.drugs[drug].profile if drug in self.pack.drugs else None
        return self._template(tpl.RULE)(
            r=r,
            back_title=profile.title if profile else "Shared derivations",
            does=self.explain.does(r.then),
            fires=self.explain.fires_when(r),
            not_fires=self.explain.does_not_fire_when(r),
            examples=[self._example(ex, r.id) for ex in self._examples_of(r.id)],
            history=self._history(r),
        )

    def _examples_of(self, rule_id: str) -> list[LocatedExample]:
        named = [
            ex
            for ex in self.pack.examples
            if rule_id in ex.example.expect.fires or rule_id in ex.example.expect.not_fires
        ]
        return sorted(named, key=lambda ex: (ex.file, ex.line))

    def _example(self, ex: LocatedExample, rule_id: str) -> dict[str, str]:
        expect = ex.example.expect.model_dump(mode="json", exclude_defaults=True, exclude={"fires", "not_fires"})
        return {
            "name": ex.example.name,
            "where": f"{ex.file}:{ex.line}",
            "verdict": "fires" if rule_id in ex.example.expect.fires else "must not fire",
            "patient": _compact(ex.example.patient),
            "action": ex.example.action,
            "expect": _compact(expect) if expect else "",
        }

    def _history(self, r: CompiledRule) -> list[dict[str, str]]:
        mentions = [(e.version, line) for e in self.changelog for line in e.lines if r.id in line]
        if not mentions:
            word = "shared" if r.drug == SHARED else r.drug
            pattern = re.compile(rf"\b{re.escape(word)}\b", re.IGNORECASE)
            mentions = [(e.version, line) for e in self.changelog for line in e.lines if pattern.search(line)]
        return [{"version": v, "line": line.removeprefix("- ")} for v, line in mentions]


def render_docs(root: Path) -> dict[str, str]:
    """Every page for the pack at ``root`` (raises ``RuleSetError`` if it does not compile)."""
    pack = compile_pack(root)
    changelog = root / CHANGELOG
    text = changelog.read_text(encoding="utf-8") if changelog.exists() else ""
    pages = DocsBuilder(pack, text).render()
    link_value_sets(pages, root, pack, tpl.HEADER)  # value-sets.md, linked from each rule that names a set
    return pages


def write_docs(root: Path, out: Path) -> list[Path]:
    """Write the pages under ``out``; stale generated pages (for deleted rules) are removed."""
    pages = render_docs(root)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.rglob("*.md"):
        rel = old.relative_to(out).as_posix()
        if rel not in pages and old.read_text(encoding="utf-8").startswith(tpl.HEADER):
            old.unlink()
    written = []
    for rel, text in sorted(pages.items()):
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
