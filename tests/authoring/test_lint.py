"""Every clinical-logic lint code fires, located, on a rule file written to trigger it, and not on good bands."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.compiler.lint import HINTS
from engine.compiler.model import CompiledPack
from engine.errors import RuleProblem
from engine.pipeline import Prepared, prepare
from tests.authoring.packs import INFO, lean_pack, line_of, rule, start, write
from tests.conftest import REPO

WBS = "{dose: {weight_based_start: {mg_per_kg_day: %s, times_per_day: 3%s}}}"


@pytest.fixture
def pack_dir(tmp_path: Path) -> Path:
    return lean_pack(tmp_path)


def check_pack(root: Path) -> tuple[CompiledPack | None, list[RuleProblem]]:
    """The gate's verdict: the pack when the server would serve it, and every problem."""
    result = prepare(root)
    if isinstance(result, Prepared):
        result.close()
        return result.pack, list(result.problems)
    return None, list(result.problems)


def _lint(pack_dir: Path, code: str) -> tuple[bool, list[str]]:
    """(did the pack load, the located problems with this code)."""
    pack, problems = check_pack(pack_dir)
    hits = [str(p) for p in problems if p.code == code]
    for p in problems:
        if p.code == code:
            assert p.hint == HINTS.get(code, p.hint) and p.hint, f"{code} needs a hint"
            assert p.severity == ("warning" if code.startswith("W") else "error")
    return pack is not None, hits


def _has(hits: list[str], index: int, code: str, fragment: str) -> bool:
    prefix = f"rules/baclofen/t.yaml:{line_of(index)}: {code}: "
    return any(h.startswith(prefix) and fragment in h for h in hits)


def test_e601_overlapping_bands(pack_dir: Path) -> None:
    write(
        pack_dir,
        rule("low", "[{crcl_ml_min: {lt: 30}}]", start(2.5)),
        rule("mid", "[{crcl_ml_min: {gte: 30, lte: 50}}]", start(5)),
        rule("high", "[{crcl_ml_min: {gte: 50, lte: 80}}]", start(5, 2)),
    )
    loaded, hits = _lint(pack_dir, "E601")
    assert not loaded
    assert _has(hits, 2, "E601", "baclofen.t.high (50 ≤ x ≤ 80) and baclofen.t.mid"), hits
    assert _has(hits, 2, "E601", "both apply to x = 50"), hits
    assert len(hits) == 1, hits  # low and mid meet at 30 without sharing it


def test_nested_and_adjacent_bands_are_fine(pack_dir: Path) -> None:
    write(
        pack_dir,
        rule("older", "[{age_group: older-adult}]", start(5)),  # inside the adult start (age >= 12)
        rule("low", "[{crcl_ml_min: {lt: 30}}]", start(2.5)),
        rule("mid", "[{crcl_ml_min: {gte: 30, lt: 50}}]", start(5)),
        rule("unknown", "[{crcl_ml_min: {known: false}}]", start(2.5)),
    )
    pack, problems = check_pack(pack_dir)
    bad = [str(p) for p in problems if p.code in ("E601", "E602", "E603", "W603")]
    assert pack is not None and not bad, bad


def test_e602_same_band_two_doses(pack_dir: Path) -> None:
    write(
        pack_dir,
        rule("a", "[{crcl_ml_min: {lt: 30}}]", start(2.5, 2)),
        rule("b", "[{crcl_ml_min: {lt: 30}}]", start(5)),
    )
    loaded, hits = _lint(pack_dir, "E602")
    assert not loaded
    assert _has(hits, 1, "E602", "adjust the same creatinine clearance (mL/min) band (0 ≤ x < 30)"), hits
    assert _has(hits, 1, "E602", "start 5 mg x1 vs 2.5 mg x2"), hits


def test_e603_gap_below_the_lowest_renal_band(pack_dir: Path) -> None:
    write(
        pack_dir,
        rule("moderate", "[{crcl_ml_min: {gte: 30, lt: 50}}]", start(2.5, 3)),
        rule("mild", "[{crcl_ml_min: {gte: 50, lte: 80}}]", start(5, 2)),
    )
    loaded, hits = _lint(pack_dir, "E603")
    assert not loaded
    assert _has(hits, 0, "E603", "bands leave 0 ≤ x < 30 uncovered"), hits


