"""Run each rule file's ``examples:`` (patient in, expected findings out), like OPA policy tests.

The last stage of the gate (``engine.pipeline.gate``) runs them on the engine it would serve.

A failing example is reported at its own ``file:line`` with what was expected and what came
back, so the author fixes it next to the rule it tests.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import ValidationError

from engine.compiler.model import LocatedExample
from engine.errors import CdsRulesError
from engine.runtime.engine import Engine
from engine.validation import locate
from schemas.api import EvaluateRequest, EvaluateResponse
from schemas.common import SEVERITY_RANK
from schemas.rulefile import Expectation, ExpectedDose


@dataclass(frozen=True)
class ExampleResult:
    example: LocatedExample
    failures: tuple[str, ...]
    fired: frozenset[str] = frozenset()

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def where(self) -> str:
        return f"{self.example.file}:{self.example.line}"


def example_request(ex: LocatedExample) -> EvaluateRequest:
    return EvaluateRequest.model_validate(
        {"patient": ex.example.patient, "drug": {"name": ex.drug, "action": ex.example.action}}
    )


def run_example(engine: Engine, ex: LocatedExample) -> ExampleResult:
    try:
        req = example_request(ex)
    except ValidationError as exc:
        bad = locate(exc, EvaluateRequest)
        return ExampleResult(ex, tuple(f"patient is not a valid request: {b.pointer}: {b.message}" for b in bad))
    try:
        resp = engine.evaluate(req)
    except CdsRulesError as exc:
        return ExampleResult(ex, (f"evaluation failed: {exc}",))
    fired = frozenset(t.rule_id for t in resp.trace)
    return ExampleResult(ex, tuple(check_expectation(ex.example.expect, resp)), fired)


def run_examples(engine: Engine, examples: Iterable[LocatedExample]) -> list[ExampleResult]:
    return [run_example(engine, ex) for ex in examples]


def check_expectation(exp: Expectation, resp: EvaluateResponse) -> list[str]:
    fails: list[str] = []
    fired = {t.rule_id for t in resp.trace}
    for rid in exp.fires:
        if rid not in fired:
            fails.append(f"expected rule {rid} to fire; fired: {sorted(fired)}")
    for rid in exp.not_fires:
        if rid in fired:
            fails.append(f"expected rule {rid} not to fire, but it did")
    if exp.contraindicated is not None and exp.contraindicated != resp.contraindicated:
        fails.append(f"contraindicated: expected {exp.contraindicated}, got {resp.contraindicated}")
    if exp.dose == "none":
        if resp.dose is not None:
            fails.append(f"expected no dose, got {resp.dose.start.total_daily_mg} mg/day")
    elif isinstance(exp.dose, ExpectedDose):
        fails.extend(_check_dose(exp.dose, resp))
    for want in exp.findings:
        ok = any(
            f.category == want.category
            and (want.severity is None or SEVERITY_RANK[f.severity] >= SEVERITY_RANK[want.severity])
            and (want.rule_id is None or f.rule_id == want.rule_id)
            for f in resp.findings
        )
        if not ok:
            got = [(f.category, f.severity) for f in resp.findings]
            fails.append(f"expected a {want.category} finding (>= {want.severity or 'info'}); got {got}")
    for cat in exp.no_findings:
        hits = [f.rule_id for f in resp.findings if f.category == cat]
        if hits:
            fails.append(f"expected no {cat} finding; got {hits}")
    codes = {m.code for m in resp.monitoring}
    for code in exp.monitoring:
        if code not in codes:
            fails.append(f"expected monitoring {code}; got {sorted(codes)}")
    for m in exp.missing_data:
        if m not in resp.missing_data:
            fails.append(f"expected missing_data {m}; got {resp.missing_data}")
    return fails


def _check_dose(d: ExpectedDose, resp: EvaluateResponse) -> list[str]:
    if resp.dose is None:
        return ["expected a dose, got none"]
    total, mx, eps = resp.dose.start.total_daily_mg, resp.dose.max_daily_mg, 1e-6
    fails = []
    if d.start_total_daily_mg is not None and abs(total - d.start_total_daily_mg) > eps:
        fails.append(f"start {total:g} mg/day, expected {d.start_total_daily_mg:g}")
    if d.start_total_daily_mg_at_most is not None and total > d.start_total_daily_mg_at_most + eps:
        fails.append(f"start {total:g} mg/day, expected <= {d.start_total_daily_mg_at_most:g}")
    if d.start_total_daily_mg_at_least is not None and total < d.start_total_daily_mg_at_least - eps:
        fails.append(f"start {total:g} mg/day, expected >= {d.start_total_daily_mg_at_least:g}")
    if d.max_daily_mg is not None and abs(mx - d.max_daily_mg) > eps:
        fails.append(f"max {mx:g} mg/day, expected {d.max_daily_mg:g}")
    if d.max_daily_mg_at_most is not None and mx > d.max_daily_mg_at_most + eps:
        fails.append(f"max {mx:g} mg/day, expected <= {d.max_daily_mg_at_most:g}")
    return fails
