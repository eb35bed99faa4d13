"""A body sent a byte at a time is cut off with 408 at the body deadline (D19 slowloris)."""

from __future__ import annotations

import asyncio
from typing import Any

from engine.api.body_limit import BodySizeLimit


def test_slow_body_gets_408() -> None:
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        from starlette.requests import Request

        await Request(scope, receive).body()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def drip() -> dict[str, Any]:
        await asyncio.sleep(0.2)
        return {"type": "http.request", "body": b"x", "more_body": True}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    async def run() -> None:
        from starlette.exceptions import HTTPException

        guarded = BodySizeLimit(app, max_bytes=1_000_000, body_timeout_s=0.5)
        scope = {"type": "http", "method": "POST", "path": "/v1/evaluate", "headers": []}
        try:
            await guarded(scope, drip, send)
        except HTTPException as exc:  # the app's exception handlers turn it into the response
            sent.append({"status": exc.status_code})

    asyncio.run(run())
    assert {"status": 408} in sent
    assert not any(m.get("status") == 200 for m in sent)
