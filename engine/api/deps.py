"""Typed FastAPI dependencies shared by every route: the app state, the decider, the caller.

``ClientDep`` is the one client-authentication check of both HTTP surfaces (``/v1`` and
``/cds-services``): with JWT issuers configured it verifies the bearer token against ``aud`` =
the URL that was called (under ``CDSRULES_PUBLIC_BASE_URL``), and refuses with the same bare 401
(empty body, ``WWW-Authenticate: Bearer``) everywhere; the reason goes to the log, never to the
caller. The dependencies are ``async`` on purpose: FastAPI runs a plain ``def`` dependency in the
thread pool, a hop that cost more CPU per request than the rule engine.

``OperatorDep`` guards what only the deployment's operator may read: the audit trail
(``/v1/decisions*``), which holds every client's decisions and, with input storage on, their
inputs. With client authentication on, an EHR's JWT is not enough: the caller must present the
operator credential (``CDSRULES_ADMIN_TOKEN``) as its bearer token; with authentication off the
service is bound to loopback and the trail is as open as the rest of it.
"""

from __future__ import annotations

import hmac
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


def operator_token_matches(state: AppState, authorization: str | None) -> bool:
    """Whether ``authorization`` is ``Bearer <CDSRULES_ADMIN_TOKEN>`` (constant-time; False when unset)."""
    secret = state.settings.admin_token
    expected = secret.get_secret_value() if secret is not None else ""
    scheme, _, given = (authorization or "").partition(" ")
    if not expected or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


async def require_operator(request: Request) -> None:
    state = get_state(request)
    if state.verifier is None:
        return
    if not operator_token_matches(state, request.headers.get("authorization")):
        why = "needs the operator token" if state.settings.admin_token else "is closed: CDSRULES_ADMIN_TOKEN is unset"
        log.warning("client refused: the audit trail %s", why, extra={"path": request.url.path})
        raise ClientRefused()


OperatorDep = Depends(require_operator)
