"""Where an HTTP request's CPU goes: the app driven in-process over ASGI, with one layer removed at a time.

No sockets and one request at a time, so the numbers are the app's own CPU per request (process
CPU time, every thread), without uvicorn's HTTP parsing or the load generator. Each row removes one
thing from an otherwise identical app, so the difference to the full row is what that thing costs:

* ``audit.record`` replaced by a no-op (the decision is not written: never do this in production);
* logging switched off;
* the body-size check (``engine.api.body_limit``, plain ASGI since issue 8; it was a
  ``BaseHTTPMiddleware`` before) removed.

``Engine.evaluate`` alone, on the same requests, is the engine's share.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any, cast

from bench.workload import order_select_body
from engine.api.app import create_app
from engine.api.body_limit import BodySizeLimit
from engine.observability.logs import configure_logging
from engine.service.state import build_state
from engine.settings import BUNDLED_RULES, Settings
from schemas.api import EvaluateRequest

Request = tuple[str, str, bytes]


def _scope(method: str, path: str, body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }


async def _call(app: Any, method: str, path: str, body: bytes) -> int:
    done = asyncio.Event()
    first = True
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(int(message["status"]))
        elif message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    await app(_scope(method, path, body), receive, send)
    return status[0]


async def _cpu_ms(app: Any, reqs: list[Request], n: int) -> float:
    for method, path, body in reqs[: min(len(reqs), 20)]:
        status = await _call(app, method, path, body)
        if status != 200:
            raise RuntimeError(f"{method} {path} answered {status}")
    c0 = time.process_time()
    for i in range(n):
        method, path, body = reqs[i % len(reqs)]
        await _call(app, method, path, body)
    return round((time.process_time() - c0) / n * 1000, 3)


def http_profile(bodies: list[dict[str, Any]], n: int) -> dict[str, Any]:
    """CPU ms per request for each variant (see module docstring)."""
    with tempfile.TemporaryDirectory(prefix="cdsrules-prof-") as tmp:
        settings = Settings(database_url=f"sqlite:///{Path(tmp)}/audit.db", rules_dir=BUNDLED_RULES, log_level="INFO")
        configure_logging("INFO")
        root = logging.getLogger()
        with open("/dev/null", "w", encoding="utf-8") as devnull:
            for h in root.handlers:  # keep formatting every line, write it nowhere
                if isinstance(h, logging.StreamHandler):
                    h.setStream(devnull)
            state = build_state(settings)
            try:
                return _run(settings, state, bodies, n)
            finally:
                logging.disable(logging.NOTSET)
                state.rules.close()
                state.audit.dispose()


def _run(settings: Settings, state: Any, bodies: list[dict[str, Any]], n: int) -> dict[str, Any]:
    health: list[Request] = [("GET", "/healthz", b"")]
    evaluate: list[Request] = [("POST", "/v1/evaluate", json.dumps(b).encode()) for b in bodies]
    hooks: list[Request] = [
        ("POST", "/cds-services/muscle-relaxant-dosing", json.dumps(order_select_body(b, i)).encode())
        for i, b in enumerate(bodies)
    ]
    reqs = [EvaluateRequest.model_validate(b) for b in bodies]
    engine = state.engine
    c0 = time.process_time()
    for i in range(n):
        engine.evaluate(reqs[i % len(reqs)], decision_id="profile")
    rows: dict[str, float] = {"Engine.evaluate alone": round((time.process_time() - c0) / n * 1000, 3)}
    app = create_app(settings, state)
    lean = create_app(settings, state)
    lean.user_middleware = [m for m in lean.user_middleware if cast(object, m.cls) is not BodySizeLimit]
    record = state.audit.record

    async def measure() -> None:
        rows["healthz"] = await _cpu_ms(app, health, n)
        rows["evaluate"] = await _cpu_ms(app, evaluate, n)
        rows["cds order-select"] = await _cpu_ms(app, hooks, n)
        rows["healthz, no body-size check"] = await _cpu_ms(lean, health, n)
        rows["evaluate, no body-size check"] = await _cpu_ms(lean, evaluate, n)
        logging.disable(logging.CRITICAL)
        rows["evaluate, logging off"] = await _cpu_ms(app, evaluate, n)
        logging.disable(logging.NOTSET)
        state.audit.record = lambda rec: None
        try:
            rows["evaluate, audit.record no-op"] = await _cpu_ms(app, evaluate, n)
            rows["cds order-select, audit.record no-op"] = await _cpu_ms(app, hooks, n)
            logging.disable(logging.CRITICAL)
            rows["evaluate, audit no-op, logging off"] = await _cpu_ms(app, evaluate, n)
        finally:
            logging.disable(logging.NOTSET)
            state.audit.record = record

    asyncio.run(measure())
    return {"requests_per_row": n, "cpu_ms_per_request": rows}
