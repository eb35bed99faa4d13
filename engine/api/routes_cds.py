"""The CDS Hooks HTTP endpoints: discovery, service calls and feedback.

Bodies are read raw and parsed by ``engine.cdshooks.hook``, not by FastAPI, so that every malformed
request gets the spec's 400 with an OperationOutcome naming the field, instead of the native API's
422 format. Authentication (``ClientDep``, the same check and the same 401 as ``/v1``) runs before
anything else, including the 404 for an unknown service, so an unauthenticated caller learns
nothing about what we host. The decision itself is ``Decider.hook``: recorded before it is answered.
"""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from engine.api import strict_json
from engine.api.deps import DeciderDep, authenticate
from engine.cdshooks.discovery import callable_services, discovery_document
from engine.cdshooks.errors import CdsHooksError, Issue, outcome_response
from engine.cdshooks.hook import FetchLimits, gather, parse_context, parse_feedback, parse_request
from engine.settings import Settings

log = logging.getLogger("cdsrules.cdshooks")


async def _body(request: Request) -> object:
    raw = await request.body()
    try:
        return strict_json.loads(raw)
    except strict_json.JsonProblem as exc:
        raise CdsHooksError(400, [Issue("", p.message, "structure") for p in exc.problems]) from exc


def _unknown(service_id: str) -> Response:
    issue = Issue("", f"no CDS service {service_id!r}; see GET /cds-services", "not-found")
    return outcome_response(CdsHooksError(404, [issue]))


def build_router(settings: Settings) -> APIRouter:
    limits = FetchLimits(
        settings.fhir_timeout_s, settings.fhir_budget_s, settings.renal_lab_max_age_days, settings.fhir_max_body_bytes
    )
    router = APIRouter(tags=["cds-hooks"], dependencies=[Depends(authenticate)])
    services = callable_services()

    @router.get("/cds-services")
    async def discovery() -> Response:
        return JSONResponse(discovery_document(settings.cds_discovery))

    @router.post("/cds-services/{service_id}")
    async def service_call(service_id: str, request: Request, decider: DeciderDep) -> Response:
        started = time.perf_counter()
        service = services.get(service_id)
        if service is None:
            return _unknown(service_id)
        try:
            req = parse_request(await _body(request))
            ctx = parse_context(service, req)
            prefetch = await gather(req, ctx, limits)  # 412 when the Patient cannot be obtained
        except CdsHooksError as exc:
            return outcome_response(exc)
        # mapping, rules, cards and the audit write in one thread-pool hop: all of it is CPU or a
        # blocking database write, and each hop costs more than the rule engine itself
        decision_id, got = await run_in_threadpool(decider.hook, service, req, ctx, prefetch, started)
        log.info(
            "cds hook answered",
            extra={"hook": req.hook, "service": service.id, "decision_id": decision_id, "cards": got.cards},
        )
        return JSONResponse(got.response)

    @router.post("/cds-services/{service_id}/feedback")
    async def feedback(service_id: str, request: Request, decider: DeciderDep) -> Response:
        if service_id not in services:
            return _unknown(service_id)
        try:
            parsed = parse_feedback(await _body(request))
        except CdsHooksError as exc:
            return outcome_response(exc)
        stored = await run_in_threadpool(decider.feedback, service_id, parsed.feedback)
        log.info("cds feedback", extra={"service": service_id, "items": len(parsed.feedback), "new": stored})
        return Response(status_code=200)

    return router
