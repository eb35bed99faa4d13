"""Section 3 (HTTP) and the per-worker half of section 4: the real server under a separate load process.

The server is started exactly as an operator would (``cdsrules serve --workers N``: uvicorn for one
worker, gunicorn with uvicorn workers for more) on 127.0.0.1 and an ephemeral port, with its audit
log in a fresh SQLite file (the default deployment's store) and INFO logging to a file. Three
endpoints of the same app are loaded alike: ``/healthz`` (the trivial endpoint: routing, middleware
and telemetry, no engine, no audit), ``POST /v1/evaluate`` and CDS Hooks ``order-select`` with every
prefetch key answered. Each runs at a fixed rate (open loop) and at saturation (closed loop).

The load generator (``bench.loadgen``) is its own process; on a 2-core machine it shares the cores
with the server, so its CPU time is reported next to the server's CPU time per request.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.machine import load
from bench.workload import order_select_body

ROOT = Path(__file__).resolve().parent.parent
DOSING = "/cds-services/muscle-relaxant-dosing"
START_TIMEOUT_S = 240


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    workers: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def processes(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def cpu_seconds(self) -> float:
        total = 0.0
        for p in self.processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def rss_mb(self) -> dict[str, float]:
        """RSS of the serving processes: 'main' and, under gunicorn, each 'worker-<pid>'."""
        out: dict[str, float] = {}
        for i, p in enumerate(self.processes()):
            with contextlib.suppress(psutil.NoSuchProcess):
                out["main" if i == 0 else f"worker-{p.pid}"] = round(p.memory_info().rss / 1e6, 1)
        return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _post(url: str, body: dict[str, Any], timeout: float = 30) -> tuple[int, bytes]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@contextlib.contextmanager
def serving(workers: int, workdir: Path, settings: dict[str, str] | None = None) -> Iterator[Server]:
    """``cdsrules serve --workers N`` on 127.0.0.1, ready in every worker, stopped on exit.

    ``settings``: extra ``CDSRULES_*`` variables for the server (the rest are cleared).
    """
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDSRULES_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(
        CDSRULES_DATABASE_URL=f"sqlite:///{workdir}/audit-{workers}w.db",
        CDSRULES_LOG_LEVEL="INFO",
        PYTHONPATH=str(ROOT),
    )
    env.update(settings or {})
    log = workdir / f"server-{workers}w.log"
    cmd = [sys.executable, "-c", "from engine.cli import main; main()", "serve"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(proc, port, workers, log)
    try:
        _wait_ready(server)
        yield server
    finally:
        _stop(proc)


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    pids: set[int] = set()
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited with {server.proc.returncode}; see {server.log}")
        try:
            status, body = _get(f"{server.base}/readyz", timeout=2)
        except OSError:
            time.sleep(0.3)
            continue
        if status == 200:
            pids.add(int(json.loads(body)["worker_pid"]))
            if len(pids) >= server.workers:
                return
            time.sleep(0.05)
        else:
            time.sleep(0.3)
    raise RuntimeError(f"server not ready in {START_TIMEOUT_S} s (workers seen: {len(pids)}); see {server.log}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # our own child's process group (start_new_session)
            proc.wait(timeout=10)


def _loadgen(server: Server, requests: list[dict[str, Any]], cfg: dict[str, Any], workdir: Path) -> dict[str, Any]:
    full = {"host": "127.0.0.1", "port": server.port, "requests": requests, **cfg}
    path = workdir / "loadgen.json"
    path.write_text(json.dumps(full), encoding="utf-8")
    limit = cfg["warmup_s"] + cfg["duration_s"] + cfg["timeout_s"] + 60
    cpu0, load0 = server.cpu_seconds(), load()
    out = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=limit,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    # server CPU covers the warm-up too, so it is divided by every answer, not just the timed ones
    sent_total = result["answered_including_warmup"]
    result["server_cpu_ms_per_request"] = round((server.cpu_seconds() - cpu0) * 1000 / max(1, sent_total), 3)
    result["client_cpu_ms_per_request"] = round(result["client_cpu_s"] * 1000 / max(1, sent_total), 3)
    result["load_average"] = {"before": load0, "after": load()}
    return result


def endpoints(bodies: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    evaluate = [{"method": "POST", "path": "/v1/evaluate", "body": json.dumps(b)} for b in bodies]
    hooks = [
        {"method": "POST", "path": DOSING, "body": json.dumps(order_select_body(b, i))} for i, b in enumerate(bodies)
    ]
    return {"healthz": [{"method": "GET", "path": "/healthz"}], "evaluate": evaluate, "cds_order_select": hooks}


def _check(server: Server, reqs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Every distinct request once, before any timing: all must answer 200 (also warms caches)."""
    bad: dict[str, Any] = {}
    for name, items in reqs.items():
        for r in items:
            if r["method"] == "GET":
                status, body = _get(server.base + r["path"])
            else:
                status, body = _post(server.base + r["path"], json.loads(r["body"]))
            if status != 200:
                bad.setdefault(name, {"count": 0, "first": body[:300].decode(errors="replace")})
                bad[name]["count"] += 1
    return bad


