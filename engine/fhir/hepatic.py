"""Hepatic function as an EHR records it, graded into the native ``hepatic_impairment``.

What counts, each with the basis named on the card (the worst basis wins; conservative):

- NCI Organ Dysfunction Working Group criteria (Ramalingam SS et al., J Clin Oncol
  2010;28(29):4507-4512; accepted beside Child-Pugh by the FDA guidance "Pharmacokinetics in
  Patients with Impaired Hepatic Function", 2003), ULN the laboratory's own: bilirubin > 3 x ULN
  severe, > 1.5-3 x ULN moderate, > 1-1.5 x ULN mild (any AST); bilirubin <= ULN with AST > ULN
  mild; both <= ULN normal. An AST above ULN without a bilirubin is at least mild (the grade could
  be higher, which the card says).
- ALT above ULN: not an NCI ODWG criterion, but an abnormal liver test is not "normal": at least
  mild.
- Albumin below or INR above the laboratory's range: markers of hepatic synthetic function, at
  least mild; with bilirubin they give a lab-only Child-Pugh lower bound (``engine.fhir.child_pugh``),
  and a lower bound of class B reads as moderate, C as severe.
  Any Child-Pugh item above its minimum (bilirubin >= 2 mg/dL, albumin <= 3.5 g/dL, INR >= 1.7)
  is at least mild, with or without a laboratory range.
- A recorded Child-Pugh score or class: A mild, B moderate, C severe. When a lab lower bound is
  worse, the worse is used and both are named.

"none" ("no hepatic impairment documented") needs a total bilirubin and an AST within their
ranges (NCI ODWG normal), no other abnormal liver test, no recorded (or unreadable) Child-Pugh
entry and no liver disease on the problem list. A liver disease on the problem list with normal
tests leaves the grade unset, for the rules over the conditions (cirrhosis reads as moderate in
rules/shared/derived.yaml). Too few results to say normal leave it unset too, and the card says
which results were read.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from engine.fhir.child_pugh import GRADE, lab_lower_bound, recorded_class
from engine.fhir.liver_tests import ALT, AST, BILIRUBIN_TOTAL, LiverResult, latest_liver_result
from engine.fhir.observations import CodedObservations
from engine.fhir.values import codings, concept_text

__all__ = ["ALT", "AST", "BILIRUBIN_TOTAL", "HepaticReading", "hepatic_reading", "liver_disease_listed"]

_LIVER_DISEASE = re.compile(r"cirrho|hepat|liver|portal hypertension|ascites|varices", re.IGNORECASE)
_RANK = {"mild": 1, "moderate": 2, "severe": 3}
_KINDS = ("bilirubin", "ast", "alt", "albumin", "inr")


@dataclass
class HepaticReading:
    """The native grade (None: not graded), the facts for the card, and notes on skipped data."""

    grade: str | None = None
    evidence: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def liver_disease_listed(conditions: list[dict[str, Any]]) -> str | None:
    for c in conditions:
        words = " ".join(
            filter(None, [concept_text(c.get("code")), *(str(x.get("display") or "") for x in codings(c.get("code")))])
        )
        if _LIVER_DISEASE.search(words):
            return words
    return None


def _odwg(bili: LiverResult | None, ast: LiverResult | None) -> tuple[str, str] | None:
    """(grade, basis) by NCI ODWG when a bilirubin or AST is above its ULN, else None."""
    ratio = bili.value / bili.high if bili is not None and bili.high else None
    if ratio is not None and ratio > 1:
        grade = "severe" if ratio > 3 else "moderate" if ratio > 1.5 else "mild"
        return grade, f"NCI ODWG: total bilirubin {ratio:.1f} x ULN"
    if ast is not None and ast.above_range():
        if ratio is None:
            return "mild", "NCI ODWG: AST above ULN; no bilirubin with a range, so the grade may be higher"
        return "mild", "NCI ODWG: AST above ULN with bilirubin within range"
    return None


def _bases(results: dict[str, LiverResult | None]) -> list[tuple[str, str]]:
    bases: list[tuple[str, str]] = []
    odwg = _odwg(results["bilirubin"], results["ast"])
    if odwg:
        bases.append(odwg)
    alt = results["alt"]
    if alt is not None and alt.above_range():
        bases.append(("mild", "ALT above ULN (not an NCI ODWG criterion; read as at least mild)"))
    albumin, inr = results["albumin"], results["inr"]
    synthetic = []
    if albumin is not None and albumin.below_range():
        synthetic.append("albumin below the laboratory's range")
    if inr is not None and inr.above_range():
        synthetic.append("INR above the laboratory's range (also raised by vitamin K antagonists)")
    if synthetic:
        bases.append(("mild", " and ".join(synthetic) + ": hepatic synthetic function, read as at least mild"))
    if any(r is not None and r.in_our_unit for r in (results["bilirubin"], albumin, inr)):
        bound = lab_lower_bound(results["bilirubin"], albumin, inr)
        if bound.klass != "A":
            bases.append((GRADE[bound.klass], bound.describe()))
        elif bound.score > 5:  # an item past its best band is abnormal by the fixed cut-offs, range or not
            bases.append(("mild", bound.describe() + "; an item above its minimum, read as at least mild"))
    return bases


def _too_old(results: list[LiverResult], max_age_days: int | None) -> list[LiverResult]:
    """Results older than ``max_age_days`` (undated ones count as too old)."""
    if not max_age_days:
        return []
    now = dt.datetime.now(dt.UTC)
    return [r for r in results if r.at is None or (now - r.at).days > max_age_days]


def hepatic_reading(
    obs: CodedObservations, conditions: list[dict[str, Any]], max_age_days: int | None = None
) -> HepaticReading:
    """``max_age_days``: normal tests older than this cannot say "none" (abnormal ones still count).

    The asymmetry is the conservative one: an old abnormal result is still a reason for caution,
    while an old normal one says nothing about the liver today, so it leaves the grade unknown.
    """
    out = HepaticReading()
    results: dict[str, LiverResult | None] = {}
    for kind in _KINDS:
        results[kind], notes = latest_liver_result(obs, kind)
        out.notes.extend(notes)
    recorded, unread = recorded_class(obs)
    out.notes.extend(unread)
    read = [r for r in results.values() if r is not None]
    shown = "; ".join(r.describe() for r in read)

    bases = _bases(results)
    if recorded is not None:
        bases.append((GRADE[recorded.klass], recorded.describe()))
    if bases:
        worst = max(_RANK[g] for g, _ in bases)
        out.grade = next(g for g, r in _RANK.items() if r == worst)
        named = "; ".join(f"{why} ({g})" for g, why in bases)
        out.evidence.append(f"hepatic impairment {out.grade}: {named}")
        if shown:
            out.evidence.append(f"liver tests: {shown}")
        return out

    no_range = [r.describe() for r in read if r.high is None and r.low is None]
    if no_range:
        out.evidence.append("liver tests without a reference range, not graded: " + "; ".join(no_range))
    bili, ast = results["bilirubin"], results["ast"]
    normal = bili is not None and ast is not None and bili.above_range() is False and ast.above_range() is False
    listed = liver_disease_listed(conditions)
    if normal and listed:
        out.evidence.append(f"liver tests within range ({shown}) but {listed!r} is on the problem list")
    elif normal and unread:
        # someone scored this patient's liver disease: normal tests alone do not make it "none"
        out.evidence.append(f"liver tests within range ({shown}) but a Child-Pugh entry could not be read")
    elif normal and (old := _too_old([r for r in (bili, ast) if r is not None], max_age_days)):
        out.evidence.append(
            f"liver tests within range but over {max_age_days} days old or undated "
            f"({'; '.join(r.describe() for r in old)}): hepatic function not graded"
        )
    elif normal:
        out.grade = "none"
        out.evidence.append(f"no hepatic impairment documented: {shown}; NCI ODWG")
    elif read:
        out.evidence.append(
            f"liver tests read ({shown}) but hepatic function not graded: NCI ODWG needs a total bilirubin "
            "and an AST with the laboratory's reference range"
        )
    return out
