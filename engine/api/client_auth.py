"""Client authentication for the native /v1 API: the same EHR JWTs as CDS Hooks, when configured.

With ``CDSRULES_JWT_ISSUERS`` set, every /v1 call needs ``Authorization: Bearer <jwt>`` signed by
an allow-listed issuer, with ``aud`` equal to the endpoint URL under the public base URL. With no
issuers configured authentication is off (embedded default; `cdsrules serve` then refuses a
non-loopback bind). Failures are a bare 401, as for CDS Hooks.
"""

from __future__ import annotations

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from engine.api.state import get_state
from engine.cdshooks.auth import AuthFailed, JwtVerifier


async def require_client(request: Request) -> None:
    verifier: JwtVerifier | None = getattr(request.app.state, "jwt_verifier", None)
    if verifier is None:
        return
    base = get_state(request).settings.public_base_url.rstrip("/")
    try:
        await run_in_threadpool(verifier.verify, request.headers.get("authorization"), [f"{base}{request.url.path}"])
    except AuthFailed as exc:
        raise HTTPException(401, "Unauthorized", headers={"WWW-Authenticate": "Bearer"}) from exc
