"""What an edit does to real patients: evaluate a cohort on the old and the new pack, compare.

Reviewing a rule change by reading YAML misses its reach: a renal threshold moved by 5 mL/min
changes the dose for every patient near it. ``cdsrules diff old/ new/ --cohort patients.jsonl``
runs each request through both packs and reports, per patient and aggregated per rule, which rules
fire or stop firing, which findings appear or disappear, and how the dose changes.

The cohort is any JSONL of ``POST /v1/evaluate`` bodies (``{"patient": ..., "drug": ...}``, an
optional ``"id"``), e.g. the output of ``cdsrules synth``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.compiler.model import CompiledPack
from engine.errors import CdsRulesError
from engine.runtime.engine import Backend, Engine
from engine.validation import locate
from schemas.api import EvaluateRequest, EvaluateResponse

Finding = tuple[str, str, str]  # rule id, category, severity


@dataclass(frozen=True)
class Advice:
    """The parts of an answer a diff compares; ``error`` when the pack could not answer."""

    fired: frozenset[str] = frozenset()
    findings: frozenset[Finding] = frozenset()
    dose: tuple[float, float] | None = None  # (start mg/day, max mg/day)
    dose_rules: frozenset[str] = frozenset()
    contraindicated: bool = False
    monitoring: frozenset[str] = frozenset()
    missing_data: frozenset[str] = frozenset()
    error: str | None = None

    @staticmethod
    def of(resp: EvaluateResponse) -> Advice:
        return Advice(
            fired=frozenset(t.rule_id for t in resp.trace),
            findings=frozenset((f.rule_id, f.category, f.severity) for f in resp.findings),
            dose=(resp.dose.start.total_daily_mg, resp.dose.max_daily_mg) if resp.dose else None,
            dose_rules=frozenset(resp.dose.rule_ids) if resp.dose else frozenset(),
            contraindicated=resp.contraindicated,
            monitoring=frozenset(m.code for m in resp.monitoring),
            missing_data=frozenset(resp.missing_data),
        )


@dataclass
class PatientChange:
    line: int
    id: str | None
    drug: str
    fires_added: list[str] = field(default_factory=list)
    fires_removed: list[str] = field(default_factory=list)
    findings_added: list[Finding] = field(default_factory=list)
    findings_removed: list[Finding] = field(default_factory=list)
    dose_before: tuple[float, float] | None = None
    dose_after: tuple[float, float] | None = None
    dose_changed: bool = False
    contraindicated: tuple[bool, bool] | None = None
    monitoring_added: list[str] = field(default_factory=list)
    monitoring_removed: list[str] = field(default_factory=list)
    missing_data_added: list[str] = field(default_factory=list)
    missing_data_removed: list[str] = field(default_factory=list)
    error_before: str | None = None
    error_after: str | None = None


def compare(line: int, pid: str | None, drug: str, old: Advice, new: Advice) -> PatientChange | None:
    ch = PatientChange(line, pid, drug, error_before=old.error, error_after=new.error)
    ch.fires_added, ch.fires_removed = sorted(new.fired - old.fired), sorted(old.fired - new.fired)
    ch.findings_added, ch.findings_removed = sorted(new.findings - old.findings), sorted(old.findings - new.findings)
    ch.monitoring_added, ch.monitoring_removed = (
        sorted(new.monitoring - old.monitoring),
        sorted(old.monitoring - new.monitoring),
    )
    ch.missing_data_added = sorted(new.missing_data - old.missing_data)
    ch.missing_data_removed = sorted(old.missing_data - new.missing_data)
    if old.dose != new.dose:
        ch.dose_before, ch.dose_after, ch.dose_changed = old.dose, new.dose, True
    if old.contraindicated != new.contraindicated:
        ch.contraindicated = (old.contraindicated, new.contraindicated)
    changed = any(
        (
            ch.fires_added,
            ch.fires_removed,
            ch.findings_added,
            ch.findings_removed,
            ch.dose_changed,
            ch.contraindicated,
            ch.monitoring_added,
            ch.monitoring_removed,
            ch.missing_data_added,
            ch.missing_data_removed,
            old.error != new.error,
        )
    )
    return ch if changed else None


@dataclass
class DiffReport:
    old: dict[str, str]
    new: dict[str, str]
    rules_added: list[str]
    rules_removed: list[str]
    rules_modified: list[str]
    patients: int = 0
    invalid: list[dict[str, Any]] = field(default_factory=list)
    changes: list[PatientChange] = field(default_factory=list)
    per_rule: dict[str, Counter[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        doses = [c for c in self.changes if c.dose_changed]
        return {
            "old": self.old,
            "new": self.new,
            "rules": {"added": self.rules_added, "removed": self.rules_removed, "modified": self.rules_modified},
            "patients": self.patients,
            "invalid_lines": self.invalid,
            "changed_patients": len(self.changes),
            "dose": dose_summary(doses),
            "per_rule": {rid: dict(sorted(c.items())) for rid, c in sorted(self.per_rule.items())},
            "changes": [asdict(c) for c in self.changes],
        }


def dose_summary(doses: list[PatientChange]) -> dict[str, int]:
    both = [(c.dose_before, c.dose_after) for c in doses if c.dose_before and c.dose_after]
    return {
        "changed": len(doses),
        "start_lower": sum(1 for a, b in both if b[0] < a[0]),
        "start_higher": sum(1 for a, b in both if b[0] > a[0]),
        "max_changed_only": sum(1 for a, b in both if b[0] == a[0]),
        "withheld_now": sum(1 for c in doses if c.dose_before and not c.dose_after),
        "given_now": sum(1 for c in doses if c.dose_after and not c.dose_before),
    }


def advise(engine: Engine, req: EvaluateRequest) -> Advice:
    """The comparable parts of ``engine``'s answer, or the error it raised (also for ``audit replay``)."""
    try:
        return Advice.of(engine.evaluate(req, decision_id="diff"))
    except CdsRulesError as exc:
        return Advice(error=str(exc))


