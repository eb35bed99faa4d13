"""Section 5: patients per second for ``cdsrules cohort``, in-process and on a Dask LocalCluster.

The cohort command does more than evaluate: every patient is also run through the pure-Python
reference evaluator (differential check) and, by default, the single-answer safety invariants
(which evaluate extra variants of the patient). So three numbers are reported per engine: the
command as shipped, the command with ``--no-invariants``, and, in this process, the evaluation
alone (parse the line, ``Engine.evaluate``) - the part of a population audit the engine owns.
Rates are the command's own ``patients_per_second`` (evaluation time, not report rendering).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.machine import load
from engine.compiler.model import CompiledPack
from engine.harness.cohort import parse_line, read_lines
from engine.harness.synth import Generator, write_jsonl
from engine.runtime.engine import Engine

ROOT = Path(__file__).resolve().parent.parent
TINY = 100  # patients in the run that measures Dask's fixed start-up
CLI = [sys.executable, "-c", "from engine.cli import main; main()"]


def _cli(args: list[str], timeout: float) -> tuple[int, float, str]:
    started = time.perf_counter()
    out = subprocess.run([*CLI, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    if out.returncode not in (0, 1):  # 1 = the cohort needs a human (disagreement, violation): still a run
        raise RuntimeError(f"cdsrules {' '.join(args[:2])} failed ({out.returncode}): {out.stderr[-2000:]}")
    return out.returncode, time.perf_counter() - started, out.stdout.strip()


def _cohort_run(patients: Path, report: Path, extra: list[str], timeout: float) -> dict[str, Any]:
    load0 = load()
    code, wall, stdout = _cli(["cohort", str(patients), "--report", str(report), *extra], timeout)
    summary = json.loads((report / "summary.json").read_text(encoding="utf-8"))
    meta, results = summary["meta"], summary["results"]
    workers = meta.get("workers") or 1
    return {
        "args": extra,
        "exit_code": code,
        "patients": results.get("patients"),
        "evaluated": results.get("evaluated"),
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


def cohort(pack: CompiledPack, n: int, dask_workers: int, variants: bool = True) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cdsrules-cohort-") as tmp:
        work = Path(tmp)
        patients = work / "patients.jsonl"
        started = time.perf_counter()  # what `cdsrules synth --n N --seed 7` writes, without a second compile
        write_jsonl(Generator(pack, 7).cohort(n), patients)
        synth_s = time.perf_counter() - started
        timeout = 60 + n * 0.05
        dask = ["--engine", "dask", "--workers", str(dask_workers)]
        runs = {
            "inprocess": _cohort_run(patients, work / "r1", [], timeout),
            "dask": _cohort_run(patients, work / "r2", dask, timeout),
        }
        startup = None
        if variants:  # the same without the invariant checks (differential check still on)
            runs["inprocess_no_invariants"] = _cohort_run(patients, work / "r3", ["--no-invariants"], timeout)
            runs["dask_no_invariants"] = _cohort_run(patients, work / "r4", [*dask, "--no-invariants"], timeout)
            # Dask pays a fixed start (cluster, one pack compile per worker, the client's own compile):
            # a 100-patient run is almost only that; the rest of the big run is per-patient work
            tiny = work / "tiny.jsonl"
            with patients.open(encoding="utf-8") as src, tiny.open("w", encoding="utf-8") as dst:
                dst.writelines(line for i, line in enumerate(src) if i < TINY)
            small = _cohort_run(tiny, work / "r5", dask, timeout)
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
            "evaluation_only_inprocess": evaluation_only(pack, patients),
        }
