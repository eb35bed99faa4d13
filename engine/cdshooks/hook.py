"""One CDS Hooks service call, without HTTP and without the audit: parse, gather, answer.

``parse_request`` and ``parse_context`` validate what the EHR sent (a 400 naming the field
otherwise); ``gather`` resolves the prefetch (reading what is missing from ``fhirServer``, within
a time budget); ``answer`` maps the FHIR data to the native patient profile (``engine.fhir``),
applies the hook's semantics (``plan``), evaluates with the same ``Engine.evaluate`` as
``/v1/evaluate`` and renders the cards. ``engine.service.decisions.Decider.hook`` wraps ``answer``
with the engine lease and the audit record, which is written before anything is returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from engine.cdshooks.cards import build_cards
from engine.cdshooks.discovery import PREFETCH, Service
from engine.cdshooks.errors import bad_request, from_validation
from engine.cdshooks.fhirclient import MAX_BODY_BYTES, FhirFetcher
from engine.cdshooks.medrefs import counted, gaps, read_medications, unresolved
from engine.cdshooks.models import (
    CONTEXTS,
    CdsResponse,
    FeedbackRequest,
    HookRequest,
    OrderSelectContext,
    OrderSignContext,
    PatientViewContext,
)
from engine.cdshooks.plan import Evaluated, evaluate, plan
from engine.cdshooks.prefetch import PrefetchResult, resolve
from engine.fhir.bundle import ReferenceIndex, Unpacked, unpack
from engine.fhir.medications import MedOrder, dstu2_orders, med_order
from engine.fhir.profile import build_profile
from engine.runtime.caps import cap
from engine.runtime.engine import Engine
from schemas.api import RulesetRef


@dataclass(frozen=True)
class FetchLimits:
    timeout_s: float
    budget_s: float
    renal_max_age_days: int = 365  # CDSRULES_RENAL_LAB_MAX_AGE_DAYS
    max_body_bytes: int = MAX_BODY_BYTES  # CDSRULES_FHIR_MAX_BODY_BYTES


@dataclass(frozen=True)
class HookAnswer:
    """The wire response and everything the audit record of this call needs."""

    response: dict[str, Any]
    evaluated: list[Evaluated]
    notes: list[str]
    ruleset: RulesetRef
    card_rules: dict[str, tuple[str, str] | None] = field(default_factory=dict)  # card uuid -> (rule, version)

    @property
    def cards(self) -> int:
        return len(self.response["cards"])


def parse_request(body: Any) -> HookRequest:
    if not isinstance(body, dict):
        raise bad_request("", "the request body must be a JSON object", "structure")
    try:
        return HookRequest.model_validate(body)
    except ValidationError as exc:
        raise from_validation(exc, HookRequest) from exc


def parse_context(service: Service, req: HookRequest) -> PatientViewContext:
    if req.hook not in service.hooks:
        raise bad_request(
            "hook",
            f"service {service.id!r} is registered for {', '.join(service.hooks)}, not {req.hook!r}",
            "not-supported",
        )
    model = CONTEXTS[req.hook]
    try:
        return model.model_validate(req.context)
    except ValidationError as exc:
        raise from_validation(exc, model, prefix="context") from exc


async def gather(req: HookRequest, ctx: PatientViewContext, limits: FetchLimits) -> PrefetchResult:
    """The prefetch as sent, completed from ``fhirServer`` where keys are absent.

    Raises ``CdsHooksError`` (412) only when the Patient itself cannot be obtained; every other
    unavailable key becomes a "not checked" note on the answer.
    """
    fetcher = None
    if req.fhirServer:
        token = req.fhirAuthorization.access_token.get_secret_value() if req.fhirAuthorization else None
        fetcher = FhirFetcher(req.fhirServer, token, limits.timeout_s, limits.budget_s, max_bytes=limits.max_body_bytes)
    try:
        result = await resolve(PREFETCH, req.prefetch, ctx.patientId, fetcher)
        result.renal_max_age_days = limits.renal_max_age_days
        drafts = unpack(ctx.draftOrders) if isinstance(ctx, OrderSignContext) else Unpacked()
        index = ReferenceIndex(drafts.resources + result.resources(), {**result.full_urls(), **drafts.full_urls})
        pending = unresolved(_orders(result.resources(), drafts.resources), index)
        if pending:  # within the same fetcher, so within the call's time budget
            reads = await read_medications(list(pending), fetcher)
            result.referenced, result.reference_notes = reads.found, reads.why_not
        return result
    finally:
        if fetcher is not None:
            await fetcher.close()


def _orders(prefetched: list[dict[str, Any]], drafts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The orders whose drug this call needs, drafts first (they are what is being ordered)."""
    return [r for r in drafts if counted(r, draft=True)] + [r for r in prefetched if counted(r, draft=False)]


def answer(
    engine: Engine, req: HookRequest, ctx: PatientViewContext, prefetch: PrefetchResult, decision_id: str
) -> HookAnswer:
    """Map, plan, evaluate and render one call on a leased ``engine`` (blocking, CPU only)."""
    merged = Unpacked(resources=prefetch.resources(), full_urls=prefetch.full_urls())
    profile = build_profile(merged, prefetch.renal_max_age_days)
    notes = [*profile.notes, *prefetch.remarks()]
    if profile.patient_id and profile.patient_id != ctx.patientId:
        notes.append(f"Patient resource id {profile.patient_id!r} differs from context.patientId {ctx.patientId!r}")
    drafts: list[MedOrder] = []
    # what the per-call cap, or a resource this service does not read, left unchecked: on the
    # "Not checked" card
    unchecked: list[str] = dstu2_orders(merged.resources)
    found = unpack(ctx.draftOrders) if isinstance(ctx, OrderSignContext) else Unpacked()
    index = ReferenceIndex(found.resources + merged.resources, {**merged.full_urls, **found.full_urls})
    pending = unresolved(_orders(merged.resources, found.resources), index)
    unchecked.extend(gaps(pending, prefetch.reference_notes))
    if isinstance(ctx, OrderSignContext):
        unchecked.extend(dstu2_orders(found.resources))
        drafts, over = cap([med_order(r, index) for r in found.of_type("MedicationRequest")], "draft orders")
        if over:  # before planning: each draft is a co-medication of every other one
            unchecked.append(over)
    selections = ctx.selections if isinstance(ctx, OrderSelectContext) else []
    the_plan = plan(req.hook, selections, profile, drafts, engine)
    notes.extend(the_plan.notes)
    targets, over = cap(the_plan.targets, "orders or medications")  # bounded work per call
    if over:
        unchecked.append(over)
    evaluated = evaluate(targets, engine, decision_id)
    cards = build_cards(
        evaluated,
        profile,
        engine.pack,
        prefetch.unavailable(profile.patient.sex) + profile.stale,
        notes,
        [*the_plan.unidentified, *unchecked],
        the_plan.other_route,
    )
    rules = {c.uuid: c._rule for c in cards}
    return HookAnswer(CdsResponse(cards=cards).wire(), evaluated, notes, engine.ruleset_ref, rules)


def parse_feedback(body: Any) -> FeedbackRequest:
    if not isinstance(body, dict):
        raise bad_request("", "the request body must be a JSON object", "structure")
    try:
        return FeedbackRequest.model_validate(body)
    except ValidationError as exc:
        raise from_validation(exc, FeedbackRequest) from exc
