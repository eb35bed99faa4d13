"""Evaluate a cohort of requests and fold the answers into mergeable, order-free statistics.

The same ``evaluate_lines`` runs in-process and inside each Dask worker; partial ``CohortStats``
from partitions add up to exactly the in-process result (counters and id-sorted lists only, no
timing), which is what the Dask test asserts. Each patient is also run through the reference
evaluator (differential check) and the single-answer safety invariants, so a cohort report shows
disagreements and violations next to the clinical statistics.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.compiler.model import CompiledPack
from engine.errors import CdsRulesError
from engine.harness.case import Case, Checker, fired_ids
from engine.harness.differential import Differential
from engine.harness.invariants import SINGLE_ANSWER, check
from engine.harness.rulemap import derived_of
from engine.runtime.engine import Engine
from schemas.api import EvaluateRequest

META_KEYS = ("id", "source", "notes")  # allowed beside the request body in a cohort line
Line = tuple[int, str]  # (1-based line number, text)


@dataclass
class Runtime:
    """Everything one process needs to evaluate cohort lines: built once per process/worker."""

    pack: CompiledPack
    durable: Engine
    checker: Checker
    differential: Differential

    @classmethod
    def build(cls, pack: CompiledPack) -> Runtime:
        durable = Engine(pack, backend="durable")
        return cls(pack, durable, Checker(durable), Differential(durable, Engine(pack, backend="reference")))

    def close(self) -> None:
        self.durable.close()


def _pointer(loc: tuple[int | str, ...]) -> str:
    return "/" + "/".join(str(p) for p in loc)


def parse_line(source: str, number: int, text: str) -> tuple[str, EvaluateRequest | None, str | None]:
    """(record id, request or None, error naming file:line and JSON pointer)."""
    fallback = f"{Path(source).name}:{number}"
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        return fallback, None, f"{source}:{number}: not JSON: {exc.msg} (column {exc.colno})"
    if not isinstance(body, dict):
        return fallback, None, f"{source}:{number}: a cohort line is a JSON object with 'patient' and 'drug'"
    rid = str(body.get("id") or fallback)
    for key in META_KEYS:
        body.pop(key, None)
    try:
        return rid, EvaluateRequest.model_validate(body), None
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return rid, None, f"{source}:{number}: {_pointer(first['loc'])}: {first['msg']}{more}"


def read_lines(path: Path) -> Iterator[Line]:
    with path.open(encoding="utf-8") as fh:
        for number, text in enumerate(fh, start=1):
            if text.strip():
                yield number, text


@dataclass
class CohortStats:
    """Order-free statistics of a cohort run; ``merge`` is associative and commutative."""

    counts: dict[str, Counter[str]] = field(default_factory=dict)
    lists: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def inc(self, table: str, key: str, n: int = 1) -> None:
        self.counts.setdefault(table, Counter())[key] += n

    def add(self, table: str, item: dict[str, Any]) -> None:
        self.lists.setdefault(table, []).append(item)

    def merge(self, other: CohortStats) -> CohortStats:
        for table, counter in other.counts.items():
            self.counts.setdefault(table, Counter()).update(counter)
        for table, items in other.lists.items():
            self.lists.setdefault(table, []).extend(items)
        return self

    def to_state(self) -> dict[str, Any]:
        """Plain data (JSON-able, picklable without this module), lists sorted for determinism."""
        return {
            "counts": {t: dict(sorted(c.items())) for t, c in sorted(self.counts.items())},
            "lists": {
                t: sorted(items, key=lambda i: (str(i.get("id")), json.dumps(i, sort_keys=True)))
                for t, items in sorted(self.lists.items())
            },
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CohortStats:
        return cls(
            counts={t: Counter(c) for t, c in state["counts"].items()},
            lists={t: list(items) for t, items in state["lists"].items()},
        )


def age_band(age: float | None) -> str:
    if age is None:
        return "unknown"
    for upper, label in ((2, "<2"), (8, "2-7"), (12, "8-11"), (18, "12-17"), (65, "18-64"), (80, "65-79")):
        if age < upper:
            return label
    return "80+"


def evaluate_lines(rt: Runtime, lines: Iterable[Line], source: str, invariants: bool = True) -> CohortStats:
    stats = CohortStats()
    for number, text in lines:
        stats.inc("totals", "lines")
        rid, req, error = parse_line(source, number, text)
        if req is None:
            stats.add("input_errors", {"id": rid, "line": number, "error": error or "invalid"})
            continue
        case = Case(rid, req)
        try:
            drug = rt.checker.drug(case)
            resp = rt.checker.response(case)
            disagreement = rt.differential.compare(rid, req)
            violations = check(rt.checker, case, SINGLE_ANSWER) if invariants else []
        except CdsRulesError as exc:
            stats.add("evaluation_errors", {"id": rid, "line": number, "error": str(exc)})
            continue
        stats.inc("totals", "evaluated")
        action = req.drug.action
        stats.inc("orders", f"{drug}|{action}")
        fired = fired_ids(resp)
        for rid_fired in fired:
            stats.inc("rule_fires", rid_fired)
        for f in resp.findings:
            stats.inc("findings", f"{drug}|{f.category}|{f.severity}")
        if resp.contraindicated:
            stats.inc("contraindicated", drug)
        age_group = "/".join(sorted(derived_of(rt.pack, fired).get("age_group", frozenset()))) or "unknown"
        renal_band = resp.renal.band
        if action == "start":
            total = "none" if resp.dose is None else f"{resp.dose.start.total_daily_mg:g}"
            stats.inc("start_doses", f"{drug}|{renal_band}|{age_group}|{total}")
            stats.inc("start_doses_by_age", f"{drug}|{age_band(req.patient.resolved_age_years())}|{total}")
        for code in resp.missing_data:
            stats.inc("missing_data", f"{drug}|{code}")
        if resp.missing_data:
            stats.add("missing_patients", {"id": rid, "drug": drug, "missing": list(resp.missing_data)})
        for u in resp.unrecognized:
            stats.inc("unrecognized", f"{u.field}|{u.value}")
        if disagreement is not None:
            stats.add("disagreements", disagreement.as_json())
        for v in violations:
            stats.inc("violations", f"{v.invariant}|{v.drug}")
            stats.add("violation_examples", v.as_json())
    return stats


def run_inprocess(
    pack: CompiledPack,
    lines: Iterable[Line],
    source: str,
    progress: Callable[[int], None] | None = None,
    chunk: int = 200,
    invariants: bool = True,
) -> CohortStats:
    """Evaluate in this process, calling ``progress(n_done_since_last_call)`` every ``chunk`` lines."""
    rt = Runtime.build(pack)
    total = CohortStats()
    try:
        batch: list[Line] = []
        for line in lines:
            batch.append(line)
            if len(batch) >= chunk:
                total.merge(evaluate_lines(rt, batch, source, invariants))
                if progress:
                    progress(len(batch))
                batch = []
        if batch:
            total.merge(evaluate_lines(rt, batch, source, invariants))
            if progress:
                progress(len(batch))
    finally:
        rt.close()
    return total