def test_e603_gap_between_bands_and_missing_dialysis(pack_dir: Path) -> None:
    write(
        pack_dir,
        rule("severe", "[{renal_ml_min: {lt: 30}}]", start(2.5)),
        rule("mild", "[{renal_ml_min: {gte: 50, lte: 80}}]", start(5, 2)),
        rule("unknown", "[{renal_band: unknown}]", start(2.5)),
    )
    loaded, hits = _lint(pack_dir, "E603")
    assert not loaded
    assert _has(hits, 1, "E603", "leave 30 ≤ x < 50 uncovered"), hits
    assert any("no rule speaks to patients on dialysis" in h for h in hits), hits


def test_e603_hepatic_classes_skipped(pack_dir: Path) -> None:
    write(
        pack_dir,
        rule("mild", "[{hepatic_impairment: mild}]", start(2.5)),
        rule("severe", "[{hepatic_impairment: severe}]", "{dose: {withhold: true}}"),
        rule("unknown", "[{hepatic_impairment: unknown}]", start(2.5)),
    )
    loaded, hits = _lint(pack_dir, "E603")
    assert not loaded
    assert _has(hits, 0, "E603", "cover mild, severe but not moderate"), hits


@pytest.mark.parametrize(
    ("when", "fragment"),
    [
        ("[{age_years: {gte: 65}}, {age_years: {lt: 18}}]", "age_years < 18 contradicts age_years ≥ 65"),
        (
            "[{age_group: older-adult}, {age_years: {lt: 18}}]",
            "age_years ≥ 65 (from age_group: older-adult) contradicts age_years < 18",
        ),
        ("[{weight_kg: {gt: 10, lt: 5}}]", "weight_kg < 5 contradicts weight_kg > 10"),
        ("[{conditions: {includes: stroke}}, {conditions: {excludes: stroke}}]", "excludes stroke contradicts"),
        ("[{renal_band: severe}, {on_dialysis: true}]", "contradicts on_dialysis = true"),
        ("[{weight_kg: {known: false}}, {weight_kg: {gte: 3}}]", "weight_kg ≥ 3 contradicts weight_kg not known"),
    ],
)
def test_e604_rule_that_can_never_fire(pack_dir: Path, when: str, fragment: str) -> None:
    write(pack_dir, rule("never", when, INFO))
    loaded, hits = _lint(pack_dir, "E604")
    assert not loaded
    assert _has(hits, 0, "E604", "baclofen.t.never can never fire: "), hits
    assert any(fragment in h for h in hits), hits


def test_e604_satisfiable_any_of_is_fine(pack_dir: Path) -> None:
    write(pack_dir, rule("ok", "[{age_years: {lt: 18}}, {any_of: [{age_years: {gte: 65}}, {sex: female}]}]", INFO))
    _, hits = _lint(pack_dir, "E604")
    assert not hits


def test_e605_dose_above_labelled_maximum(pack_dir: Path) -> None:
    write(
        pack_dir,
        rule("big", "[{conditions: {includes: stroke}}]", start(50, 2)),
        rule("cap", "[{conditions: {includes: stroke}}]", "{dose: {max_daily_mg: 120}}"),
        rule("perkg", "[{age_years: {lt: 12}}]", WBS % (1, "")),
        rule("capped", "[{age_years: {lt: 12}}]", WBS % (1, ", max_dose_mg: 5")),
    )
    loaded, hits = _lint(pack_dir, "E605")
    assert not loaded
    assert _has(hits, 0, "E605", "start 50 mg x2 = 100 mg/day, above baclofen's labelled maximum of 80 mg/day"), hits
    assert _has(hits, 1, "E605", "max_daily_mg 120"), hits
    assert _has(hits, 2, "E605", "weight-based start 1 mg/kg/day gives 150 mg/day at 150 kg"), hits
    assert not any(f":{line_of(3)}: " in h for h in hits), "a 5 mg x3 cap keeps 15 mg/day below 80"


def test_e606_weight_based_start_without_guard(pack_dir: Path) -> None:
    write(
        pack_dir,
        rule("wbs", "[{conditions: {includes: stroke}}]", WBS % (0.1, ", max_dose_mg: 2")),
        rule("child", "[{age_group: pediatric}]", WBS % (0.1, ", max_dose_mg: 2")),
        rule("light", "[{weight_kg: {lt: 30}}]", WBS % (0.1, ", max_dose_mg: 2")),
    )
    loaded, hits = _lint(pack_dir, "E606")
    assert not loaded
    assert _has(hits, 0, "E606", "baclofen.t.wbs gives a weight-based start without an age limit"), hits
    assert len(hits) == 1, hits


