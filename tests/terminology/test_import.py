"""Deployer terminology imports: the files they write, the gate that guards them, what they change."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from engine.cli import app
from engine.compiler.pack import pack_digest
from engine.pipeline import Prepared, prepare, prepare_or_raise
from engine.settings import BUNDLED_RULES, Settings
from engine.terminology.imports import (
    ImportError_,
    read_value_set,
    rxnorm_from_release,
    value_set_from_fhir,
    value_set_id,
)
from engine.terminology.lookup import TerminologySource
from engine.terminology_tools.coverage import catalogue
from schemas.api import EvaluateRequest
from schemas.terminology import RxNormFile, ValueSetFile
from tests.apps import MakeClient

DATA = Path(__file__).parent.parent / "data" / "terminology" / "import"
RRF = DATA / "rxnorm"
VALUESET = DATA / "valueset-esrd.json"
runner = CliRunner()


@pytest.fixture
def pack_copy(tmp_path: Path) -> Path:
    root = tmp_path / "rules"
    shutil.copytree(BUNDLED_RULES, root)
    return root


def _provenance(root: Path) -> list[TerminologySource]:
    prepared = prepare_or_raise(root)
    try:
        return prepared.pack.terminology.provenance
    finally:
        prepared.close()


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---- RxNorm release ----------------------------------------------------------------------------


def test_rxnorm_products_map_to_all_ingredients_through_the_relationship_chain() -> None:
    rx = rxnorm_from_release(RRF, "2026-12-01")
    products = {p.rxcui: p for p in rx.products}
    assert products["1049221"].ingredients == ["161", "7804"]  # SCD -consists_of-> SCDC -has_ingredient-> IN
    assert products["1049640"].ingredients == ["161", "7804"]  # SBD -tradename_of-> SCD
    assert products["1049640"].tty == "SBD"
    assert products["1049640"].ndc == ["63481062370"]  # SAB=RXNORM only; the MTHSPL NDC row is not taken
    # a suppressed (SUPPRESS=O) relationship adds nothing: carisoprodol tablet is carisoprodol alone
    assert products["197446"].ingredients == ["2101"]
    assert {i.name for i in rx.ingredients} == {"acetaminophen", "oxycodone", "carisoprodol"}
    assert "1049640" in products and products["1049640"].name.endswith("[Percocet]")  # not the obsolete SY name


def test_rxnorm_bad_row_names_file_and_line(tmp_path: Path) -> None:
    shutil.copytree(RRF, tmp_path / "rrf")
    conso = tmp_path / "rrf" / "RXNCONSO.RRF"
    conso.write_text(conso.read_text() + "123|ENG|short row|\n")
    with pytest.raises(ImportError_, match=r"RXNCONSO.RRF:12: 3 fields, an RXNCONSO.RRF row has 18"):
        rxnorm_from_release(tmp_path / "rrf")


def test_rxnorm_missing_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "rrf").mkdir()
    shutil.copy(RRF / "RXNCONSO.RRF", tmp_path / "rrf")
    with pytest.raises(ImportError_, match=r"RXNREL\.RRF is missing"):
        rxnorm_from_release(tmp_path / "rrf")


def test_cli_import_rxnorm_writes_json_and_changes_the_digest(pack_copy: Path) -> None:
    before = pack_digest(pack_copy)
    r = runner.invoke(
        app, ["terminology", "import", "rxnorm", str(RRF), "--release", "2026-12-01", "--rules", str(pack_copy)]
    )
    assert r.exit_code == 0, r.output
    assert "3 products (SBD 1, SCD 2), 1 NDCs" in r.output
    assert "gate: passed" in r.output
    written = pack_copy / "terminology" / "imported" / "rxnorm.json"
    rx = RxNormFile.model_validate(json.loads(written.read_text()))
    assert rx.release == "2026-12-01"
    assert pack_digest(pack_copy) != before
    sources = [s for s in _provenance(pack_copy) if s.kind == "rxnorm"]
    assert sources and sources[0].file == "terminology/imported/rxnorm.json" and sources[0].version == "2026-12-01"


# ---- FHIR ValueSet -----------------------------------------------------------------------------


def test_value_set_keeps_oid_url_version_and_groups_by_system() -> None:
    vs = read_value_set(VALUESET, None, "condition")
    assert vs.id == "end-stage-renal-disease"  # from ValueSet.name EndStageRenalDisease
    src = vs.sources[0]
    assert src.oid == "2.16.840.1.113883.3.526.3.353"
    assert src.url == "http://cts.nlm.nih.gov/fhir/ValueSet/2.16.840.1.113883.3.526.3.353"
    assert src.version is not None and "2026-12-01T00:00:00Z" in src.version
    groups = {g.system: g.codes for g in vs.members}
    assert groups == {
        "icd10cm": [("N18.6", "End stage renal disease")],
        "snomed": [("46177005", "End-stage renal disease (disorder)")],
    }


def _vs(**over: object) -> dict[str, object]:
    base: dict[str, object] = json.loads(VALUESET.read_text())
    base.update(over)
    return base


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2], r"\$ must be a JSON object"),
        (_vs(identifier=7), r"\$.identifier must be an array"),
        (_vs(resourceType="Bundle"), r"\$.resourceType is 'Bundle'"),
        (_vs(expansion=None), r"\$.expansion is missing"),
        (_vs(expansion={"timestamp": "x"}), r"\$.expansion.contains is missing"),
        (_vs(expansion={"contains": [{"code": "1"}]}), r"\$.expansion.contains\[0\].system is missing"),
        (
            _vs(expansion={"contains": [{"system": "http://snomed.info/sct"}]}),
            r"\$.expansion.contains\[0\].code is missing",
        ),
        (
            _vs(expansion={"contains": [{"system": "http://loinc.org", "code": "82810-3"}]}),
            r"\$.expansion.contains\[0\].system 'http://loinc.org' is not a code system",
        ),
        (
            _vs(expansion={"contains": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "7804"}]}),
            r"contains\[0\].system is rxnorm; a condition value set",
        ),
        (
            _vs(expansion={"contains": [{"abstract": True, "contains": [{"system": "http://snomed.info/sct"}]}]}),
            r"\$.expansion.contains\[0\].contains\[0\].code is missing",
        ),
    ],
)
def test_bad_value_set_names_the_json_path(data: object, message: str) -> None:
    with pytest.raises(ImportError_, match=message):
        value_set_from_fhir(data, "vs.json", None, "condition")


def test_not_json_names_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "vs.json"
    bad.write_text('{"resourceType": "ValueSet",\n  oops}')
    with pytest.raises(ImportError_, match=r"vs.json:2:3: not JSON"):
        read_value_set(bad, None, "condition")


def test_id_from_name() -> None:
    assert value_set_id("EndStageRenalDisease") == "end-stage-renal-disease"
    assert value_set_id("Opioid Medications (RxNorm)") == "opioid-medications-rxnorm"


def test_cli_import_valueset_writes_yaml_seen_by_coverage_and_provenance(pack_copy: Path) -> None:
    r = runner.invoke(
        app,
        [
            "terminology",
            "import",
            "valueset",
            str(VALUESET),
            "--domain",
            "condition",
            "--id",
            "esrd-vsac",
            "--rules",
            str(pack_copy),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "icd10cm 1, snomed 1" in r.output and "2.16.840.1.113883.3.526.3.353" in r.output
    written = pack_copy / "terminology" / "imported" / "valueset-esrd-vsac.yaml"
    vs = ValueSetFile.model_validate(yaml.safe_load(written.read_text()))
    assert vs.id == "esrd-vsac"
    cov = catalogue(pack_copy)["esrd-vsac"]
    assert cov.by_system["snomed"] == 1 and cov.by_system["icd10cm"] == 1 and not cov.text_only
    assert any(s.file.endswith("valueset-esrd-vsac.yaml") and s.kind == "value-set" for s in _provenance(pack_copy))


# ---- a broken import never replaces the pack ---------------------------------------------------


def test_bad_input_leaves_the_pack_unchanged(pack_copy: Path, tmp_path: Path) -> None:
    before = _snapshot(pack_copy)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_vs(expansion={"contains": [{"code": "46177005"}]})))
    r = runner.invoke(
        app, ["terminology", "import", "valueset", str(bad), "--domain", "condition", "--rules", str(pack_copy)]
    )
    assert r.exit_code == 2
    assert "$.expansion.contains[0].system is missing" in r.output
    assert _snapshot(pack_copy) == before


def test_an_id_already_in_the_pack_is_refused(pack_copy: Path) -> None:
    before = _snapshot(pack_copy)
    r = runner.invoke(
        app,
        [
            "terminology",
            "import",
            "valueset",
            str(VALUESET),
            "--domain",
            "condition",
            "--id",
            "pregnancy",
            "--rules",
            str(pack_copy),
        ],
    )
    assert r.exit_code == 2
    assert "'pregnancy' is already defined" in r.output
    assert _snapshot(pack_copy) == before


def test_a_pack_the_gate_rejects_is_not_changed(pack_copy: Path) -> None:
    # the same pack with the import must pass the gate; here it cannot (a rule file is broken),
    # so the import is refused and the imported file is not written
    (pack_copy / "baclofen" / "broken.yaml").write_text("kind: [unclosed\n")
    before = _snapshot(pack_copy)
    r = runner.invoke(app, ["terminology", "import", "rxnorm", str(RRF), "--rules", str(pack_copy)])
    assert r.exit_code == 1
    assert "gate: REJECTED" in r.output
    assert _snapshot(pack_copy) == before
    assert not list(pack_copy.parent.glob(".cdsrules-import-*"))  # the trial copy is gone


# ---- answers change after an import (the loader reads terminology/imported/) -------------------


def _carisoprodol_with(co_med: dict[str, str]) -> EvaluateRequest:
    return EvaluateRequest.model_validate(
        {
            "patient": {
                "age_years": 45,
                "sex": "male",
                "weight_kg": 88,
                "egfr_ml_min_1_73m2": 104,
                "hepatic_impairment": "none",
                "co_medications": [co_med],
            },
            "drug": {"name": "carisoprodol"},
        }
    )


def _fired(root: Path, req: EvaluateRequest) -> set[str]:
    result = prepare(root)
    assert isinstance(result, Prepared), [str(p) for p in result.problems]
    try:
        resp = result.engine.evaluate(req)
    finally:
        result.close()
    return {f.rule_id for f in resp.findings}


def test_percocet_by_ndc_is_recognised_after_the_rxnorm_import(pack_copy: Path) -> None:
    req = _carisoprodol_with({"ndc": "63481-0623-70"})
    assert "carisoprodol.interaction.opioid" not in _fired(pack_copy, req)  # unknown NDC before
    r = runner.invoke(app, ["terminology", "import", "rxnorm", str(RRF), "--rules", str(pack_copy)])
    assert r.exit_code == 0, r.output
    assert "carisoprodol.interaction.opioid" in _fired(pack_copy, req)


def test_imported_value_set_is_in_the_loaded_catalogue(pack_copy: Path) -> None:
    r = runner.invoke(
        app,
        [
            "terminology",
            "import",
            "valueset",
            str(VALUESET),
            "--domain",
            "condition",
            "--id",
            "esrd-vsac",
            "--rules",
            str(pack_copy),
        ],
    )
    assert r.exit_code == 0, r.output
    result = prepare(pack_copy)
    assert isinstance(result, Prepared)
    try:
        assert "esrd-vsac" in result.pack.terminology.value_sets
    finally:
        result.close()


def test_coverage_cli_lists_text_only_concepts(pack_copy: Path) -> None:
    r = runner.invoke(app, ["terminology", "coverage", "--rules", str(pack_copy), "--json"])
    assert r.exit_code == 0, r.output
    rows = {row["id"]: row for row in json.loads(r.stdout)}
    assert rows["pregnancy"]["domain"] == "condition" and rows["pregnancy"]["codes"] > 0
    assert rows["opioid"]["used_by"]  # rules name the opioid class
    text = runner.invoke(app, ["terminology", "coverage", "--rules", str(pack_copy)])
    assert "rule concepts relying on text alone" in text.output


def test_readyz_and_admin_rules_name_the_terminology_sources(make_client: MakeClient, tmp_path: Path) -> None:
    from pydantic import SecretStr

    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/audit.db", rules_dir=BUNDLED_RULES, admin_token=SecretStr("t0ken-for-tests")
    )
    client = make_client(settings)
    ready = client.get("/readyz").json()["rules"]["terminology"]
    files = {s["file"] for s in ready}
    assert "terminology/ingredients.yaml" in files
    assert all(set(s) == {"kind", "file", "label", "version"} for s in ready)
    assert any(s["kind"] == "products" and "RxNorm" in s["label"] for s in ready)
    admin = client.get("/v1/admin/rules", headers={"Authorization": "Bearer t0ken-for-tests"})
    assert admin.status_code == 200
    assert admin.json()["terminology"] == ready


def test_rxnorm_not_utf8_is_named(tmp_path: Path) -> None:
    shutil.copytree(RRF, tmp_path / "rrf")
    (tmp_path / "rrf" / "RXNREL.RRF").write_bytes(b"\xff\xfe|bad|\n")
    with pytest.raises(ImportError_, match=r"RXNREL\.RRF: not UTF-8 text"):
        rxnorm_from_release(tmp_path / "rrf")
