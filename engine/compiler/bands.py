"""Dose bands of one drug: overlaps, gaps and contradictory adjustments (lint codes E601-E603, W603).

Pharmacists write renal, hepatic, age and weight adjustments as bands. The mistakes that hurt
patients are at the edges: two bands that both claim CrCl 50 (which dose applies?), a band missing
below 30 mL/min (the sickest kidneys get the full dose), two rules giving one band two different
doses. Each rule is projected on each dimension (``engine.compiler.dimensions``) and compared:

* coverage: values a rule fires for whatever else is true; the rules of a drug must cover every
  value from 0 up to the top of their highest closed band (and dialysis once renal bands cover
  0 mL/min; every hepatic class from the mildest one mentioned up to severe);
* overlap: two dose rules that depend on the dimension only and share values, where neither band
  contains the other (nesting is how a restriction is written: adults >= 18 and older adults >= 65);
* contradiction: two dose rules on the same band that state the same dose part differently.
"""

from __future__ import annotations

from collections.abc import Iterator

from engine.compiler.dimensions import DIMENSIONS, HEPATIC_ORDER, Dimension, Projector
from engine.compiler.model import SHARED, CompiledPack, CompiledRule
from engine.compiler.regions import DIALYSIS, INF, MISSING, Interval, Region, subtract
from engine.errors import RuleProblem
from schemas.rulefile import DoseAction


def band_problems(pack: CompiledPack, hint: dict[str, str]) -> list[RuleProblem]:
    out: list[RuleProblem] = []
    for dim in DIMENSIONS:
        proj = Projector(pack, dim)
        for drug in sorted(pack.drugs):
            rules = [
                r
                for r in pack.rules.values()
                if r.drug == drug and r.drug != SHARED and not r.is_derivation and r.rule.applies_to != "stop"
            ]
            rules.sort(key=lambda r: (r.file, r.line))
            out.extend(_coverage(drug, dim, proj, rules, hint))
            out.extend(_overlaps(dim, proj, rules, hint))
    return out


def _problem(rule: CompiledRule, code: str, message: str, hint: dict[str, str], severity: str = "error") -> RuleProblem:
    return RuleProblem(rule.file, rule.line, code, message, severity, hint[code])


def _coverage(
    drug: str, dim: Dimension, proj: Projector, rules: list[CompiledRule], hint: dict[str, str]
) -> Iterator[RuleProblem]:
    covered: list[tuple[CompiledRule, Region]] = []
    for r in rules:
        g = proj.guaranteed(r)
        if g is not None and not g.is_empty():
            covered.append((r, g))
    if not covered:
        return
    total = Region()
    for _, g in covered:
        total = total | g
    listing = "; ".join(f"{r.id}: {g}" for r, g in covered[:8])
    anchor = covered[0][0]
    if dim.numeric:
        tops = [(iv.hi, iv.hi_closed) for iv in total.ivs if iv.hi != INF]
        if tops:
            hi, hi_closed = max(tops)
            for gap in subtract((Interval(0.0, True, hi, hi_closed),), total.ivs):
                above = [r for r, g in covered if g.ivs and g.ivs[0].lo >= gap.hi]
                where = min(above, key=lambda r: _lowest(proj, r)) if above else anchor
                yield _problem(
                    where,
                    "E603",
                    f"{drug}: {dim.label} bands leave {gap} uncovered; no rule speaks to these patients "
                    f"(bands: {listing})",
                    hint,
                )
        if dim.name == "renal_ml_min" and total.ivs and DIALYSIS not in total.tokens:
            yield _problem(
                anchor,
                "E603",
                f"{drug}: renal bands reach {total.ivs[0]} but no rule speaks to patients on dialysis "
                "(renal_band: dialysis or on_dialysis: true)",
                hint,
            )
    else:
        mentioned = [v for v in HEPATIC_ORDER[1:] if v in total.tokens]
        if mentioned:
            wanted = HEPATIC_ORDER[HEPATIC_ORDER.index(mentioned[0]) :]
            missing = [v for v in wanted if v not in total.tokens]
            if missing:
                yield _problem(
                    anchor,
                    "E603",
                    f"{drug}: {dim.label} rules cover {', '.join(mentioned)} but not {', '.join(missing)} "
                    f"(rules: {listing})",
                    hint,
                )
    unknown = MISSING if dim.numeric else "unknown"
    dosing = [r for r, g in covered if r.then.dose is not None and (g.ivs or g.tokens - {unknown})]
    # any rule that tests this dimension and can fire when the value is missing speaks to it
    spoken = any(unknown in (n := proj.necessary(r)).tokens and n != dim.universe for r in rules)
    if dosing and not spoken:
        yield _problem(
            dosing[0],
            "W603",
            f"{drug}: dose depends on {dim.label} ({', '.join(r.id for r in dosing[:4])}) but no rule says what "
            f"happens when it is not known",
            hint,
            "warning",
        )


def _lowest(proj: Projector, rule: CompiledRule) -> float:
    g = proj.guaranteed(rule)
    return g.ivs[0].lo if g is not None and g.ivs else INF


def _overlaps(
    dim: Dimension, proj: Projector, rules: list[CompiledRule], hint: dict[str, str]
) -> Iterator[RuleProblem]:
    banded = [(r, region) for r in rules if r.then.dose is not None and (region := proj.exact_rule(r)) is not None]
    banded = [(r, region) for r, region in banded if not region.is_empty()]
    for i, (a, ra) in enumerate(banded):
        for b, rb in banded[i + 1 :]:
            if "any" not in (a.rule.applies_to, b.rule.applies_to) and a.rule.applies_to != b.rule.applies_to:
                continue
            shared = ra & rb
            if shared.is_empty():
                continue
            if ra.within(rb) and rb.within(ra):
                clash = _contradiction(a.then.dose, b.then.dose)
                if clash:
                    yield _problem(
                        b,
                        "E602",
                        f"{b.id} and {a.id} ({a.file}:{a.line}) adjust the same {dim.label} band ({ra}) "
                        f"differently: {clash}",
                        hint,
                    )
            elif not (ra.within(rb) or rb.within(ra)):
                yield _problem(
                    b,
                    "E601",
                    f"{dim.label} bands overlap: {b.id} ({rb}) and {a.id} ({ra}, {a.file}:{a.line}) both apply "
                    f"to {shared}",
                    hint,
                )


def _parts(d: DoseAction | None) -> dict[str, object]:
    if d is None:
        return {}
    parts: dict[str, object] = {}
    if d.withhold:
        parts["start"] = "withhold"
    elif d.start is not None:
        parts["start"] = f"{d.start.dose_mg:g} mg x{d.start.times_per_day}"
    elif d.weight_based_start is not None:
        w = d.weight_based_start
        parts["start"] = f"{w.mg_per_kg_day:g} mg/kg/day x{w.times_per_day}, cap {w.max_dose_mg}"
    if d.max_daily_mg is not None:
        parts["max_daily_mg"] = f"{d.max_daily_mg:g}"
    if d.max_mg_per_kg_day is not None:
        parts["max_mg_per_kg_day"] = f"{d.max_mg_per_kg_day:g}"
    return parts


def _contradiction(a: DoseAction | None, b: DoseAction | None) -> str:
    pa, pb = _parts(a), _parts(b)
    diffs = [f"{k} {pb[k]} vs {pa[k]}" for k in pa if k in pb and pa[k] != pb[k]]
    return "; ".join(diffs)
