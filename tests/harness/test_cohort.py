"""Cohort runs: statistics add up, the report is written, bad lines are named, the CLI exit code is honest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.harness.case import Checker
from engine.harness.cohort import (
    META_KEYS,
    Checks,
    CohortStats,
    Line,
    Runtime,
    _CohortLine,
    _parse_checked,
    evaluate_lines,
    parse_line,
    read_lines,
    run_inprocess,
)
from engine.harness.invariants import SINGLE_ANSWER
from engine.harness.rulemap import drug_map
from engine.harness.summary import needs_attention
from engine.runtime.engine import Engine
from schemas.api import EvaluateRequest, EvaluateResponse
from tests.harness.conftest import PACK

pytestmark = pytest.mark.slow  # `cdsrules synth` and `cdsrules cohort` end to end, reports included

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
    assert "Rule coverage" in text and "data:image/png;base64," in text and "not checked" not in text
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


CHECKED_ONLY = ("checks", "disagreements", "disagreement_count", "invariant_violations", "invariant_violation_examples")


@pytest.mark.parametrize(
    ("flags", "differential", "invariants"),
    [(["--no-differential", "--no-invariants"], False, False), (["--no-invariants"], True, False)],
)
def test_checks_can_be_switched_off_and_the_report_says_so(
    cli_run: tuple[Path, Path, Any],
    summary: dict[str, Any],
    tmp_path: Path,
    flags: list[str],
    differential: bool,
    invariants: bool,
) -> None:
    full = summary["results"]
    assert full["checks"] == {"differential": N, "invariants": N, "invariant_names": list(SINGLE_ANSWER)}
    assert full["disagreement_count"] == 0 and full["invariant_violations"] is not None
    assert summary["meta"]["checks"] == "full checks"

    result = CliRunner().invoke(app, ["cohort", str(cli_run[0]), "--report", str(tmp_path), *flags])
    assert result.exit_code in (0, 1), result.output
    fast = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    r = fast["results"]
    assert r["checks"]["differential"] == (N if differential else 0)
    assert r["checks"]["invariants"] == (N if invariants else 0) and r["checks"]["invariant_names"] == []
    assert r["invariant_violations"] is None and r["invariant_violation_examples"] == []
    assert (r["disagreement_count"] is None) is not differential
    assert any("safety invariants not run" in w for w in fast["warnings"])
    assert any("differential check not run" in w for w in fast["warnings"]) is not differential
    assert fast["meta"]["checks"] == ("differential check only" if differential else "evaluation only")
    assert fast["meta"]["checks"] in result.output
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert html.count("not checked") == 1 + (not differential)
    # the clinical statistics do not depend on which checks ran
    assert {k: v for k, v in r.items() if k not in CHECKED_ONLY} == {
        k: v for k, v in full.items() if k not in CHECKED_ONLY
    }


EDGE_LINES = [
    '{"patient": {"age_years": 40, "age_years": 50}, "drug": {"name": "baclofen"}}',  # duplicate key: last wins
    '{"patient": {"age_years": "40.5", "weight_kg": "80", "pregnant": "true"}, "drug": {"name": " baclofen "}}',
    '{"patient": {"pregnant": 1, "birth_date": "2000-01-01"}, "drug": {"rxcui": "1292", "action": "stop"}}',
    '{"patient": {"age_years": 40, "conditions": ["\\ud800", {"text": " MS "}]}, "drug": {"name": "baclofen"}}',
    '{"patient": {"age_years": 4e1, "egfr_ml_min_1_73m2": 9007199254740993}, "drug": {"name": "baclofen"}}',
    '{"id": 7, "source": ["a"], "notes": {"x": 1}, "patient": {}, "drug": {"name": "baclofen"}}',
    '{"id": null, "patient": {}, "drug": {"name": "baclofen", "ordered_dose": {"dose_mg": 5, "times_per_day": 3}}}',
    '{"patient": {"age_years": NaN}, "drug": {"name": "baclofen"}}',
    '{"patient": {"age_years": 1e400}, "drug": {"name": "baclofen"}}',
    '{"patient": {}, "drug": {"name": "baclofen", "ordered_dose": {"dose_mg": 10, "times_per_day": true}}}',
    '{"patient": {}, "drug": {"name": "baclofen"}, "extra": 1}',
    '[{"patient": {}, "drug": {"name": "baclofen"}}]',
    '{"patient": {}, "drug": {}}',
    '{"patient": {"age_years": 40}',
]


def test_fast_line_parsing_gives_the_checked_result(cli_run: tuple[Path, Path, Any]) -> None:
    """Lines validated straight from JSON give the request (and id, and error) the dict path gives."""
    assert set(_CohortLine.model_fields) == {"patient", "drug", *META_KEYS}
    lines = [*list(read_lines(cli_run[0]))[:200], *enumerate(EDGE_LINES, start=1000)]
    valid = 0
    for number, text in lines:
        fast, checked = parse_line("c/p.jsonl", number, text), _parse_checked("c/p.jsonl", number, text)
        assert fast[0] == checked[0] and fast[2] == checked[2], text
        if checked[1] is None:
            assert fast[1] is None, text
            continue
        valid += 1
        assert fast[1] is not None and type(fast[1]) is type(checked[1]), text
        assert fast[1] == checked[1], text
        assert fast[1].model_dump_json() == checked[1].model_dump_json(), text
        assert fast[1].model_fields_set == checked[1].model_fields_set == {"patient", "drug"}
    # 3 of the edge lines are valid requests (a duplicate key, extra metadata, an ordered dose); a
    # boolean sent as 1 or "true" is refused since booleans became strict (issue 16, D15)
    assert valid >= 200 + 3


class _MissesInteractions(Engine):
    """A durable engine whose answers lose every rule that can fire through a co-medication."""

    def evaluate(self, req: EvaluateRequest, decision_id: str | None = None) -> EvaluateResponse:
        resp = super().evaluate(req, decision_id)
        drop = {r.id for r in drug_map(PACK, resp.drug.name).reaching(("comed_classes", "comed_ingredients"))}
        return resp.model_copy(
            update={
                "trace": [t for t in resp.trace if t.rule_id not in drop],
                "findings": [f for f in resp.findings if f.rule_id not in drop],
            }
        )


def test_each_check_gives_the_same_result_alone_as_together(cli_run: tuple[Path, Path, Any]) -> None:
    """Full checks share work between the differential check and the invariants (one reference
    firing per patient); what they find must be what each check finds when it runs alone."""
    lines: list[Line] = list(read_lines(cli_run[0]))[:300]
    rt = Runtime.build(PACK)
    broken = _MissesInteractions(PACK)
    rt.checker = Checker(broken)
    try:
        together = evaluate_lines(rt, lines, "x").to_state()
        alone = evaluate_lines(rt, lines, "x", Checks(differential=False)).to_state()
        differential = evaluate_lines(rt, lines, "x", Checks(invariants=False)).to_state()
    finally:
        rt.close()
        broken.close()
    violations = together["counts"]["violations"]
    assert sum(n for k, n in violations.items() if k.startswith("interaction-flag|")) >= 10
    assert violations == alone["counts"]["violations"]
    assert together["lists"]["violation_examples"] == alone["lists"]["violation_examples"]
    assert len(together["lists"]["disagreements"]) >= 10
    assert together["lists"]["disagreements"] == differential["lists"]["disagreements"]
    assert together["counts"]["checks"] == {"differential": 300, "invariants": 300}
    assert alone["counts"]["checks"] == {"invariants": 300}
