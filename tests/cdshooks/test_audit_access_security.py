"""With client authentication on, only the operator reads the audit trail (D4).

Before, any EHR's JWT read every decision of every other EHR, stored inputs included.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cdshooks.conftest import app_settings
from tests.cdshooks.fhirdata import BASE
from tests.cdshooks.servers import RunningApp
from tests.cdshooks.test_auth import ISS, Ehr

OPERATOR = "operator-secret-0123456789abcdef"
BODY = {
    "patient": {"age_years": 40, "sex": "male", "weight_kg": 80, "egfr_ml_min_1_73m2": 95},
    "drug": {"name": "baclofen"},
}


@pytest.fixture(scope="module")
def ehr() -> Iterator[Ehr]:
    e = Ehr()
    yield e
    e.close()


@pytest.fixture(scope="module")
def secured(ehr: Ehr, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    tmp: Path = tmp_path_factory.mktemp("operator")
    app = RunningApp(app_settings(tmp, jwt_issuers={ISS: [ehr.jku]}, admin_token=OPERATOR))
    yield app
    app.close()


def test_an_ehr_token_cannot_read_decisions_the_operator_can(ehr: Ehr, secured: RunningApp) -> None:
    with httpx.Client(base_url=secured.url, timeout=30) as c:
        made = c.post(
            "/v1/evaluate", json=BODY, headers={"Authorization": f"Bearer {ehr.token(aud=f'{BASE}/v1/evaluate')}"}
        )
        assert made.status_code == 200, made.text
        decision = made.json()["decision_id"]
        for path in (f"/v1/decisions/{decision}", "/v1/decisions"):
            as_ehr = {"Authorization": f"Bearer {ehr.token(aud=BASE + path)}"}
            refused = c.get(path, headers=as_ehr)
            assert refused.status_code == 401 and refused.content == b""
            operator = c.get(path, headers={"Authorization": f"Bearer {OPERATOR}"})
            assert operator.status_code == 200
        assert c.get(f"/v1/decisions/{decision}", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_without_an_operator_token_the_trail_is_closed(ehr: Ehr, tmp_path: Path) -> None:
    app = RunningApp(app_settings(tmp_path, jwt_issuers={ISS: [ehr.jku]}))
    try:
        with httpx.Client(base_url=app.url, timeout=30) as c:
            token = ehr.token(aud=f"{BASE}/v1/decisions")
            assert c.get("/v1/decisions", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    finally:
        app.close()


@pytest.mark.parametrize("path", ["/metrics", "/openapi.json", "/docs", "/author"])
def test_self_description_needs_the_operator_when_auth_is_on(secured: RunningApp, path: str) -> None:
    """D19: these answered 200 without a token while every EHR call needed a JWT."""
    with httpx.Client(base_url=secured.url, timeout=30) as c:
        refused = c.get(path)
        assert refused.status_code == 401 and refused.content == b""
        assert c.get(path, headers={"Authorization": f"Bearer {OPERATOR}"}).status_code == 200
        assert c.get("/readyz").status_code == 200  # probes stay open
