"""Native JSON API: ``POST /v1/evaluate`` and the audit read-back."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from starlette.concurrency import run_in_threadpool

from engine.api.client_auth import require_client
from engine.api.state import AppState, EngineDep, StateDep
from engine.audit.store import DecisionRecord
from engine.runtime.engine import Engine
from schemas.api import EvaluateRequest, EvaluateResponse

router = APIRouter(prefix="/v1", tags=["native"], dependencies=[Depends(require_client)])


@router.post("/evaluate", response_model=EvaluateResponse, response_model_exclude_none=False)
async def evaluate(body: EvaluateRequest, state: StateDep, engine: EngineDep) -> Response:
    # One thread-pool hop for the blocking part (rules + audit write); the answer is serialised here
    # and returned as bytes, so FastAPI does not validate and encode it a second time.
    content = await run_in_threadpool(decide, body, state, engine)
    return Response(content, media_type="application/json")


def decide(body: EvaluateRequest, state: AppState, engine: Engine) -> bytes:
    """Evaluate, record the decision, and return the JSON answer; raises before anything is returned."""
    started = time.perf_counter()
    decision_id = str(uuid.uuid4())
    resp = engine.evaluate(body, decision_id=decision_id)  # leased: a reload cannot close it under us
    content = resp.__pydantic_serializer__.to_json(resp)
    state.audit.record(
        DecisionRecord(
            id=decision_id,
            endpoint="/v1/evaluate",
            ruleset_version=resp.ruleset.version,
            ruleset_digest=resp.ruleset.digest,
            drug=resp.drug.name,
            rules_fired=[{"rule_id": t.rule_id, "version": t.version} for t in resp.trace],
            response=resp.model_dump(mode="json"),
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            input_document=body.model_dump(mode="json"),
        )
    )
    return content


@router.get("/decisions/{decision_id}")
def get_decision(decision_id: str, state: StateDep) -> dict[str, Any]:
    row = state.audit.get(decision_id)
    if row is None:
        raise HTTPException(404, f"no decision {decision_id}")
    return row


@router.get("/decisions")
def list_decisions(
    state: StateDep,
    since: dt.datetime | None = None,
    rule_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: str | None = None,
) -> dict[str, Any]:
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=dt.UTC)
    rows = state.audit.list(since=since, rule_id=rule_id, limit=limit, after=after)
    return {"items": rows, "next_after": rows[-1]["decision_id"] if len(rows) == limit else None}
