"""A web page cannot drive a loopback service through the user's browser (D14, D16 content type)."""

from __future__ import annotations

import httpx
import pytest

SERVICE = "/cds-services/muscle-relaxant-review"


@pytest.mark.parametrize("path", [SERVICE, "/v1/evaluate"])
def test_text_plain_post_is_refused(client: httpx.Client, path: str) -> None:
    r = client.post(
        path,
        content='{"hook":"patient-view"}',
        headers={"content-type": "text/plain", "origin": "https://attacker.example"},
    )
    assert r.status_code == 415 and "application/json" in r.json()["title"]


def test_foreign_host_header_is_refused_with_auth_off(client: httpx.Client) -> None:
    r = client.get("/v1/decisions", headers={"host": "attacker.example"})
    assert r.status_code == 421
    assert client.get("/v1/decisions", headers={"host": "localhost:8000"}).status_code == 200
    assert client.get("/healthz").status_code == 200
