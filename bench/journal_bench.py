"""What the SQLite rollback journal costs against WAL: the audit commit and the HTTP path.

The audit store uses ``journal_mode=TRUNCATE`` by default because WAL's memory-mapped ``-shm``
file turns an unwritable database into a SIGBUS (``engine/audit/sqlite_setup.py``). This bench
puts a number on that choice, interleaving the two modes (truncate, wal, truncate, wal ...) so the
shared machine's drift hits both alike:

* ``commit``: ``AuditStore.record`` in this process, one writer, fresh file per round
  (wall-clock per commit, which is mostly the fsyncs of ``synchronous=FULL``);
* ``http``: ``cdsrules serve --workers 2``, closed loop on ``/v1/evaluate`` (saturation), then a
  fixed rate for latency percentiles.

Usage: ``python -m bench.journal_bench [--rounds 2] [--out FILE]``; prints one JSON object.
About 3 minutes with the defaults on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.http_bench import _loadgen, endpoints, serving
from bench.machine import load
from bench.stats import summarise

MODES = ("truncate", "wal")
BODY: dict[str, Any] = {
    "patient": {"age_years": 67, "sex": "female", "weight_kg": 62, "serum_creatinine_mg_dl": 1.3},
    "drug": {"name": "baclofen", "action": "start"},
}


def commit_round(mode: str, n: int) -> dict[str, Any]:
    from engine.audit.store import AuditStore, DecisionRecord

    with tempfile.TemporaryDirectory(prefix="cdsrules-journal-") as tmp:
        store = AuditStore(f"sqlite:///{tmp}/audit.db", "bench-key", sqlite_journal_mode=mode)  # type: ignore[arg-type]
        store.migrate()
        seconds: list[float] = []
        try:
            for _ in range(n):
                rec = DecisionRecord(
                    id=str(uuid.uuid4()),
                    endpoint="/v1/evaluate",
                    ruleset_version="0.0.0",
                    ruleset_digest="sha256:" + "0" * 64,
                    drug="baclofen",
                    rules_fired=[{"rule_id": "baclofen.dose.adult-start", "version": "1.0.0"}],
                    response={"findings": [], "trace": ["baclofen.dose.adult-start"]},
                    latency_ms=1.0,
                    input_document=BODY,
                )
                started = time.perf_counter()
                store.record(rec)
                seconds.append(time.perf_counter() - started)
        finally:
            store.dispose()
    return {"mode": mode, "commits": n, "ms": summarise([s * 1000 for s in seconds])}


def http_round(mode: str, duration_s: float, rate: float) -> dict[str, Any]:
    reqs = endpoints([BODY])["evaluate"]
    with tempfile.TemporaryDirectory(prefix="cdsrules-journal-") as tmp:
        workdir = Path(tmp)
        with serving(2, workdir, {"CDSRULES_SQLITE_JOURNAL_MODE": mode}) as server:
            base = {"duration_s": duration_s, "warmup_s": 2.0, "max_connections": 64}
            closed = _loadgen(server, reqs, {**base, "mode": "closed", "concurrency": 32, "timeout_s": 30}, workdir)
            fixed = _loadgen(server, reqs, {**base, "mode": "rate", "rate": rate, "timeout_s": 10}, workdir)
    keep = ("achieved_rate", "statuses", "errors", "latency_ms", "server_cpu_ms_per_request")
    return {
        "mode": mode,
        "saturation": {k: closed[k] for k in keep},
        f"rate_{int(rate)}": {k: fixed[k] for k in keep},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.journal_bench", description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds per mode")
    ap.add_argument("--commits", type=int, default=1000, help="audit commits per commit round")
    ap.add_argument("--duration", type=float, default=8.0, help="seconds per HTTP load run")
    ap.add_argument("--rate", type=float, default=100.0, help="fixed request rate for the latency run")
    ap.add_argument("--skip-http", action="store_true", help="only the in-process commit rounds")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args(argv)
    out: dict[str, Any] = {"load_before": load(), "commit": [], "http": []}
    for _ in range(args.rounds):
        for mode in MODES:
            out["commit"].append(commit_round(mode, args.commits))
    if not args.skip_http:
        for _ in range(args.rounds):
            for mode in MODES:
                out["http"].append(http_round(mode, args.duration, args.rate))
    out["load_after"] = load()
    out["summary"] = {
        mode: {
            "commit_p50_ms": statistics.median(r["ms"]["p50"] for r in out["commit"] if r["mode"] == mode),
            "saturation_per_s": [r["saturation"]["achieved_rate"] for r in out["http"] if r["mode"] == mode],
        }
        for mode in MODES
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
