"""The FastAPI application: compile the rule pack once, open the audit store, mount the routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from engine import __version__
from engine.api import author, problems
from engine.api.body_limit import BodySizeLimit
from engine.api.routes_admin import router as admin_router
from engine.api.routes_v1 import router as v1_router
from engine.api.state import AppState
from engine.audit.store import AuditStore
from engine.authoring.reload import Reloader, load_engine
from engine.cdshooks import install as install_cds_hooks
from engine.observability import http as ops_http
from engine.ops import safety
from engine.runtime.registry import EngineRegistry
from engine.settings import Settings

log = logging.getLogger("cdsrules")


def build_state(settings: Settings) -> AppState:
    """Compile the pack and open the store; raises (and the app refuses to start) on any error."""
    safety.check(settings)  # the bind address is checked by `cdsrules serve`, which knows it
    engine = load_engine(settings.rules_dir)  # compile + clinical lint + examples: the gate every reload passes
    audit = AuditStore(settings.database_url, settings.audit_hash_key, settings.audit_store_inputs)
    audit.migrate()  # Alembic to head, under a lock: workers and replicas may start together
    registry = EngineRegistry(engine)
    return AppState(settings=settings, rules=registry, audit=audit, reloader=Reloader(registry, settings.rules_dir))


def create_app(settings: Settings | None = None, state: AppState | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not hasattr(app.state, "cds"):
            app.state.cds = build_state(settings)
            pack = app.state.cds.engine.pack
            log.info(
                "rule pack %s (%s) compiled: %d drugs, %d rules",
                pack.version,
                pack.digest,
                len(pack.drugs),
                len(pack.rules),
            )
        if app.state.cds.settings.reload_rules:
            app.state.cds.reloader.watch(app.state.cds.settings.reload_interval_s)
        yield
        app.state.cds.reloader.stop()
        app.state.cds.rules.close()
        app.state.cds.audit.dispose()

    app = FastAPI(
        title="cdsrules",
        version=__version__,
        description="Clinical decision support for oral baclofen and skeletal muscle relaxants.",
        lifespan=lifespan,
    )
    if state is not None:
        app.state.cds = state
    problems.install(app)

    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)

    app.include_router(v1_router)
    app.include_router(admin_router)  # /v1/admin/rules, /v1/admin/reload (bearer admin_token)
    author.install(app)  # /author: rule browser and patient form for rule authors

    ops_http.install(app)  # /healthz, /readyz, /metrics and per-request metrics + JSON access log
    install_cds_hooks(app, settings)  # /cds-services (CDS Hooks 2.0.1) and CORS, outermost

    return app
