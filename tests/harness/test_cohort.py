"""Cohort runs: statistics add up, the report is written, bad lines are named, the CLI exit code is honest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.harness.cohort import CohortStats, Line, read_lines, run_inprocess
from engine.harness.summary import needs_attention
from tests.harness.conftest import PACK

N = 400


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Any]:
    """`cdsrules synth` then `cdsrules cohort`, as a user would run them from a fresh clone."""
    tmp = tmp_path_factory.mktemp("cohort")
    runner = CliRunner()
    patients = tmp / "patients.jsonl"
    made = runner.invoke(app, ["synth", "--n", str(N), "--seed", "3", "--out", str(patients)])
    assert made.exit_code == 0, made.output
    result = runner.invoke(app, ["cohort", str(patients), "--report", str(tmp / "out")])
    return patients, tmp / "out", result


@pytest.fixture(scope="module")
def summary(cli_run: tuple[Path, Path, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads((cli_run[1] / "summary.json").read_text(encoding="utf-8"))
    return summary


def test_statistics_add_up(summary: dict[str, Any]) -> None:
    r = summary["results"]
    assert r["patients"] == N and r["evaluated"] == N
    orders = sum(sum(d["orders"].values()) for d in r["drugs"].values())
    starts = sum(d["orders"]["start"] for d in r["drugs"].values())
    assert orders == N
    assert sum(row["n"] for d in r["drugs"].values() for row in d["start_doses"]) == starts
    fires = {rule["rule_id"]: rule["fires"] for rules in r["rules"]["by_drug"].values() for rule in rules}
    assert set(fires) == set(PACK.rules)
    assert fires["shared.age-group.adult"] + fires["shared.age-group.older-adult"] > N / 2
    assert r["rules"]["fired"] + len(r["rules"]["never_fired"]) == len(PACK.rules)
    assert r["disagreement_count"] == 0


def test_never_fired_rules_are_a_warning(summary: dict[str, Any]) -> None:
    never = summary["results"]["rules"]["never_fired"]
    assert never, "400 patients cannot reach every rule"
    assert any("never fired" in w for w in summary["warnings"])


def test_partial_statistics_merge_in_any_order(cli_run: tuple[Path, Path, Any]) -> None:
    lines: list[Line] = list(read_lines(cli_run[0]))[:90]
    whole = run_inprocess(PACK, lines, "x").to_state()
    parts = [run_inprocess(PACK, lines[i : i + 30], "x") for i in (60, 0, 30)]
    merged = CohortStats()
    for part in parts:
        merged.merge(CohortStats.from_state(part.to_state()))
    assert merged.to_state() == whole


def test_report_files(summary: dict[str, Any], cli_run: tuple[Path, Path, Any]) -> None:
    out = cli_run[1]
    text = (out / "report.html").read_text(encoding="utf-8")
    assert "Rule coverage" in text and "data:image/png;base64," in text
    assert summary["results"]["rules"]["never_fired"][0] in text
    pngs = sorted((out / "img").glob("*.png"))
    assert len(pngs) >= 4
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000 for p in pngs)
    assert summary["meta"]["ruleset"]["digest"] == PACK.digest and summary["meta"]["engine"] == "inprocess"


def test_bad_lines_are_named_by_file_line_and_pointer(tmp_path: Path) -> None:
    good = {"patient": {"age_years": 40, "sex": "male", "egfr_ml_min_1_73m2": 90}, "drug": {"name": "baclofen"}}
    lines = [
        json.dumps({"id": "ok", **good}),
        "{not json",
        json.dumps({"id": "heavy", "patient": {"age_years": 40, "weight_kg": 900}, "drug": {"name": "baclofen"}}),
        json.dumps({"id": "who", "patient": {"age_years": 40}, "drug": {"name": "aspirin"}}),
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["cohort", str(path), "--report", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    s = json.loads((tmp_path / "out" / "summary.json").read_text())["results"]
    assert s["evaluated"] == 1 and s["input_errors"] == 2 and s["evaluation_errors"] == 1
    errors = {e["id"]: e["error"] for e in s["input_error_examples"] + s["evaluation_error_examples"]}
    assert errors["mixed.jsonl:2"].startswith(f"{path}:2: not JSON")
    assert errors["heavy"].startswith(f"{path}:3: /patient/weight_kg:")
    assert "aspirin" in errors["who"]


def test_cli_exit_code_follows_the_summary(summary: dict[str, Any], cli_run: tuple[Path, Path, Any]) -> None:
    result = cli_run[2]
    assert result.exit_code == (1 if needs_attention(summary) else 0), result.output
    assert f"{N} of {N} patients evaluated" in result.output


def test_progress_is_reported_per_chunk(cli_run: tuple[Path, Path, Any]) -> None:
    lines: list[Line] = list(read_lines(cli_run[0]))[:130]
    done: list[int] = []
    run_inprocess(PACK, lines, "x", done.append, chunk=50)
    assert done == [50, 50, 30]
