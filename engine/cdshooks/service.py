"""One CDS Hooks service call, end to end: validate, gather FHIR data, evaluate, audit, answer.

This is the thin adapter the issue asks for: pydantic parses the request, ``engine.fhir`` maps the
FHIR data to the native patient profile, ``plan`` applies the hook's semantics, the same
``Engine.evaluate`` as ``/v1/evaluate`` decides, and ``cards`` renders the answer. The decision is
written to the audit store before the response is returned; if that write fails the caller gets
503 and no advice.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from engine.api.state import AppState
from engine.audit.store import DecisionRecord
from engine.cdshooks.cards import build_cards
from engine.cdshooks.discovery import PREFETCH, Service
from engine.cdshooks.errors import bad_request, from_validation
from engine.cdshooks.fhirclient import FhirFetcher
from engine.cdshooks.models import (
    CONTEXTS,
    CdsResponse,
    HookRequest,
    OrderSelectContext,
    OrderSignContext,
    PatientViewContext,
)
from engine.cdshooks.plan import Evaluated, evaluate, plan
from engine.cdshooks.prefetch import PrefetchResult, resolve
from engine.fhir.bundle import ReferenceIndex, Unpacked, unpack
from engine.fhir.medications import med_order
from engine.fhir.profile import build_profile
from schemas.api import RulesetRef

log = logging.getLogger("cdsrules.cdshooks")


@dataclass(frozen=True)
class FetchLimits:
    timeout_s: float
    budget_s: float


def parse_request(body: Any) -> HookRequest:
    if not isinstance(body, dict):
        raise bad_request("", "the request body must be a JSON object", "structure")
    try:
        return HookRequest.model_validate(body)
    except ValidationError as exc:
        raise from_validation([dict(e) for e in exc.errors()]) from exc


def _merged(prefetch: PrefetchResult) -> Unpacked:
    return Unpacked(resources=prefetch.resources(), full_urls=prefetch.full_urls())


def _audit_record(
    decision_id: str,
    service: Service,
    req: HookRequest,
    patient_id: str,
    evaluated: list[Evaluated],
    response: dict[str, Any],
    prefetch: PrefetchResult,
    notes: list[str],
    ref: RulesetRef,
    started: float,
) -> DecisionRecord:
    fired: dict[tuple[str, str], dict[str, str]] = {}
    for ev in evaluated:
        for t in ev.response.trace:
            fired.setdefault((t.rule_id, t.version), {"rule_id": t.rule_id, "version": t.version})
    drugs = sorted({ev.target.ingredient for ev in evaluated})
    return DecisionRecord(
        id=decision_id,
        endpoint=f"/cds-services/{service.id}",
        ruleset_version=ref.version,
        ruleset_digest=ref.digest,
        drug=",".join(drugs)[:64] or None,
        rules_fired=list(fired.values()),
        response={
            **response,
            "evaluations": [
                {"order": ev.target.order.ref, "purpose": ev.target.purpose, **ev.response.model_dump(mode="json")}
                for ev in evaluated
            ],
            "notes": notes,
            "prefetch": prefetch.summary(),
        },
        latency_ms=round((time.perf_counter() - started) * 1000, 3),
        input_document={  # never the fhirAuthorization (its token), never raw prefetch
            "hook": req.hook,
            "hookInstance": req.hookInstance,
            "context": req.context,
            "requests": [ev.target.request.model_dump(mode="json") for ev in evaluated],
        },
        patient_ref=patient_id,
        hook=req.hook,
        hook_instance=req.hookInstance,
        service_id=service.id,
    )


async def call_service(state: AppState, service: Service, req: HookRequest, limits: FetchLimits) -> dict[str, Any]:
    """The cards for one call (``{"cards": []}`` when there is nothing to say); raises CdsHooksError."""
    started = time.perf_counter()
    if req.hook not in service.hooks:
        raise bad_request(
            "hook",
            f"service {service.id!r} is registered for {', '.join(service.hooks)}, not {req.hook!r}",
            "not-supported",
        )
    try:
        ctx = CONTEXTS[req.hook].model_validate(req.context)
    except ValidationError as exc:
        raise from_validation([dict(e) for e in exc.errors()], prefix="context") from exc

    fetcher = None
    if req.fhirServer:
        token = req.fhirAuthorization.access_token.get_secret_value() if req.fhirAuthorization else None
        fetcher = FhirFetcher(req.fhirServer, token, limits.timeout_s, limits.budget_s)
    try:
        prefetch = await resolve(PREFETCH, req.prefetch, ctx.patientId, fetcher)
    finally:
        if fetcher is not None:
            await fetcher.close()

    # Mapping, rules, cards and the audit write in one thread-pool hop: all of it is CPU or a
    # blocking database write, and each hop costs more than the rule engine itself.
    response, decision_id, n_cards = await run_in_threadpool(_decide, state, service, req, ctx, prefetch, started)
    log.info(
        "cds hook answered",
        extra={"hook": req.hook, "service": service.id, "decision_id": decision_id, "cards": n_cards},
    )
    return response


def _decide(
    state: AppState,
    service: Service,
    req: HookRequest,
    ctx: PatientViewContext,
    prefetch: PrefetchResult,
    started: float,
) -> tuple[dict[str, Any], str, int]:
    """Map, plan, evaluate, render and record one call (blocking: runs in the thread pool)."""
    merged = _merged(prefetch)
    profile = build_profile(merged)
    notes = [*profile.notes, *prefetch.remarks()]
    if profile.patient_id and profile.patient_id != ctx.patientId:
        notes.append(f"Patient resource id {profile.patient_id!r} differs from context.patientId {ctx.patientId!r}")
    drafts = []
    if isinstance(ctx, OrderSignContext):
        found = unpack(ctx.draftOrders)
        index = ReferenceIndex(found.resources + merged.resources, {**merged.full_urls, **found.full_urls})
        drafts = [med_order(r, index) for r in found.of_type("MedicationRequest")]
    selections = ctx.selections if isinstance(ctx, OrderSelectContext) else []
    decision_id = str(uuid.uuid4())
    # one lease for plan, evaluation and cards: a hot reload mid-call must not retire this engine
    with state.rules.lease() as engine:
        the_plan = plan(req.hook, selections, profile, drafts, engine)
        notes.extend(the_plan.notes)
        evaluated = evaluate(the_plan.targets, engine, decision_id)
        cards = build_cards(evaluated, profile, engine.pack, prefetch.unavailable(), notes, the_plan.unidentified)
        ref = engine.ruleset_ref
    response = CdsResponse(cards=cards).wire()
    record = _audit_record(decision_id, service, req, ctx.patientId, evaluated, response, prefetch, notes, ref, started)
    state.audit.record(record)
    return response, decision_id, len(cards)
