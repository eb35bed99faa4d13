"""``POST /v1/evaluate`` reads its body strictly and names every problem (D15 duplicate keys, D16).

FastAPI's parser answered invalid UTF-8, 10,000-deep nesting and a 4,301-digit integer alike with
a bare 400 "There was an error parsing the body", took the last of two equal keys (an 8-year-old
evaluated where a first-wins parser upstream saw a 67-year-old) and let ``NaN`` through to a range
check ("less than or equal to 125"). Each case here failed before the body was read by
``engine.api.json_body``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from engine.api import strict_json
from tests.apps import MakeClient, sqlite_settings
from tests.cdshooks.test_auth import ISS, Ehr

JSON = {"content-type": "application/json"}
PATIENT = '{"age_years": 67, "sex": "female", "weight_kg": 62, "egfr_ml_min_1_73m2": 80}'
AUD = "http://127.0.0.1:8000/v1/evaluate"  # the default CDSRULES_PUBLIC_BASE_URL


def _body(patient: str = PATIENT, drug: str = '{"name": "baclofen"}') -> bytes:
    return f'{{"patient": {patient}, "drug": {drug}}}'.encode()


def _errors(resp: Any) -> list[dict[str, str]]:
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.headers
    errors: list[dict[str, str]] = resp.json()["errors"]
    return errors


NESTED = "[" * 200 + "]" * 200  # parses; the 65th container (pointer 64 steps long) is refused

CASES = [
    # (body, pointer, code, words in the message)
    (b'{"patient": {"sex": "\xff"}, "drug": {"name": "baclofen"}}', "", "not_utf8", "UTF-8"),
    (b"[" * 10_000 + b"]" * 10_000, "", "too_deep", "nested deeper than 64"),
    (
        _body('{"age_years": 67, "conditions": [' + NESTED + "]}"),
        "/patient/conditions" + "/0" * 62,
        "too_deep",
        "deeper",
    ),
    (_body('{"age_years": ' + "1" * 4301 + "}"), "/patient/age_years", "integer_too_long", "4301 digits"),
    (_body('{"age_years": NaN}'), "/patient/age_years", "number_not_finite", "NaN"),
    (_body('{"weight_kg": -Infinity}'), "/patient/weight_kg", "number_not_finite", "-Infinity"),
    (_body('{"age_years": 1e400}'), "/patient/age_years", "number_not_finite", "out of range"),
    (_body('{"age_years": 67, "age_years": 8}'), "/patient/age_years", "duplicate_key", "duplicate key 'age_years'"),
    (
        b'{"patient": {}, "drug": {"name": "baclofen"}, "drug": {"name": "tizanidine"}}',
        "/drug",
        "duplicate_key",
        "'drug'",
    ),
    (
        _body(drug='{"name": "baclofen", "ordered_dose": {"dose_mg": 5, "dose_mg": 50, "times_per_day": 3}}'),
        "/drug/ordered_dose/dose_mg",
        "duplicate_key",
        "'dose_mg'",
    ),
    (b'{"patient": {', "", "json_invalid", "malformed JSON"),
    (b"", "", "json_invalid", "empty"),
]


@pytest.mark.parametrize(("raw", "pointer", "code", "words"), CASES)
def test_a_body_that_is_not_acceptable_json_is_a_400_naming_the_place(
    client: TestClient, raw: bytes, pointer: str, code: str, words: str
) -> None:
    resp = client.post("/v1/evaluate", content=raw, headers=JSON)
    assert resp.status_code == 400, resp.text
    assert resp.json()["title"] == "Malformed JSON"
    (error,) = _errors(resp)
    assert (error["pointer"], error["code"]) == (pointer, code), error
    assert words in error["message"], error
    assert pointer in error["message"], "the message names the place too"


def test_every_duplicate_is_named_in_document_order(client: TestClient) -> None:
    raw = _body('{"age_years": 67, "age_years": 8, "sex": "male", "sex": "female"}', '{"name": "a", "name": "b"}')
    resp = client.post("/v1/evaluate", content=raw, headers=JSON)
    assert [e["pointer"] for e in _errors(resp)] == ["/patient/age_years", "/patient/sex", "/drug/name"]


def test_a_pointer_escapes_slash_and_tilde(client: TestClient) -> None:
    resp = client.post("/v1/evaluate", content=_body('{"a/b~c": 1, "a/b~c": 2}'), headers=JSON)
    assert _errors(resp)[0]["pointer"] == "/patient/a~1b~0c"


def test_a_clean_body_and_nesting_within_the_bound_reach_the_model(client: TestClient) -> None:
    assert client.post("/v1/evaluate", content=_body(), headers=JSON).status_code == 200
    within = _body('{"conditions": [' + "[" * 55 + "]" * 55 + "]}")  # 59 deep: JSON is fine, the model is not
    resp = client.post("/v1/evaluate", content=within, headers=JSON)
    assert resp.status_code == 422 and _errors(resp)[0]["pointer"] == "/patient/conditions/0", resp.text


@pytest.mark.parametrize(
    ("raw", "pointer", "words"),
    [
        (b"[]", "", "must be a JSON object"),
        (_body('{"age_years": true}'), "/patient/age_years", "not true/false"),
        (_body('{"on_dialysis": "yes"}'), "/patient/on_dialysis", "boolean"),
        (_body('{"age_years": 200}'), "/patient/age_years", "less than or equal to 125"),
    ],
)
def test_json_that_is_not_a_valid_request_is_a_422_at_its_pointer(
    client: TestClient, raw: bytes, pointer: str, words: str
) -> None:
    resp = client.post("/v1/evaluate", content=raw, headers=JSON)
    assert resp.status_code == 422, resp.text
    errors = {e["pointer"]: e["message"] for e in _errors(resp)}
    assert pointer in errors and words in errors[pointer], errors


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", None])
def test_a_body_not_declared_json_is_a_415(client: TestClient, ctype: str | None) -> None:
    headers = {"content-type": ctype} if ctype else {}
    resp = client.post("/v1/evaluate", content=_body(), headers=headers)
    assert resp.status_code == 415 and "application/json" in resp.json()["title"], resp.text


@pytest.fixture(scope="module")
def ehr() -> Iterator[Ehr]:
    e = Ehr()
    yield e
    e.close()


@pytest.fixture
def secured(ehr: Ehr, tmp_path: Path, make_client: MakeClient) -> TestClient:
    return make_client(sqlite_settings(tmp_path, jwt_issuers={ISS: [ehr.jku]}))


def test_with_authentication_on_the_same_checks_apply_to_an_authenticated_caller(ehr: Ehr, secured: TestClient) -> None:
    def post(raw: bytes, ctype: str = "application/json") -> Any:
        auth = f"Bearer {ehr.token(aud=AUD)}"
        return secured.post("/v1/evaluate", content=raw, headers={"content-type": ctype, "authorization": auth})

    assert post(_body(), "text/plain").status_code == 415
    dup = post(_body('{"age_years": 67, "age_years": 8}'))
    assert dup.status_code == 400 and _errors(dup)[0]["pointer"] == "/patient/age_years"
    nan = post(_body('{"age_years": NaN}'))
    assert nan.status_code == 400 and _errors(nan)[0]["code"] == "number_not_finite"
    assert post(_body()).status_code == 200


def test_with_authentication_on_an_unauthenticated_body_is_refused_before_it_is_read(secured: TestClient) -> None:
    resp = secured.post("/v1/evaluate", content=_body('{"age_years": 67, "age_years": 8}'), headers=JSON)
    assert resp.status_code == 401 and resp.content == b""


def test_the_request_model_is_still_documented(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/v1/evaluate"]["post"]
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/EvaluateRequest"
    schemas = spec["components"]["schemas"]
    assert set(schemas["EvaluateRequest"]["required"]) == {"patient", "drug"}
    assert schemas["EvaluateRequest"]["properties"]["patient"]["$ref"] == "#/components/schemas/Patient"
    assert "age_years" in schemas["Patient"]["properties"] and "Coding" in schemas
    assert {"400", "415", "422"} <= set(op["responses"])


def test_the_reader_returns_what_json_returns_for_clean_documents() -> None:
    doc = {"a": [1, -2, 3.5, 1e300, None, True, "x"], "b": {"c": {"d": []}}, "e": 10**99}
    assert strict_json.loads(json.dumps(doc).encode()) == doc
