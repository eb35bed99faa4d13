"""Evaluate a cohort of requests and fold the answers into mergeable, order-free statistics.

The same ``evaluate_lines`` runs in-process and inside each Dask worker; partial ``CohortStats``
from partitions add up to exactly the in-process result (counters and id-sorted lists only, no
timing), which is what the Dask test asserts. By default each patient's answer is also checked
against the reference evaluator (differential check) and the single-answer safety invariants, so a
cohort report shows disagreements and violations next to the clinical statistics.

Both checks can be switched off (``Checks``) when a reviewer wants the engine's answers for a large
population fast: the checks cost several times the evaluation itself. Every checked patient is
counted in the statistics (table ``checks``), so a summary can only claim a check that ran.
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
from engine.harness.case import Case, Checker, Violation
from engine.harness.differential import Differential
from engine.harness.invariants import SINGLE_ANSWER, check
from engine.runtime.engine import Engine
from engine.validation import locate
from schemas.api import EvaluateRequest

META_KEYS = ("id", "source", "notes")  # allowed beside the request body in a cohort line
Line = tuple[int, str]  # (1-based line number, text)


@dataclass(frozen=True)
class Checks:
    """Which checks run on every evaluated patient, besides the evaluation itself."""

    differential: bool = True  # compare durable-rules' answer with the reference evaluator
    invariants: bool = True  # the single-answer safety invariants (engine.harness.invariants)

    @property
    def label(self) -> str:
        if self.differential and self.invariants:
            return "full checks"
        if self.differential:
            return "differential check only"
        if self.invariants:
            return "safety invariants only"
        return "evaluation only"


FULL = Checks()


@dataclass
class Runtime:
    """Everything one process needs to evaluate cohort lines: built once per process/worker."""

    pack: CompiledPack
    durable: Engine
    checker: Checker
    differential: Differential
    age_groups: dict[str, str]  # rule id -> the age_group it derives (what derived_of would say)

    @classmethod
    def build(cls, pack: CompiledPack) -> Runtime:
        durable = Engine(pack, backend="durable")
        differential = Differential(durable, Engine(pack, backend="reference"))
        age_groups = {
            rid: group for rid, rule in pack.rules.items() if (group := (rule.then.derive or {}).get("age_group"))
        }
        return cls(pack, durable, Checker(durable), differential, age_groups)

    def close(self) -> None:
        self.durable.close()


class _CohortLine(EvaluateRequest):
    """A cohort line as one model (the request plus ``META_KEYS``), so it validates from JSON in one step."""

    id: Any = None
    source: Any = None
    notes: Any = None


def parse_line(source: str, number: int, text: str) -> tuple[str, EvaluateRequest | None, str | None]:
    """(record id, request or None, error naming file:line and JSON pointer).

    A valid line is validated straight from its JSON text (pydantic's parser, no intermediate
    dicts: about half the cost of ``json.loads`` + ``model_validate``). Any line that fails goes
    through ``_parse_checked``, which has always produced the error messages, so an invalid line is
    reported exactly as before; tests/harness/test_cohort.py checks both paths give equal requests.
    """
    try:
        line = _CohortLine.model_validate_json(text)
    except ValidationError:
        return _parse_checked(source, number, text)
    # patient and drug are validated models already; constructing skips validating them twice
    req = EvaluateRequest.model_construct(patient=line.patient, drug=line.drug)
    return str(line.id or _fallback_id(source, number)), req, None


def _fallback_id(source: str, number: int) -> str:
    return f"{Path(source).name}:{number}"


def _parse_checked(source: str, number: int, text: str) -> tuple[str, EvaluateRequest | None, str | None]:
    fallback = _fallback_id(source, number)
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
        found = locate(exc, EvaluateRequest)
        first = found[0]
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        return rid, None, f"{source}:{number}: {first.pointer}: {first.message}{more}"


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
        self.table(table)[key] += n

    def table(self, name: str) -> Counter[str]:
        """The counter ``name`` (created empty; ``to_state`` leaves out tables nothing was counted in)."""
        counter = self.counts.get(name)
        if counter is None:
            counter = self.counts[name] = Counter()
        return counter

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
            "counts": {t: dict(sorted(c.items())) for t, c in sorted(self.counts.items()) if c},
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


def evaluate_lines(rt: Runtime, lines: Iterable[Line], source: str, checks: Checks = FULL) -> CohortStats:
    stats = CohortStats()
    ck = rt.checker
    checking = checks.differential or checks.invariants
    # this loop runs once per patient: counters are looked up once per batch, not per increment
    totals, orders, rule_fires, findings = map(stats.table, ("totals", "orders", "rule_fires", "findings"))
    contraindicated, start_doses, by_age = map(stats.table, ("contraindicated", "start_doses", "start_doses_by_age"))
    missing_data, unrecognized, checked = map(stats.table, ("missing_data", "unrecognized", "checks"))
    age_groups = rt.age_groups
    for number, text in lines:
        totals["lines"] += 1
        rid, req, error = parse_line(source, number, text)
        if req is None:
            stats.add("input_errors", {"id": rid, "line": number, "error": error or "invalid"})
            continue
        disagreement = None
        violations: list[Violation] = []
        try:
            if checking:
                case = Case(rid, req)
                drug = ck.drug(case)
                resp = ck.response(case)
                if checks.differential:
                    fact = ck.fact(case)
                    reference = rt.differential.reference_firing(drug, fact)
                    disagreement = rt.differential.compare_answer(rid, req, drug, fact, resp, reference)
                    # the flag invariants evaluate the reference on the fact rebuilt from what was sent,
                    # which for most patients is this very fact: they reuse this firing when it is
                    case.cache["reference_fired"] = (fact, reference.fired)
                if checks.invariants:
                    violations = check(ck, case, SINGLE_ANSWER)
            else:  # the same answer Checker.response gives, without a Case to cache it in
                resp = ck.engine.evaluate(req, decision_id="harness")
                drug = resp.drug.name
        except CdsRulesError as exc:
            stats.add("evaluation_errors", {"id": rid, "line": number, "error": str(exc)})
            continue
        totals["evaluated"] += 1
        if checks.differential:
            checked["differential"] += 1
        if checks.invariants:
            checked["invariants"] += 1
        action = req.drug.action
        orders[f"{drug}|{action}"] += 1
        age_group: list[str] = []
        for entry in resp.trace:  # one entry per fired rule
            rule_fires[entry.rule_id] += 1
            if entry.rule_id in age_groups:
                age_group.append(age_groups[entry.rule_id])
        for f in resp.findings:
            findings[f"{drug}|{f.category}|{f.severity}"] += 1
        if resp.contraindicated:
            contraindicated[drug] += 1
        if action == "start":
            total = "none" if resp.dose is None else f"{resp.dose.start.total_daily_mg:g}"
            group = "/".join(sorted(set(age_group))) or "unknown"
            start_doses[f"{drug}|{resp.renal.band}|{group}|{total}"] += 1
            by_age[f"{drug}|{age_band(req.patient.resolved_age_years())}|{total}"] += 1
        if resp.missing_data:
            for code in resp.missing_data:
                missing_data[f"{drug}|{code}"] += 1
            stats.add("missing_patients", {"id": rid, "drug": drug, "missing": list(resp.missing_data)})
        for u in resp.unrecognized:
            unrecognized[f"{u.field}|{u.value}"] += 1
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
    checks: Checks = FULL,
) -> CohortStats:
    """Evaluate in this process, calling ``progress(n_done_since_last_call)`` every ``chunk`` lines."""
    rt = Runtime.build(pack)
    total = CohortStats()
    try:
        batch: list[Line] = []
        for line in lines:
            batch.append(line)
            if len(batch) >= chunk:
                total.merge(evaluate_lines(rt, batch, source, checks))
                if progress:
                    progress(len(batch))
                batch = []
        if batch:
            total.merge(evaluate_lines(rt, batch, source, checks))
            if progress:
                progress(len(batch))
    finally:
        rt.close()
    return total