def http(
    bodies: list[dict[str, Any]],
    worker_counts: tuple[int, ...],
    rates: tuple[float, ...],
    concurrency: int,
    duration_s: float,
    warmup_s: float,
) -> dict[str, Any]:
    reqs = endpoints(bodies)
    runs: list[dict[str, Any]] = []
    rss: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="cdsrules-bench-") as tmp:
        workdir = Path(tmp)
        for workers in worker_counts:
            with serving(workers, workdir) as server:
                rss_start = server.rss_mb()
                failures = _check(server, reqs)
                if failures:
                    raise RuntimeError(f"requests failed before load ({workers} workers): {failures}")
                for name, items in reqs.items():
                    base = {"duration_s": duration_s, "warmup_s": warmup_s, "max_connections": 64}
                    cfgs: list[dict[str, Any]] = [{**base, "mode": "rate", "rate": r, "timeout_s": 10} for r in rates]
                    cfgs.append({**base, "mode": "closed", "concurrency": concurrency, "timeout_s": 30})
                    for cfg in cfgs:
                        result = _loadgen(server, items, cfg, workdir)
                        result["server_rss_mb_after"] = server.rss_mb()  # per process, over the runs
                        runs.append({"workers": workers, "endpoint": name, **result})
                rss[f"{workers}_workers"] = {"after_start": rss_start, "after_load": server.rss_mb()}
    return {
        "distinct_bodies": len(bodies),
        "rates_per_s": list(rates),
        "saturation_concurrency": concurrency,
        "duration_s": duration_s,
        "warmup_s": warmup_s,
        "audit_store": "SQLite (WAL) in a temporary directory",
        "runs": runs,
        "ratios": _ratios(runs),
        "rss_mb": rss,
    }


def _ratios(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each endpoint against /healthz of the same server and mode: p50, p99, throughput, server CPU."""
    out = []
    base = {(r["workers"], r["mode"], r["target_rate"]): r for r in runs if r["endpoint"] == "healthz"}
    for r in runs:
        h = base.get((r["workers"], r["mode"], r["target_rate"]))
        if r["endpoint"] == "healthz" or h is None:
            continue
        out.append(
            {
                "workers": r["workers"],
                "mode": r["mode"],
                "target_rate": r["target_rate"],
                "endpoint": r["endpoint"],
                "p50_over_healthz": _div(r["latency_ms"].get("p50"), h["latency_ms"].get("p50")),
                "p99_over_healthz": _div(r["latency_ms"].get("p99"), h["latency_ms"].get("p99")),
                "throughput_over_healthz": _div(r["achieved_rate"], h["achieved_rate"]),
                "server_cpu_over_healthz": _div(r["server_cpu_ms_per_request"], h["server_cpu_ms_per_request"]),
            }
        )
    return out


def _div(a: float | None, b: float | None) -> float | None:
    if a is None or not b:
        return None
    return round(float(a) / float(b), 2)
