"""Clinical-logic lint: what a schema cannot see but a pharmacist reviewing a rule would ask.

``compile_with_problems`` proves a pack is well-formed; this module asks whether it is *safe*:
bands without gaps or overlaps (``engine.compiler.bands``), rules that can fire at all
(``engine.compiler.satisfy``), doses within the labelled maximum, weight-based doses that cannot
reach adults, critical advice a reviewer can check, and rules that some example exercises (the
caller runs the examples: ``engine.authoring.checks`` does, so this module stays below the runtime).
Codes E6xx are errors (the pack does not load, on start or on reload); W6xx are warnings
(``cdsrules lint --strict`` makes them errors). Every code has a hint and a docs/errors.md section.
"""

from __future__ import annotations

from collections.abc import Collection

from engine.compiler.bands import band_problems
from engine.compiler.dimensions import BY_NAME, Projector
from engine.compiler.model import SHARED, CompiledPack, CompiledRule
from engine.compiler.regions import INF
from engine.compiler.satisfy import Satisfiability
from engine.errors import RuleProblem

PEDIATRIC_AGE_LIMIT = 18.0  # a weight-based start must stop below this age (or at a weight)
PLAUSIBLE_MAX_WEIGHT_KG = 150.0  # weight used to test an uncapped mg/kg start when no weight bound is given

HINTS: dict[str, str] = {
    "E601": "make the bands meet without sharing values (end one with `lt: X`, start the next with `gte: X`), "
    "or put one band entirely inside the other if it is meant to restrict it",
    "E602": "give each band one dose statement: merge the two rules, or change one band so they no longer "
    "describe the same patients",
    "E603": "add a rule for the uncovered values (a dose, or a withhold with a finding saying why), or extend "
    "a neighbouring band to reach them",
    "E604": "remove the contradictory condition; if the rule is meant for either group, use any_of or split it "
    "into two rules",
    "E605": "lower the dose or maximum to at most the profile's labelled_max_daily_mg, or cap the weight-based "
    "start (max_dose_mg or max_daily_mg); if the label allows more, correct the profile and its source",
    "E606": "add an age condition (e.g. `age_years: {lt: 12}` or `age_group: pediatric`) or a weight range so "
    "the mg/kg dose cannot reach adults",
    "E607": "cite a source a reviewer can open at the right place: give one source both a url and a section",
    "W601": "add an example whose patient fires this rule and list the rule under expect.fires",
    "W602": "add an age condition (age_years or age_group) or a weight condition so the advice reaches children only",
    "W603": "add a rule for the missing value (e.g. `renal_band: unknown` or `age_years: {known: false}`) that "
    "withholds or limits the dose and lists missing_data",
}


def lint_pack(pack: CompiledPack, exercised: Collection[str] | None = None) -> list[RuleProblem]:
    """Every clinical-logic problem of a compiled pack; W601 only when ``exercised`` (rule ids) is given."""
    out = band_problems(pack, HINTS)
    sat = Satisfiability(pack)
    age, weight = Projector(pack, BY_NAME["age_years"]), Projector(pack, BY_NAME["weight_kg"])
    for rule in sorted(pack.rules.values(), key=lambda r: (r.file, r.line)):
        reason = sat.why_never(rule)
        if reason:
            out.append(_problem(rule, "E604", f"{rule.id} can never fire: {reason}"))
        if rule.drug == SHARED:
            continue
        out.extend(_dose_above_max(pack, rule, weight))
        out.extend(_pediatric_guard(rule, age, weight))
        out.extend(_critical_sources(rule))
    if exercised is not None:
        out.extend(
            _problem(rule, "W601", f"{rule.id} fires in none of the pack's examples", "warning")
            for rule in pack.rules.values()
            if rule.id not in exercised
        )
    return sorted(out)


def _problem(rule: CompiledRule, code: str, message: str, severity: str = "error") -> RuleProblem:
    return RuleProblem(rule.file, rule.line, code, message, severity, HINTS[code])


def _dose_above_max(pack: CompiledPack, rule: CompiledRule, weight: Projector) -> list[RuleProblem]:
    dose = rule.then.dose
    drug = pack.drugs.get(rule.drug)
    if dose is None or drug is None:
        return []
    limit = drug.profile.labelled_max_daily_mg
    out: list[str] = []
    if dose.start is not None and dose.start.dose_mg * dose.start.times_per_day > limit:
        s = dose.start
        out.append(f"start {s.dose_mg:g} mg x{s.times_per_day} = {s.dose_mg * s.times_per_day:g} mg/day")
    if dose.max_daily_mg is not None and dose.max_daily_mg > limit:
        out.append(f"max_daily_mg {dose.max_daily_mg:g}")
    w = dose.weight_based_start
    if w is not None:
        region = weight.necessary(rule).ivs
        heaviest = region[-1].hi if region and region[-1].hi != INF else PLAUSIBLE_MAX_WEIGHT_KG
        daily = w.mg_per_kg_day * heaviest
        if w.max_dose_mg is not None:
            daily = min(daily, w.max_dose_mg * w.times_per_day)
        if dose.max_daily_mg is not None:
            daily = min(daily, dose.max_daily_mg)
        if daily > limit:
            out.append(f"weight-based start {w.mg_per_kg_day:g} mg/kg/day gives {daily:g} mg/day at {heaviest:g} kg")
    return [
        _problem(rule, "E605", f"{rule.id}: {what}, above {rule.drug}'s labelled maximum of {limit:g} mg/day")
        for what in out
    ]


def _pediatric_guard(rule: CompiledRule, age: Projector, weight: Projector) -> list[RuleProblem]:
    age_ivs = age.necessary(rule).ivs
    weight_ivs = weight.necessary(rule).ivs
    child_only = bool(age_ivs) and age_ivs[-1].hi <= PEDIATRIC_AGE_LIMIT
    weight_bound = bool(weight_ivs) and weight_ivs[-1].hi != INF
    dose = rule.then.dose
    if dose is not None and dose.weight_based_start is not None and not (child_only or weight_bound):
        limit = f"{PEDIATRIC_AGE_LIMIT:g}"
        msg = f"{rule.id} gives a weight-based start without an age limit below {limit} or a weight bound"
        return [_problem(rule, "E606", msg)]
    finding = rule.then.finding
    untested = age.necessary(rule) == age.dim.universe and weight.necessary(rule) == weight.dim.universe
    if finding is not None and finding.category == "pediatric" and untested:
        msg = f"{rule.id} gives pediatric advice but tests neither age nor weight, so it reaches adults too"
        return [_problem(rule, "W602", msg, "warning")]
    return []


def _critical_sources(rule: CompiledRule) -> list[RuleProblem]:
    finding = rule.then.finding
    if finding is None or finding.severity != "critical":
        return []
    if any(s.url and s.section for s in rule.rule.sources):
        return []
    msg = f"{rule.id} gives a critical finding but none of its sources has both a url and a section"
    return [_problem(rule, "E607", msg)]