def test_e607_critical_finding_needs_url_and_section(pack_dir: Path) -> None:
    critical = "{finding: {category: disease, severity: critical, summary: test summary, detail: test detail}}"
    located = '[{label: Label, section: "4", url: "https://example.org/label"}]'
    write(
        pack_dir,
        rule("vague", "[{conditions: {includes: stroke}}]", critical),
        rule("cited", "[{conditions: {includes: seizure-disorder}}]", critical, sources=located),
    )
    loaded, hits = _lint(pack_dir, "E607")
    assert not loaded
    assert _has(hits, 0, "E607", "none of its sources has both a url and a section"), hits
    assert len(hits) == 1, hits


def test_w601_rule_no_example_fires_is_a_warning(pack_dir: Path) -> None:
    write(pack_dir, rule("lonely", "[{conditions: {includes: stroke}}]", INFO))
    loaded, hits = _lint(pack_dir, "W601")
    assert loaded, "a warning does not stop the pack loading"
    assert _has(hits, 0, "W601", "baclofen.t.lonely fires in none of the pack's examples"), hits
    assert not any("baclofen.dose.adult-start " in h for h in hits), "drug.yaml's examples fire the adult start"


def test_w602_pediatric_finding_without_guard(pack_dir: Path) -> None:
    peds = "{finding: {category: pediatric, severity: info, summary: test summary, detail: test detail}}"
    write(
        pack_dir,
        rule("peds", "[{conditions: {includes: stroke}}]", peds),
        rule("guarded", "[{age_years: {lt: 12}}]", peds),
    )
    loaded, hits = _lint(pack_dir, "W602")
    assert loaded
    assert _has(hits, 0, "W602", "tests neither age nor weight"), hits
    assert len(hits) == 1, hits


def test_w603_a_missing_value_rule_may_have_other_conditions(pack_dir: Path) -> None:
    write(
        pack_dir,
        rule("light", "[{weight_kg: {lt: 50}}]", start(2.5)),
        rule("nokg", "[{weight_kg: {known: false}}, {conditions: {excludes: stroke}}]", INFO),
    )
    _, hits = _lint(pack_dir, "W603")
    assert not hits, hits


def test_w603_dose_band_without_a_missing_value_rule(pack_dir: Path) -> None:
    write(pack_dir, rule("light", "[{weight_kg: {lt: 50}}]", start(2.5)))
    loaded, hits = _lint(pack_dir, "W603")
    assert loaded
    assert _has(hits, 0, "W603", "dose depends on weight (kg) (baclofen.t.light) but no rule says"), hits


def test_bundled_pack_has_no_lint_errors(prepared: Prepared) -> None:
    # the session's pack came through the gate (prepare_or_raise), which refuses any error
    errors = [str(p) for p in prepared.problems if p.severity == "error"]
    assert prepared.pack.digest and not errors, errors


def test_cli_json_and_strict(pack_dir: Path) -> None:
    write(pack_dir, rule("lonely", "[{conditions: {includes: stroke}}]", INFO))
    runner = CliRunner()
    relaxed = runner.invoke(app, ["lint", str(pack_dir), "--format", "json"])
    assert relaxed.exit_code == 0, relaxed.output
    rows = json.loads(relaxed.stdout)
    row = next(r for r in rows if r["code"] == "W601" and "baclofen.t.lonely" in r["message"])
    assert row["file"] == "rules/baclofen/t.yaml" and row["line"] == 3 and row["severity"] == "warning"
    assert row["hint"] == HINTS["W601"]
    strict = runner.invoke(app, ["lint", str(pack_dir), "--format", "json", "--strict"])
    assert strict.exit_code == 1


def test_cli_text_prints_how_to_fix(pack_dir: Path) -> None:
    write(pack_dir, rule("big", "[{conditions: {includes: stroke}}]", start(50, 2)))
    result = CliRunner().invoke(app, ["lint", str(pack_dir)])
    assert result.exit_code == 1
    assert "rules/baclofen/t.yaml:3: E605: baclofen.t.big: start 50 mg x2" in result.stdout
    assert f"    how to fix: {HINTS['E605']}" in result.stdout


def test_every_lint_code_is_documented_and_tested() -> None:
    used: set[str] = set()
    for path in (REPO / "engine").rglob("*.py"):
        used |= set(re.findall(r'"([EW]\d{3})"', path.read_text(encoding="utf-8")))
    documented = set(re.findall(r"^## ([EW]\d{3})$", (REPO / "docs" / "errors.md").read_text(), re.M))
    assert used <= documented, f"undocumented: {sorted(used - documented)}"
    tested = set(re.findall(r"test_([ew]6\d\d)_", Path(__file__).read_text()))
    assert {c.lower() for c in HINTS} <= tested, f"untested: {sorted({c.lower() for c in HINTS} - tested)}"
