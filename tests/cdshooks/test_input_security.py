"""Hostile bodies and parameters are 4xx naming the problem, never a 500 (D11, D15 duplicate keys)."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.cdshooks.fhirdata import baclofen_draft, full_prefetch, hook_request, order_context

SERVICE = "/cds-services/muscle-relaxant-dosing"
JSON = {"content-type": "application/json"}


@pytest.mark.parametrize("path", [SERVICE, f"{SERVICE}/feedback"])
@pytest.mark.parametrize("body", ["[" * 10_000 + "]" * 10_000, '{"a":' * 5_000 + "1" + "}" * 5_000])
def test_deep_nesting_is_a_400(client: httpx.Client, path: str, body: str) -> None:
    r = client.post(path, content=body, headers=JSON)
    assert r.status_code == 400
    assert "nested deeper" in r.text


def test_deep_extension_inside_a_valid_request_is_a_400(client: httpx.Client) -> None:
    req = hook_request(
        "order-select", order_context(baclofen_draft(), selected=["MedicationRequest/request-123"]), full_prefetch()
    )
    nested: object = 1
    for _ in range(500):
        nested = {"x": nested}
    req["context"]["extension"] = nested
    r = client.post(SERVICE, content=json.dumps(req), headers=JSON)
    assert r.status_code == 400 and "nested deeper" in r.text


def test_duplicate_keys_are_a_400(client: httpx.Client) -> None:
    r = client.post(SERVICE, content='{"hook":"order-select","hook":"order-sign"}', headers=JSON)
    assert r.status_code == 400 and "duplicate key 'hook'" in r.text


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('{"hook": NaN}', "NaN is not a JSON number: JSON has no NaN or Infinity (at /hook)"),
        ('{"n": ' + "9" * 200 + "}", "200 digits"),
    ],
)
def test_non_finite_numbers_and_long_integers_are_a_400(client: httpx.Client, body: str, words: str) -> None:
    r = client.post(SERVICE, content=body, headers=JSON)
    assert r.status_code == 400 and words in r.text, r.text


def test_invalid_utf8_is_a_400_naming_it(client: httpx.Client) -> None:
    r = client.post(SERVICE, content=b'{"hook":"\xff"}', headers=JSON)
    assert r.status_code == 400 and "UTF-8" in r.text


@pytest.mark.parametrize("since", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_extreme_since_is_a_client_error(client: httpx.Client, since: str) -> None:
    r = client.get("/v1/decisions", params={"since": since})
    assert 400 <= r.status_code < 500, r.text
    assert "since" in r.text
    assert client.get("/healthz").status_code == 200  # the kept-alive connection still works
