"""With client authentication on, the service's self-description is for the operator only.

``/metrics`` (decision counts per rule), ``/openapi.json`` and ``/docs`` (every route and
parameter) and ``/author`` (the rule browser) were open to anyone who could reach the service
even when every EHR call needed a signed JWT. With authentication on they need the operator
credential (``Authorization: Bearer <CDSRULES_ADMIN_TOKEN>``; a Prometheus scrape job can send
it); refused calls get the same bare 401 as every other surface. ``/healthz`` and ``/readyz``
stay open: orchestrators probe them without credentials, and they carry no patient data.
With authentication off the service is bound to loopback and these stay as open as the rest.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from engine.api.deps import operator_token_matches

OPERATOR_PREFIXES = ("/metrics", "/openapi.json", "/docs", "/redoc", "/author")


class OperatorOnly:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(OPERATOR_PREFIXES):
            state = getattr(scope["app"].state, "cds", None)
            if state is not None and state.verifier is not None:
                header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
                if not operator_token_matches(state, header):
                    await send(
                        {"type": "http.response.start", "status": 401, "headers": [(b"www-authenticate", b"Bearer")]}
                    )
                    await send({"type": "http.response.body", "body": b""})
                    return
        await self.app(scope, receive, send)
