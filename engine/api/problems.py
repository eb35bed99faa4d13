"""Map every failure to a JSON error body with the location of each problem.

The one boundary where request-parsing errors (pydantic, JSON) and our own errors become HTTP
responses. Nothing here returns a traceback; unexpected errors become a 500 with an error id.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.api.deps import ClientRefused
from engine.api.strict_json import JsonProblem
from engine.audit.store import AuditError
from engine.errors import EngineError, InputError, InputProblem, RuleSetError
from engine.security.replay import ReplayUnavailable
from engine.validation import Located, locate

log = logging.getLogger("cdsrules.api")


def input_problems(located: list[Located]) -> list[InputProblem]:
    return [InputProblem(b.pointer, b.message, b.kind) for b in located]


def problem_response(status: int, title: str, problems: list[InputProblem] | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"status": status, "title": title}
    if problems is not None:
        body["errors"] = [{"pointer": p.pointer, "message": p.message, "code": p.code} for p in problems]
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type="application/problem+json")  # RFC 9457


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Only query and path parameters get here (JSON bodies are read by engine.api.json_body);
        # they keep their prefix ("/query/limit"), which is where the caller must look.
        return problem_response(422, "Invalid request", input_problems(locate(exc.errors())))

    @app.exception_handler(JsonProblem)
    async def _json(_: Request, exc: JsonProblem) -> JSONResponse:
        return problem_response(400, "Malformed JSON", exc.problems)

    @app.exception_handler(InputError)
    async def _input(_: Request, exc: InputError) -> JSONResponse:
        return problem_response(422, "Invalid request", exc.problems)

    @app.exception_handler(AuditError)
    async def _audit(_: Request, exc: AuditError) -> JSONResponse:
        log.error("audit write failed; advice withheld", extra={"error": str(exc)})
        return problem_response(503, "Decision could not be recorded; no advice was given", retryable=True)

    @app.exception_handler(EngineError)
    async def _engine(_: Request, exc: EngineError) -> JSONResponse:
        error_id = str(uuid.uuid4())
        log.error("rule engine failure", extra={"error_id": error_id, "error": str(exc)})
        return problem_response(503, "Rule engine failure; no advice was given", error_id=error_id, retryable=True)

    @app.exception_handler(RuleSetError)
    async def _rules(_: Request, exc: RuleSetError) -> JSONResponse:
        return problem_response(503, "Rule pack is not loaded", rule_problems=[str(p) for p in exc.problems[:50]])

    @app.exception_handler(ReplayUnavailable)
    async def _replay_store(request: Request, exc: ReplayUnavailable) -> JSONResponse:
        # fail closed: the token may be new, but nothing accepts it unchecked; a 503 (not the bare
        # 401) tells the EHR to retry rather than that its credentials are wrong
        log.error("client token refused: %s", exc, extra={"path": request.url.path})
        return problem_response(503, "Client token could not be checked for replay; try again", retryable=True)

    @app.exception_handler(ClientRefused)
    async def _refused(_: Request, exc: ClientRefused) -> Response:
        return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})  # bare: same on every surface

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = problem_response(exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})  # e.g. WWW-Authenticate on a 401
        return response

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        error_id = str(uuid.uuid4())
        log.exception("unexpected error", extra={"error_id": error_id})
        return problem_response(500, "Internal error", error_id=error_id)
