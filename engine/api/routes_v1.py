"""Native JSON API: ``POST /v1/evaluate`` (an EHR client) and the audit read-back (the operator only)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from starlette.concurrency import run_in_threadpool

from engine.api.deps import DeciderDep, OperatorDep, StateDep, authenticate
from engine.api.json_body import PROBLEM_RESPONSES, body_of, documented
from engine.audit.explain import explain
from engine.audit.pack_archive import PackArchive
from schemas.api import EvaluateRequest, EvaluateResponse

router = APIRouter(prefix="/v1", tags=["native"])

# read by engine.api.json_body (strict JSON, after authentication), not by FastAPI
EvaluateBody = Annotated[EvaluateRequest, Depends(body_of(EvaluateRequest))]


@router.post(
    "/evaluate",
    dependencies=[Depends(authenticate)],
    response_model=EvaluateResponse,
    response_model_exclude_none=False,
    openapi_extra=documented(EvaluateRequest),
    responses=PROBLEM_RESPONSES,
)
async def evaluate(body: EvaluateBody, decider: DeciderDep) -> Response:
    # one thread-pool hop for the blocking part (rules + audit write); the answer comes back as bytes
    answer = await run_in_threadpool(decider.native, body)
    return Response(answer.body, media_type="application/json")  # X-Decision-Id: engine.observability.http


@router.get("/decisions/{decision_id}", dependencies=[OperatorDep])
def get_decision(decision_id: str, state: StateDep) -> dict[str, Any]:
    where = state.settings.pack_archive_dir
    row = explain(state.audit, decision_id, PackArchive(where) if where else None)
    if row is None:
        raise HTTPException(404, f"no decision {decision_id}")
    return row


@router.get("/decisions", dependencies=[OperatorDep])
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
