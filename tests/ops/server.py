"""Start ``cdsrules serve`` as a real subprocess on a free loopback port, for tests that need one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

CLI = str(Path(sys.executable).with_name("cdsrules"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Served:
    base: str
    proc: subprocess.Popen[bytes]
    log: Path


@contextmanager
def running_server(args: list[str], env: dict[str, str], ready_timeout: float = 120.0) -> Iterator[str]:
    """Yield the base URL once /readyz answers 200; terminate (SIGTERM) and reap afterwards."""
    with serving(args, env, ready_timeout) as served:
        yield served.base


@contextmanager
def serving(args: list[str], env: dict[str, str], ready_timeout: float = 120.0) -> Iterator[Served]:
    """``running_server`` that also hands over the server process (its master, with workers)."""
    port = free_port()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("CDSRULES_", "PROMETHEUS_"))}
    full_env.update(env)
    log = Path(env.get("CDSRULES_TEST_LOG", os.devnull))
    with log.open("w") as out:
        proc = subprocess.Popen(
            [CLI, "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + ready_timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited with {proc.returncode} before it was ready")
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("server not ready in time")
                time.sleep(0.3)
            yield Served(base, proc, log)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=40)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
