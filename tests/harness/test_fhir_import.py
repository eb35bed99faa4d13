"""Real Synthea R4 bundles and SMART STU3 patients import in place and evaluate end to end.

The bundles are read in place from the shared folder's data/synthea/ (never copied into the
project); without it these tests skip, saying why, and fail under CI (``tests/needs.py``). Synthea
prescribes no muscle relaxant, so one test adds a baclofen MedicationRequest to a real bundle in
memory, the way an EHR order would arrive, and follows it through to the answer.
"""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.harness.cohort import read_lines, run_inprocess
from engine.harness.fhir_import import FhirImportError, import_document, read_document, records
from engine.runtime.engine import Engine
from schemas.api import EvaluateRequest
from tests.harness.conftest import PACK


@pytest.fixture(scope="module")
def r4(synthea: Path) -> list[Path]:
    return sorted((synthea / "r4").glob("*.json"))


@pytest.fixture(scope="module")
def stu3(synthea: Path) -> Path:
    return synthea / "stu3-smart-relaxants"


def test_synthea_sample_data_is_complete(r4: list[Path]) -> None:
    assert len(r4) == 76, "the shared Synthea folder is incomplete"


def _manifest(synthea: Path) -> list[dict[str, str]]:
    with (synthea / "manifest.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def imported_r4(tmp_path_factory: pytest.TempPathFactory, r4: list[Path]) -> Path:
    out = tmp_path_factory.mktemp("fhir") / "synthea.jsonl"
    result = CliRunner().invoke(app, ["import-fhir", *map(str, r4), "--drug", "baclofen", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_every_r4_bundle_imports_in_place(imported_r4: Path, r4: list[Path], synthea: Path) -> None:
    rows = [json.loads(line) for line in imported_r4.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(r4) == 76
    for row in rows:
        assert Path(row["source"]).is_relative_to(synthea), "bundles are read where they are"
        req = EvaluateRequest.model_validate({"patient": row["patient"], "drug": row["drug"]})
        assert req.patient.birth_date is not None and req.patient.sex in ("male", "female")


def test_synthea_cohort_evaluates_without_disagreement(imported_r4: Path) -> None:
    stats = run_inprocess(PACK, read_lines(imported_r4), str(imported_r4)).to_state()
    assert stats["counts"]["totals"] == {"lines": 76, "evaluated": 76}
    assert "disagreements" not in stats["lists"] and "evaluation_errors" not in stats["lists"]
    assert stats["counts"]["unrecognized"], "real problem lists contain codes the terminology does not know"


def test_synthea_egfr_33914_3_and_creatinine_38483_4_are_used(imported_r4: Path, synthea: Path) -> None:
    rows = {Path(r["source"]).name: r for r in map(json.loads, imported_r4.read_text(encoding="utf-8").splitlines())}
    impaired = [m for m in _manifest(synthea) if m["category"] == "renal-impaired"]
    assert len(impaired) == 12
    engine = Engine(PACK, backend="reference")
    for m in impaired:
        row = rows[Path(m["path"]).name]
        assert row["patient"]["egfr_ml_min_1_73m2"] == pytest.approx(float(m["latest_eGFR"]))
        assert "serum_creatinine_mg_dl" in row["patient"], m["path"]
        resp = engine.evaluate(EvaluateRequest.model_validate({"patient": row["patient"], "drug": row["drug"]}))
        assert resp.renal.band in ("severe", "dialysis"), (m["path"], resp.renal)


def _add_order(bundle: dict[str, Any], rxcui: str, display: str, mg: float, per_day: int) -> dict[str, Any]:
    doc = copy.deepcopy(bundle)
    patient = next(e for e in doc["entry"] if e["resource"]["resourceType"] == "Patient")
    order = {
        "resourceType": "MedicationRequest",
        "id": "added-relaxant-order",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": rxcui, "display": display}],
            "text": display,
        },
        "subject": {"reference": patient["fullUrl"]},
        "dosageInstruction": [
            {
                "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [
                    {"doseQuantity": {"value": mg, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}}
                ],
            }
        ],
    }
    doc["entry"].append(
        {
            "fullUrl": "urn:uuid:added-relaxant-order",
            "resource": order,
            "request": {"method": "POST", "url": "MedicationRequest"},
        }
    )
    return doc


def _on_active_depressant(synthea: Path) -> tuple[Path, dict[str, Any]]:
    """The first real bundle whose active medication list has an opioid or a benzodiazepine."""
    term = PACK.terminology
    depressants = term.class_members["opioid"] | term.class_members["benzodiazepine"]
    for m in _manifest(synthea):
        if m["cns_depressant_rx"] in ("", "0"):
            continue
        path = synthea / m["path"]
        bundle = read_document(path)
        meds = import_document(bundle, str(path), PACK).profile.patient.co_medications
        if any(term.resolve_drug(med) & depressants for med in meds):
            return path, bundle
    raise AssertionError("the Synthea sample should contain an active opioid or benzodiazepine prescription")


def test_a_relaxant_order_added_to_a_real_bundle_is_evaluated(synthea: Path) -> None:
    path, bundle = _on_active_depressant(synthea)
    doc = _add_order(bundle, "1292", "baclofen 10 MG Oral Tablet", 10, 3)
    assert len(doc["entry"]) == len(bundle["entry"]) + 1
    imp = import_document(doc, str(path), PACK)
    assert [d for d, _ in imp.orders] == ["baclofen"]
    (row,) = records(imp, [])
    assert row["drug"] == {
        "name": "baclofen",
        "action": "start",
        "ordered_dose": {"dose_mg": 10.0, "times_per_day": 3.0},
    }
    assert all(m.get("rxcui") != "1292" for m in row["patient"]["co_medications"]), "the order is not its own co-med"
    req = EvaluateRequest.model_validate({"patient": row["patient"], "drug": row["drug"]})
    resp = Engine(PACK, backend="reference").evaluate(req)
    assert resp.dose is not None
    assert any(f.category == "dose-range" for f in resp.findings), "30 mg/day is above the suggested start"
    assert any(f.category == "drug-interaction" for f in resp.findings), "opioid/benzodiazepine + baclofen"


def test_smart_stu3_cyclobenzaprine_patients_and_the_malformed_one(tmp_path: Path, stu3: Path) -> None:
    out = tmp_path / "stu3.jsonl"
    result = CliRunner().invoke(app, ["import-fhir", *map(str, sorted(stu3.glob("*.json"))), "--out", str(out)])
    assert result.exit_code == 1, "one of the four files has no Patient resource"
    assert "patient-1685497.fhir-bundle.json: no Patient resource" in result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 2 and {r["drug"]["name"] for r in rows} == {"cyclobenzaprine"}
    with pytest.raises(FhirImportError, match="no Patient resource"):
        import_document(read_document(stu3 / "patient-1685497.fhir-bundle.json"), "x.json", PACK)


def test_a_truncated_file_gets_a_clear_error_and_the_rest_still_import(tmp_path: Path, r4: list[Path]) -> None:
    broken = tmp_path / "truncated.json"
    broken.write_text(r4[0].read_text(encoding="utf-8")[:5000], encoding="utf-8")
    not_fhir = tmp_path / "list.json"
    not_fhir.write_text("[1, 2, 3]", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(
        app, ["import-fhir", str(broken), str(not_fhir), str(r4[1]), "--drug", "tizanidine", "--out", str(out)]
    )
    assert result.exit_code == 1
    assert f"{broken}:" in result.output and "not valid JSON" in result.output
    assert f"{not_fhir}: not a FHIR resource" in result.output
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1


def test_unknown_drug_option_is_refused(tmp_path: Path, r4: list[Path]) -> None:
    result = CliRunner().invoke(
        app, ["import-fhir", str(r4[0]), "--drug", "aspirin", "--out", str(tmp_path / "x.jsonl")]
    )
    assert result.exit_code == 2 and "not a drug of this rule pack" in result.output
