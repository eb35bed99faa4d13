"""The newest liver test of each kind from FHIR Observations, in our units, with the lab's own range.

Hepatic grading (``engine.fhir.hepatic``) needs five results an EHR records: total bilirubin, AST,
ALT, albumin and INR. Each is read here once: the newest result with a number wins (by effective
date), with its reference range when the laboratory sent one. A range is never assumed; a result
without one is kept (its value still counts towards Child-Pugh points, which use fixed cut-offs)
but cannot be called above or below the range.

LOINC codes, each verified in a published FHIR implementation guide:

- 1975-2 Bilirubin.total [Mass/volume] in Serum or Plasma, 1920-8 AST, 1742-6 ALT and 1751-7
  Albumin [Mass/volume] in Serum or Plasma: HL7 Vulcan schedule IG (github.com/HL7/Vulcan-schedule-ig,
  input/fsh/observationdefinitions/LOINC-<code>-ObservationDefinition.fsh; units mg/dL, U/L, g/dL).
- 6301-6 INR in Platelet poor plasma by Coagulation assay: PACIO Sample Data Depot
  (build.fhir.org/ig/paciowg/sample-data-fsh, Observation betsysmith-johnson01-obs-inr-coag-panel,
  UCUM unit "1"); 34714-6 INR in Blood by Coagulation assay: CH RAD-Order
  (build.fhir.org/ig/hl7ch/ch-rad-order, Observation CaveatBloodCoagulationINR, UCUM "{INR}");
  38875-1 INR in Platelet poor plasma or Blood by Coagulation assay: CH LAB-Order
  (github.com/hl7ch/ch-lab-order, input/fsh/instances/LabOrder-ServiceRequest-coag.fsh).

Units are converted only when the UCUM unit says what it is: bilirubin µmol/L ÷ 17.1 (molar mass
584.7 g/mol; the Child-Pugh cut-offs 2 and 3 mg/dL are 34 and 51 µmol/L), albumin g/L ÷ 10. A
result in a unit we do not know keeps its value for comparison with its own range (same report,
same unit) but is not used for Child-Pugh points, and the card says so.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from engine.fhir.observations import CodedObservations, effective
from engine.fhir.values import as_list, number, obj, text, unit_of

BILIRUBIN_TOTAL = "1975-2"
AST = "1920-8"
ALT = "1742-6"
ALBUMIN = "1751-7"
INR_CODES = ("6301-6", "34714-6", "38875-1")
UMOL_PER_MG_DL_BILIRUBIN = 17.1

CODES: dict[str, tuple[str, ...]] = {
    "bilirubin": (BILIRUBIN_TOTAL,),
    "ast": (AST,),
    "alt": (ALT,),
    "albumin": (ALBUMIN,),
    "inr": INR_CODES,
}
LABELS = {"bilirubin": "total bilirubin", "ast": "AST", "alt": "ALT", "albumin": "albumin", "inr": "INR"}
_OUR_UNIT = {"bilirubin": "mg/dL", "ast": "U/L", "alt": "U/L", "albumin": "g/dL", "inr": ""}
# multiplier from a (normalised, lower-case) unit to ours; a unit missing here is not understood
_FACTORS: dict[str, dict[str, float]] = {
    "bilirubin": {"mg/dl": 1.0, "umol/l": 1 / UMOL_PER_MG_DL_BILIRUBIN, "micromol/l": 1 / UMOL_PER_MG_DL_BILIRUBIN},
    "ast": {"u/l": 1.0, "iu/l": 1.0, "[iu]/l": 1.0},
    "alt": {"u/l": 1.0, "iu/l": 1.0, "[iu]/l": 1.0},
    "albumin": {"g/dl": 1.0, "g/l": 0.1},
    "inr": {"": 1.0, "1": 1.0, "{inr}": 1.0, "inr": 1.0, "{ratio}": 1.0, "ratio": 1.0},
}
_FLOOR = dt.datetime.min.replace(tzinfo=dt.UTC)
# A "<x" albumin is placed just below x so that it scores as below x (low albumin is the bad end).
_BELOW = 0.01


@dataclass(frozen=True)
class LiverResult:
    """One liver test as used: value and range in ``unit`` (ours when ``in_our_unit``)."""

    kind: str
    value: float
    unit: str
    low: float | None
    high: float | None
    code: str
    at: dt.datetime | None
    in_our_unit: bool
    note: str | None = None

    @property
    def label(self) -> str:
        return LABELS[self.kind]

    def above_range(self) -> bool | None:
        return None if self.high is None else self.value > self.high

    def below_range(self) -> bool | None:
        return None if self.low is None else self.value < self.low

    def describe(self) -> str:
        """ "ALT 88 U/L (ULN 40; LOINC 1742-6, 2026-11-01)": value, the lab's range, code and date."""
        unit = f" {self.unit}" if self.unit else ""
        limits = []
        if self.low is not None and self.kind in ("albumin",):
            limits.append(f"LLN {self.low:g}")
        if self.high is not None and self.kind != "albumin":
            limits.append(f"ULN {self.high:g}")
        if not limits:
            limits.append("no reference range")
        day = self.at.date().isoformat() if self.at else "undated"
        extra = f"; {self.note}" if self.note else ""
        return f"{self.label} {self.value:g}{unit} ({', '.join(limits)}; LOINC {self.code}, {day}{extra})"


