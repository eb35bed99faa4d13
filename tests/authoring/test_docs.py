"""Rule docs: generated from the rule files, deterministic, and the committed copy never drifts."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from engine.authoring.docs import render_docs
from engine.authoring.docs_templates import HEADER
from engine.authoring.language_docs import language_tables, rewrite
from engine.cli import app
from engine.compiler.language import FIELDS, Op
from engine.compiler.pack import compile_pack
from engine.settings import BUNDLED_RULES
from tests.authoring.packs import full_pack, lean_pack, rule, write
from tests.conftest import REPO

COMMITTED = REPO / "docs" / "rules"
EXAMPLE = """examples:
  - name: a stroke patient gets the note
    patient: {age_years: 50, sex: male, weight_kg: 80, egfr_ml_min_1_73m2: 90, conditions: [stroke]}
    expect:
      fires: [baclofen.t.note]
  - name: a younger patient does not
    patient: {age_years: 30, sex: male, weight_kg: 80, egfr_ml_min_1_73m2: 90, conditions: [stroke]}
    expect:
      not_fires: [baclofen.t.note]
"""


def test_committed_docs_match_the_rules() -> None:
    pages = render_docs(BUNDLED_RULES)
    committed = {p.relative_to(COMMITTED).as_posix(): p.read_text(encoding="utf-8") for p in COMMITTED.rglob("*.md")}
    fix = "regenerate with `cdsrules docs --out docs/rules` and commit the result"
    assert sorted(set(pages) - set(committed)) == [], f"pages missing from docs/rules; {fix}"
    assert sorted(set(committed) - set(pages)) == [], f"stale pages in docs/rules; {fix}"
    stale = sorted(rel for rel, text in pages.items() if committed[rel] != text)
    assert stale == [], f"{len(stale)} page(s) out of date, e.g. {stale[:3]}; {fix}"


def test_output_depends_on_the_files_only(tmp_path: Path) -> None:
    assert render_docs(full_pack(tmp_path)) == render_docs(BUNDLED_RULES)


def test_rule_page_says_when_it_fires_evidence_examples_history(tmp_path: Path) -> None:
    rules = lean_pack(tmp_path)
    source = '[{label: Test label, section: "5.1 Warnings", url: "https://example.org/label"}]'
    write(
        rules, rule("note", "[{conditions: {includes: stroke}}, {age_years: {gte: 40}}]", _finding(), source), EXAMPLE
    )
    changelog = rules / "CHANGELOG.md"
    changelog.write_text(
        "# Rule pack changelog\n\n## 0.2.0\n- baclofen.t.note: new stroke note.\n\n"
        + changelog.read_text(encoding="utf-8").split("\n", 2)[2],
        encoding="utf-8",
    )
    pages = render_docs(rules)
    page = pages["baclofen/baclofen.t.note.md"]
    assert page.startswith(HEADER)
    assert "## Fires when\nAll of these hold:\n- the order starts the drug\n- conditions include stroke\n" in page
    assert "- age ≥ 40 years\n" in page
    assert "## Does not fire when\nAny of these holds:\n- the order stops the drug\n" in page
    assert "- age < 40 years, or age is not known\n" in page
    assert "- Test label, 5.1 Warnings <https://example.org/label>" in page
    assert "**a stroke patient gets the note** (rules/baclofen/t.yaml:11): fires" in page
    assert "**a younger patient does not** (rules/baclofen/t.yaml:15): must not fire" in page
    assert "- Pack 0.2.0: baclofen.t.note: new stroke note." in page
    assert "warning disease finding: Stroke note for the test" in page
    index = pages["baclofen/index.md"]
    assert "| [baclofen.t.note](baclofen.t.note.md)<br>Test rule note | 1.0.0 |" in index
    assert "Labelled maximum: **80 mg/day**" in index


def _finding() -> str:
    return "{finding: {category: disease, severity: warning, summary: Stroke note for the test, detail: test detail}}"


def test_cli_writes_checks_and_prunes(tmp_path: Path) -> None:
    rules, out = lean_pack(tmp_path), tmp_path / "site"
    runner = CliRunner()
    assert runner.invoke(app, ["docs", "--rules", str(rules), "--out", str(out)]).exit_code == 0
    assert (out / "index.md").read_text(encoding="utf-8").startswith(HEADER)
    assert runner.invoke(app, ["docs", "--rules", str(rules), "--out", str(out), "--check"]).exit_code == 0
    write(rules, rule("note", "[{conditions: {includes: stroke}}]", _finding()))
    stale = runner.invoke(app, ["docs", "--rules", str(rules), "--out", str(out), "--check"])
    assert stale.exit_code == 1 and "baclofen.t.note.md" in stale.stdout
    runner.invoke(app, ["docs", "--rules", str(rules), "--out", str(out)])
    assert (out / "baclofen" / "baclofen.t.note.md").exists()
    (rules / "baclofen" / "t.yaml").unlink()
    runner.invoke(app, ["docs", "--rules", str(rules), "--out", str(out)])
    assert not (out / "baclofen" / "baclofen.t.note.md").exists(), "pages of deleted rules are removed"


LANGUAGE_DOC = REPO / "docs" / "rule-language.md"


def test_committed_language_tables_match_the_language() -> None:
    text = LANGUAGE_DOC.read_text(encoding="utf-8")
    fix = "run `cdsrules docs --out docs/rules --language docs/rule-language.md` and commit the result"
    assert rewrite(text, language_tables(BUNDLED_RULES)) == text, fix


def test_language_tables_name_every_field_operator_and_derived_fact() -> None:
    tables = language_tables(BUNDLED_RULES)
    missing = [name for name in [*FIELDS, *Op, *compile_pack(BUNDLED_RULES).derived] if f"| `{name}` |" not in tables]
    assert missing == []


def test_cli_rewrites_and_checks_the_language_tables(tmp_path: Path) -> None:
    doc, out = tmp_path / "rule-language.md", tmp_path / "site"
    doc.write_text(LANGUAGE_DOC.read_text(encoding="utf-8").replace("| `includes_any` |", "| `includes_all` |"))
    runner = CliRunner()
    args = ["docs", "--out", str(out), "--language", str(doc)]
    stale = runner.invoke(app, [*args, "--check"])
    assert stale.exit_code == 1 and "language tables" in stale.output
    assert runner.invoke(app, args).exit_code == 0
    assert doc.read_text(encoding="utf-8") == LANGUAGE_DOC.read_text(encoding="utf-8")
    assert runner.invoke(app, [*args, "--check"]).exit_code == 0
