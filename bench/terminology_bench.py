"""Section 6 (issue 12): what recognition costs with the larger terminology.

- compile: time and peak RSS of compiling the bundled pack, and the same pack with a large imported
  RxNorm release (``terminology/imported/rxnorm.json``), each in a fresh child process;
- lookup: engine p50 for one evaluation with many co-medications and conditions, sent code-only
  (RxNorm product codes, SNOMED CT codes) and as free text (names), beside the README patient;
- load: reading and validating a synthetic ``rxnorm.json`` the size of a real release (~300k
  products), which is what an import writes and a loader of imported terminology reads.

The synthetic release uses RxCUIs from 90,000,000 up, outside RxNorm's range, so it can never be
mistaken for real codes.
"""

from __future__ import annotations

import gc
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from bench.engine_bench import timed
from bench.stats import summarise
from bench.workload import README_PATIENT
from engine.compiler.model import CompiledPack
from engine.runtime.engine import Engine
from engine.settings import BUNDLED_RULES
from engine.terminology.imports import IMPORTED_DIR, RXNORM_FILE
from schemas.api import EvaluateRequest
from schemas.terminology import RxNormFile

SYNTHETIC_BASE = 90_000_000

_CHILD = """
import json, sys, time
t0 = time.perf_counter()
from engine.compiler.pack import compile_pack
t1 = time.perf_counter()
pack = compile_pack(__import__("pathlib").Path(sys.argv[1]))
t2 = time.perf_counter()
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork+exec, so it would report the parent's peak
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"import_s": round(t1 - t0, 3), "compile_s": round(t2 - t1, 3),
                  "peak_rss_mb": round(hwm / 1024, 1), "digest": pack.digest}))
"""


def synthetic_rxnorm(products: int, ingredients: int = 4_000, seed: int = 12) -> dict[str, Any]:
    """An ``RxNormFile`` as JSON data: ``products`` SCD/SBD with 1-3 ingredients and an NDC each."""
    rnd = random.Random(seed)
    ings = [{"rxcui": str(SYNTHETIC_BASE + i), "name": f"synthetic ingredient {i}"} for i in range(ingredients)]
    prods = []
    for n in range(products):
        k = rnd.choice((1, 1, 1, 2, 2, 3))
        chosen = sorted({str(SYNTHETIC_BASE + rnd.randrange(ingredients)) for _ in range(k)}, key=int)
        prods.append(
            {
                "rxcui": str(SYNTHETIC_BASE + ingredients + n),
                "name": f"synthetic product {n} 10 MG Oral Tablet",
                "tty": "SCD" if n % 3 else "SBD",
                "ingredients": chosen,
                "ndc": [f"{99000 + n % 1000:05d}{n % 10_000:04d}{n % 100:02d}"],
            }
        )
    source = {"id": "rxnorm", "label": "synthetic release (benchmark only)", "version": "synthetic"}
    return {"kind": "rxnorm", "release": "synthetic", "sources": [source], "ingredients": ings, "products": prods}


def load_time(path: Path, runs: int) -> dict[str, Any]:
    parse, validate, direct = [], [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        data = json.loads(path.read_bytes())
        t1 = time.perf_counter()
        RxNormFile.model_validate(data)
        t2 = time.perf_counter()
        RxNormFile.model_validate_json(path.read_bytes())  # pydantic-core parses and validates in one pass
        t3 = time.perf_counter()
        parse.append(t1 - t0)
        validate.append(t2 - t1)
        direct.append(t3 - t2)
    return {
        "file_mb": round(path.stat().st_size / 1e6, 1),
        "json_parse_s": summarise(parse),
        "model_validate_s": summarise(validate),
        "model_validate_json_s": summarise(direct),
    }


def _compile_child(root: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(root)], capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _request(co_meds: list[dict[str, str]], conditions: list[Any]) -> EvaluateRequest:
    patient = {**README_PATIENT["patient"], "co_medications": co_meds, "conditions": conditions}
    return EvaluateRequest.model_validate({**README_PATIENT, "patient": patient})


def lookup_requests(pack: CompiledPack, n: int, seed: int = 12) -> dict[str, EvaluateRequest]:
    """README patient with ``n`` co-medications and ``n`` conditions, code-only and as free text."""
    rnd = random.Random(seed)
    term = pack.terminology
    ingredient_codes = {rx for rx in term.ingredients.values() if rx}
    product_codes = sorted(c for c in term.by_rxcui if c not in ingredient_codes)
    snomed = sorted(term.snomed)
    names = sorted(i.replace("-", " ") for i in term.ingredients if i != "baclofen")
    vs_names = sorted(term.vs_by_name)

    def pick(xs: list[str]) -> list[str]:
        return rnd.sample(xs, min(n, len(xs)))

    coded_meds = [{"rxcui": c} for c in pick(product_codes)]
    coded_conditions = [{"coding": [{"system": "http://snomed.info/sct", "code": c}]} for c in pick(snomed)]
    return {
        "readme": _request([], []),
        f"code_only_{n}": _request(coded_meds, coded_conditions),
        f"free_text_{n}": _request([{"name": x} for x in pick(names)], pick(vs_names)),
    }


def terminology(pack: CompiledPack, n_eval: int, products: int, load_runs: int, many: int = 20) -> dict[str, Any]:
    out: dict[str, Any] = {"synthetic_products": products}
    engine = Engine(pack)
    try:
        out["lookup"] = {
            name: timed(partial(engine.evaluate, req), n_eval, max(50, n_eval // 20))
            for name, req in lookup_requests(pack, many).items()
        }
    finally:
        engine.close()
    with tempfile.TemporaryDirectory(prefix="cdsrules-termbench-") as tmp:
        root = Path(tmp) / "rules"
        shutil.copytree(BUNDLED_RULES, root)
        out["compile_bundled"] = _compile_child(root)
        big = root / IMPORTED_DIR / RXNORM_FILE
        big.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        big.write_text(json.dumps(synthetic_rxnorm(products), separators=(",", ":")), encoding="utf-8")
        out["synthetic_write_s"] = round(time.perf_counter() - t0, 2)
        gc.collect()
        out["load"] = load_time(big, load_runs)
        out["compile_with_import"] = _compile_child(root)
    return out


if __name__ == "__main__":
    from engine.compiler.pack import compile_pack

    quick = "--quick" in sys.argv
    result = terminology(
        compile_pack(BUNDLED_RULES), 300 if quick else 5_000, 20_000 if quick else 300_000, 1 if quick else 3
    )
    print(json.dumps(result, indent=2))
