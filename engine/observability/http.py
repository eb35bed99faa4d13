"""The operational surface of the app: liveness, readiness, metrics, and per-request telemetry.

Load balancers and orchestrators need two different questions answered: ``/healthz`` "is the
process alive?" (restart it if not) and ``/readyz`` "can it give recorded advice right now?"
(rules compiled, audit database reachable with its tables; take it out of rotation if not).
``/readyz`` also names the worker process, so a multi-worker deployment can be seen to spread load.

The middleware is plain ASGI rather than ``BaseHTTPMiddleware`` so it sees the final status of
every response, including errors raised inside other middleware, and labels metrics with the
route template, never the raw path.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.observability import metrics
from engine.observability.logs import begin_request, bound, end_request

access_log = logging.getLogger("cdsrules.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

router = APIRouter(tags=["ops"])


@router.get("/healthz")
def healthz() -> dict[str, Any]:
    """Alive: the process answers. Says nothing about the database on purpose."""
    return {"status": "ok", "pid": os.getpid()}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """Ready: rules compiled in this worker and the audit store reachable with its tables, and writable."""
    state = getattr(request.app.state, "cds", None)
    if state is None:
        return JSONResponse({"status": "not-ready", "rules": None, "database": "unknown"}, status_code=503)
    reachable = state.audit.ping()
    db = reachable and state.audit.writable()  # disk full or read-only: every decision would be a 503
    pack = state.engine.pack
    body = {
        "status": "ready" if db else "not-ready",
        "rules": {
            "version": pack.version,
            "digest": pack.digest,
            "drugs": sorted(pack.drugs),
            "terminology": [s.as_dict() for s in pack.terminology.provenance],
        },
        "database": "ok" if db else ("not-writable" if reachable else "unavailable"),
        "backend": state.audit.backend,
        "worker_pid": os.getpid(),
    }
    return JSONResponse(body, status_code=200 if db else 503)


@router.get("/metrics", include_in_schema=False)
def prometheus_metrics() -> Response:
    content, media_type = metrics.render()
    return Response(content, media_type=media_type)


class TelemetryMiddleware:
    """Counts and times every HTTP request, tags it with a request id, writes one access log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        request_id = given if given and _REQUEST_ID.match(given) else uuid.uuid4().hex
        token = begin_request(request_id)
        status = 500  # if the app dies before starting a response, that is what the client sees
        started = time.perf_counter()

        async def send_with_ids(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                decision_id = bound().get("decision_id")
                if decision_id:
                    headers.append((b"x-decision-id", decision_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_ids)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            endpoint = str(getattr(route, "path", "")) or "unmatched"
            method = str(scope.get("method", ""))
            metrics.observe_request(endpoint, method, status, elapsed)
            access_log.info(
                "%s %s %d",
                method,
                endpoint,
                status,
                extra={
                    "method": method,
                    "endpoint": endpoint,
                    "status": status,
                    "outcome": metrics.outcome_of(status),
                    "duration_ms": round(elapsed * 1000, 3),
                },
            )
            end_request(token)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def install(app: FastAPI) -> None:
    """Mount the ops routes and the telemetry middleware (outermost, so it sees every status)."""
    app.include_router(router)
    app.add_middleware(TelemetryMiddleware)
