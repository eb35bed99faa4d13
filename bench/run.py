"""``make bench``: run the benchmark areas (issues 8 and 12) in one go, write results.json, print a table.

    python -m bench.run                  # full run (~7 min on 2 cores), writes bench/results.json
    python -m bench.run --quick          # smoke run (well under a minute of measuring), small samples
    python -m bench.run --sections engine,memory --out /tmp/r.json

Sections: engine (1), scaling (2), http (3), memory (4), cohort (5), terminology (6, issue 12). Each
records the machine's load average around it; the targets of the issue are checked at the end and listed as met/missed.
Every server, load generator and cluster is started by this run, bound to 127.0.0.1, bounded in
time, and stopped before it returns.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import machine
from bench.report import print_report, targets

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("engine", "scaling", "http", "memory", "cohort", "terminology")


@dataclass(frozen=True)
class Plan:
    engine_n: int
    mix_size: int
    cold_runs: int
    scaling_n: int
    http_workers: tuple[int, ...]
    http_bodies: int
    http_rates: tuple[float, ...]
    http_concurrency: int
    http_duration_s: float
    http_warmup_s: float
    http_profile_n: int
    memory_evaluations: int
    memory_warmup: int
    cohort_patients: int
    dask_workers: int
    cohort_variants: bool
    terminology_n: int = 5_000
    terminology_products: int = 300_000
    terminology_load_runs: int = 3


FULL = Plan(
    engine_n=20_000,
    mix_size=2_000,
    cold_runs=5,
    scaling_n=4_000,
    http_workers=(1, 2),
    http_bodies=200,
    http_rates=(100, 300),
    http_concurrency=64,
    http_duration_s=8,
    http_warmup_s=2,
    http_profile_n=400,
    memory_evaluations=100_000,
    memory_warmup=5_000,
    cohort_patients=10_000,
    dask_workers=2,
    cohort_variants=True,
)
QUICK = Plan(
    engine_n=1_000,
    mix_size=100,
    cold_runs=1,
    scaling_n=200,
    http_workers=(1,),
    http_bodies=10,
    http_rates=(100,),
    http_concurrency=8,
    http_duration_s=1,
    http_warmup_s=0.3,
    http_profile_n=30,
    memory_evaluations=5_000,
    memory_warmup=500,
    cohort_patients=200,
    dask_workers=2,
    cohort_variants=False,
    terminology_n=300,
    terminology_products=20_000,
    terminology_load_runs=1,
)


def run(plan: Plan, sections: tuple[str, ...], quick: bool) -> dict[str, Any]:
    from engine.compiler.pack import compile_pack
    from engine.settings import BUNDLED_RULES

    started = time.perf_counter()
    results: dict[str, Any] = {
        "schema": 1,
        "quick": quick,
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "plan": plan.__dict__,
        "machine": machine.describe(ROOT),
    }
    pack = compile_pack(BUNDLED_RULES)
    results["rule_pack"] = {
        "version": pack.version,
        "digest": pack.digest,
        "rules": len(pack.rules),
        "rules_per_drug_ruleset": {d: len(dr.rules) for d, dr in sorted(pack.drugs.items())},
    }
    for name in sections:
        _say(f"== {name} ==")
        t0, load0 = time.perf_counter(), machine.load()
        results[name] = _section(name, plan, pack)
        results[name]["section_seconds"] = round(time.perf_counter() - t0, 1)
        results[name]["load_average"] = {"before": load0, "after": machine.load()}
    results["load_average_at_end"] = machine.load()
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["targets"] = targets(results)
    return results


def _section(name: str, plan: Plan, pack: Any) -> dict[str, Any]:
    if name == "engine":
        from bench.engine_bench import engine_only

        return engine_only(pack, plan.engine_n, plan.mix_size, plan.cold_runs)
    if name == "scaling":
        from bench.engine_bench import scaling

        return scaling(pack, plan.scaling_n)
    if name == "http":
        from bench.http_bench import http
        from bench.http_profile import http_profile
        from bench.workload import synthetic_bodies

        bodies = synthetic_bodies(pack, plan.http_bodies)
        result = http(
            bodies,
            plan.http_workers,
            plan.http_rates,
            plan.http_concurrency,
            plan.http_duration_s,
            plan.http_warmup_s,
        )
        result["in_process_breakdown"] = http_profile(bodies, plan.http_profile_n)
        return result
    if name == "memory":
        from bench.memory_bench import memory

        return memory(plan.memory_evaluations, plan.memory_warmup, min(plan.mix_size, 1000))
    if name == "cohort":
        from bench.cohort_bench import cohort

        return cohort(pack, plan.cohort_patients, plan.dask_workers, variants=plan.cohort_variants)
    if name == "terminology":
        from bench.terminology_bench import terminology

        return terminology(pack, plan.terminology_n, plan.terminology_products, plan.terminology_load_runs)
    raise ValueError(name)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small samples: a smoke run, not a measurement")
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json", help="results file to write")
    args = ap.parse_args(argv)
    sections = tuple(s.strip() for s in args.sections.split(",") if s.strip())
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        ap.error(f"unknown section(s) {unknown}; choose from {SECTIONS}")
    results = run(QUICK if args.quick else FULL, sections, args.quick)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print_report(results)
    _say(f"wrote {args.out} in {results['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
