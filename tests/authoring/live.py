"""Serve the app with uvicorn on a free loopback port inside the test process.

In-process so a test can also look at the app's state (the engine registry) while real HTTP
clients, threads or a browser talk to it over TCP.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from engine.api.app import create_app
from engine.settings import Settings


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def live_app(settings: Settings, ready_timeout: float = 120.0) -> Iterator[tuple[str, FastAPI]]:
    app = create_app(settings)
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_keep_alive=75,  # as `cdsrules serve` (settings.keepalive_s): clients close idle connections first
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + ready_timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn exited before it was ready (see the log above)")
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn not ready in time")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(timeout=60)
