"""Section 4: resident memory over 100k full evaluations, in a fresh process so nothing else counts.

The child evaluates the synthetic mix round-robin (every drug's ruleset, sessions created and
deleted each time) and samples RSS from ``/proc/self/statm`` at checkpoints after a warm-up. Flat
means the growth from the first checkpoint to the last stays under 10 MB (issue 8). Per-worker RSS
of the HTTP server is measured in ``bench.http_bench``, where the workers run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as fh:
        pages = int(fh.read().split()[1])
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 1e6, 2)


def child(total: int, warmup: int, mix_size: int) -> dict[str, Any]:
    from bench.workload import synthetic_bodies
    from engine.compiler.pack import compile_pack
    from engine.runtime.engine import Engine
    from engine.settings import BUNDLED_RULES
    from schemas.api import EvaluateRequest

    pack = compile_pack(BUNDLED_RULES)
    engine = Engine(pack)
    reqs = [EvaluateRequest.model_validate(b) for b in synthetic_bodies(pack, mix_size)]
    after_compile = rss_mb()
    for i in range(warmup):
        engine.evaluate(reqs[i % len(reqs)], decision_id="mem")
    checkpoints = sorted({total // 10, total // 4, total // 2, 3 * total // 4, total})
    samples = [{"evaluations": 0, "rss_mb": rss_mb()}]
    started = time.perf_counter()
    done = 0
    for stop in checkpoints:
        while done < stop:
            engine.evaluate(reqs[done % len(reqs)], decision_id="mem")
            done += 1
        samples.append({"evaluations": done, "rss_mb": rss_mb()})
    seconds = time.perf_counter() - started
    engine.close()
    return {
        "evaluations": total,
        "warmup_evaluations": warmup,
        "distinct_patients": len(reqs),
        "rss_after_compile_mb": after_compile,
        "samples": samples,
        "growth_mb": round(samples[-1]["rss_mb"] - samples[0]["rss_mb"], 2),
        "seconds": round(seconds, 1),
        "evaluations_per_second": round(total / seconds, 1),
    }


def memory(total: int, warmup: int, mix_size: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.memory_bench", str(total), str(warmup), str(mix_size)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


if __name__ == "__main__":
    print(json.dumps(child(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))))
