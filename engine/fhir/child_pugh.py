"""Child-Pugh class, as recorded in the chart or as the least the laboratory results allow.

The pack reads hepatic impairment by Child-Pugh class, as drug labels and the FDA guidance
"Pharmacokinetics in Patients with Impaired Hepatic Function" (2003) do: class A mild, B moderate,
C severe (rules/shared/derived.yaml, ``hepatic_class``).

Score (Pugh RN et al., Br J Surg 1973;60:646-649, with INR for the prothrombin time): 1-3 points each
for total bilirubin (< 2, 2-3, > 3 mg/dL), albumin (> 3.5, 2.8-3.5, < 2.8 g/dL), INR (< 1.7,
1.7-2.3, > 2.3), ascites and encephalopathy (none, mild, moderate-severe); 5-6 is A, 7-9 B, 10-15 C.

Ascites and encephalopathy are clinical findings an EHR does not record as results, so from the labs
alone only a **lower bound** exists: each missing item counts its minimum of 1 point. A lower bound
of B or C is a fact (the true score can only be higher); a lower bound of A says nothing, since
every patient scores at least 5. Child-Pugh is defined for chronic liver disease, and low albumin
(nephrotic syndrome, malnutrition) and a high INR (vitamin K antagonists) have other causes; the
card says so rather than guessing which applies.

A recorded score or class: LOINC 98153-0 "Child-Pugh panel" (verified in the Taiwan NHI prior
authorisation IG, github.com/TWNHIFHIR/pas, input/fsh/terminology/LOINC_SCT-PatAst.fsh; its
invariant pat-ast-value in Profile-ObservationPatAssessmentTWPAS.fsh carries the class as
valueString A/B/C). No LOINC code for the total score alone and no SNOMED CT observable could be
verified, so an Observation whose code text or display says "Child-Pugh" or "Child-Turcotte-Pugh"
is read as well. The value is an integer or Quantity score (5-15) or a class A/B/C as a string or
a CodeableConcept's code, display or text.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from engine.fhir.liver_tests import LiverResult
from engine.fhir.observations import CodedObservations, effective
from engine.fhir.values import codings, concept_text, number, obj, text

CHILD_PUGH_PANEL = "98153-0"
GRADE = {"A": "mild", "B": "moderate", "C": "severe"}
_NAMED = re.compile(r"child[\s-]*(turcotte[\s-]*)?pugh", re.IGNORECASE)
_CLASS = re.compile(r"^\s*(?:child[\s-]*(?:turcotte[\s-]*)?pugh\s*)?(?:class\s*)?([abc])\s*$", re.IGNORECASE)
_FLOOR = dt.datetime.min.replace(tzinfo=dt.UTC)


def class_of(score: int) -> str:
    return "A" if score <= 6 else "B" if score <= 9 else "C"


def _bilirubin_points(mg_dl: float) -> int:
    return 1 if mg_dl < 2 else 2 if mg_dl <= 3 else 3


def _albumin_points(g_dl: float) -> int:
    return 1 if g_dl > 3.5 else 2 if g_dl >= 2.8 else 3


def _inr_points(inr: float) -> int:
    return 1 if inr < 1.7 else 2 if inr <= 2.3 else 3


@dataclass(frozen=True)
class LowerBound:
    score: int
    parts: tuple[str, ...]  # how each item was scored, for the card

    @property
    def klass(self) -> str:
        return class_of(self.score)

    def describe(self) -> str:
        return f"Child-Pugh lower bound {self.score} (class {self.klass}) from laboratory results: " + ", ".join(
            self.parts
        )


def lab_lower_bound(bilirubin: LiverResult | None, albumin: LiverResult | None, inr: LiverResult | None) -> LowerBound:
    """The least Child-Pugh score these results allow (missing items at their minimum of 1)."""
    parts: list[str] = []
    score = 0
    for result, label, points in (
        (bilirubin, "bilirubin", _bilirubin_points),
        (albumin, "albumin", _albumin_points),
        (inr, "INR", _inr_points),
    ):
        if result is None:
            parts.append(f"{label} not available 1 pt (minimum)")
            score += 1
        elif not result.in_our_unit:
            parts.append(f"{label} in {result.unit or 'no unit'!r} could not be used, 1 pt (minimum)")
            score += 1
        else:
            p = points(result.value)
            unit = f" {result.unit}" if result.unit else ""
            parts.append(f"{label} {result.value:g}{unit} {p} pt")
            score += p
    parts.append("ascites and encephalopathy not recorded, 1 pt each (minimum)")
    return LowerBound(score + 2, tuple(parts))


@dataclass(frozen=True)
class Recorded:
    klass: str
    score: int | None
    at: dt.datetime | None
    where: str

    def describe(self) -> str:
        day = self.at.date().isoformat() if self.at else "undated"
        score = f"score {self.score}, " if self.score is not None else ""
        return f"recorded Child-Pugh class {self.klass} ({score}{self.where}, {day})"


def _is_child_pugh(codes: tuple[str, ...], o: dict[str, Any]) -> bool:
    if CHILD_PUGH_PANEL in codes:
        return True
    concept = o.get("code")
    words = " ".join(filter(None, [concept_text(concept), *(str(c.get("display") or "") for c in codings(concept))]))
    return bool(_NAMED.search(words))


def _answer(o: dict[str, Any]) -> tuple[str | None, int | None, str | None]:
    """(class, score, why not understood) from one Observation's value."""
    raw = o.get("valueInteger")
    if raw is None:
        raw = obj(o.get("valueQuantity")).get("value")
    score = number(raw)
    if score is not None:
        if score != int(score) or not 5 <= score <= 15:
            return None, None, f"Child-Pugh score {score:g} is not a whole number from 5 to 15"
        return class_of(int(score)), int(score), None
    concept = o.get("valueCodeableConcept")
    for candidate in (
        text(o.get("valueString")),
        *(text(c.get("code")) for c in codings(concept)),
        *(text(c.get("display")) for c in codings(concept)),
        concept_text(concept),
    ):
        m = _CLASS.match(candidate or "")
        if m:
            return m.group(1).upper(), None, None
    return None, None, "Child-Pugh answer not understood (expected a score 5-15 or class A, B or C)"


def recorded_class(obs: CodedObservations) -> tuple[Recorded | None, list[str]]:
    """The newest recorded Child-Pugh score or class, and notes on entries that could not be read."""
    notes: list[str] = []
    best: Recorded | None = None
    for codes, o in obs.items:
        if not _is_child_pugh(codes, o):
            continue
        if o.get("component") and not any(k.startswith("value") for k in o):
            continue  # a panel without a value of its own: its components are read as items
        klass, score, why = _answer(o)
        where = f"Observation/{o.get('id')}" if o.get("id") else "an Observation"
        if klass is None:
            notes.append(f"{where}: {why}; not used")
            continue
        found = Recorded(klass, score, effective(o), where)
        if best is None or (found.at or _FLOOR) >= (best.at or _FLOOR):
            best = found
    return best, notes
