"""Sections 1 (engine only, cold and warm, versus the reference evaluator) and 2 (scaling).

Every timed call is measured twice: wall time (``perf_counter``) and this thread's CPU time
(``thread_time``). On a machine shared with other jobs the wall-clock tail includes time the
process spent descheduled; the CPU-time tail is what the engine itself costs, so the two together
tell a slow engine from a busy machine. Cold numbers come from fresh child processes.
"""

from __future__ import annotations

import gc
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from bench.stats import summarise
from bench.workload import (
    COMED_COUNTS,
    RULE_MULTIPLIERS,
    readme_request,
    scaled_pack,
    synthetic_bodies,
    with_comeds,
)
from engine.compiler.model import CompiledPack
from engine.runtime import durable_host
from engine.runtime.engine import Engine
from schemas.api import EvaluateRequest

ROOT = Path(__file__).resolve().parent.parent


def timed(fn: Callable[[], object], n: int, warmup: int) -> dict[str, Any]:
    """Per-call wall and CPU latency (µs) of ``fn`` over ``n`` calls, and calls per second."""
    for _ in range(warmup):
        fn()
    wall: list[float] = []
    cpu: list[float] = []
    pc, tt = time.perf_counter_ns, time.thread_time_ns
    started = time.perf_counter()
    for _ in range(n):
        w0, c0 = pc(), tt()
        fn()
        c1, w1 = tt(), pc()
        wall.append((w1 - w0) / 1000)
        cpu.append((c1 - c0) / 1000)
    elapsed = time.perf_counter() - started
    return {
        "per_second": round(n / elapsed, 1),
        "wall_us": summarise(wall, 1),
        "cpu_us": summarise(cpu, 1),
    }


def timed_each(fns: list[Callable[[], object]], passes: int) -> dict[str, Any]:
    """Like ``timed`` over a list of different calls (one pass of warm-up, then ``passes``)."""
    for fn in fns:
        fn()
    wall: list[float] = []
    cpu: list[float] = []
    pc, tt = time.perf_counter_ns, time.thread_time_ns
    started = time.perf_counter()
    for _ in range(passes):
        for fn in fns:
            w0, c0 = pc(), tt()
            fn()
            c1, w1 = tt(), pc()
            wall.append((w1 - w0) / 1000)
            cpu.append((c1 - c0) / 1000)
    elapsed = time.perf_counter() - started
    return {
        "per_second": round(len(wall) / elapsed, 1),
        "wall_us": summarise(wall, 1),
        "cpu_us": summarise(cpu, 1),
    }


