"""POST /v1/evaluate end to end: the contract, bad input, and the audit record before the reply."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.audit.store import AuditError
from schemas.api import EvaluateResponse
from tests.golden_check import golden_failures

WORKED_EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "worked-examples.json"

ISSUE_EXAMPLE: dict[str, Any] = {
    "patient": {
        "age_years": 67,
        "sex": "female",
        "weight_kg": 62,
        "height_cm": 160,
        "serum_creatinine_mg_dl": 1.3,
        "egfr_ml_min_1_73m2": None,
        "on_dialysis": False,
        "hepatic_impairment": "none",
        "pregnant": False,
        "breastfeeding": False,
        "conditions": [
            {"text": "Epilepsy", "coding": [{"system": "http://snomed.info/sct", "code": "84757009"}]},
            "multiple sclerosis",
        ],
        "co_medications": [{"name": "oxycodone", "rxcui": "7804"}],
        "allergies": [],
    },
    "drug": {"name": "baclofen", "rxcui": "1292", "route": "oral", "action": "start"},
}


def _errors(resp: Any) -> dict[str, str]:
    return {e["pointer"]: e["message"] for e in resp.json()["errors"]}


def test_issue_example(client: TestClient) -> None:
    resp = client.post("/v1/evaluate", json=ISSUE_EXAMPLE)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    # 67 y, 62 kg, SCr 1.3, female: Cockcroft-Gault = (140-67)*62/(72*1.3)*0.85 = 41.1 mL/min
    assert body["renal"]["value_ml_min"] == pytest.approx(41.1, abs=0.1)
    assert body["renal"]["band"] == "moderate"
    assert body["renal"]["method"].startswith("cockcroft-gault")
    cats = {(f["category"], f["severity"]) for f in body["findings"]}
    assert ("geriatric", "critical") in cats  # Beers: 65+ with CrCl < 60
    assert ("renal", "warning") in cats
    assert ("disease", "warning") in cats  # epilepsy
    assert ("drug-interaction", "warning") in cats  # oxycodone
    assert body["contraindicated"] is False
    assert body["dose"]["start"] == {"dose_mg": 5.0, "times_per_day": 1, "total_daily_mg": 5.0}
    assert body["dose"]["max_daily_mg"] == 40
    assert "baclofen.renal.moderate" in body["dose"]["rule_ids"]
    assert body["ruleset"]["digest"].startswith("sha256:")
    assert {m["code"] for m in body["monitoring"]} >= {"sedation", "respiratory", "seizure-control", "falls"}
    assert body["unrecognized"] == []
    assert all(f["sources"] for f in body["findings"])


def test_allergy_contraindicates_and_removes_the_dose(client: TestClient) -> None:
    body = dict(
        ISSUE_EXAMPLE, patient=dict(ISSUE_EXAMPLE["patient"], allergies=[{"name": "baclofen", "rxcui": "1292"}])
    )
    out = client.post("/v1/evaluate", json=body).json()
    assert out["contraindicated"] is True
    assert out["dose"] is None
    assert out["findings"][0]["severity"] == "critical"


@pytest.mark.parametrize(
    "case", json.loads(WORKED_EXAMPLES.read_text(encoding="utf-8"))["cases"], ids=lambda c: c["id"]
)
def test_worked_examples(client: TestClient, case: dict[str, Any]) -> None:
    resp = client.post("/v1/evaluate", json={"patient": case["patient"], "drug": case["drug"]})
    if resp.status_code == 422 and "no rules for" in resp.text:
        pytest.fail(f"drug {case['drug']['name']} has no rules yet")
    assert resp.status_code == 200, resp.text
    assert golden_failures(case, EvaluateResponse.model_validate(resp.json())) == []


def test_every_decision_is_in_the_audit_log(client: TestClient) -> None:
    out = client.post("/v1/evaluate", json=ISSUE_EXAMPLE).json()
    stored = client.get(f"/v1/decisions/{out['decision_id']}")
    assert stored.status_code == 200
    rec = stored.json()
    assert rec["response"]["findings"] == out["findings"]
    assert {r["rule_id"] for r in rec["rules_fired"]} == {t["rule_id"] for t in out["trace"]}
    assert all(r["version"] for r in rec["rules_fired"])
    assert rec["ruleset"] == out["ruleset"]
    assert len(rec["input_sha256"]) == 64
    assert rec["input_document"] is None  # PHI minimisation by default
    listed = client.get("/v1/decisions", params={"rule_id": "baclofen.renal.moderate"}).json()["items"]
    assert out["decision_id"] in {r["decision_id"] for r in listed}


def test_audit_failure_gives_503_and_no_advice(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any) -> None:
        raise AuditError("disk full")

    monkeypatch.setattr(client.app.state.cds.audit, "record", broken)  # type: ignore[attr-defined]
    resp = client.post("/v1/evaluate", json=ISSUE_EXAMPLE)
    assert resp.status_code == 503
    assert "findings" not in resp.text and "dose" not in resp.json()


@pytest.mark.parametrize(
    ("patch", "pointer", "fragment"),
    [
        ({"age_years": 300}, "/patient/age_years", "less than or equal to 125"),
        ({"weight_kg": -4}, "/patient/weight_kg", "greater than 0.3"),
        ({"serum_creatinine_mg_dl": 120}, "/patient/serum_creatinine_mg_dl", "looks like µmol/L"),
        ({"hepatic_impairment": "bad"}, "/patient/hepatic_impairment", "Input should be"),
        ({"sex": "male", "pregnant": True}, "/patient", "pregnant is true but sex is male"),
        ({"weight": 60}, "/patient/weight", "unknown field"),
        ({"age_years": "old"}, "/patient/age_years", "valid number"),
        ({"conditions": [{"coding": []}]}, "/patient/conditions/0", "needs 'text' or at least one 'coding'"),
        ({"co_medications": [{}]}, "/patient/co_medications/0", "needs 'name', 'rxcui' or 'ndc'"),
        ({"birth_date": "2999-01-01"}, "/patient/birth_date", "in the future"),
    ],
)
def test_bad_patient_fields_are_pointed_at(
    client: TestClient, patch: dict[str, Any], pointer: str, fragment: str
) -> None:
    body = {"patient": dict(ISSUE_EXAMPLE["patient"], **patch), "drug": ISSUE_EXAMPLE["drug"]}
    resp = client.post("/v1/evaluate", json=body)
    assert resp.status_code == 422, resp.text
    errors = _errors(resp)
    assert pointer in errors, errors
    assert fragment in errors[pointer]


@pytest.mark.parametrize(
    ("drug", "pointer", "fragment"),
    [
        ({"name": "aspirin"}, "/drug/name", "no rules for aspirin"),
        ({"name": "unobtainium"}, "/drug/name", "unknown drug"),
        ({"rxcui": "99999999"}, "/drug/rxcui", "unknown RxNorm code"),
        ({"name": "tizanidine", "rxcui": "1292"}, "/drug/rxcui", "is baclofen"),
        ({"name": "baclofen", "route": ""}, "/drug/route", "at least 1 character"),
        ({"name": "baclofen", "action": "pause"}, "/drug/action", "Input should be"),
    ],
)
def test_bad_drug_is_pointed_at(client: TestClient, drug: dict[str, Any], pointer: str, fragment: str) -> None:
    resp = client.post("/v1/evaluate", json={"patient": ISSUE_EXAMPLE["patient"], "drug": drug})
    assert resp.status_code == 422, resp.text
    errors = _errors(resp)
    assert pointer in errors and fragment in errors[pointer], errors


@pytest.mark.parametrize("route", ["intrathecal", "transdermal"])
def test_other_route_is_answered_not_covered(client: TestClient, route: str) -> None:
    drug = {"name": "baclofen", "route": route}
    resp = client.post("/v1/evaluate", json={"patient": ISSUE_EXAMPLE["patient"], "drug": drug})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["dose"] is None and body["drug"]["name"] == "baclofen"
    assert [f["summary"] for f in body["findings"]] == [f"Not covered by these rules: route {route}"]


def test_oral_spellings_are_oral(client: TestClient) -> None:
    drug = {"name": "baclofen", "route": "PO"}
    resp = client.post("/v1/evaluate", json={"patient": ISSUE_EXAMPLE["patient"], "drug": drug})
    assert resp.status_code == 200 and resp.json()["dose"] is not None


def test_malformed_json_is_400_not_500(client: TestClient) -> None:
    resp = client.post("/v1/evaluate", content=b'{"patient": {', headers={"content-type": "application/json"})
    assert resp.status_code == 400
    assert resp.json()["errors"][0]["code"] == "json_invalid"


def test_missing_body_parts(client: TestClient) -> None:
    resp = client.post("/v1/evaluate", json={"drug": {"name": "baclofen"}})
    assert resp.status_code == 422
    assert "/patient" in _errors(resp)


def test_body_too_large_is_refused(client: TestClient) -> None:
    resp = client.post("/v1/evaluate", content=b" " * 2_000_000, headers={"content-type": "application/json"})
    assert resp.status_code == 413
    assert resp.json()["title"] == "Request body too large"


def test_body_too_large_without_content_length_is_refused(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:  # a generator body is sent chunked: no Content-Length to check
        for _ in range(40):
            yield b" " * 50_000

    resp = client.post("/v1/evaluate", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in {k.lower() for k in resp.request.headers}
    assert resp.status_code == 413


def test_unrecognised_inputs_are_listed_not_dropped(client: TestClient) -> None:
    patient = dict(
        ISSUE_EXAMPLE["patient"],
        conditions=["made-up syndrome", {"coding": [{"system": "http://snomed.info/sct", "code": "1"}]}],
        co_medications=[{"name": "zzz-unknown-drug"}],
    )
    out = client.post("/v1/evaluate", json={"patient": patient, "drug": {"name": "baclofen"}}).json()
    assert {u["pointer"] for u in out["unrecognized"]} == {
        "/patient/conditions/0",
        "/patient/conditions/1",
        "/patient/co_medications/0",
    }


def test_product_codes_are_recognised(client: TestClient) -> None:
    # Synthea's RxNorm product code for oxycodone-acetaminophen (an SCD), not an ingredient code
    patient = dict(ISSUE_EXAMPLE["patient"], co_medications=[{"rxcui": "1049221"}])
    out = client.post("/v1/evaluate", json={"patient": patient, "drug": {"name": "baclofen"}}).json()
    assert out["unrecognized"] == []
    assert any(f["rule_id"] == "baclofen.interaction.opioid" for f in out["findings"])


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and "baclofen" in ready.json()["rules"]["drugs"]


@pytest.mark.parametrize(
    ("ordered", "severity"),
    [
        ({"dose_mg": 2.5, "times_per_day": 3}, None),  # at the suggested start
        ({"dose_mg": 5, "times_per_day": 3}, "info"),  # above the start, below the maximum
        ({"dose_mg": 15, "times_per_day": 3}, "critical"),  # 45 > this patient's renal cap of 40 mg/day (B3)
        ({"dose_mg": 30, "times_per_day": 4}, "critical"),  # 120 > labelled 80 mg/day
    ],
)
def test_ordered_dose_is_checked_against_this_patients_maximum(
    client: TestClient, ordered: dict[str, float], severity: str | None
) -> None:
    patient = {"age_years": 58, "sex": "male", "weight_kg": 72, "serum_creatinine_mg_dl": 2.0}
    drug = {"name": "baclofen", "ordered_dose": ordered}
    out = client.post("/v1/evaluate", json={"patient": patient, "drug": drug}).json()
    ranges = [f for f in out["findings"] if f["category"] == "dose-range"]
    if severity is None:
        assert ranges == []
    else:
        assert [f["severity"] for f in ranges] == [severity]
        assert ranges[0]["sources"]
