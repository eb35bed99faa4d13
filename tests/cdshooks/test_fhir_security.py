"""The FHIR client keeps the EHR's token on fhirServer and bounds every read in size and time.

Reproduces D1 (token sent to another host through a later page's ``next`` link, dot segments
escaping the base path) and D6 (an unbounded body, a slow-drip body beyond the budget); the size cap is a setting
(``CDSRULES_FHIR_MAX_BODY_BYTES``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from engine.cdshooks.fhirclient import MAX_BODY_BYTES, FhirFetcher, under_base
from engine.settings import Settings
from tests.apps import MakeClient
from tests.cdshooks.conftest import app_settings
from tests.cdshooks.fhirdata import baclofen_draft, full_prefetch, hook_request, order_context, patient
from tests.cdshooks.servers import StubServer, fhir_routes

BASE = "http://127.0.0.1:18100/fhir"
SELECT = order_context(baclofen_draft(), selected=["MedicationRequest/request-123"])
TOKEN = "SECRET-FHIR-TOKEN"


def _bundle(entries: list[str], nxt: str | None) -> dict[str, Any]:
    links = [{"relation": "next", "url": nxt}] if nxt else []
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": [{"resource": {"resourceType": "Observation", "id": e}} for e in entries],
    }


class Recorder:
    """A mock FHIR server that records every request with its Authorization header."""

    def __init__(self, pages: dict[str, dict[str, Any]]) -> None:
        self.pages = pages
        self.seen: list[tuple[str, str | None]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.seen.append((url, request.headers.get("authorization")))
        for prefix, page in self.pages.items():
            if url.startswith(prefix):
                return httpx.Response(200, json=page)
        return httpx.Response(404, json={"resourceType": "OperationOutcome"})


async def _read(recorder: Any, relative: str, **kw: Any) -> Any:
    fetcher = FhirFetcher(BASE, TOKEN, 2.0, kw.pop("budget", 4.0), transport=httpx.MockTransport(recorder), **kw)
    async with fetcher:
        return await fetcher.read(relative)


def test_later_page_next_link_to_another_host_is_not_followed() -> None:
    rec = Recorder(
        {
            f"{BASE}/Observation?patient": _bundle(["a"], f"{BASE}/Observation?page=2"),
            f"{BASE}/Observation?page=2": _bundle(["b"], "http://127.0.0.2:18100/other/page3"),
            "http://127.0.0.2:18100/": _bundle(["evil"], None),
        }
    )
    got = asyncio.run(_read(rec, "Observation?patient=p9"))
    hosts = [url for url, _ in rec.seen]
    assert all(u.startswith(BASE) for u in hosts), hosts
    assert [e["resource"]["id"] for e in got.document["entry"]] == ["a", "b"]
    assert got.note and "outside fhirServer" in got.note


def test_dot_segments_do_not_escape_the_base_path() -> None:
    rec = Recorder({f"{BASE}/Observation?patient": _bundle(["a"], "HTTP://127.0.0.1:18100/fhir/../other/case")})
    asyncio.run(_read(rec, "Observation?patient=p9"))
    assert all("/other/" not in url for url, _ in rec.seen)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:18100/fhir/../other",
        "http://127.0.0.1:18100/fhir/%2e%2e/other",
        "http://127.0.0.1:18100/fhirx/Observation",
        "http://127.0.0.2:18100/fhir/Observation",
        "http://127.0.0.1:18101/fhir/Observation",
        "https://127.0.0.1:18100/fhir/Observation",
        "http://127.0.0.1:18100@127.0.0.2:18100/fhir/Observation",
        "http://127.0.0.1:18100/fhir/..\\other",
    ],
)
def test_outside_base(url: str) -> None:
    assert not under_base(BASE, url)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:18100/fhir/Observation?page=2", "HTTP://127.0.0.1:18100/fhir/a/./b", f"{BASE}"]
)
def test_inside_base(url: str) -> None:
    assert under_base(BASE, url)


def test_token_goes_only_to_urls_under_the_base() -> None:
    rec = Recorder({f"{BASE}/Observation": _bundle(["a"], None)})
    asyncio.run(_read(rec, "Observation?patient=p9"))
    assert rec.seen and all(auth == f"Bearer {TOKEN}" for _, auth in rec.seen)


def test_body_over_the_cap_is_abandoned() -> None:
    big = json.dumps(_bundle([str(i) for i in range(20_000)], None)).encode()

    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=big)

    got = asyncio.run(_read(handler, "Observation?patient=p9", max_bytes=100_000))
    assert got.document is None and "larger than" in (got.error or "")


def test_body_over_the_cap_without_content_length_is_abandoned() -> None:
    async def stream() -> AsyncIterator[bytes]:
        for _ in range(1_000):
            yield b" " * 10_000

    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=stream())

    got = asyncio.run(_read(handler, "Observation?patient=p9", max_bytes=100_000))
    assert got.document is None and "larger than" in (got.error or "")


def test_slow_drip_body_is_cut_at_the_budget() -> None:
    async def drip() -> AsyncIterator[bytes]:
        yield b"{"
        for _ in range(600):
            await asyncio.sleep(0.1)  # each chunk is within the per-read timeout
            yield b" "

    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=drip())

    async def run() -> tuple[Any, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        got = await _read(handler, "Observation?patient=p9", budget=0.5)
        return got, loop.time() - start

    got, elapsed = asyncio.run(run())
    assert got.document is None and "in time" in (got.error or "")
    assert elapsed < 30  # the drip lasts 60 s; the budget ended it


def _padded_patient(size: int) -> dict[str, Any]:
    """The test Patient with a narrative of about ``size`` bytes (what a large EHR answer carries)."""
    p = patient()
    p["text"] = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">' + "x" * size + "</div>"}
    return p


@pytest.mark.parametrize(("cap", "read"), [(None, True), (20_000, False)])
def test_the_fhir_body_cap_is_a_setting(
    cap: int | None, read: bool, fhir: StubServer, tmp_path: Path, make_client: MakeClient
) -> None:
    """A 50 kB Patient is read under the default 8 MB cap and abandoned under a 20 kB one."""
    overrides = {"fhir_max_body_bytes": cap} if cap is not None else {}
    settings = app_settings(tmp_path, **overrides)
    assert settings.fhir_max_body_bytes == (cap or MAX_BODY_BYTES)
    fhir.routes = fhir_routes([_padded_patient(50_000)])
    prefetch = {k: v for k, v in full_prefetch().items() if k != "patient"}  # only the Patient is read
    body = hook_request("order-select", SELECT, prefetch, fhirServer=fhir.url)
    resp = make_client(settings).post("/cds-services/muscle-relaxant-dosing", json=body)
    assert len(fhir.requests_for("Patient")) == 1
    if read:
        assert resp.status_code == 200, resp.text
    else:
        assert resp.status_code == 412, resp.text
        assert "larger than 20000 bytes" in resp.text


def test_the_fhir_body_cap_must_be_positive() -> None:
    with pytest.raises(ValidationError, match="fhir_max_body_bytes"):
        Settings(fhir_max_body_bytes=0)
