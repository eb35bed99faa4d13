"""CDS Hooks errors as FHIR OperationOutcome responses that name the offending field.

The spec asks services to explain non-2xx answers with an OperationOutcome; EHR integrators read
``issue.expression`` (the field, e.g. ``context.selections``) and ``diagnostics`` (why). Pydantic
errors are located by ``engine.validation`` (the same paths as the native API's JSON pointers)
and rendered here as FHIRPath-like expressions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import ValidationError

from engine.validation import dotted, locate

FHIR_JSON = "application/fhir+json"


@dataclass(frozen=True)
class Issue:
    expression: str  # dotted path of the field, "" for the whole body
    diagnostics: str
    code: str = "invalid"  # FHIR IssueType: invalid, required, structure, not-found, not-supported, incomplete


class CdsHooksError(Exception):
    """A request the service refuses; becomes ``status`` with an OperationOutcome body."""

    def __init__(self, status: int, issues: list[Issue]) -> None:
        self.status = status
        self.issues = issues
        super().__init__("; ".join(f"{i.expression or '(body)'}: {i.diagnostics}" for i in issues))


def bad_request(expression: str, diagnostics: str, code: str = "invalid") -> CdsHooksError:
    return CdsHooksError(400, [Issue(expression, diagnostics, code)])


def operation_outcome(issues: Iterable[Issue]) -> dict[str, Any]:
    out = []
    for i in issues:
        issue: dict[str, Any] = {"severity": "error", "code": i.code, "diagnostics": i.diagnostics}
        if i.expression:
            issue["expression"] = [i.expression]
        out.append(issue)
    return {"resourceType": "OperationOutcome", "issue": out}


def outcome_response(exc: CdsHooksError) -> JSONResponse:
    return JSONResponse(operation_outcome(exc.issues), status_code=exc.status, media_type=FHIR_JSON)


def from_validation(exc: ValidationError, model: Any, prefix: str = "") -> CdsHooksError:
    """A 400 naming each invalid field (``engine.validation.locate``, as every surface does)."""
    issues: list[Issue] = []
    for bad in locate(exc, model):
        path = dotted(bad.path, prefix)
        if "fhirServer is required" in bad.message:
            path = "fhirServer"
        code = "required" if bad.kind == "missing" else "invalid"
        issues.append(Issue(path, f"{path or 'body'}: {bad.message}", code))
    return CdsHooksError(400, issues or [Issue("", "invalid request")])
