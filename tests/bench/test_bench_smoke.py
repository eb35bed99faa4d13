"""``make bench`` still works: ``python -m bench.run --quick`` runs all five areas and writes them.

No timing is asserted here (CONTRIBUTING.md: speed lives in ``bench/``); the numbers of a quick run
are too small to mean anything. What is checked is that every section measured something real:
answered HTTP requests on every endpoint, evaluations counted in the memory soak, every synthetic
patient evaluated by the cohort command, and a verdict for every target of issue 8.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

SECTIONS = ("engine", "scaling", "http", "memory", "cohort", "terminology")


@pytest.mark.slow
@pytest.mark.integration  # real servers and worker processes
def test_quick_bench_writes_every_section(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text(encoding="utf-8"))
    assert all(s in r for s in SECTIONS)
    assert r["machine"]["nproc"] and r["machine"]["packages"]["durable-rules"] == "2.0.28"

    warm = r["engine"]["warm"]
    assert warm["evaluate_durable"]["wall_us"]["n"] == r["plan"]["engine_n"]
    assert warm["evaluate_reference"]["wall_us"]["n"] == r["plan"]["engine_n"]
    assert [row["co_medications"] for row in r["scaling"]["by_co_medications"]] == [0, 5, 20, 50]
    rules = [row["rules_in_ruleset"] for row in r["scaling"]["by_rules"]]
    assert rules[-1] == 10 * rules[0]

    endpoints = {(run["endpoint"], run["mode"]) for run in r["http"]["runs"]}
    assert endpoints == {(e, m) for e in ("healthz", "evaluate", "cds_order_select") for m in ("rate", "closed")}
    for run in r["http"]["runs"]:
        assert run["completed"] > 0, run
        # a slow shared machine may time a request out; an HTTP error or a refused connection is a bug
        assert set(run["error_kinds"]) <= {"timeout", "unfinished"}, run["error_kinds"]

    assert r["memory"]["samples"][-1]["evaluations"] == r["memory"]["evaluations"] == r["plan"]["memory_evaluations"]
    cohort = r["cohort"]
    for run in cohort["runs"].values():
        assert run["evaluated"] == run["patients"] == cohort["patients"], run
    assert {run for run in cohort["runs"]} == {"inprocess", "dask"}

    term = r["terminology"]
    assert set(term["lookup"]) == {"readme", "code_only_20", "free_text_20"}
    assert term["load"]["file_mb"] > 0 and term["compile_with_import"]["digest"] != term["compile_bundled"]["digest"]

    assert {t["area"] for t in r["targets"]} == set(SECTIONS) - {"scaling"}
    assert all(t["met"] is not None for t in r["targets"])
    assert "targets" in proc.stdout