class _TimedC:
    """Stands in for the C module inside ``durable_host`` and adds up the time spent in its calls."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.ns = 0
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._real, name)
        if isinstance(fn, type) or not callable(fn):  # the error class must stay itself for `except`
            return fn

        def timed(*args: Any) -> Any:
            t0 = time.perf_counter_ns()
            try:
                return fn(*args)
            finally:
                self.ns += time.perf_counter_ns() - t0
                self.calls += 1

        return timed


def c_share(engine: Engine, reqs: list[EvaluateRequest], passes: int) -> dict[str, Any]:
    """CPU of ``Engine.evaluate`` split into time inside durable-rules' C calls and everything else.

    The C calls (create the session with the sentinel, assert the patient and derived facts, run
    the agenda, delete the session) are the floor of this design: no Python change removes them.
    """
    for r in reqs:
        engine.evaluate(r, decision_id="bench")
    host = vars(durable_host)  # bench only: swap the host's C module for a timing shim, then back
    real = host["_dre"]
    shim = _TimedC(real)
    host["_dre"] = shim
    try:
        c0 = time.thread_time_ns()
        for _ in range(passes):
            for r in reqs:
                engine.evaluate(r, decision_id="bench")
        total_ns = time.thread_time_ns() - c0
    finally:
        host["_dre"] = real
    n = passes * len(reqs)
    return {
        "evaluations": n,
        "evaluate_cpu_us": round(total_ns / n / 1000, 1),
        "inside_c_us": round(shim.ns / n / 1000, 1),
        "c_calls_per_evaluation": round(shim.calls / n, 1),
        "python_us": round((total_ns - shim.ns) / n / 1000, 1),
        "c_fraction": round(shim.ns / total_ns, 3),
    }


def ratio(a: dict[str, Any], b: dict[str, Any], key: str = "p50") -> float:
    return round(float(a["wall_us"][key]) / float(b["wall_us"][key]), 2)


# ---- cold: fresh processes --------------------------------------------------------------------


def cold_child() -> dict[str, Any]:
    """Run in a fresh interpreter: import, compile, construct, then the first evaluations."""
    t0 = time.perf_counter()
    from engine.compiler.pack import compile_pack
    from engine.settings import BUNDLED_RULES

    t1 = time.perf_counter()
    pack = compile_pack(BUNDLED_RULES)
    t2 = time.perf_counter()
    engine = Engine(pack)
    t3 = time.perf_counter()
    req = readme_request()
    firsts = []
    for _ in range(3):
        s = time.perf_counter()
        engine.evaluate(req, decision_id="cold")
        firsts.append((time.perf_counter() - s) * 1e6)
    engine.close()
    return {
        "import_s": round(t1 - t0, 3),
        "compile_s": round(t2 - t1, 3),
        "engine_build_ms": round((t3 - t2) * 1000, 2),
        "first_evaluate_us": round(firsts[0], 1),
        "second_evaluate_us": round(firsts[1], 1),
        "third_evaluate_us": round(firsts[2], 1),
    }


def cold(runs: int) -> dict[str, Any]:
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-m", "bench.engine_bench", "cold"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {
        "runs": runs,
        "median": {k: round(statistics.median(s[k] for s in samples), 3) for k in samples[0]},
        "samples": samples,
    }


# ---- section 1 --------------------------------------------------------------------------------


def engine_only(pack: CompiledPack, n: int, mix_size: int, cold_runs: int) -> dict[str, Any]:
    durable, reference = Engine(pack), Engine(pack, backend="reference")
    req = readme_request()
    ingredient, pf = durable.facts(req)
    warmup = max(200, n // 10)
    out: dict[str, Any] = {
        "patient": "README example (baclofen)",
        "rules_in_ruleset": len(pack.drugs["baclofen"].rules),
    }
    out["cold"] = cold(cold_runs)
    gc.collect()
    out["warm"] = {
        "evaluate_durable": timed(lambda: durable.evaluate(req, decision_id="bench"), n, warmup),
        "evaluate_reference": timed(lambda: reference.evaluate(req, decision_id="bench"), n, warmup),
        "fire_durable": timed(lambda: durable.fire(ingredient, pf.fact), n, warmup),
        "fire_reference": timed(lambda: reference.fire(ingredient, pf.fact), n, warmup),
        "facts": timed(lambda: durable.facts(req), n, warmup),
    }
    w = out["warm"]
    out["ratios"] = {
        "evaluate_durable_over_reference_p50": ratio(w["evaluate_durable"], w["evaluate_reference"]),
        "fire_durable_over_reference_p50": ratio(w["fire_durable"], w["fire_reference"]),
    }
    bodies = synthetic_bodies(pack, mix_size)
    reqs = [EvaluateRequest.model_validate(b) for b in bodies]
    passes = 3
    mix: dict[str, Any] = {
        "patients": len(reqs),
        "passes": passes,
        "evaluate_durable": timed_each([partial(durable.evaluate, r, decision_id="bench") for r in reqs], passes),
        "evaluate_reference": timed_each([partial(reference.evaluate, r, decision_id="bench") for r in reqs], passes),
    }
    mix["durable_over_reference_p50"] = ratio(mix["evaluate_durable"], mix["evaluate_reference"])
    out["synthetic_mix"] = mix
    out["c_share"] = {
        "readme_patient": c_share(durable, [req], max(1, n // 4)),
        "synthetic_mix": c_share(durable, reqs, 2),
    }
    durable.close()
    return out


# ---- section 2 --------------------------------------------------------------------------------


def scaling(pack: CompiledPack, n: int) -> dict[str, Any]:
    req = readme_request()
    warmup = max(100, n // 10)
    by_rules = []
    for m in RULE_MULTIPLIERS:
        scaled = scaled_pack(pack, m)
        durable, reference = Engine(scaled), Engine(scaled, backend="reference")
        ingredient, pf = durable.facts(req)
        row: dict[str, Any] = {
            "copies": m,
            "rules_in_ruleset": len(scaled.drugs["baclofen"].rules),
            "rules_fired": len(durable.fire(ingredient, pf.fact).fired),
            "evaluate_durable": timed(partial(durable.evaluate, req, decision_id="bench"), n, warmup),
            "fire_durable": timed(partial(durable.fire, ingredient, pf.fact), n, warmup),
            "evaluate_reference": timed(
                partial(reference.evaluate, req, decision_id="bench"), max(200, n // 5), warmup // 5
            ),
        }
        row["durable_over_reference_p50"] = ratio(row["evaluate_durable"], row["evaluate_reference"])
        by_rules.append(row)
        durable.close()
    by_comeds = []
    durable, reference = Engine(pack), Engine(pack, backend="reference")
    for k in COMED_COUNTS:
        r = with_comeds(pack, k)
        ingredient, pf = durable.facts(r)
        row = {
            "co_medications": k,
            "patient_fact_properties": len(pf.fact),
            "rules_fired": len(durable.fire(ingredient, pf.fact).fired),
            "unrecognized": len(pf.unrecognized),
            "evaluate_durable": timed(partial(durable.evaluate, r, decision_id="bench"), n, warmup),
            "evaluate_reference": timed(partial(reference.evaluate, r, decision_id="bench"), n // 2, warmup),
        }
        row["durable_over_reference_p50"] = ratio(row["evaluate_durable"], row["evaluate_reference"])
        by_comeds.append(row)
    durable.close()
    return {"by_rules": by_rules, "by_co_medications": by_comeds}


if __name__ == "__main__":
    if sys.argv[1:] == ["cold"]:
        print(json.dumps(cold_child()))
    else:
        raise SystemExit("usage: python -m bench.engine_bench cold")
