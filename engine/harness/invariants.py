"""Safety invariants that must hold for every patient and every drug in the pack.

Each invariant is a function ``(Checker, Case) -> list[Violation]``; an empty list means it holds.
The single-answer ones here look at one evaluation; the ones that vary a patient (monotonicity,
missing data, determinism) are in ``engine.harness.variants``. Which drug has which kind of rule
is read from the compiled pack (``rulemap``), never listed by hand, so a drug a teammate adds is
covered the moment it compiles. docs/harness.md states every invariant in words.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.compiler.language import count_field, size_field
from engine.harness import variants
from engine.harness.caps import caps_for
from engine.harness.case import EPS, Case, Checker, Violation, fired_ids
from engine.harness.rulemap import applies
from engine.runtime.completeness import RULE_PREFIX as NOT_CHECKED
from engine.runtime.outcome import DOSE_RANGE_RULE
from engine.runtime.reference import evaluate_reference

Invariant = Callable[[Checker, Case], list[Violation]]


def dose_within_limits(ck: Checker, case: Case) -> list[Violation]:
    """No start or maximum above the labelled maximum or the pediatric cap; start <= maximum."""
    name, out = "dose-within-limits", []
    resp, drug = ck.response(case), ck.drug(case)
    dose = resp.dose
    if dose is None:
        return []
    ids = tuple(dose.rule_ids)
    if case.request.drug.action != "start":
        out.append(ck.violation(name, case, "a dose was suggested for a stop order", ids))
    label = ck.pack.drugs[drug].profile.labelled_max_daily_mg
    start, maximum = dose.start.total_daily_mg, dose.max_daily_mg
    if start > label + EPS or maximum > label + EPS:
        out.append(ck.violation(name, case, f"start {start} / max {maximum} mg/day above label max {label}", ids))
    if start > maximum + EPS:
        out.append(ck.violation(name, case, f"start {start} mg/day above this patient's maximum {maximum}", ids))
    if start <= 0 or abs(dose.start.dose_mg * dose.start.times_per_day - start) > 0.01:
        out.append(ck.violation(name, case, f"start {dose.start} is not a positive dose x frequency", ids))
    weight = case.request.patient.weight_kg
    for cap in caps_for(drug, case.request.patient.resolved_age_years()):
        limit = cap.max_daily_mg
        if cap.max_mg_per_kg_day is not None and weight is not None:
            limit = min(limit, cap.max_mg_per_kg_day * weight)
        if start > limit + EPS or maximum > limit + EPS:
            msg = f"start {start} / max {maximum} mg/day above pediatric cap {limit:g} ({cap.source})"
            out.append(ck.violation(name, case, msg, ids))
    return out


def contraindication_and_sources(ck: Checker, case: Case) -> list[Violation]:
    """A contraindicated drug gets no dose; every critical finding is sourced and traceable."""
    name, out = "contraindication-and-sources", []
    resp = ck.response(case)
    fired = fired_ids(resp)
    contra_rules = tuple(sorted(r for r in fired if ck.pack.rules[r].then.contraindicated))
    if resp.contraindicated != bool(contra_rules):
        out.append(
            ck.violation(name, case, f"contraindicated={resp.contraindicated} but rules say otherwise", contra_rules)
        )
    if resp.contraindicated:
        if resp.dose is not None:
            out.append(ck.violation(name, case, "contraindicated, yet a dose was suggested", contra_rules))
        if not any(f.severity == "critical" for f in resp.findings):
            out.append(ck.violation(name, case, "contraindicated without a critical finding", contra_rules))
    unread = {u.field for u in resp.unrecognized if u.status != "not-used"}
    for f in resp.findings:
        if f.rule_id.startswith(NOT_CHECKED):
            # engine-made: it must name a kind of input that really was not (fully) recognised
            if f.rule_id.removeprefix(NOT_CHECKED) not in unread:
                out.append(ck.violation(name, case, f"{f.rule_id} without an unrecognised item", (f.rule_id,)))
        elif f.rule_id not in fired and f.rule_id != DOSE_RANGE_RULE:
            out.append(ck.violation(name, case, f"finding from a rule that did not fire: {f.rule_id}", (f.rule_id,)))
        if f.severity == "critical" and not any(s.label and (s.section or s.url) for s in f.sources):
            out.append(
                ck.violation(name, case, f"critical finding without a locatable source: {f.summary}", (f.rule_id,))
            )
    return out


def truth_fact(ck: Checker, case: Case) -> dict[str, Any]:
    """The patient fact rebuilt from what was sent (``Truth``) instead of what was recognised."""
    fact = dict(ck.fact(case))
    sets = ck.sent_sets(case)
    for name, values in sets.items():
        fact[name] = sorted(values)
        fact[size_field(name)] = float(len(values))
    for cls, members in ck.pack.terminology.class_members.items():
        fact[count_field(cls)] = float(len(members & sets["comed_ingredients"]))
    fact["ordered_drug_on_med_list"] = "true" if ck.drug(case) in ck.truth(case).comed_ingredients else "false"
    return fact


def _truth_check(ck: Checker, case: Case, name: str, fields: tuple[str, ...]) -> list[Violation]:
    """Rules that can fire through ``fields`` fire exactly when what was *sent* says they should.

    The expectation is the reference semantics applied to the sent data, so a rule fires when an
    item of its class was sent and its other conditions hold, and never when none was sent; a
    recognition error (a brand, product code or synonym resolving to the wrong thing) or an engine
    error shows up as a difference.
    """
    drug = ck.drug(case)
    dm = ck.maps[drug]
    sent = ck.sent_sets(case)
    if "truth_fired" not in case.cache:
        fact = truth_fact(ck, case)
        seen = case.cache.get("reference_fired")  # (fact, fired) of a cohort run's differential check
        if seen is not None and seen[0] == fact:
            case.cache["truth_fired"] = seen[1]
        else:
            case.cache["truth_fired"] = evaluate_reference(ck.pack.drugs[drug], fact).fired
    expected: frozenset[str] = case.cache["truth_fired"]
    actual = fired_ids(ck.response(case))
    out = []
    for rule in dm.reaching(fields):
        if (rule.id in expected) == (rule.id in actual):
            continue
        hits = sorted({v for f in fields if f in sent for v in dm.cached_triggers(rule, f) & sent[f]})
        why = f"sent: {', '.join(hits)}" if hits else "none of its triggers was sent"
        what = "did not fire" if rule.id in expected else "fired"
        out.append(ck.violation(name, case, f"{rule.id} {what} ({why})", (rule.id,)))
    return out


def _flag(ck: Checker, case: Case, name: str, field: str, category: str) -> list[Violation]:
    """Pregnancy/breastfeeding: a finding of its category whenever true, none when known false."""
    out = _truth_check(ck, case, name, (field,))
    p, resp = case.request.patient, ck.response(case)
    dm = ck.maps[ck.drug(case)]
    value = getattr(p, field)
    coded = field == "pregnant" and "pregnancy" in ck.sent_sets(case)["conditions"]
    has_category = [f.rule_id for f in resp.findings if f.category == category]
    if value is True:
        flagging = [
            r.id
            for r in dm.category_rules(category)
            if applies(r, case.request.drug.action) and "true" in dm.cached_triggers(r, field)
        ]
        if flagging and not has_category:
            out.append(ck.violation(name, case, f"{field} is true but there is no {category} finding", tuple(flagging)))
    if (value is False or (value is None and p.sex == "male")) and not coded and has_category:
        out.append(
            ck.violation(name, case, f"{field} is false but a {category} finding was given", tuple(has_category))
        )
    return out


def pregnancy_flag(ck: Checker, case: Case) -> list[Violation]:
    return _flag(ck, case, "pregnancy-flag", "pregnant", "pregnancy")


def lactation_flag(ck: Checker, case: Case) -> list[Violation]:
    return _flag(ck, case, "lactation-flag", "breastfeeding", "lactation")


def interaction_flag(ck: Checker, case: Case) -> list[Violation]:
    return _truth_check(ck, case, "interaction-flag", ("comed_classes", "comed_ingredients"))


def allergy_flag(ck: Checker, case: Case) -> list[Violation]:
    return _truth_check(ck, case, "allergy-flag", ("allergy_ingredients", "allergy_classes"))


def condition_flag(ck: Checker, case: Case) -> list[Violation]:
    return _truth_check(ck, case, "condition-flag", ("conditions",))


# name -> (check, needs extra evaluations of patient variants)
INVARIANTS: dict[str, tuple[Invariant, bool]] = {
    "dose-within-limits": (dose_within_limits, False),
    "contraindication-and-sources": (contraindication_and_sources, False),
    "pregnancy-flag": (pregnancy_flag, False),
    "lactation-flag": (lactation_flag, False),
    "interaction-flag": (interaction_flag, False),
    "allergy-flag": (allergy_flag, False),
    "condition-flag": (condition_flag, False),
    "renal-monotonic": (variants.renal_monotonic, True),
    "hepatic-monotonic": (variants.hepatic_monotonic, True),
    "age-monotonic": (variants.age_monotonic, True),
    "missing-data-reported": (variants.missing_data_reported, True),
    "deterministic": (variants.deterministic, True),
}
SINGLE_ANSWER = tuple(n for n, (_, extra) in INVARIANTS.items() if not extra)


def check(ck: Checker, case: Case, names: tuple[str, ...] | None = None) -> list[Violation]:
    out: list[Violation] = []
    for name in names or tuple(INVARIANTS):
        out.extend(INVARIANTS[name][0](ck, case))
    return out