def _rule_changes(old: CompiledPack, new: CompiledPack) -> tuple[list[str], list[str], list[str]]:
    added = sorted(set(new.rules) - set(old.rules))
    removed = sorted(set(old.rules) - set(new.rules))
    modified = sorted(
        f"{rid} ({old.rules[rid].version} -> {new.rules[rid].version})"
        for rid in set(old.rules) & set(new.rules)
        if old.rules[rid].rule != new.rules[rid].rule
    )
    return added, removed, modified


def diff_cohort(old: CompiledPack, new: CompiledPack, cohort: Path, backend: Backend = "durable") -> DiffReport:
    added, removed, modified = _rule_changes(old, new)
    report = DiffReport(
        {"version": old.version, "digest": old.digest},
        {"version": new.version, "digest": new.digest},
        added,
        removed,
        modified,
    )
    engines = Engine(old, backend), Engine(new, backend)
    try:
        with cohort.open(encoding="utf-8") as fh:
            for n, text in enumerate(fh, start=1):
                if text.strip():
                    _one(report, engines, n, text)
    finally:
        for e in engines:
            e.close()
    return report


def _one(report: DiffReport, engines: tuple[Engine, Engine], n: int, text: str) -> None:
    try:
        doc = json.loads(text)
        req = EvaluateRequest.model_validate({k: doc[k] for k in ("patient", "drug") if k in doc})
    except ValidationError as exc:
        first = locate(exc, EvaluateRequest)[0]
        report.invalid.append({"line": n, "error": f"{first.pointer}: {first.message}"})
        return
    except (ValueError, TypeError) as exc:  # not JSON, or not an object
        report.invalid.append({"line": n, "error": str(exc)})
        return
    report.patients += 1
    old, new = (advise(e, req) for e in engines)
    pid = doc.get("id") if isinstance(doc.get("id"), str) else None
    change = compare(n, pid, req.drug.name or req.drug.rxcui or "?", old, new)
    if change is not None:
        tally(report, change, old, new)


def tally(report: DiffReport, change: PatientChange, old: Advice, new: Advice) -> None:
    """Add one changed patient to the report and to its per-rule counts."""
    report.changes.append(change)
    tally = report.per_rule
    for rid in change.fires_added:
        tally.setdefault(rid, Counter())["fires_added"] += 1
    for rid in change.fires_removed:
        tally.setdefault(rid, Counter())["fires_removed"] += 1
    for rid, _, _ in change.findings_added:
        tally.setdefault(rid, Counter())["findings_added"] += 1
    for rid, _, _ in change.findings_removed:
        tally.setdefault(rid, Counter())["findings_removed"] += 1
    if change.dose_changed:
        for rid in old.dose_rules | new.dose_rules:
            tally.setdefault(rid, Counter())["dose_changed"] += 1
