"""Fold the rules that fired into one answer: dose, findings, monitoring, missing data.

The policy is fixed and deliberately simple so reviewers can reason about it: a labelled
contraindication removes the dose; for every part of the dose the most restrictive statement
wins; every rule that shaped the dose is named; nothing a rule said is dropped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.compiler.model import CompiledRule
from schemas.api import (
    DoseSuggestion,
    Finding,
    MonitoringPrompt,
    OrderedDose,
    SourceOut,
    StartDose,
    TraceEntry,
)
from schemas.common import SEVERITY_RANK, Source
from schemas.rulefile import DrugProfile

DOSE_RANGE_RULE = "engine.dose-range"


@dataclass
class Outcome:
    contraindicated: bool
    dose: DoseSuggestion | None
    findings: list[Finding]
    monitoring: list[MonitoringPrompt]
    missing_data: list[str]
    trace: list[TraceEntry]


def _sources(sources: Iterable[Source]) -> list[SourceOut]:
    return [SourceOut(label=s.label, url=s.url, section=s.section) for s in sources]


def _floor_to(value: float, step: float) -> float:
    return round(math.floor(value / step + 1e-9) * step, 4)


def _fmt(x: float) -> str:
    return f"{x:g}"


def combine(
    fired: Sequence[CompiledRule],
    fact: dict[str, Any],
    derived: dict[str, frozenset[str]],
    profile: DrugProfile,
    ordered: OrderedDose | None,
) -> Outcome:
    rules = sorted(fired, key=lambda r: r.id)
    contraindicated = any(r.then.contraindicated for r in rules)
    findings = [
        Finding(
            rule_id=r.id,
            category=r.then.finding.category,
            severity=r.then.finding.severity,
            summary=r.then.finding.summary,
            detail=r.then.finding.detail,
            sources=_sources(r.rule.sources),
        )
        for r in rules
        if r.then.finding is not None
    ]
    missing: list[str] = sorted({m for r in rules for m in r.then.missing_data})
    dose = None
    if not contraindicated and fact.get("action") == "start":
        dose, dose_missing = _dose(rules, fact, profile)
        missing = sorted(set(missing) | dose_missing)
    if dose is not None and ordered is not None:
        findings.extend(_dose_range(dose, ordered, profile, rules))
    findings.sort(key=lambda f: (-SEVERITY_RANK[f.severity], f.category, f.rule_id))
    return Outcome(
        contraindicated=contraindicated,
        dose=dose,
        findings=findings,
        # a drug that must not be given needs no monitoring plan; the trace still shows every rule
        monitoring=[] if contraindicated else _monitoring(rules),
        missing_data=missing,
        trace=[_trace(r, fact, derived) for r in rules],
    )


def _dose(
    rules: list[CompiledRule], fact: dict[str, Any], profile: DrugProfile
) -> tuple[DoseSuggestion | None, set[str]]:
    acts = [(r, r.then.dose) for r in rules if r.then.dose is not None]
    if not acts or any(d.withhold for _, d in acts):
        return None, set()
    weight = fact.get("weight_kg")
    starts: list[tuple[float, float, int, str]] = []  # (total, per dose, times, rule id)
    maxima: list[float] = [profile.labelled_max_daily_mg]
    for rule, d in acts:
        if d.start is not None:
            starts.append((d.start.dose_mg * d.start.times_per_day, d.start.dose_mg, d.start.times_per_day, rule.id))
        if d.weight_based_start is not None:
            if weight is None:
                return None, {"weight"}
            w = d.weight_based_start
            per_dose = weight * w.mg_per_kg_day / w.times_per_day
            if w.max_dose_mg is not None:
                per_dose = min(per_dose, w.max_dose_mg)
            per_dose = _floor_to(per_dose, w.round_down_to_mg)
            if per_dose <= 0:
                return None, set()
            starts.append((per_dose * w.times_per_day, per_dose, w.times_per_day, rule.id))
        if d.max_daily_mg is not None:
            maxima.append(d.max_daily_mg)
        if d.max_mg_per_kg_day is not None:
            if weight is None:
                return None, {"weight"}
            maxima.append(d.max_mg_per_kg_day * weight)
    if not starts:
        return None, set()
    total, per_dose, times, start_rule = min(starts, key=lambda s: (s[0], s[2], s[3]))
    max_daily = round(min(maxima), 2)
    if total > max_daily:  # a cap below the start: lower each dose, never raise frequency
        per_dose = _floor_to(max_daily / times, 0.5)
        total = per_dose * times
        if per_dose <= 0:
            return None, set()
    titration = next((d.titration for r, d in acts if r.id == start_rule and d.titration), None)
    if titration is None:
        titration = next((d.titration for _, d in acts if d.titration), None)
    return (
        DoseSuggestion(
            start=StartDose(dose_mg=round(per_dose, 4), times_per_day=times, total_daily_mg=round(total, 4)),
            titration=titration,
            max_daily_mg=max_daily,
            rule_ids=sorted(r.id for r, _ in acts),
        ),
        set(),
    )


def _dose_range(
    dose: DoseSuggestion, ordered: OrderedDose, profile: DrugProfile, rules: list[CompiledRule]
) -> list[Finding]:
    total = ordered.dose_mg * ordered.times_per_day
    cited = [s for r in rules if r.id in dose.rule_ids for s in r.rule.sources] or list(profile.sources)
    if total > profile.labelled_max_daily_mg:
        severity, why = (
            "critical",
            f"above the labelled maximum of {_fmt(profile.labelled_max_daily_mg)} mg/day",
        )
    elif total > dose.max_daily_mg:
        severity, why = "warning", f"above this patient's maximum of {_fmt(dose.max_daily_mg)} mg/day"
    elif total > dose.start.total_daily_mg:
        severity, why = (
            "info",
            f"above the suggested starting dose of {_fmt(dose.start.total_daily_mg)} mg/day",
        )
    else:
        return []
    return [
        Finding(
            rule_id=DOSE_RANGE_RULE,
            category="dose-range",
            severity=severity,
            summary=f"Ordered {_fmt(total)} mg/day of {profile.ingredient} is {why}"[:139],
            detail=(
                f"The order is {_fmt(ordered.dose_mg)} mg {_fmt(ordered.times_per_day)} times a day "
                f"({_fmt(total)} mg/day). Suggested start for this patient: {_fmt(dose.start.dose_mg)} mg "
                f"{dose.start.times_per_day} times a day; maximum {_fmt(dose.max_daily_mg)} mg/day "
                f"(rules: {', '.join(dose.rule_ids)})."
            ),
            sources=_sources(cited),
        )
    ]


def _monitoring(rules: list[CompiledRule]) -> list[MonitoringPrompt]:
    merged: dict[str, tuple[list[str], list[str], list[str]]] = {}
    for r in rules:
        for m in r.then.monitor:
            prompts, whens, ids = merged.setdefault(m.code, ([], [], []))
            if m.prompt not in prompts:
                prompts.append(m.prompt)
            if m.when not in whens:
                whens.append(m.when)
            ids.append(r.id)
    return [
        MonitoringPrompt(code=code, prompt=" ".join(p), when="; ".join(w), rule_ids=sorted(set(ids)))
        for code, (p, w, ids) in sorted(merged.items())
    ]


def _trace(rule: CompiledRule, fact: dict[str, Any], derived: dict[str, frozenset[str]]) -> TraceEntry:
    matched: dict[str, object] = {}
    for name in rule.referenced_fields():
        if name in derived:
            matched[name] = sorted(derived[name])[0] if len(derived[name]) == 1 else sorted(derived[name])
        else:
            matched[name] = fact.get(name)
    if rule.rule.applies_to != "any":
        matched["action"] = fact.get("action")
    return TraceEntry(rule_id=rule.id, version=rule.version, matched=matched)
