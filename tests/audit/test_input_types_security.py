"""No silent coercion into clinical facts: true is not a number, "yes" or 1 not a boolean (D15)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient


@pytest.mark.parametrize(
    ("field", "value"),
    [("age_years", True), ("weight_kg", False), ("on_dialysis", "yes"), ("on_dialysis", 1), ("pregnant", "false")],
)
def test_coerced_values_are_refused_at_their_pointer(client: TestClient, field: str, value: Any) -> None:
    body = {"patient": {"age_years": 67, "sex": "female", field: value}, "drug": {"name": "baclofen"}}
    r = client.post("/v1/evaluate", json=body)
    assert r.status_code == 422, r.text
    assert any(p["pointer"] == f"/patient/{field}" for p in r.json()["errors"])


def test_integers_are_still_numbers(client: TestClient) -> None:
    body = {
        "patient": {"age_years": 67, "sex": "female", "weight_kg": 62, "on_dialysis": False},
        "drug": {"name": "baclofen"},
    }
    assert client.post("/v1/evaluate", json=body).status_code == 200
