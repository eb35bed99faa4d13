"""Defences against a web page that points the user's browser at this service.

A browser sends a "simple" cross-site POST (``Content-Type: text/plain``) without a CORS
preflight, so any page could make a loopback service evaluate and fetch from a ``fhirServer``
of its choosing; and DNS rebinding lets a page's own host name resolve to 127.0.0.1, so it could
read answers too. With client authentication on, a forged request carries no JWT and is refused
anyway; with it off (loopback only): a POST with a body to ``/v1/evaluate`` or ``/cds-services`` must
declare it JSON (415 otherwise; a browser cannot send that cross-site without a preflight,
which CORS refuses), and the ``Host`` header must name loopback or the
configured ``CDSRULES_PUBLIC_BASE_URL`` host or one of ``CDSRULES_ALLOWED_HOSTS`` (421 otherwise).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from engine.service.safety import is_loopback

JSON_TYPES = ("application/json", "application/fhir+json")
GUARDED = ("/v1/evaluate", "/cds-services")  # the endpoints that evaluate (and fetch from fhirServer)


def _host_name(host: str) -> str:
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class BrowserGuard:
    def __init__(self, app: ASGIApp, public_base_url: str, allowed_hosts: list[str]) -> None:
        self.app = app
        self.hosts = {(urlsplit(public_base_url).hostname or "").lower(), *(h.lower() for h in allowed_hosts)}

    async def _refuse(self, send: Send, status: int, title: str) -> None:
        body = json.dumps({"status": status, "title": title}).encode()
        headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        state = getattr(scope["app"].state, "cds", None)
        if state is not None and state.verifier is None:
            host = _host_name(headers.get(b"host", b"").decode("latin-1").strip().lower())
            if host and host not in self.hosts and not is_loopback(host):
                await self._refuse(
                    send, 421, f"Host {host!r} is not this service (authentication is off: loopback only)"
                )
                return
        if scope["method"] == "POST" and scope["path"].startswith(GUARDED):
            ctype = headers.get(b"content-type", b"").decode("latin-1").split(";", 1)[0].strip().lower()
            if ctype not in JSON_TYPES:
                await self._refuse(send, 415, f"Content-Type must be application/json, not {ctype or 'missing'!r}")
                return
        await self.app(scope, receive, send)
