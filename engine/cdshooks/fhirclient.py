"""Fetch what the EHR did not prefetch, from its FHIR server, within a time budget.

The spec lets a CDS Service read the EHR's FHIR server with the bearer token from
``fhirAuthorization``. Each read has its own timeout and all reads of one call share a deadline,
so a slow server costs at most the budget: the deadline covers the whole exchange (headers and
a slow-drip body alike), and a body is read in chunks and abandoned once it passes the size cap,
so one call can neither hold a worker nor fill its memory. Every URL, the first and each page's
``next`` link alike, is checked against ``fhirServer`` after dot segments are resolved, and the
token is attached per request only to URLs under it (never sent to another host or another path
named in a ``next`` link); redirects are not followed, and neither the token nor response bodies
are logged: failures are reported by status code and exception type.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from posixpath import normpath
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from engine.fhir.bundle import is_bundle, is_operation_outcome, outcome_summary
from engine.fhir.values import as_list, obj, text

log = logging.getLogger("cdsrules.cdshooks.fhir")

MAX_PAGES = 5
MAX_BODY_BYTES = 8_000_000  # default of CDSRULES_FHIR_MAX_BODY_BYTES: far above a real page of labs, far below harm
_CHUNK = 65_536


class _TooLarge(Exception):
    """A response body passed the size cap while streaming."""


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
        max_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.base = base_url.rstrip("/")
        # The token is never a client default: ``_get`` adds it to each request that passes
        # ``_under_base``, so no code path can send it anywhere else.
        self._token = token
        self._timeout = timeout_s
        self._max_bytes = max_bytes
        self._deadline = asyncio.get_running_loop().time() + budget_s
        self._client = httpx.AsyncClient(
            headers={"Accept": "application/fhir+json, application/json"},
            follow_redirects=False,
            transport=transport,
        )

    async def __aenter__(self) -> FhirFetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._client.aclose()

    def _remaining(self) -> float:
        return self._deadline - asyncio.get_running_loop().time()

    def _under_base(self, url: str) -> bool:
        return under_base(self.base, url)

    async def _get(self, url: str) -> Fetched:
        if not self._under_base(url):
            log.warning("FHIR URL outside fhirServer not read", extra={"host": urlsplit(url).netloc})
            return Fetched(None, "a link outside fhirServer was not followed")
        remaining = self._remaining()
        if remaining <= 0:
            return Fetched(None, "time budget for FHIR reads used up")
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        try:
            status, raw = await asyncio.wait_for(
                self._fetch(url, headers, min(self._timeout, remaining)), timeout=remaining
            )
        except (TimeoutError, httpx.TimeoutException):
            return Fetched(None, "FHIR server did not answer in time")
        except _TooLarge:
            return Fetched(None, f"FHIR response larger than {self._max_bytes} bytes; not read")
        except httpx.HTTPError as exc:
            return Fetched(None, f"FHIR server unreachable ({type(exc).__name__})")
        return _parsed(status, raw)

    async def _fetch(self, url: str, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
        """Status and body, read in chunks; stops as soon as the body passes the cap."""
        async with self._client.stream("GET", url, headers=headers, timeout=timeout) as resp:
            declared = resp.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self._max_bytes:
                raise _TooLarge
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.aiter_bytes(_CHUNK):
                size += len(chunk)
                if size > self._max_bytes:
                    raise _TooLarge
                chunks.append(chunk)
            return resp.status_code, b"".join(chunks)

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
            if not self._under_base(nxt):
                # A page fetched from the server may name another host as well as the first one.
                log.warning("next link outside fhirServer not followed", extra={"host": urlsplit(nxt).netloc})
                return {**bundle, "entry": entries}, "more pages outside fhirServer were not read"
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


def _parsed(status: int, raw: bytes) -> Fetched:
    try:
        body: Any = json.loads(raw)
    except (ValueError, RecursionError):
        body = None
    if status in (404, 410):
        return Fetched(None, f"not found on the FHIR server (HTTP {status})", not_found=True)
    if status != 200:
        why = f": {outcome_summary([body])}" if is_operation_outcome(body) else ""
        return Fetched(None, f"FHIR server answered HTTP {status}{why}")
    if not isinstance(body, dict):
        return Fetched(None, "FHIR server answered with something that is not a FHIR JSON resource")
    return Fetched(body)


def _clean_path(path: str) -> str | None:
    """The path with percent-escapes decoded and dot segments resolved, or None when it escapes root."""
    decoded = unquote(path) or "/"
    if "\\" in decoded:
        return None  # some servers read a backslash as a separator; never guess
    resolved = normpath(decoded)
    resolved = "/" + resolved.lstrip("/")  # normpath keeps a leading "//"
    return resolved


def under_base(base_url: str, url: str) -> bool:
    """Whether ``url`` is ``base_url`` or below it: same scheme, host and port, path inside its path.

    Scheme and host compare case-insensitively; the path is compared after dot segments and
    percent-escapes are resolved, so ``/fhir/../other`` and ``/fhir/%2e%2e/other`` are outside.
    """
    base, target = urlsplit(base_url), urlsplit(url)
    if target.username is not None or target.password is not None:
        return False
    if (base.scheme.lower(), base.hostname, base.port) != (target.scheme.lower(), target.hostname, target.port):
        return False
    base_path, target_path = _clean_path(base.path), _clean_path(target.path)
    if base_path is None or target_path is None:
        return False
    return (target_path.rstrip("/") + "/").startswith(base_path.rstrip("/") + "/")
