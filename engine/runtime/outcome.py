"""Fold the rules that fired into one answer: dose, findings, monitoring, missing data.

The policy is fixed and deliberately simple so reviewers can reason about it: a labelled
contraindication removes the dose; for every part of the dose the most restrictive statement
wins; every rule that shaped the dose is named; nothing a rule said is dropped.

Speed (issue 8, see BENCHMARKS.md): what a rule contributes that does not depend on the patient -
its finding with sources, monitoring items, missing-data codes, the fields its trace shows - is
prepared once per engine in a ``RuleOutput``; merged monitoring prompts are memoised per set of
rules. The response objects built from that static data (``Finding``, ``SourceOut``,
``MonitoringPrompt``) are therefore shared between answers: treat an ``EvaluateResponse`` as
read-only and derive a changed one with ``model_copy(update=...)``. Every list in an answer is its
own, and everything that depends on the patient (dose, dose-range finding, trace) is built fresh.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.compiler.model import CompiledRule
from engine.runtime.facts import ActiveRegimen
from engine.runtime.frequency import frequency_words
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
from schemas.rulefile import DoseAction, DrugProfile, MonitorAction

DOSE_RANGE_RULE = "engine.dose-range"
MONITORING_MEMO_SIZE = 4096  # distinct sets of monitoring rules remembered per engine
# A patient-specific maximum that comes from organ function or age is a safety limit, not a
# preference: an order above it is critical (issue 13, B3; toxicity after 5-25 mg of baclofen on dialysis).
ORGAN_AGE_CATEGORIES = frozenset({"renal", "hepatic", "geriatric", "pediatric"})
# Any other patient-specific cap is critical once the order exceeds it by more than half.
CRITICAL_EXCESS_RATIO = 1.5


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


def finding_key(f: Finding) -> tuple[int, str, str]:
    return (-SEVERITY_RANK[f.severity], f.category, f.rule_id)


@dataclass(frozen=True)
class RuleOutput:
    """Everything one rule adds to an answer that is the same for every patient, built once."""

    id: str
    version: str
    finding: Finding | None  # shared between answers (read-only)
    finding_key: tuple[int, str, str]
    monitor: tuple[MonitorAction, ...]
    missing_data: tuple[str, ...]
    dose: DoseAction | None
    sources: tuple[Source, ...]
    contraindicated: bool
    trace_fields: tuple[str, ...]
    trace_action: bool  # the trace shows 'action' when the rule speaks to one order action only
    cap_category: str  # what a maximum from this rule is about (its finding's category, else its id's)

    @classmethod
    def of(cls, rule: CompiledRule) -> RuleOutput:
        then = rule.then
        finding = None
        if then.finding is not None:
            finding = Finding(
                rule_id=rule.id,
                category=then.finding.category,
                severity=then.finding.severity,
                summary=then.finding.summary,
                detail=then.finding.detail,
                sources=_sources(rule.rule.sources),
            )
        return cls(
            id=rule.id,
            version=rule.version,
            finding=finding,
            finding_key=finding_key(finding) if finding is not None else (0, "", rule.id),
            monitor=tuple(then.monitor),
            missing_data=tuple(then.missing_data),
            dose=then.dose,
            sources=tuple(rule.rule.sources),
            contraindicated=then.contraindicated,
            trace_fields=rule.referenced_fields(),
            trace_action=rule.rule.applies_to != "any",
            cap_category=_cap_category(rule.id, finding),
        )


def _cap_category(rule_id: str, finding: Finding | None) -> str:
    """The finding's category; a rule without one is named by its id (``drug.renal.x`` -> ``renal``)."""
    if finding is not None:
        return finding.category
    parts = rule_id.split(".")
    return parts[1] if len(parts) > 1 else ""


class RuleOutputs:
    """The ``RuleOutput`` of every rule of a pack, and a bounded memo of merged monitoring prompts."""

    def __init__(self, rules: Iterable[CompiledRule]) -> None:
        self._by_id: dict[str, RuleOutput] = {r.id: RuleOutput.of(r) for r in rules}
        self._monitoring: dict[tuple[str, ...], tuple[MonitoringPrompt, ...]] = {}

    def __getitem__(self, rule_id: str) -> RuleOutput:
        return self._by_id[rule_id]

    def monitoring(self, outs: Sequence[RuleOutput]) -> list[MonitoringPrompt]:
        """Merged prompts of ``outs`` (sorted by id); the same rules always merge the same way."""
        with_monitor = [o for o in outs if o.monitor]
        key = tuple(o.id for o in with_monitor)
        merged = self._monitoring.get(key)
        if merged is None:
            merged = tuple(_monitoring(with_monitor))
            if len(self._monitoring) >= MONITORING_MEMO_SIZE:
                self._monitoring.clear()  # bounded: a pathological stream of combinations cannot grow it
            self._monitoring[key] = merged
        return list(merged)


