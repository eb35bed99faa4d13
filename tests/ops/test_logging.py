"""Structured JSON logs: one object per line, with request and decision ids, and no PHI or tokens."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.observability.logs import JsonFormatter, configure_logging
from engine.settings import Settings
from tests.apps import sqlite_settings

MARKER_CONDITION = "multiple sclerosis relapsing zq7"  # unique text, to find it if it leaks
BODY = {
    "patient": {
        "age_years": 71.5,
        "sex": "female",
        "weight_kg": 58.3,
        "serum_creatinine_mg_dl": 1.7,
        "conditions": [MARKER_CONDITION],
    },
    "drug": {"name": "baclofen", "action": "start"},
}


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield buf
    root.removeHandler(handler)
    root.setLevel(old_level)


def _lines(buf: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buf.getvalue().splitlines() if line.strip()]


def test_a_decision_is_logged_as_json_with_its_ids_and_no_phi(
    captured: io.StringIO, tmp_path: Path, make_client: Callable[[Settings], TestClient]
) -> None:
    client = make_client(sqlite_settings(tmp_path))
    r = client.post("/v1/evaluate", json=BODY, headers={"authorization": "Bearer tok-secret-123"})
    assert r.status_code == 200
    decision_id = r.json()["decision_id"]
    lines = _lines(captured)  # every line parses as JSON, or this raises
    recorded = [x for x in lines if x["msg"] == "decision recorded"]
    access = [x for x in lines if x["logger"] == "cdsrules.access" and x.get("endpoint") == "/v1/evaluate"]
    assert len(recorded) == 1 and recorded[0]["decision_id"] == decision_id
    assert recorded[0]["rules_fired"]
    assert len(access) == 1
    assert access[0]["decision_id"] == decision_id
    assert access[0]["request_id"] == recorded[0]["request_id"] == r.headers["x-request-id"]
    assert access[0]["status"] == 200
    text = captured.getvalue()
    assert MARKER_CONDITION not in text
    assert "tok-secret-123" not in text
    # patient numbers must not appear as values (timings are numbers too, so they are set aside)
    values = [v for line in lines for k, v in _leaves(line) if k not in ("duration_ms", "latency_ms")]
    for number in (71.5, 58.3, 1.7):
        assert number not in values and str(number) not in values
    assert not {"patient", "weight_kg", "conditions"} & {k for line in lines for k, _ in _leaves(line)}


def _leaves(obj: object, key: str = "") -> list[tuple[str, object]]:
    if isinstance(obj, dict):
        return [leaf for k, v in obj.items() for leaf in _leaves(v, str(k))]
    if isinstance(obj, list):
        return [leaf for v in obj for leaf in _leaves(v, key)]
    return [(key, obj)]


def test_exceptions_are_logged_without_their_message() -> None:
    log = logging.getLogger("cdsrules.test")
    try:
        raise ValueError("patient Jane Roe, MRN 12345, has eGFR 22")
    except ValueError:
        import sys

        record = log.makeRecord(log.name, logging.ERROR, __file__, 1, "evaluation failed", (), exc_info=sys.exc_info())
    out = json.loads(JsonFormatter().format(record))
    assert out["exc_type"] == "ValueError"
    assert out["stack"] and "test_logging.py" in out["stack"][-1]
    assert "Jane Roe" not in json.dumps(out)
    assert "12345" not in json.dumps(out)


def test_only_allow_listed_extras_are_written() -> None:
    record = logging.LogRecord("cdsrules", logging.INFO, __file__, 1, "hello", (), None)
    record.decision_id = "d-1"
    record.patient = {"name": "Jane Roe"}
    record.access_token = "abc"
    out = json.loads(JsonFormatter().format(record))
    assert out["decision_id"] == "d-1"
    assert "patient" not in out and "access_token" not in out


def test_configure_logging_is_idempotent() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    try:
        configure_logging("WARNING")
        configure_logging("INFO")
        ours = [h for h in root.handlers if isinstance(h.formatter, JsonFormatter)]
        assert len(ours) == 1
        assert logging.getLogger("uvicorn.access").disabled
    finally:
        root.handlers[:] = before
        root.setLevel(level)
        logging.getLogger("uvicorn.access").disabled = False
