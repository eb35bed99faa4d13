"""The FastAPI application: mount the routes on a built ``AppState`` (``engine.service.state``).

Two explicit entry points: ``create_app(settings)`` builds the state in its lifespan (what a
uvicorn/gunicorn worker runs), ``create_app(settings, state)`` serves a state built beforehand
(``cdsrules serve`` with one worker, and tests that share one prepared pack).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from engine import __version__
from engine.api import author, problems
from engine.api.body_limit import BodySizeLimit
from engine.api.browser_guard import BrowserGuard
from engine.api.cors import install_cors
from engine.api.explanations import router as explanations_router
from engine.api.json_body import install_schemas
from engine.api.operator_paths import OperatorOnly
from engine.api.routes_admin import router as admin_router
from engine.api.routes_cds import build_router as cds_router
from engine.api.routes_v1 import router as v1_router
from engine.observability import http as ops_http
from engine.service.state import AppState, build_state
from engine.settings import Settings
from schemas.api import EvaluateRequest

log = logging.getLogger("cdsrules")


def _announce_auth(state: AppState) -> None:
    if state.verifier is None:
        log.warning(
            "client authentication is OFF (CDSRULES_JWT_ISSUERS is empty): any caller can use /v1 and "
            "/cds-services. Configure the EHR's issuer and JWKS URL before connecting a real EHR."
        )
    else:
        log.info("client authentication is ON for issuers %s", sorted(state.settings.jwt_issuers))


def create_app(settings: Settings | None = None, state: AppState | None = None) -> FastAPI:
    settings = state.settings if state is not None else (settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if state is None:
            # A worker never migrates when the server did it before forking (``migrate_on_start``
            # off): a replacement started during a database outage then starts not-ready and its
            # ``/readyz`` turns 200 once the database answers, instead of failing to boot.
            app.state.cds = build_state(settings, migrate=settings.migrate_on_start)
        cds: AppState = app.state.cds
        _announce_auth(cds)
        if cds.settings.reload_rules:
            cds.reloader.watch(cds.settings.reload_interval_s)
        yield
        cds.close()

    app = FastAPI(
        title="cdsrules",
        version=__version__,
        description="Clinical decision support for oral baclofen and skeletal muscle relaxants.",
        lifespan=lifespan,
    )
    if state is not None:
        app.state.cds = state
    problems.install(app)

    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, body_timeout_s=settings.body_timeout_s)

    app.include_router(v1_router)
    install_schemas(app, [EvaluateRequest])  # /v1/evaluate reads its body itself: document it
    app.include_router(admin_router)  # /v1/admin/rules, /v1/admin/reload (bearer admin_token)
    app.include_router(cds_router(settings))  # /cds-services (CDS Hooks 2.0.1)
    app.include_router(explanations_router)  # the cards' explanation links (signed, no token)
    author.install(app)  # /author: rule browser and patient form for rule authors

    ops_http.install(app)  # /healthz, /readyz, /metrics and per-request metrics + JSON access log
    app.add_middleware(
        BrowserGuard, public_base_url=settings.public_base_url, allowed_hosts=settings.allowed_hosts
    )  # JSON POSTs; Host with auth off
    app.add_middleware(OperatorOnly)  # with auth on: /metrics, /docs, /openapi.json, /author need the operator
    install_cors(app, settings.cors_origins)  # outermost, so every response a browser sees has the headers
    return app
