"""Every decision, whichever surface asked: lease the engine, evaluate, record, and only then answer.

The clinical-safety invariant "every decision is in the audit log before the response goes out"
lives here once, for ``/v1/evaluate`` and for CDS Hooks: each method returns its answer only after
``AuditStore.record`` committed the decision, and raises (``AuditError``, ``EngineError``,
``InputError``) before anything is returned otherwise. The engine is leased for the whole call, so
a hot reload in the middle can neither close it nor mix two packs in one answer. Methods block
(rules are CPU, the audit write is a database commit): adapters run them off the event loop.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter

from engine.audit.store import AuditStore, CardShown, DecisionRecord
from engine.cdshooks.discovery import Service
from engine.cdshooks.explain_link import add_links
from engine.cdshooks.hook import HookAnswer, answer
from engine.cdshooks.models import FeedbackItem, HookRequest, PatientViewContext
from engine.cdshooks.prefetch import PrefetchResult
from engine.runtime.registry import EngineRegistry
from schemas.api import EvaluateRequest, EvaluateResponse

NATIVE_ENDPOINT = "/v1/evaluate"
_RESPONSE_JSON = TypeAdapter(EvaluateResponse)


@dataclass(frozen=True)
class NativeAnswer:
    decision_id: str
    body: bytes  # the JSON answer, serialised once
    response: EvaluateResponse


class Decider:
    def __init__(self, rules: EngineRegistry, audit: AuditStore, explain: tuple[str, str] | None = None) -> None:
        self.rules = rules
        self.audit = audit
        self.explain = explain  # (public base URL, signing key) for the cards' explanation links

    def native(self, req: EvaluateRequest, endpoint: str = NATIVE_ENDPOINT) -> NativeAnswer:
        started = time.perf_counter()
        decision_id = str(uuid.uuid4())
        with self.rules.lease() as engine:
            resp = engine.evaluate(req, decision_id=decision_id)
        body = _RESPONSE_JSON.dump_json(resp)
        self.audit.record(
            DecisionRecord(
                id=decision_id,
                endpoint=endpoint,
                ruleset_version=resp.ruleset.version,
                ruleset_digest=resp.ruleset.digest,
                drug=resp.drug.name,
                rules_fired=[{"rule_id": t.rule_id, "version": t.version} for t in resp.trace],
                response=resp.model_dump(mode="json"),
                latency_ms=_ms(started),
                input_document=req.model_dump(mode="json"),
            )
        )
        return NativeAnswer(decision_id, body, resp)

    def hook(
        self, service: Service, req: HookRequest, ctx: PatientViewContext, prefetch: PrefetchResult, started: float
    ) -> tuple[str, HookAnswer]:
        """The decision id and the cards of one CDS Hooks call, recorded first."""
        decision_id = str(uuid.uuid4())
        with self.rules.lease() as engine:  # one lease for plan, evaluation and cards
            got = answer(engine, req, ctx, prefetch, decision_id)
        if self.explain is not None:
            add_links(got.response.get("cards", []), *self.explain, decision_id)
        self.audit.record(_hook_record(decision_id, service, req, ctx, got, prefetch, started))
        return decision_id, got

    def feedback(self, service_id: str, items: list[FeedbackItem]) -> int:
        """Store each feedback item once (idempotent); the number that were new."""
        return sum(self.audit.record_feedback(service_id, item.stored()) for item in items)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _hook_record(
    decision_id: str,
    service: Service,
    req: HookRequest,
    ctx: PatientViewContext,
    got: HookAnswer,
    prefetch: PrefetchResult,
    started: float,
) -> DecisionRecord:
    fired: dict[tuple[str, str], dict[str, str]] = {}
    for ev in got.evaluated:
        for t in ev.response.trace:
            fired.setdefault((t.rule_id, t.version), {"rule_id": t.rule_id, "version": t.version})
    drugs = sorted({ev.target.ingredient for ev in got.evaluated})
    response: dict[str, Any] = {
        **got.response,
        "evaluations": [
            {"order": ev.target.order.ref, "purpose": ev.target.purpose, **ev.response.model_dump(mode="json")}
            for ev in got.evaluated
        ],
        "notes": got.notes,
        "prefetch": prefetch.summary(),
    }
    return DecisionRecord(
        id=decision_id,
        endpoint=f"/cds-services/{service.id}",
        ruleset_version=got.ruleset.version,
        ruleset_digest=got.ruleset.digest,
        drug=",".join(drugs)[:64] or None,
        rules_fired=list(fired.values()),
        response=response,
        latency_ms=_ms(started),
        input_document={  # never the fhirAuthorization (its token), never raw prefetch
            "hook": req.hook,
            "hookInstance": req.hookInstance,
            "context": req.context,
            "requests": [ev.target.request.model_dump(mode="json") for ev in got.evaluated],
        },
        patient_ref=ctx.patientId,
        hook=req.hook,
        hook_instance=req.hookInstance,
        service_id=service.id,
        cards=tuple(_shown(c, got.card_rules.get(str(c["uuid"]))) for c in got.response["cards"]),
    )


def _shown(card: dict[str, Any], rule: tuple[str, str] | None) -> CardShown:
    topic = (card.get("source") or {}).get("topic") or {}
    return CardShown(
        uuid=str(card["uuid"]),
        severity=str(card["indicator"]),
        topic=str(topic.get("code", "card")),
        has_suggestion=bool(card.get("suggestions")),
        rule_id=rule[0] if rule else None,
        rule_version=rule[1] if rule else None,
    )
