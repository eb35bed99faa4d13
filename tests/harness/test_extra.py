"""The harness's heavy libraries are an extra: the service installs and imports none of them.

``pip install cdsrules[harness]`` brings matplotlib, Dask and rich; ``make test`` installs it (the
dev extra includes it). A missing library is simulated by blocking its import, and the command
must then say in one line what to install and exit 2.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app
from tests.needs import REPO

HARNESS_ONLY = ("matplotlib", "dask", "rich")


def _name(requirement: str) -> str:
    return requirement.split(";")[0].split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip()


def test_harness_libraries_are_an_extra_that_dev_installs() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert not {_name(r) for r in project["dependencies"]} & set(HARNESS_ONLY)
    assert {_name(r) for r in project["optional-dependencies"]["harness"]} == set(HARNESS_ONLY)
    assert "cdsrules[harness]" in project["optional-dependencies"]["dev"]


def test_service_image_installs_the_project_without_extras() -> None:
    installs = [
        line for line in (REPO / "Dockerfile").read_text(encoding="utf-8").splitlines() if "pip install" in line
    ]
    assert any("-e /app" in line for line in installs)
    assert not any("[" in line for line in installs), installs


def test_the_service_and_the_cli_import_no_harness_library() -> None:
    probe = "import json, sys, engine.api.app, engine.cli; print(json.dumps(sorted(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO)
    top = {name.split(".")[0] for name in json.loads(loaded.stdout)}
    # rich is left out of this check: typer depends on it and may load it for its help output
    assert not {"matplotlib", "dask", "distributed"} & top


@pytest.mark.parametrize(
    ("blocked", "args", "command"),
    [
        ("matplotlib", [], "cohort"),
        ("rich", [], "cohort"),
        ("dask.distributed", ["--engine", "dask"], "cohort --engine dask"),
    ],
)
def test_cohort_without_the_extra_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blocked: str, args: list[str], command: str
) -> None:
    patients = tmp_path / "patients.jsonl"
    patients.write_text("", encoding="utf-8")
    for name in list(sys.modules):
        if name == blocked or name.startswith(blocked + "."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, blocked, None)  # `import blocked` now raises ImportError
    result = CliRunner().invoke(app, ["cohort", str(patients), "--report", str(tmp_path / "out"), *args])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines == [f"install cdsrules[harness] for `cdsrules {command}` ({blocked} is missing)"]
