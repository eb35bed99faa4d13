"""`cdsrules diff`: what an edit changes for a cohort, per patient and per rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.authoring.diff import diff_cohort
from engine.cli import app
from engine.compiler.pack import compile_pack
from tests.authoring.packs import full_pack, rule, write

COHORT = Path(__file__).parent / "fixtures" / "cohort.jsonl"
NEW_RULE = rule(
    "stroke-note",
    "[{conditions: {includes: stroke}}]",
    "{finding: {category: disease, severity: warning, summary: test summary, detail: test detail}}",
)


@pytest.fixture(scope="module")
def packs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    old = full_pack(tmp_path_factory.mktemp("old"))
    new = full_pack(tmp_path_factory.mktemp("new"))
    renal = new / "baclofen" / "renal.yaml"
    text = renal.read_text(encoding="utf-8")
    mild = "        start: {dose_mg: 5, times_per_day: 2}\n        max_daily_mg: 53\n"
    assert text.count(mild) == 1, "the baclofen mild band changed; update this test's edit"
    renal.write_text(text.replace(mild, mild.replace("dose_mg: 5,", "dose_mg: 2.5,")), encoding="utf-8")
    write(new, NEW_RULE)
    return old, new


@pytest.mark.parametrize("backend", ["durable", "reference"])
def test_diff_reports_per_patient_and_per_rule(packs: tuple[Path, Path], backend: str) -> None:
    old, new = packs
    old_pack = compile_pack(old)
    report = diff_cohort(old_pack, compile_pack(new), COHORT, backend)  # type: ignore[arg-type]
    data = report.as_dict()
    v = old_pack.rules["baclofen.renal.mild"].version  # the edit changes the dose, not the version
    assert data["patients"] == 6 and [b["line"] for b in data["invalid_lines"]] == [6, 7]
    assert "/patient/age_years" in data["invalid_lines"][1]["error"]
    assert data["rules"]["added"] == ["baclofen.t.stroke-note"]
    assert data["rules"]["modified"] == [f"baclofen.renal.mild ({v} -> {v})"]
    changed = {c["id"] or f"line {c['line']}": c for c in data["changes"]}
    assert set(changed) == {"p1-mild", "p3-stroke", "line 9"}, sorted(changed)
    mild = changed["p1-mild"]
    assert mild["dose_before"] == (10.0, 53.0) and mild["dose_after"] == (5.0, 53.0)
    assert changed["p3-stroke"]["fires_added"] == ["baclofen.t.stroke-note"]
    assert changed["p3-stroke"]["findings_added"] == [("baclofen.t.stroke-note", "disease", "warning")]
    assert data["per_rule"]["baclofen.renal.mild"] == {"dose_changed": 2}
    assert data["per_rule"]["baclofen.t.stroke-note"] == {"findings_added": 1, "fires_added": 1}
    assert data["dose"]["changed"] == 2 and data["dose"]["start_lower"] == 2


@pytest.mark.slow  # four CLI runs, each putting two full packs through the gate
def test_diff_cli_text_and_json(packs: tuple[Path, Path]) -> None:
    old, new = packs
    runner = CliRunner()
    text = runner.invoke(app, ["diff", str(old), str(new), "--cohort", str(COHORT), "--backend", "reference"])
    assert text.exit_code == 0, text.output
    assert "cohort: 6 patients (2 invalid lines), 3 changed" in text.stdout
    assert "line 1 (p1-mild) baclofen: dose 10 mg/day (max 53) -> 5 mg/day (max 53)" in text.stdout
    assert "+disease/warning (baclofen.t.stroke-note)" in text.stdout
    assert f"{COHORT}:6: invalid request" in text.stderr
    as_json = runner.invoke(app, ["diff", str(old), str(new), "--cohort", str(COHORT), "--format", "json"])
    assert json.loads(as_json.stdout)["changed_patients"] == 3
    fail = runner.invoke(app, ["diff", str(old), str(new), "--cohort", str(COHORT), "--fail-on-change"])
    assert fail.exit_code == 1
    same = runner.invoke(app, ["diff", str(old), str(old), "--cohort", str(COHORT), "--fail-on-change"])
    assert same.exit_code == 0 and "0 changed" in same.stdout
