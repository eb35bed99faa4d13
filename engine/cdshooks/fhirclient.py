"""Fetch what the EHR did not prefetch, from its FHIR server, within a time budget.

The spec lets a CDS Service read the EHR's FHIR server with the bearer token from
``fhirAuthorization``. Each read has its own timeout and all reads of one call share a deadline,
so a slow server costs at most the budget. The token is sent only to URLs under ``fhirServer``
(never to another host named in a ``next`` link), redirects are not followed, and neither the
token nor response bodies are logged: failures are reported by status code and exception type.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from engine.fhir.bundle import is_bundle, is_operation_outcome, outcome_summary
from engine.fhir.values import as_list, obj, text

log = logging.getLogger("cdsrules.cdshooks.fhir")

MAX_PAGES = 5


@dataclass(frozen=True)
class Fetched:
    document: Any | None  # parsed JSON, or None when the read failed
    error: str | None = None  # why, in words safe to show and log
    note: str | None = None  # the document is usable but incomplete (a later page failed)
    not_found: bool = False  # HTTP 404/410 on a read: the resource does not exist


class FhirFetcher:
    """One per CDS Hooks call; ``close`` (or ``async with``) when done."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        timeout_s: float,
        budget_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base = base_url.rstrip("/")
        headers = {"Accept": "application/fhir+json, application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._timeout = timeout_s
        self._deadline = asyncio.get_running_loop().time() + budget_s
        self._client = httpx.AsyncClient(headers=headers, follow_redirects=False, transport=transport)

    async def __aenter__(self) -> FhirFetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._client.aclose()

    def _remaining(self) -> float:
        return self._deadline - asyncio.get_running_loop().time()

    def _under_base(self, url: str) -> bool:
        base, target = urlsplit(self.base), urlsplit(url)
        same_origin = (base.scheme, base.netloc) == (target.scheme, target.netloc)
        return same_origin and (target.path + "/").startswith(base.path.rstrip("/") + "/")

    async def _get(self, url: str) -> Fetched:
        remaining = self._remaining()
        if remaining <= 0:
            return Fetched(None, "time budget for FHIR reads used up")
        try:
            resp = await self._client.get(url, timeout=min(self._timeout, remaining))
        except httpx.TimeoutException:
            return Fetched(None, "FHIR server did not answer in time")
        except httpx.HTTPError as exc:
            return Fetched(None, f"FHIR server unreachable ({type(exc).__name__})")
        try:
            body: Any = resp.json()
        except ValueError:
            body = None
        if resp.status_code in (404, 410):
            return Fetched(None, f"not found on the FHIR server (HTTP {resp.status_code})", not_found=True)
        if resp.status_code != 200:
            why = f": {outcome_summary([body])}" if is_operation_outcome(body) else ""
            return Fetched(None, f"FHIR server answered HTTP {resp.status_code}{why}")
        if not isinstance(body, dict):
            return Fetched(None, "FHIR server answered with something that is not a FHIR JSON resource")
        return Fetched(body)

    async def read(self, relative: str) -> Fetched:
        """GET ``{fhirServer}/{relative}``, then follow searchset ``next`` links under the same base."""
        first = await self._get(f"{self.base}/{relative.lstrip('/')}")
        if first.document is None or not is_bundle(first.document):
            return first
        if enough(relative, first.document):
            return first
        document, note = await self.complete(first.document)
        return Fetched(document, note=note)

    async def read_many(self, relatives: dict[str, str]) -> dict[str, Fetched]:
        keys = list(relatives)
        results = await asyncio.gather(*(self.read(relatives[k]) for k in keys))
        return dict(zip(keys, results, strict=True))

    async def complete(self, bundle: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """Follow ``next`` links of a prefetched (paginated) Bundle; the newer spec allows them."""
        nxt = next_link(bundle)
        if nxt is None:
            return bundle, None
        if not self._under_base(nxt):
            log.warning("next link outside fhirServer not followed", extra={"host": urlsplit(nxt).netloc})
            return bundle, "more pages outside fhirServer were not read; only the first page was used"
        entries = list(as_list(bundle.get("entry")))
        page = bundle
        for _ in range(MAX_PAGES - 1):
            nxt = next_link(page)
            if nxt is None:
                break
            got = await self._get(nxt)
            if got.document is None or not is_bundle(got.document):
                return {**bundle, "entry": entries}, f"later pages unavailable: {got.error}"
            page = got.document
            entries.extend(as_list(page.get("entry")))
        return {**bundle, "entry": entries}, None


def enough(relative: str, bundle: dict[str, Any]) -> bool:
    """True when a search asked for ``_count=n`` and the first page holds n entries.

    ``_count=1&_sort=-date`` asks for the newest result only; following ``next`` would read the
    patient's whole history (16 extra reads on one sandbox call) for entries that are not used.
    """
    for part in urlsplit(relative).query.split("&"):
        name, _, value = part.partition("=")
        if name == "_count" and value.isdigit():
            matches = [e for e in as_list(bundle.get("entry")) if obj(obj(e).get("search")).get("mode") != "include"]
            return len(matches) >= int(value)
    return False


def next_link(bundle: dict[str, Any]) -> str | None:
    for link in as_list(bundle.get("link")):
        link = obj(link)
        if text(link.get("relation")) == "next" and text(link.get("url")):
            return text(link.get("url"))
    return None