def _bound(q: Any, kind: str, value_unit: str, factor: float | None) -> tuple[float | None, str | None]:
    """A range limit in the value's unit (converted with it), or None and why it was left out."""
    v = number(obj(q).get("value"))
    if v is None:
        return None, None
    unit = unit_of(obj(q)) or value_unit
    if unit == value_unit:
        return (v * factor if factor is not None else v), None
    other = _FACTORS[kind].get(unit)
    if factor is None or other is None:
        return None, f"reference range in {unit!r}, result in {value_unit!r}: range not used"
    return v * other, None


def _read(kind: str, code: str, o: dict[str, Any]) -> tuple[LiverResult | None, str | None]:
    q = obj(o.get("valueQuantity"))
    value = number(q.get("value"))
    label = LABELS[kind]
    if value is None:
        return None, f"{label} (LOINC {code}) without a numeric value was skipped"
    notes: list[str] = []
    comparator = text(q.get("comparator"))
    if comparator in ("<", "<=") and kind == "albumin":
        notes.append(f"reported as {comparator}{value:g}; treated as below {value:g}")
        value -= _BELOW
    elif comparator:
        notes.append(f"reported as {comparator}{value:g}; {value:g} used")
    unit = unit_of(q)
    factor = _FACTORS[kind].get(unit)
    if factor is None:
        notes.append(f"unit {unit or 'not given'!r} not understood: compared with its own range only")
    elif factor != 1.0:
        notes.append(f"converted from {value:g} {q.get('unit') or unit}")
    ranges = [obj(r) for r in as_list(o.get("referenceRange"))]
    first = ranges[0] if ranges else {}
    low, why_low = _bound(first.get("low"), kind, unit, factor)
    high, why_high = _bound(first.get("high"), kind, unit, factor)
    notes.extend(n for n in {why_low, why_high} if n)
    shown = value * factor if factor is not None else value
    digits = 2 if kind in ("bilirubin", "albumin", "inr") else 0
    result = LiverResult(
        kind=kind,
        value=round(shown, digits) if digits else round(shown),
        unit=_OUR_UNIT[kind] if factor is not None else (q.get("unit") or unit or ""),
        low=None if low is None else round(low, 2),
        high=None if high is None or high <= 0 else round(high, 2),
        code=code,
        at=effective(o),
        in_our_unit=factor is not None,
        note="; ".join(notes) or None,
    )
    return result, None


def latest_liver_result(obs: CodedObservations, kind: str) -> tuple[LiverResult | None, list[str]]:
    """The newest usable result of ``kind`` (bilirubin, ast, alt, albumin, inr) and notes on skips."""
    wanted = CODES[kind]
    notes: list[str] = []
    best: LiverResult | None = None
    for found, o in obs.items:
        code = next((c for c in found if c in wanted), None)
        if code is None:
            continue
        result, why = _read(kind, code, o)
        if why:
            notes.append(why)
        if result is not None and (best is None or (result.at or _FLOOR) >= (best.at or _FLOOR)):
            best = result
    return best, notes
