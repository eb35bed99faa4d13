"""The developer loop is real: every Makefile target does something, the hooks need no download.

``make lint`` once printed "Nothing to be done" because the target had no recipe; ``make -n``
prints the commands a target would run without running them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.needs import REPO, unavailable


def _dry_run(target: str) -> str:
    if shutil.which("make") is None:
        unavailable("make is not installed")
    proc = subprocess.run(["make", "-n", target], cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _phony() -> list[str]:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    found = re.search(r"^\.PHONY:(.*)$", text, re.M)
    assert found is not None
    return found.group(1).split()


@pytest.mark.parametrize("target", [t for t in _phony() if t not in ("run", "bench", "clean", "schema")])
def test_every_check_target_runs_something(target: str) -> None:
    assert "Nothing to be done" not in _dry_run(target)
    assert _dry_run(target).strip()


def test_check_is_the_static_checks_and_the_fast_tests() -> None:
    out = _dry_run("check")
    for step in ("ruff check", "ruff format --check", "mypy", "cdsrules lint rules"):
        assert step in out, step
    assert re.search(r"pytest -m \"not slow and not integration\" -x", out), out
    full = _dry_run("test")
    assert "cdsrules test" not in full and "cdsrules lint" not in full, "the examples run in pytest's gate only"
    assert "pytest -n" in full and "-m" not in full.split("pytest", 1)[1], "make test runs every test"


def test_pre_commit_hooks_are_local_and_run_the_venv() -> None:
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    assert [r["repo"] for r in config["repos"]] == ["local"], "a remote hook repository is fetched on first use"
    hooks = {h["id"]: h for r in config["repos"] for h in r["hooks"]}
    assert {"ruff", "ruff-format", "check-yaml", "cdsrules-lint"} <= set(hooks)
    for hook in hooks.values():
        assert hook["entry"].startswith(".venv/bin/"), hook
        tool = hook["entry"].split()[0].removeprefix(".venv/bin/")
        assert Path(sys.executable).with_name(tool).exists(), f"{tool}: not installed by the dev extra"
    assert hooks["check-yaml"]["files"].startswith("^rules/") and hooks["cdsrules-lint"]["files"] == "^rules/"
