"""The CDS Hooks HTTP endpoints: discovery, service calls and feedback, plus their wiring.

Bodies are read raw and parsed here, not by FastAPI, so that every malformed request gets the
spec's 400 with an OperationOutcome naming the field, instead of the native API's 422 format.
Authentication runs before anything else, including the 404 for an unknown service, so an
unauthenticated caller learns nothing about what we host.
"""

from __future__ import annotations

import json
import logging

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from engine.api.state import get_state
from engine.cdshooks.auth import AuthFailed, JwtVerifier
from engine.cdshooks.cors import install_cors
from engine.cdshooks.discovery import SERVICES, discovery_document
from engine.cdshooks.errors import CdsHooksError, Issue, bad_request, from_validation, outcome_response
from engine.cdshooks.models import FeedbackRequest
from engine.cdshooks.service import FetchLimits, call_service, parse_request
from engine.settings import Settings

log = logging.getLogger("cdsrules.cdshooks")


def _verifier(settings: Settings) -> JwtVerifier | None:
    if not settings.jwt_issuers:
        log.warning(
            "CDS Hooks client authentication is OFF (CDSRULES_JWT_ISSUERS is empty): any caller can use "
            "/cds-services. Configure the EHR's issuer and JWKS URL before connecting a real EHR."
        )
        return None
    log.info("CDS Hooks client authentication is ON for issuers %s", sorted(settings.jwt_issuers))
    return JwtVerifier(
        issuers=settings.jwt_issuers,
        algorithms=settings.jwt_algorithms,
        leeway_s=settings.jwt_leeway_s,
        max_lifetime_s=settings.jwt_max_lifetime_s,
        jwks_timeout_s=settings.jwks_timeout_s,
        jwks_cache_s=settings.jwks_cache_s,
        refresh_cooldown_s=settings.jwks_refresh_cooldown_s,
    )


async def _body(request: Request) -> object:
    raw = await request.body()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request("", f"malformed JSON: {exc}", "structure") from exc


def build_router(settings: Settings, verifier: JwtVerifier | None = None) -> APIRouter:
    base = settings.public_base_url.rstrip("/")
    limits = FetchLimits(settings.fhir_timeout_s, settings.fhir_budget_s)
    router = APIRouter(tags=["cds-hooks"])

    async def denied(request: Request, audiences: list[str]) -> Response | None:
        if verifier is None:
            return None
        try:
            await run_in_threadpool(verifier.verify, request.headers.get("authorization"), audiences)
        except AuthFailed as exc:
            log.warning("CDS Hooks client refused: %s", exc, extra={"path": request.url.path})
            return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return None

    def unknown(service_id: str) -> Response:
        issue = Issue("", f"no CDS service {service_id!r}; see GET /cds-services", "not-found")
        return outcome_response(CdsHooksError(404, [issue]))

    @router.get("/cds-services")
    async def discovery(request: Request) -> Response:
        refused = await denied(request, [f"{base}/cds-services"])
        return refused or JSONResponse(discovery_document())

    @router.post("/cds-services/{service_id}")
    async def service_call(service_id: str, request: Request) -> Response:
        refused = await denied(request, [f"{base}/cds-services/{service_id}"])
        if refused is not None:
            return refused
        service = SERVICES.get(service_id)
        if service is None:
            return unknown(service_id)
        try:
            req = parse_request(await _body(request))
            answer = await call_service(get_state(request), service, req, limits)
        except CdsHooksError as exc:
            return outcome_response(exc)
        return JSONResponse(answer)

    @router.post("/cds-services/{service_id}/feedback")
    async def feedback(service_id: str, request: Request) -> Response:
        endpoint = f"{base}/cds-services/{service_id}"
        refused = await denied(request, [f"{endpoint}/feedback", endpoint])
        if refused is not None:
            return refused
        if service_id not in SERVICES:
            return unknown(service_id)
        try:
            body = await _body(request)
            if not isinstance(body, dict):
                raise bad_request("", "the request body must be a JSON object", "structure")
            try:
                parsed = FeedbackRequest.model_validate(body)
            except ValidationError as exc:
                raise from_validation([dict(e) for e in exc.errors()]) from exc
        except CdsHooksError as exc:
            return outcome_response(exc)
        audit = get_state(request).audit
        stored = 0
        for item in parsed.feedback:
            stored += await run_in_threadpool(audit.record_feedback, service_id, item.stored())
        log.info("cds feedback", extra={"service": service_id, "items": len(parsed.feedback), "new": stored})
        return Response(status_code=200)

    return router


def install(app: FastAPI, settings: Settings) -> None:
    """Mount the CDS Hooks endpoints and CORS (call after the app's other middleware is added).

    The one JWT verifier (and its jti replay cache) is shared with the native /v1 API through
    ``app.state.jwt_verifier``, so a token replayed against either surface is refused.
    """
    verifier = _verifier(settings)
    app.state.jwt_verifier = verifier
    app.include_router(build_router(settings, verifier))
    install_cors(app, settings.cors_origins)
