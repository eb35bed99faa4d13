"""Typed FastAPI dependencies shared by every route: the app state, the decider, the caller.

``ClientDep`` is the one client-authentication check of both HTTP surfaces (``/v1`` and
``/cds-services``): with JWT issuers configured it verifies the bearer token against ``aud`` =
the URL that was called (under ``CDSRULES_PUBLIC_BASE_URL``), and refuses with the same bare 401
(empty body, ``WWW-Authenticate: Bearer``) everywhere; the reason goes to the log, never to the
caller. The dependencies are ``async`` on purpose: FastAPI runs a plain ``def`` dependency in the
thread pool, a hop that cost more CPU per request than the rule engine.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from engine.security.jwt import AuthFailed, Client
from engine.service.decisions import Decider
from engine.service.state import AppState

log = logging.getLogger("cdsrules.auth")


class ClientRefused(Exception):
    """Raised by ``authenticate``; ``engine.api.problems`` turns it into the bare 401."""


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.cds
    return state


async def state_dependency(request: Request) -> AppState:
    return get_state(request)


async def decider_dependency(request: Request) -> Decider:
    return get_state(request).decider


def audiences(base_url: str, path: str) -> list[str]:
    """The ``aud`` values a token for ``path`` may carry: the endpoint called (feedback: or its service)."""
    base = base_url.rstrip("/")
    out = [f"{base}{path}"]
    if path.endswith("/feedback"):
        out.append(f"{base}{path.removesuffix('/feedback')}")
    return out


async def authenticate(request: Request) -> Client | None:
    state = get_state(request)
    if state.verifier is None:
        return None
    aud = audiences(state.settings.public_base_url, request.url.path)
    try:
        return await run_in_threadpool(state.verifier.authenticate, request.headers.get("authorization"), aud)
    except AuthFailed as exc:
        log.warning("client refused: %s", exc, extra={"path": request.url.path})
        raise ClientRefused() from exc


StateDep = Annotated[AppState, Depends(state_dependency)]
DeciderDep = Annotated[Decider, Depends(decider_dependency)]
ClientDep = Annotated[Client | None, Depends(authenticate)]
