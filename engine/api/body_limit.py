"""Refuse request bodies above ``max_body_bytes`` before anything parses them.

Plain ASGI rather than Starlette's ``BaseHTTPMiddleware``: that wrapper copies every request and
response through extra tasks and queues, which cost more CPU per request than the rule engine.
A declared ``Content-Length`` over the limit is answered 413 at once; a body sent without one
(chunked) is counted as it arrives and refused with the same status when it crosses the limit.

A body must also arrive within ``body_timeout_s`` of the first read: uvicorn times out idle
connections but not a body sent a byte at a time (slowloris), which held a connection and a
request task for as long as the client liked. Past the deadline the answer is 408.
"""

from __future__ import annotations

import asyncio
import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TITLE = "Request body too large"
TOO_LARGE = {"status": 413, "title": TITLE}
SLOW = "Request body not received in time"


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, body_timeout_s: float = 10.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _refuse(send)
            return
        seen = 0
        complete = False
        deadline: float | None = None

        async def counted() -> Message:
            nonlocal seen, complete, deadline
            if complete:  # after the body, receive() waits for a disconnect: no deadline on that
                return await receive()
            loop = asyncio.get_running_loop()
            if deadline is None:
                deadline = loop.time() + self.body_timeout_s
            try:
                message = await asyncio.wait_for(receive(), timeout=max(deadline - loop.time(), 0.001))
            except TimeoutError as exc:
                raise HTTPException(408, SLOW) from exc
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(413, TITLE)
                complete = not message.get("more_body", False)
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            text = bytes(value).decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


async def _refuse(send: Send) -> None:
    body = json.dumps(TOO_LARGE).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