def _floor_to(value: float, step: float) -> float:
    return round(math.floor(value / step + 1e-9) * step, 4)


def _fmt(x: float) -> str:
    return f"{x:g}"


def combine(
    fired: Iterable[RuleOutput],
    fact: Mapping[str, Any],
    derived: Mapping[str, frozenset[str]],
    profile: DrugProfile,
    ordered: OrderedDose | None,
    outputs: RuleOutputs | None = None,
    active: ActiveRegimen | None = None,
) -> Outcome:
    """One answer from the rules that fired (``outputs`` memoises monitoring; ``active``: the same drug
    already taken, whose daily dose counts with the new order)."""
    rules = sorted(fired, key=lambda o: o.id)
    contraindicated = any(o.contraindicated for o in rules)
    findings = [o.finding for o in rules if o.finding is not None]
    missing_set = {m for o in rules for m in o.missing_data}
    dose = None
    if not contraindicated and fact.get("action") == "start":
        dose, dose_missing = _dose(rules, fact, profile)
        missing_set |= dose_missing
    if dose is not None and ordered is not None:
        findings.extend(_dose_range(dose, ordered, profile, rules, fact, active or ActiveRegimen()))
    findings.sort(key=finding_key)
    # a start a rule refuses to dose (e.g. age not established) is not being advised, so no plan for it either
    withheld = fact.get("action") == "start" and any(o.dose is not None and o.dose.withhold for o in rules)
    # a drug that must not be given needs no monitoring plan; the trace still shows every rule
    if contraindicated or withheld:
        monitoring: list[MonitoringPrompt] = []
    elif outputs is not None:
        monitoring = outputs.monitoring(rules)
    else:
        monitoring = _monitoring([o for o in rules if o.monitor])
    view = _derived_view(derived)
    return Outcome(
        contraindicated=contraindicated,
        dose=dose,
        findings=findings,
        monitoring=monitoring,
        missing_data=sorted(missing_set),
        trace=[_trace(o, fact, view) for o in rules],
    )


def _dose(
    rules: list[RuleOutput], fact: Mapping[str, Any], profile: DrugProfile
) -> tuple[DoseSuggestion | None, set[str]]:
    acts = [(r, r.dose) for r in rules if r.dose is not None]
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
    titration = _titration(acts, start_rule, max_daily)
    return (
        DoseSuggestion(
            start=StartDose(dose_mg=round(per_dose, 4), times_per_day=times, total_daily_mg=round(total, 4)),
            titration=titration,
            max_daily_mg=max_daily,
            rule_ids=sorted(r.id for r, _ in acts),
        ),
        set(),
    )


def _titration(acts: list[tuple[RuleOutput, DoseAction]], start_rule: str, max_daily: float) -> str | None:
    """One titration text: an organ-function rule's wins over a generic or age one (issue 13, m1).

    A dialysis "do not titrate" must not be replaced by a Beers "titrate weekly" because the Beers
    rule happens to give the lowest start. Among organ-function rules, the one whose maximum binds
    speaks; otherwise the rule that set the start, then the first with any text.
    """
    texts = [(r, d) for r, d in acts if d.titration]
    organ = [(r, d) for r, d in texts if r.cap_category in ("renal", "hepatic")]
    if organ:
        binding = [(r, d) for r, d in organ if d.max_daily_mg is not None and abs(d.max_daily_mg - max_daily) < 1e-6]
        return (binding or organ)[0][1].titration
    return next((d.titration for r, d in texts if r.id == start_rule), None) or next(
        (d.titration for _, d in texts), None
    )


def _binding_caps(
    dose: DoseSuggestion, rules: list[RuleOutput], fact: Mapping[str, Any], profile: DrugProfile
) -> list[RuleOutput]:
    """The rules whose maximum is this patient's maximum (a per-kg cap counts at the patient's weight)."""
    weight = fact.get("weight_kg")
    out = []
    for r in rules:
        d = r.dose
        if d is None or r.id not in dose.rule_ids:
            continue
        caps = [d.max_daily_mg] if d.max_daily_mg is not None else []
        if d.max_mg_per_kg_day is not None and weight is not None:
            caps.append(d.max_mg_per_kg_day * weight)
        if any(abs(c - dose.max_daily_mg) < 0.01 for c in caps) and dose.max_daily_mg < profile.labelled_max_daily_mg:
            out.append(r)
    return out


