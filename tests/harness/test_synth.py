"""Synthetic patients are reproducible, plausible, and mean what their Truth says they mean."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.harness import population as pop
from engine.harness.describe import describe
from engine.harness.physiology import child_medians, creatinine_for_egfr
from engine.harness.synth import Generator, SynthPatient, write_jsonl
from engine.runtime.engine import Engine
from engine.runtime.renal import bedside_schwartz, ckd_epi_2021
from tests.harness.conftest import DRUGS, PACK

N = 3000


@pytest.fixture(scope="module")
def patients() -> list[SynthPatient]:
    return list(Generator(PACK, 11).cohort(N))


def test_same_seed_same_patients_and_prefix_property() -> None:
    a = [p.record() for p in Generator(PACK, 7).cohort(60)]
    b = [p.record() for p in Generator(PACK, 7).cohort(30)]
    c = [p.record() for p in Generator(PACK, 8).cohort(60)]
    assert a[:30] == b
    assert a == [p.record() for p in Generator(PACK, 7).cohort(60)]
    assert sum(x != y for x, y in zip(a, c, strict=True)) > 50
    assert Generator(PACK, 7).patient(42).record() == a[42]


def test_synth_command_writes_the_same_file_as_the_generator(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["synth", "--n", "200", "--seed", "7", "--out", str(tmp_path / "a.jsonl")])
    assert result.exit_code == 0, result.output
    write_jsonl(Generator(PACK, 7).cohort(200), tmp_path / "b.jsonl")
    first = (tmp_path / "a.jsonl").read_bytes()
    assert first == (tmp_path / "b.jsonl").read_bytes()
    assert first.count(b"\n") == 200


def test_ages_sexes_and_pregnancy_are_plausible(patients: list[SynthPatient]) -> None:
    for sp in patients:
        p = sp.request.patient
        assert p.age_years is None or 2 <= p.age_years <= 100
        if p.pregnant:
            assert p.sex == "female" and p.age_years is not None and 12 <= p.age_years < 51, sp.id
        if p.breastfeeding:
            assert p.sex == "female" and not p.pregnant, sp.id
        if "pregnancy" in sp.truth.conditions:
            assert p.sex == "female", sp.id


def test_weights_and_heights_fit_age_and_sex(patients: list[SynthPatient]) -> None:
    for sp in patients:
        p = sp.request.patient
        if p.age_years is None or p.weight_kg is None:
            continue
        if p.age_years < 18:
            median = child_medians(p.age_years, p.sex if p.sex in ("male", "female") else "female").weight_kg
            assert 0.45 * median <= p.weight_kg <= 2.2 * median, sp.id
        elif p.height_cm is not None:
            bmi = p.weight_kg / (p.height_cm / 100) ** 2
            assert 12 <= bmi <= 75, sp.id


def test_creatinine_and_egfr_agree(patients: list[SynthPatient]) -> None:
    checked = 0
    for sp in patients:
        p = sp.request.patient
        scr, egfr, age = p.creatinine_mg_dl(), p.egfr_ml_min_1_73m2, p.age_years
        if scr is None or egfr is None or age is None or p.serum_creatinine_umol_l is not None:
            continue
        if age >= 18:
            assert round(ckd_epi_2021(age, scr, p.sex != "male")) == egfr, sp.id
        elif p.height_cm is not None:
            assert round(bedside_schwartz(p.height_cm, scr)) == egfr, sp.id
        checked += 1
    assert checked > N // 4


def test_ckd_epi_inversion_round_trips() -> None:
    for age in (20, 45, 70, 95):
        for female in (True, False):
            for egfr in (5, 14.9, 30, 59.9, 60, 90, 120):
                assert abs(ckd_epi_2021(age, creatinine_for_egfr(egfr, age, female), female) - egfr) < 1e-6


def test_dialysis_only_with_stage_5_kidneys(patients: list[SynthPatient]) -> None:
    on = [sp for sp in patients if sp.request.patient.on_dialysis]
    assert on, "expected some dialysis patients in 3000"
    for sp in on:
        egfr = sp.request.patient.egfr_ml_min_1_73m2
        assert egfr is None or egfr < 16, sp.id


def test_the_engine_recognises_exactly_what_was_drawn(patients: list[SynthPatient]) -> None:
    engine = Engine(PACK, backend="reference")
    uncoded = set(pop.UNCODED_CONDITIONS) | set(pop.BACKGROUND_MEDS) | set(pop.ALLERGY_UNKNOWN)
    term = PACK.terminology
    for sp in patients[:800]:
        drug, pf = engine.facts(sp.request)
        assert drug == sp.truth.ordered
        assert set(pf.fact["comed_ingredients"]) == set(sp.truth.comed_ingredients - {drug}), sp.id
        assert pf.fact["ordered_drug_on_med_list"] == ("true" if drug in sp.truth.comed_ingredients else "false")
        assert set(pf.fact["allergy_ingredients"]) == set(sp.truth.allergy_ingredients), sp.id
        closure = {a for vs in sp.truth.conditions for a in term.vs_ancestors[vs]}
        assert set(pf.fact["conditions"]) == closure, sp.id
        assert {u.value for u in pf.unrecognized} <= uncoded, sp.id


def test_observed_distribution_matches_the_population_tables(patients: list[SynthPatient]) -> None:
    d = describe(patients, PACK.terminology.classes_of)
    design = {name: share for name, _, _, share in pop.AGE_MIX}
    for band in ("child", "adult", "older"):
        assert abs(d["age_band"][band] - design[band]) < 0.03, d["age_band"]
    assert 0.02 <= d["pregnant_among_women_15_44"] <= 0.10
    assert 0.001 <= d["on_dialysis"] <= 0.02
    assert abs(d["action"]["stop"] - pop.STOP_SHARE) < 0.03
    assert set(d["ordered_drug"]) == set(DRUGS), "every drug in the pack is ordered by someone"
    assert d["comed_classes"].get("opioid", 0) > 0.05
