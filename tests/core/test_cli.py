"""The rule-author command line: lint, test, eval, schema - exit codes and messages."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.schema_export import rule_file_schema
from engine.settings import BUNDLED_RULES
from tests.authoring.packs import lean_pack
from tests.conftest import REPO

runner = CliRunner()


@pytest.fixture
def pack_dir(tmp_path: Path) -> Path:
    """The lean pack plus baclofen's renal rules and their examples (the bundled pack is linted by make)."""
    dest = lean_pack(tmp_path)
    shutil.copy(BUNDLED_RULES / "baclofen" / "renal.yaml", dest / "baclofen" / "renal.yaml")
    return dest


def test_lint_clean_pack_exits_zero(pack_dir: Path) -> None:
    result = runner.invoke(app, ["lint", str(pack_dir)])
    assert result.exit_code == 0, result.output
    assert "lint ok: 0 error(s)" in result.output


def test_lint_broken_pack_prints_file_line_and_exits_one(pack_dir: Path) -> None:
    path = pack_dir / "baclofen" / "drug.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("age_years: {gte: 12}", "age_yrs: {gte: 12}"))
    result = runner.invoke(app, ["lint", str(pack_dir)])
    assert result.exit_code == 1
    assert "rules/baclofen/drug.yaml:" in result.output and "E201: unknown field 'age_yrs'" in result.output


def test_lint_json_format(pack_dir: Path) -> None:
    (pack_dir / "baclofen" / "x.yaml").write_text("drug: baclofen\nrules: 3\n", encoding="utf-8")
    result = runner.invoke(app, ["lint", str(pack_dir), "--format", "json"])
    assert result.exit_code == 1
    rows = json.loads(result.stdout)
    assert rows and rows[0]["file"] == "rules/baclofen/x.yaml" and rows[0]["line"] == 2


def test_test_command_reports_failing_example_at_its_line(pack_dir: Path) -> None:
    path = pack_dir / "baclofen" / "renal.yaml"
    text = path.read_text(encoding="utf-8").replace(
        "dose: {start_total_daily_mg: 7.5, max_daily_mg: 40}", "dose: {start_total_daily_mg: 9}"
    )
    path.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["test", str(pack_dir)])
    assert result.exit_code == 1
    assert "FAIL rules/baclofen/renal.yaml:" in result.output
    assert "start 7.5 mg/day, expected 9" in result.output


def test_test_command_fails_with_no_examples(pack_dir: Path) -> None:
    for path in pack_dir.rglob("*.yaml"):
        if path.parent.name in ("terminology",) or path.name == "pack.yaml":
            continue
        text = path.read_text(encoding="utf-8")
        if "\nexamples:" in text:
            path.write_text(text.split("\nexamples:")[0] + "\n", encoding="utf-8")
    result = runner.invoke(app, ["test", str(pack_dir)])
    assert result.exit_code == 1
    assert "no examples found" in result.output


def test_eval_prints_the_api_answer(tmp_path: Path) -> None:
    req = {
        "patient": {"age_years": 58, "sex": "male", "weight_kg": 72, "serum_creatinine_mg_dl": 2.0},
        "drug": {"name": "baclofen"},
    }
    path = tmp_path / "req.json"
    path.write_text(json.dumps(req), encoding="utf-8")
    result = runner.invoke(app, ["eval", str(path)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["dose"]["start"]["total_daily_mg"] == 7.5


def test_eval_bad_input_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "req.json"
    path.write_text(json.dumps({"patient": {"age_years": 300}, "drug": {"name": "baclofen"}}), encoding="utf-8")
    result = runner.invoke(app, ["eval", str(path)])
    assert result.exit_code == 2
    assert "/patient/age_years" in result.output


def test_committed_json_schema_matches_the_models() -> None:
    committed = json.loads((REPO / "schemas" / "rule-file.schema.json").read_text(encoding="utf-8"))
    assert committed == rule_file_schema(BUNDLED_RULES), "run `make schema` and commit schemas/rule-file.schema.json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.integration
def test_serve_answers_over_http(tmp_path: Path) -> None:
    port = _free_port()
    env = {"CDSRULES_DATABASE_URL": f"sqlite:///{tmp_path}/a.db", "PATH": str(Path(sys.executable).parent)}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "cdsrules"), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        body = {
            "patient": {"age_years": 34, "sex": "female", "weight_kg": 64, "egfr_ml_min_1_73m2": 112},
            "drug": {"name": "baclofen"},
        }
        resp = httpx.post(f"{url}/v1/evaluate", json=body, timeout=10)
        assert resp.status_code == 200, resp.text
        assert resp.json()["dose"]["start"]["total_daily_mg"] == 15
    finally:
        proc.terminate()
        proc.wait(timeout=20)
