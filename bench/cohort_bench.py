"""Section 5: patients per second for ``cdsrules cohort``, in-process and on a Dask LocalCluster.

The cohort command does more than evaluate: by default every answer is also checked against the
pure-Python reference evaluator (differential check) and the single-answer safety invariants. So
each engine is run three ways: full checks (the default), ``--no-invariants``, and evaluation only
(``--no-differential --no-invariants``). Rates are the command's own ``patients_per_second``
(evaluation time, not report rendering); ``command_cpu_us_per_patient`` is the CPU of every process
of the command (client, scheduler, workers; start-up, compile and report included) per patient.

On a shared machine wall-clock rates mostly measure what other jobs left us, so the same three
modes are also timed in this process in CPU time (``evaluate_lines_cpu``: ``evaluate_lines`` on the
same file, best of three): per-patient cost without start-up, and the rate one free core would give.
``evaluation_only_inprocess`` times the engine alone (parse the line, ``Engine.evaluate``).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.machine import load
from engine.compiler.model import CompiledPack
from engine.harness.cohort import Checks, Runtime, evaluate_lines, parse_line, read_lines
from engine.harness.synth import Generator, write_jsonl
from engine.runtime.engine import Engine

ROOT = Path(__file__).resolve().parent.parent
TINY = 100  # patients in the run that measures Dask's fixed start-up
CLI = [sys.executable, "-c", "from engine.cli import main; main()"]
MODES = {  # run-name suffix -> (CLI flags, checks)
    "": ([], Checks()),
    "_no_invariants": (["--no-invariants"], Checks(invariants=False)),
    "_evaluation_only": (["--no-differential", "--no-invariants"], Checks(differential=False, invariants=False)),
}


def _children_cpu() -> float:
    """CPU seconds of every finished child process (and, once reaped, their children: Dask workers)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _cli(args: list[str], timeout: float) -> tuple[int, float, str]:
    started = time.perf_counter()
    out = subprocess.run([*CLI, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    if out.returncode not in (0, 1):  # 1 = the cohort needs a human (disagreement, violation): still a run
        raise RuntimeError(f"cdsrules {' '.join(args[:2])} failed ({out.returncode}): {out.stderr[-2000:]}")
    return out.returncode, time.perf_counter() - started, out.stdout.strip()


def _cohort_run(patients: Path, report: Path, extra: list[str], timeout: float) -> dict[str, Any]:
    load0 = load()
    cpu0 = _children_cpu()
    code, wall, stdout = _cli(["cohort", str(patients), "--report", str(report), *extra], timeout)
    cpu = _children_cpu() - cpu0
    summary = json.loads((report / "summary.json").read_text(encoding="utf-8"))
    meta, results = summary["meta"], summary["results"]
    workers = meta.get("workers") or 1
    return {
        "args": extra,
        "exit_code": code,
        "checks": meta.get("checks"),
        "patients": results.get("patients"),
        "evaluated": results.get("evaluated"),
        "command_cpu_s": round(cpu, 2),
        "command_cpu_us_per_patient": round(cpu / max(1, results.get("patients") or 0) * 1e6, 1),
        "seconds": meta["seconds"],
        "patients_per_second": meta["patients_per_second"],
        "workers": workers,
        "patients_per_second_per_core": round(meta["patients_per_second"] / workers, 1),
        "command_wall_s": round(wall, 2),
        "load_average": {"before": load0, "after": load()},
        "stdout": stdout[-300:],
    }


def evaluation_only(pack: CompiledPack, patients: Path) -> dict[str, Any]:
    """Parse + evaluate every line in this process: what one core does for the engine alone.

    A second pass times the two halves of each line separately in CPU time (parsing it into an
    ``EvaluateRequest``, and ``Engine.evaluate``), to show where a patient's time goes. Nothing is
    kept between lines, as in the cohort command, so the garbage collector sees the same heap.
    """
    engine = Engine(pack)
    source = str(patients)
    lines = list(read_lines(patients))
    for number, text in lines[:200]:  # warm the caches like a long run would
        _, req, _ = parse_line(source, number, text)
        if req is not None:
            engine.evaluate(req, decision_id="cohort")
    started = time.perf_counter()
    cpu0 = time.process_time()
    done = 0
    for number, text in lines:
        _, req, _ = parse_line(source, number, text)
        if req is not None:
            engine.evaluate(req, decision_id="cohort")
            done += 1
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    parse_ns = evaluate_ns = 0
    tt = time.thread_time_ns
    for number, text in lines:
        t0 = tt()
        _, req, _ = parse_line(source, number, text)
        t1 = tt()
        if req is not None:
            engine.evaluate(req, decision_id="cohort")
        evaluate_ns += tt() - t1
        parse_ns += t1 - t0
    engine.close()
    return {
        "patients": done,
        "seconds": round(seconds, 2),
        "patients_per_second": round(done / seconds, 1),
        "patients_per_cpu_second": round(done / cpu, 1),
        "parse_cpu_us_per_patient": round(parse_ns / len(lines) / 1000, 1),
        "evaluate_cpu_us_per_patient": round(evaluate_ns / max(1, done) / 1000, 1),
    }


def evaluate_lines_cpu(pack: CompiledPack, patients: Path, reps: int = 3) -> dict[str, Any]:
    """CPU µs per patient of ``evaluate_lines`` (what the command runs per partition) in each mode.

    Batches of 200 lines as ``run_inprocess`` uses; the best of ``reps`` passes, since on a shared
    machine other jobs can only add CPU time (cache misses, frequency), never take it away.
    """
    lines = list(read_lines(patients))
    rt = Runtime.build(pack)
    out: dict[str, Any] = {}
    try:
        for suffix, (_, checks) in MODES.items():
            evaluate_lines(rt, lines[:200], "bench", checks)  # warm the caches like a long run would
            best = float("inf")
            for _ in range(reps):
                cpu0 = time.process_time()
                for i in range(0, len(lines), 200):
                    evaluate_lines(rt, lines[i : i + 200], "bench", checks)
                best = min(best, time.process_time() - cpu0)
            us = best / len(lines) * 1e6
            out["full" if not suffix else suffix[1:]] = {
                "checks": checks.label,
                "cpu_us_per_patient": round(us, 1),
                "patients_per_cpu_second": round(1e6 / us, 1),
            }
    finally:
        rt.close()
    return out


def cohort(pack: CompiledPack, n: int, dask_workers: int, variants: bool = True) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cdsrules-cohort-") as tmp:
        work = Path(tmp)
        patients = work / "patients.jsonl"
        started = time.perf_counter()  # what `cdsrules synth --n N --seed 7` writes, without a second compile
        write_jsonl(Generator(pack, 7).cohort(n), patients)
        synth_s = time.perf_counter() - started
        timeout = 60 + n * 0.05
        dask = ["--engine", "dask", "--workers", str(dask_workers)]
        runs: dict[str, Any] = {}
        startup = None
        for suffix, (flags, _) in MODES.items() if variants else [("", MODES[""])]:
            runs[f"inprocess{suffix}"] = _cohort_run(patients, work / f"inprocess{suffix}", flags, timeout)
            runs[f"dask{suffix}"] = _cohort_run(patients, work / f"dask{suffix}", [*dask, *flags], timeout)
        if variants:
            # Dask pays a fixed start (cluster, workers importing cdsrules and loading the pack): a
            # 100-patient run is almost only that; the rest of the big run is per-patient work
            tiny = work / "tiny.jsonl"
            with patients.open(encoding="utf-8") as src, tiny.open("w", encoding="utf-8") as dst:
                dst.writelines(line for i, line in enumerate(src) if i < TINY)
            small = _cohort_run(tiny, work / "tiny", dask, timeout)
            work_s = runs["dask"]["seconds"] - small["seconds"]
            rate = (n - TINY) / work_s if work_s > 0 else None
            startup = {
                "patients": TINY,
                "seconds": small["seconds"],
                "rough_rate_after_start": round(rate, 1) if rate else None,
                "rough_rate_after_start_per_core": round(rate / dask_workers, 1) if rate else None,
            }
        return {
            "patients": n,
            "synth_seconds": round(synth_s, 2),
            "runs": runs,
            "dask_startup": startup,
            "evaluate_lines_cpu": evaluate_lines_cpu(pack, patients, reps=3 if variants else 1),
            "evaluation_only_inprocess": evaluation_only(pack, patients),
        }
