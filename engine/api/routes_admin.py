"""Admin endpoints for rule authors: which pack is serving, and reload it without a restart.

Both are behind a bearer token (``CDSRULES_ADMIN_TOKEN``). With no token configured they answer
403 and say how to enable them: an unauthenticated reload endpoint would let anyone who reaches
the service make it re-read files, and the status page names files and rule ids.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from engine.api.deps import StateDep, operator_token_matches
from engine.audit.analytics import Period, summary

router = APIRouter(prefix="/v1/admin", tags=["admin"])


def require_admin(request: Request, state: StateDep) -> None:
    if state.settings.admin_token is None or not state.settings.admin_token.get_secret_value():
        raise HTTPException(403, "admin endpoints are disabled; set CDSRULES_ADMIN_TOKEN to enable them")
    if not operator_token_matches(state, request.headers.get("authorization")):
        raise HTTPException(401, "missing or wrong admin bearer token", headers={"WWW-Authenticate": "Bearer"})


@router.get("/rules", dependencies=[Depends(require_admin)])
def rules_status(state: StateDep) -> dict[str, Any]:
    """The serving pack, reload counts, the errors of the last rejected reload, its terminology sources."""
    status = state.reloader.status()
    status["terminology"] = [s.as_dict() for s in state.engine.pack.terminology.provenance]
    return status


@router.post("/reload", dependencies=[Depends(require_admin)])
def reload_rules(state: StateDep, force: bool = False) -> JSONResponse:
    """Compile, lint and test the rules directory off to the side; swap it in only if clean.

    200 when the new pack is serving (or nothing changed); 422 with located errors when it was
    rejected, in which case the previous pack keeps serving. A pack that removes drugs or rules
    is rejected unless ``?force=true``.
    """
    result = state.reloader.reload("admin", force=force)
    body = result.as_dict()
    body["serving"] = state.reloader.status()["serving"]
    return JSONResponse(body, status_code=422 if result.outcome == "rejected" else 200)


@router.get("/analytics", dependencies=[Depends(require_admin)])
def analytics(
    state: StateDep,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    rule_id: str | None = None,
) -> dict[str, Any]:
    """Override analytics (the JSON of ``cdsrules audit report``) for dashboards."""
    return summary(state.audit.engine, Period(since, until, rule_id))