def _dose_range(
    dose: DoseSuggestion,
    ordered: OrderedDose,
    profile: DrugProfile,
    rules: list[RuleOutput],
    fact: Mapping[str, Any],
    active: ActiveRegimen,
) -> list[Finding]:
    new_total = ordered.dose_mg * ordered.times_per_day
    # duplicate therapy: what reaches the patient is the active regimen plus the new order (issue 13)
    total = round(new_total + active.daily_mg, 4)
    cited = [s for r in rules if r.id in dose.rule_ids for s in r.sources] or list(profile.sources)
    cap = dose.max_daily_mg
    if total > profile.labelled_max_daily_mg:
        severity, why = (
            "critical",
            f"above the labelled maximum of {_fmt(profile.labelled_max_daily_mg)} mg/day",
        )
    elif total > cap:
        binding = _binding_caps(dose, rules, fact, profile)
        kinds = sorted({r.cap_category for r in binding if r.cap_category in ORGAN_AGE_CATEGORIES})
        over = total - cap
        severity = "critical" if kinds or total > CRITICAL_EXCESS_RATIO * cap else "warning"
        basis = f"{'/'.join(kinds)} " if kinds else ""
        why = (
            f"{_fmt(round(over, 2))} mg/day ({_fmt(round(total / cap, 1))}x) above this patient's "
            f"{basis}maximum of {_fmt(cap)} mg/day"
        )
        cited = [s for r in binding for s in r.sources] or cited
    elif total > dose.start.total_daily_mg:
        severity, why = (
            "info",
            f"above the suggested starting dose of {_fmt(dose.start.total_daily_mg)} mg/day",
        )
    else:
        return []
    with_active = ""
    if active.daily_mg > 0:
        with_active = (
            f" With the {_fmt(active.daily_mg)} mg/day already on the medication list the patient would take "
            f"{_fmt(total)} mg/day in total; that total is what is checked."
        )
    if active.undosed:
        with_active += (
            f" {active.undosed} medication-list entr{'y' if active.undosed == 1 else 'ies'} of "
            f"{profile.ingredient} {'has' if active.undosed == 1 else 'have'} no dose, so the total may be higher."
        )
    what = f"Ordered {_fmt(new_total)} mg/day"
    if active.daily_mg:
        what = f"Ordered {_fmt(new_total)} + active {_fmt(active.daily_mg)} mg/day"
    capped = ""
    if total > cap and active.daily_mg > 0:
        room = max(cap - active.daily_mg, 0.0)
        capped = (
            f" Keep the total at or below {_fmt(cap)} mg/day: adjust the existing order instead, or order at most "
            f"{_fmt(round(room, 2))} mg/day more."
        )
    elif total > cap:
        capped = (
            f" Reduce the order to at most {_fmt(cap)} mg/day; the suggested start is "
            f"{_fmt(dose.start.dose_mg)} mg {frequency_words(dose.start.times_per_day)}."
        )
    return [
        Finding(
            rule_id=DOSE_RANGE_RULE,
            category="dose-range",
            severity=severity,
            summary=f"{what} of {profile.ingredient} is {why}"[:139],
            detail=(
                f"The order is {_fmt(ordered.dose_mg)} mg "
                f"{frequency_words(ordered.times_per_day, ordered.every_hours)} "
                f"({_fmt(new_total)} mg/day).{with_active} Suggested start for this patient: "
                f"{_fmt(dose.start.dose_mg)} mg {frequency_words(dose.start.times_per_day)}; maximum "
                f"{_fmt(dose.max_daily_mg)} mg/day (rules: {', '.join(dose.rule_ids)}).{capped}"
            ),
            sources=_sources(cited),
        )
    ]


def _monitoring(rules: Sequence[RuleOutput]) -> list[MonitoringPrompt]:
    merged: dict[str, tuple[list[str], list[str], list[str]]] = {}
    for r in rules:
        for m in r.monitor:
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


def _derived_view(derived: Mapping[str, frozenset[str]]) -> dict[str, object]:
    """How a trace shows each derived fact: its value, or the sorted values when there are several."""
    view: dict[str, object] = {}
    for name, values in derived.items():
        ordered = sorted(values)
        view[name] = ordered[0] if len(ordered) == 1 else ordered
    return view


def _trace(rule: RuleOutput, fact: Mapping[str, Any], derived: Mapping[str, object]) -> TraceEntry:
    matched: dict[str, object] = {}
    for name in rule.trace_fields:
        if name in derived:
            value = derived[name]
            matched[name] = list(value) if isinstance(value, list) else value  # each trace owns its list
        else:
            matched[name] = fact.get(name)
    if rule.trace_action:
        matched["action"] = fact.get("action")
    return TraceEntry(rule_id=rule.id, version=rule.version, matched=matched)
