"""One bad field, one path: every surface locates a bad value the same way (``engine.validation``).

The same bad patient goes through the API (422, JSON pointers), `cdsrules eval`, the cohort, `cdsrules
diff` and an example under `cdsrules test`; each must name exactly the real fields, never a pydantic
union tag (``constrained-str``, ``function-after[...]``, ``CodeableConcept``). CDS Hooks renders the
same located paths as FHIRPath-like expressions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from typer.testing import CliRunner

from engine.cdshooks.errors import CdsHooksError
from engine.cdshooks.hook import parse_feedback
from engine.cli import app
from engine.harness.cohort import parse_line
from engine.validation import dotted, json_pointer, locate
from schemas.api import EvaluateRequest
from tests.apps import MakeClient, sqlite_settings
from tests.authoring.packs import lean_pack

BAD_PATIENT: dict[str, Any] = {
    "age_years": 40,
    "conditions": [{"coding": [{"system": "http://snomed.info/sct", "code": ""}]}, 5],
}
BODY = {"patient": BAD_PATIENT, "drug": {"name": "baclofen"}}
EXPECTED = {"/patient/conditions/0/coding/0/code", "/patient/conditions/1"}
TAG = re.compile(r"constrained|function-|CodeableConcept|\[|str\b")


def _pointers(text: str) -> set[str]:
    return set(re.findall(r"(/patient/[\w/~]+)", text))


def test_locate_drops_union_tags_and_keeps_fields() -> None:
    with pytest.raises(ValidationError) as caught:
        EvaluateRequest.model_validate(BODY)
    found = locate(caught.value, EvaluateRequest)
    assert {f.pointer for f in found} == EXPECTED
    assert {f.dotted for f in found} == {"patient.conditions[0].coding[0].code", "patient.conditions[1]"}
    assert not any(TAG.search(f.pointer) for f in found)


def test_pointer_escaping_is_rfc_6901() -> None:
    assert json_pointer(("a/b", "c~d", 0)) == "/a~1b/c~0d/0"
    assert json_pointer(()) == ""
    assert dotted(("feedback", 0, "card"), "") == "feedback[0].card"


@pytest.fixture
def api(tmp_path: Path, make_client: MakeClient) -> Iterator[TestClient]:
    yield make_client(sqlite_settings(tmp_path))


def test_api_422(api: TestClient) -> None:
    resp = api.post("/v1/evaluate", json=BODY)
    assert resp.status_code == 422
    assert {e["pointer"] for e in resp.json()["errors"]} == EXPECTED


def test_cdsrules_eval(tmp_path: Path) -> None:
    path = tmp_path / "req.json"
    path.write_text(json.dumps(BODY), encoding="utf-8")
    result = CliRunner().invoke(app, ["eval", str(path)])
    assert result.exit_code == 2
    assert _pointers(result.output) == EXPECTED


def test_cohort_line() -> None:
    _, req, error = parse_line("cohort.jsonl", 3, json.dumps(BODY))
    assert req is None and error is not None
    assert error.startswith("cohort.jsonl:3: /patient/conditions/")
    assert _pointers(error) <= EXPECTED and _pointers(error)


def test_cdsrules_diff(tmp_path: Path) -> None:
    pack = lean_pack(tmp_path)
    cohort = tmp_path / "cohort.jsonl"
    cohort.write_text(json.dumps(BODY) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["diff", str(pack), str(pack), "--cohort", str(cohort), "--backend", "reference"])
    assert result.exit_code == 0, result.output
    assert _pointers(result.output) <= EXPECTED and _pointers(result.output)


def test_cdsrules_test_example(tmp_path: Path) -> None:
    pack = lean_pack(tmp_path)
    example = (
        "\n  - name: a bad patient\n"
        f"    patient: {json.dumps(BAD_PATIENT)}\n"
        "    expect: {fires: [baclofen.dose.adult-start]}\n"
    )
    drug = pack / "baclofen" / "drug.yaml"
    drug.write_text(drug.read_text(encoding="utf-8").rstrip("\n") + example, encoding="utf-8")
    result = CliRunner().invoke(app, ["test", str(pack), "-q"])
    assert result.exit_code == 1
    assert "FAIL" in result.output and _pointers(result.output) == EXPECTED


def test_cds_hooks_400_names_the_real_field() -> None:
    body = {"feedback": [{"card": "c1", "outcome": "overridden", "outcomeTimestamp": "2026-01-01T00:00:00Z",
                          "overrideReason": {"reason": {"system": "urn:x", "code": ""}}}]}  # fmt: skip
    with pytest.raises(CdsHooksError) as caught:
        parse_feedback(body)
    expressions = {i.expression for i in caught.value.issues}
    assert expressions == {"feedback[0].overrideReason.reason.code"}
