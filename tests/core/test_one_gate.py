"""`cdsrules lint` and the server agree on every broken pack: one gate, one verdict.

Each fixture breaks a lean copy of the bundled pack in one way a rule author could. The same
directory then goes through `cdsrules lint` (exit code and codes printed), the server's start-up
(``build_state``) and a hot reload of a server that was serving the clean pack; all three must
refuse it with the same error codes, and all three must accept the clean pack.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.errors import RuleSetError
from engine.pipeline import Prepared, Stage, prepare_or_raise
from engine.runtime.registry import EngineRegistry
from engine.service.reloader import Reloader
from engine.service.state import build_state
from engine.settings import Settings
from tests.authoring.packs import INFO, lean_pack, rule, start, write

Breaker = Callable[[Path], None]


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"fixture out of date: {old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _bad_yaml(p: Path) -> None:
    (p / "baclofen" / "broken.yaml").write_text("drug: baclofen\nrules:\n  - id: [unclosed\n", encoding="utf-8")


def _schema(p: Path) -> None:
    write(p, rule("x", "[{age_years: {gte: 3}}]", INFO).replace("    title: Test rule x\n", ""))


def _unknown_field(p: Path) -> None:
    write(p, rule("x", "[{age_yaers: {gte: 3}}]", INFO))


def _unknown_class(p: Path) -> None:
    write(p, rule("x", "[{comed_classes: {includes: no-such-class}}]", INFO))


def _failing_example(p: Path) -> None:
    _replace(p / "baclofen" / "drug.yaml", "start_total_daily_mg: 15", "start_total_daily_mg: 20")


def _overlapping_bands(p: Path) -> None:
    write(
        p,
        rule("mid", "[{crcl_ml_min: {gte: 30, lte: 50}}]", start(5)),
        rule("high", "[{crcl_ml_min: {gte: 50, lte: 80}}]", start(5, 2)),
    )


def _durable_limit(p: Path) -> None:
    write(p, *(rule(f"r{i}", "[{weight_kg: {gte: 500}}]", INFO) for i in range(210)))


def _no_profile(p: Path) -> None:
    (p / "tizanidine").mkdir()
    (p / "tizanidine" / "x.yaml").write_text(
        "drug: tizanidine\nrules:\n"
        + rule("x", "[{age_years: {gte: 3}}]", INFO).replace("baclofen.t.x", "tizanidine.t.x"),
        encoding="utf-8",
    )


BROKEN: dict[str, tuple[Breaker, set[str]]] = {
    "bad-yaml": (_bad_yaml, {"E001"}),
    "schema": (_schema, {"E002"}),
    "unknown-field": (_unknown_field, {"E201"}),
    "unknown-class": (_unknown_class, {"E204"}),
    "failing-example": (_failing_example, {"E503"}),
    "overlapping-bands": (_overlapping_bands, {"E601"}),
    "durable-limit": (_durable_limit, {"E401"}),
    "no-profile": (_no_profile, {"E303"}),
}


def _lint(root: Path) -> tuple[int, set[str]]:
    result = CliRunner().invoke(app, ["lint", str(root), "--format", "json"])
    rows = json.loads(result.stdout[result.stdout.index("[") :])
    return result.exit_code, {r["code"] for r in rows if r["severity"] == "error"}


def _startup(root: Path, tmp: Path) -> set[str]:
    settings = Settings(rules_dir=root, database_url=f"sqlite:///{tmp}/startup.db")
    try:
        state = build_state(settings, migrate=False)
    except RuleSetError as exc:
        return {p.code for p in exc.problems}
    state.close()
    return set()


@pytest.fixture(scope="module")
def clean_reloader(tmp_path_factory: pytest.TempPathFactory) -> Reloader:
    root = lean_pack(tmp_path_factory.mktemp("serving"))
    prepared = prepare_or_raise(root)
    return Reloader(EngineRegistry(prepared.engine), prepared)


def _reload(reloader: Reloader, root: Path) -> set[str]:
    """Hot reload the serving pack's directory into the state of ``root``, then back to clean."""
    reloader.root = root
    result = reloader.reload("admin")
    return {p.code for p in result.problems if p.severity == "error"} if result.outcome == "rejected" else set()


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_lint_start_up_and_reload_refuse_the_same_broken_pack(
    name: str, tmp_path: Path, clean_reloader: Reloader
) -> None:
    breaker, expected = BROKEN[name]
    root = lean_pack(tmp_path)
    breaker(root)
    exit_code, lint_codes = _lint(root)
    startup_codes = _startup(root, tmp_path)
    reload_codes = _reload(clean_reloader, root)
    assert exit_code == 1, f"lint passed a pack the server refuses ({name})"
    assert expected <= lint_codes, (name, lint_codes)
    assert lint_codes == startup_codes == reload_codes, (lint_codes, startup_codes, reload_codes)
    assert clean_reloader.registry.current.pack.digest == clean_reloader.serving.digest  # old pack still serving


def test_all_three_accept_the_clean_pack(tmp_path: Path) -> None:
    root = lean_pack(tmp_path)
    exit_code, lint_codes = _lint(root)
    assert (exit_code, lint_codes) == (0, set())
    assert _startup(root, tmp_path) == set()


def test_a_missing_directory_is_refused_by_lint_and_start_up(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    exit_code, codes = _lint(missing)
    assert exit_code == 1 and codes == {"E004"}
    assert _startup(missing, tmp_path) == {"E004"}


def test_every_stage_is_timed_in_order(tmp_path: Path) -> None:
    prepared = prepare_or_raise(lean_pack(tmp_path))
    try:
        assert isinstance(prepared, Prepared)
        assert [t.stage for t in prepared.timings] == list(Stage)
        assert all(t.ran and t.seconds >= 0 for t in prepared.timings)
        assert prepared.examples and all(r.passed for r in prepared.examples)
    finally:
        prepared.close()


def test_lint_prints_stage_timings(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["lint", str(lean_pack(tmp_path)), "--timings"])
    assert result.exit_code == 0, result.output
    for stage in Stage:
        assert re.search(rf"^\s+{re.escape(stage.value)}\s+[0-9.]+ ms", result.output, re.M), stage
