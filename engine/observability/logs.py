"""Structured JSON logs, one object per line, carrying the request and decision ids.

Hospital log pipelines (ELK, Splunk, Loki) index JSON lines, and an incident review starts from a
decision id, so every line emitted while a request is handled carries ``request_id`` and, once the
decision is recorded, ``decision_id`` (both from context variables).

PHI and tokens never reach a log: only a fixed allow-list of ``extra`` fields is written, and an
exception is logged as its type and stack frames without its message, because messages of
validation and driver errors can quote the input.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import os
import traceback
from typing import Any

# One mutable dict per request. Sync routes run in a thread with a *copy* of the context; the copy
# points at the same dict, so a decision id bound in the route is visible to the access log line.
_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("cdsrules_log", default=None)


def begin_request(request_id: str) -> contextvars.Token[dict[str, str] | None]:
    return _context.set({"request_id": request_id})


def end_request(token: contextvars.Token[dict[str, str] | None]) -> None:
    _context.reset(token)


def bind(**fields: str) -> None:
    """Attach ids to every later log line of this request (or of this thread, outside a request)."""
    ctx = _context.get()
    if ctx is None:
        ctx = {}
        _context.set(ctx)
    ctx.update(fields)


def bound() -> dict[str, str]:
    return dict(_context.get() or {})


# ``extra=`` keys that may be written; anything else passed as extra is dropped. Add a key only if
# its values can never carry patient data or a credential (ids, counts, route paths, outcomes).
ALLOWED_EXTRA = frozenset(
    {
        "decision_id",
        "request_id",
        "endpoint",
        "method",
        "status",
        "outcome",
        "duration_ms",
        "latency_ms",
        "hook",
        "hook_instance",
        "service",
        "service_id",
        "items",
        "new",
        "path",
        "host",
        "ruleset_version",
        "rules_fired",
        "cards",
        "error",
        "error_id",
        "kind",
        "workers",
        "bind",
    }
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": os.getpid(),
        }
        out.update(_context.get() or {})
        for key in ALLOWED_EXTRA:
            if key in record.__dict__:
                out[key] = record.__dict__[key]
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, _exc, tb = record.exc_info
            out["exc_type"] = exc_type.__name__
            out["stack"] = [f"{f.filename}:{f.lineno} in {f.name}" for f in traceback.extract_tb(tb)][-15:]
        return json.dumps(out, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    """Send every logger (ours, uvicorn's, gunicorn's, alembic's) to stderr as JSON lines."""
    root = logging.getLogger()
    # idempotent, and leaves other handlers (pytest's capture, say) alone
    root.handlers[:] = [h for h in root.handlers if not isinstance(h.formatter, JsonFormatter)]
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "gunicorn.error", "alembic"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # a line per plugin, every start
    # httpx logs every request URL at INFO, and a FHIR search URL carries ?patient=<id>; our FHIR
    # client reports failures itself, by status and exception type, without the URL
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # our middleware writes one access line per request without query strings; uvicorn's would
    # repeat it with the raw path and the client address
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
    access.disabled = True
