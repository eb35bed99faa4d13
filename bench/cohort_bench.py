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

    Also times the two halves separately (parsing a line into an ``EvaluateRequest``, and
    ``Engine.evaluate``), in CPU seconds, to show where a patient's time goes.
    """
    engine = Engine(pack)
    lines = list(read_lines(patients))
    for number, text in lines[:200]:  # warm the caches like a long run would
        _, req, _ = parse_line(str(patients), number, text)
        if req is not None:
            engine.evaluate(req, decision_id="cohort")
    started = time.perf_counter()
    cpu0 = time.process_time()
    done = 0
    for number, text in lines:
        _, req, _ = parse_line(str(patients), number, text)
        if req is not None:
            engine.evaluate(req, decision_id="cohort")
            done += 1
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    c0 = time.process_time()
    reqs = [parse_line(str(patients), number, text)[1] for number, text in lines]
    parse_cpu = time.process_time() - c0
    c0 = time.process_time()
    for req in reqs:
        if req is not None:
            engine.evaluate(req, decision_id="cohort")
    evaluate_cpu = time.process_time() - c0
    engine.close()
    return {
        "patients": done,
        "seconds": round(seconds, 2),
        "patients_per_second": round(done / seconds, 1),
        "patients_per_cpu_second": round(done / cpu, 1),
        "parse_cpu_us_per_patient": round(parse_cpu / len(lines) * 1e6, 1),
        "evaluate_cpu_us_per_patient": round(evaluate_cpu / max(1, done) * 1e6, 1),
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
        marginal = None
        if variants:  # the same without the invariant checks (differential check still on)
            runs["inprocess_no_invariants"] = _cohort_run(patients, work / "r3", ["--no-invariants"], timeout)
            runs["dask_no_invariants"] = _cohort_run(patients, work / "r4", [*dask, "--no-invariants"], timeout)
            # Dask pays a fixed start (cluster, one pack compile per worker): the rate of the second
            # half of the patients, from a run on the first half, is what more patients cost
            half = work / "half.jsonl"
            with patients.open(encoding="utf-8") as src, half.open("w", encoding="utf-8") as dst:
                dst.writelines(line for i, line in enumerate(src) if i < n // 2)
            small = _cohort_run(half, work / "r5", dask, timeout)
            extra_s = runs["dask"]["seconds"] - small["seconds"]
            rate = (n - n // 2) / extra_s if extra_s > 0 else None
            marginal = {
                "half_run": small,
                "patients_per_second": round(rate, 1) if rate else None,
                "patients_per_second_per_core": round(rate / dask_workers, 1) if rate else None,
                "fixed_start_s": round(small["seconds"] - (n // 2) / rate, 2) if rate else None,
            }
        return {
            "patients": n,
            "synth_seconds": round(synth_s, 2),
            "runs": runs,
            "dask_marginal": marginal,
            "evaluation_only_inprocess": evaluation_only(pack, patients),
        }
