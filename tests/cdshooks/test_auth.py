"""JWT client authentication: every failure mode is a bare 401; keys come from a JWKS on loopback."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from tests.cdshooks.conftest import EHR_ORIGIN, app_settings
from tests.cdshooks.fhirdata import BASE, baclofen_draft, full_prefetch, hook_request, order_context
from tests.cdshooks.servers import RunningApp, StubServer

ISS = "https://ehr.example.org/"
SERVICE = "/cds-services/muscle-relaxant-dosing"
SERVICE_AUD = f"{BASE}{SERVICE}"
EC_KEY = ec.generate_private_key(ec.SECP384R1())
EC_KEY_2 = ec.generate_private_key(ec.SECP384R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ATTACKER_KEY = ec.generate_private_key(ec.SECP384R1())


def _jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
    algorithm = ECAlgorithm if alg.startswith("ES") else RSAAlgorithm
    data: dict[str, Any] = json.loads(algorithm.to_jwk(key.public_key()))
    return {**data, "kid": kid, "alg": alg, "use": "sig"}


class Ehr:
    """The EHR side: its JWKS endpoint (and an attacker's) on loopback, and a token factory."""

    def __init__(self) -> None:
        self.jwks = StubServer()
        self.keys = [_jwk(EC_KEY, "ec-1", "ES384"), _jwk(RSA_KEY, "rsa-1", "RS384")]
        self.jwks.routes = {"jwks.json": lambda _p, _q: (200, {"keys": self.keys})}
        self.jku = f"{self.jwks.url}/jwks.json"
        self.attacker = StubServer()
        self.attacker.routes = {"jwks.json": lambda _p, _q: (200, {"keys": [_jwk(ATTACKER_KEY, "ec-1", "ES384")]})}

    def token(
        self,
        key: Any = EC_KEY,
        kid: str = "ec-1",
        alg: str = "ES384",
        *,
        aud: str = SERVICE_AUD,
        iss: str = ISS,
        exp: float = 300,
        iat: float = 0,
        jku: str | None = "default",
        drop: tuple[str, ...] = (),
    ) -> str:
        now = time.time()
        claims = {"iss": iss, "aud": aud, "exp": int(now + exp), "iat": int(now + iat), "jti": str(uuid.uuid4())}
        claims = {k: v for k, v in claims.items() if k not in drop}
        headers: dict[str, Any] = {"kid": kid, "typ": "JWT"}
        if jku is not None:
            headers["jku"] = self.jku if jku == "default" else jku
        return jwt.encode(claims, key, algorithm=alg, headers=headers)

    def close(self) -> None:
        self.jwks.close()
        self.attacker.close()


@pytest.fixture(scope="module")
def ehr() -> Iterator[Ehr]:
    e = Ehr()
    yield e
    e.close()


@pytest.fixture(scope="module")
def secured(ehr: Ehr, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    settings = app_settings(tmp_path_factory.mktemp("auth"), jwt_issuers={ISS: [ehr.jku]}, jwks_refresh_cooldown_s=0.0)
    app = RunningApp(settings)
    yield app
    app.close()


@pytest.fixture
def call(secured: RunningApp) -> Iterator[Any]:
    body = hook_request(
        "order-select", order_context(baclofen_draft(), selected=["MedicationRequest/request-123"]), full_prefetch()
    )

    with httpx.Client(base_url=secured.url, timeout=30) as c:

        def post(token: str | None, path: str = SERVICE, payload: dict[str, Any] | None = None) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
            return c.post(path, json=payload if payload is not None else body, headers=headers)

        post.client = c  # type: ignore[attr-defined]
        yield post


def _refused(resp: httpx.Response) -> None:
    assert resp.status_code == 401
    assert resp.content == b"", "a bare 401: no reason for the caller"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_valid_tokens_on_discovery_service_and_feedback(ehr: Ehr, call: Any) -> None:
    c: httpx.Client = call.client
    discovery = c.get("/cds-services", headers={"Authorization": f"Bearer {ehr.token(aud=f'{BASE}/cds-services')}"})
    assert discovery.status_code == 200 and discovery.json()["services"]
    assert call(ehr.token()).status_code == 200
    assert call(ehr.token(RSA_KEY, "rsa-1", "RS384")).status_code == 200
    feedback = {"feedback": [{"card": "c-1", "outcome": "overridden", "outcomeTimestamp": "2026-11-21T00:00:00Z"}]}
    assert call(ehr.token(aud=f"{SERVICE_AUD}/feedback"), f"{SERVICE}/feedback", feedback).status_code == 200
    assert call(ehr.token(jku=None)).status_code == 200  # no jku: the JWKS configured for the issuer


def test_missing_or_non_bearer_token(call: Any) -> None:
    _refused(call(None))
    c: httpx.Client = call.client
    _refused(c.get("/cds-services"))
    _refused(c.post(SERVICE, json={}, headers={"Authorization": "Basic dXNlcjpwYXNz"}))
    _refused(c.post("/cds-services/unknown", json={}))  # authentication comes before the 404
    _refused(call("not-a-jwt"))


def test_bad_signature(ehr: Ehr, call: Any) -> None:
    _refused(call(ehr.token(ATTACKER_KEY)))  # right kid, wrong private key


def test_issuer_and_jku_allow_lists(ehr: Ehr, call: Any) -> None:
    _refused(call(ehr.token(iss="https://other-ehr.example.org/")))
    _refused(call(ehr.token(ATTACKER_KEY, jku=f"{ehr.attacker.url}/jwks.json")))
    assert ehr.attacker.seen == [], "a JWKS URL that is not allow-listed is never fetched"


def test_audience_must_be_this_endpoint(ehr: Ehr, call: Any) -> None:
    _refused(call(ehr.token(aud=f"{BASE}/cds-services/muscle-relaxant-review")))
    _refused(call(ehr.token(aud=f"{BASE}/cds-services")))
    _refused(call(ehr.token(aud=f"https://elsewhere.example.org{SERVICE}")))


def test_expiry_and_issued_at(ehr: Ehr, call: Any) -> None:
    _refused(call(ehr.token(exp=-600, iat=-900)))  # expired beyond the clock skew
    _refused(call(ehr.token(iat=600, exp=900)))  # issued in the future
    _refused(call(ehr.token(exp=86400)))  # lives longer than allowed
    for claim in ("exp", "iat", "jti", "aud", "iss"):
        _refused(call(ehr.token(drop=(claim,))))
    assert call(ehr.token(exp=300, iat=10)).status_code == 200  # within the clock skew


def test_replayed_jti(ehr: Ehr, call: Any) -> None:
    token = ehr.token()
    assert call(token).status_code == 200
    _refused(call(token))


def test_alg_none_and_hmac(ehr: Ehr, call: Any) -> None:
    now = int(time.time())
    claims = {"iss": ISS, "aud": SERVICE_AUD, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': 'ec-1', 'jku': ehr.jku})}.{_b64(claims)}."
    _refused(call(unsigned))
    hmac_token = jwt.encode(
        claims, "shared-secret-nobody-should-use-ever!", algorithm="HS256", headers={"kid": "ec-1", "jku": ehr.jku}
    )
    _refused(call(hmac_token))


def test_unknown_kid_refetches_the_jwks(ehr: Ehr, call: Any) -> None:
    assert call(ehr.token()).status_code == 200  # the JWKS is cached from here on
    fetches = len(ehr.jwks.requests_for("jwks.json"))
    ehr.keys.append(_jwk(EC_KEY_2, "ec-2", "ES384"))  # the EHR rotates in a new key
    assert call(ehr.token(EC_KEY_2, "ec-2")).status_code == 200
    assert len(ehr.jwks.requests_for("jwks.json")) == fetches + 1
    _refused(call(ehr.token(EC_KEY_2, "never-published")))


def test_preflight_needs_no_token(secured: RunningApp) -> None:
    headers = {
        "Origin": EHR_ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    resp = httpx.options(f"{secured.url}{SERVICE}", headers=headers)
    assert resp.status_code == 200 and resp.headers["access-control-allow-origin"] == EHR_ORIGIN
    refused = httpx.post(f"{secured.url}{SERVICE}", json={}, headers={"Origin": EHR_ORIGIN})
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == EHR_ORIGIN


def test_native_api_uses_the_same_client_authentication(ehr: Ehr, call: Any) -> None:
    c: httpx.Client = call.client
    body = {
        "patient": {"age_years": 40, "sex": "male", "weight_kg": 80, "egfr_ml_min_1_73m2": 95},
        "drug": {"name": "baclofen"},
    }
    assert c.post("/v1/evaluate", json=body).status_code == 401
    wrong_aud = {"Authorization": f"Bearer {ehr.token()}"}  # minted for the CDS service URL
    assert c.post("/v1/evaluate", json=body, headers=wrong_aud).status_code == 401
    good = {"Authorization": f"Bearer {ehr.token(aud=f'{BASE}/v1/evaluate')}"}
    resp = c.post("/v1/evaluate", json=body, headers=good)
    assert resp.status_code == 200, resp.text
    assert c.get(f"/v1/decisions/{resp.json()['decision_id']}").status_code == 401
    replay = c.post("/v1/evaluate", json=body, headers=good)
    assert replay.status_code == 401, "a jti seen once is refused on the native API too"


def test_the_401_is_identical_on_both_surfaces(ehr: Ehr, call: Any) -> None:
    """One client-authentication dependency: the same refusal, byte for byte, on /v1 and /cds-services."""
    c: httpx.Client = call.client
    native_body = {"patient": {"age_years": 40}, "drug": {"name": "baclofen"}}
    refusals = [
        c.post("/v1/evaluate", json=native_body),
        c.get("/v1/decisions"),
        c.get("/cds-services"),
        c.post(SERVICE, json={}),
        c.post(f"{SERVICE}/feedback", json={}),
        c.post("/v1/evaluate", json=native_body, headers={"Authorization": f"Bearer {ehr.token()}"}),  # wrong aud
    ]
    shapes = {
        (r.status_code, r.content, r.headers.get("www-authenticate"), r.headers.get("content-type")) for r in refusals
    }
    assert shapes == {(401, b"", "Bearer", None)}, shapes
