"""A reload that would drop a drug or rules is refused unless forced (D9).

Before, deleting ``rules/tizanidine/`` (a half-done checkout) passed the gate, its examples gone
with it, and tizanidine requests got 422 "no rules" until the folder came back.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from engine.api.app import create_app
from tests.authoring.packs import full_pack
from tests.authoring.test_reload import AUTH, _settings

TIZANIDINE = {"patient": {"age_years": 50, "sex": "male", "weight_kg": 80}, "drug": {"name": "tizanidine"}}


def test_a_reload_that_removes_a_drug_is_refused_unless_forced(tmp_path: Path) -> None:
    rules = full_pack(tmp_path)
    with TestClient(create_app(_settings(tmp_path, rules))) as api:
        _check(api, rules)


def _check(api: TestClient, rules: Path) -> None:
    assert api.post("/v1/evaluate", json=TIZANIDINE).status_code == 200
    shutil.rmtree(rules / "tizanidine")

    refused = api.post("/v1/admin/reload", headers=AUTH)
    assert refused.status_code == 422
    body = refused.json()
    assert body["outcome"] == "rejected"
    assert body["errors"][0]["code"] == "E506" and "tizanidine" in body["errors"][0]["message"]
    assert api.post("/v1/evaluate", json=TIZANIDINE).status_code == 200  # still served

    forced = api.post("/v1/admin/reload", params={"force": "true"}, headers=AUTH)
    assert forced.status_code == 200 and forced.json()["outcome"] == "loaded"
    assert api.post("/v1/evaluate", json=TIZANIDINE).status_code == 422
