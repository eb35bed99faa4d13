"""CORS with an origin allow-list, on preflights and on every real response, errors included.

Browser-based CDS Clients (the CDS Hooks sandbox, SMART apps) call us cross-origin. Starlette's
``CORSMiddleware`` adds the headers, but an unhandled exception is turned into a 500 *outside* all
user middleware, so that one response would lack them and the browser would hide the error from
the client. ``_ErrorsInside`` turns such exceptions into the app's own 500 response inside the
CORS layer, so every status a browser can see carries the allow-list headers.
"""

from __future__ import annotations

import inspect
import logging

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("cdsrules.cdshooks")


class _ErrorsInside:
    def __init__(self, app: ASGIApp, owner: FastAPI) -> None:
        self.app = app
        self.owner = owner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                raise
            handler = self.owner.exception_handlers.get(Exception)
            response: Response
            if handler is None:
                log.exception("unexpected error")
                response = JSONResponse({"status": 500, "title": "Internal error"}, status_code=500)
            else:
                result = handler(Request(scope, receive), exc)
                response = await result if inspect.isawaitable(result) else result
            await response(scope, receive, send)


def install_cors(app: FastAPI, origins: list[str]) -> None:
    """Allow-listed origins only; no credentials (CDS Hooks authenticates with a bearer JWT)."""
    if not origins:
        log.info("CORS is off (CDSRULES_CORS_ORIGINS is empty): browsers on other origins cannot call us")
        return
    app.add_middleware(_ErrorsInside, owner=app)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "Accept"],
        allow_credentials=False,
        max_age=600,
    )
