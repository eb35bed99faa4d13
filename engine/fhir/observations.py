"""Pick the latest usable lab or vital sign of a kind from FHIR Observations, in our units.

Which LOINC codes count, and how units convert, is decided here once so that CDS Hooks, the
Synthea importer and any later adapter read a creatinine of 1.4 mg/dL and one of 124 µmol/L the
same way. Values we cannot interpret (unknown unit, no number, entered in error) are skipped with a
note, never guessed.

Pregnancy status (LOINC 82810-3) answers: LOINC answer list LL4129-4 (LA15173-0 pregnant,
LA26683-5 not pregnant, LA4489-6 unknown) and the SNOMED CT findings US Core's pregnancy-status
value set uses (77386006 pregnant, 60001007 not pregnant, 261665006 unknown).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from engine.fhir.values import LOINC, codes_in, codings, concept_text, number, obj, status, text, unit_of, when

UMOL_PER_MG_DL_CREATININE = 88.42

# LOINC eGFR codes in use (loinc.org, each code's page): 98979-8 CKD-EPI 2021, 62238-1 CKD-EPI,
# 33914-3 MDRD (Synthea), 50210-4 cystatin C, 48642-3 and 48643-1 MDRD non-Black/Black, 50044-7
# MDRD female, 77147-7 MDRD (SI), 88293-6 and 88294-4 CKD-EPI Black/non-Black, 69405-9 GFR/1.73 m².
EGFR_CODES = (
    "98979-8",
    "62238-1",
    "33914-3",
    "50210-4",
    "48642-3",
    "48643-1",
    "50044-7",
    "77147-7",
    "88293-6",
    "88294-4",
    "69405-9",
)
CREATININE_MASS_CODES = ("2160-0", "38483-4")  # mg/dL (38483-4 is what Synthea writes)
CREATININE_MOLAR_CODES = ("14682-9",)  # µmol/L
WEIGHT_CODE = "29463-7"
HEIGHT_CODE = "8302-2"
PREGNANCY_STATUS_CODE = "82810-3"

_PREGNANT = {"LA15173-0", "77386006"}
_NOT_PREGNANT = {"LA26683-5", "60001007"}
_UNKNOWN = {"LA4489-6", "261665006"}
_EXCLUDED_STATUS = {"entered-in-error", "cancelled"}


@dataclass(frozen=True)
class Measurement:
    """One usable value in our unit, with what it came from (shown to clinicians as evidence)."""

    value: float
    unit: str
    code: str
    at: dt.datetime | None
    note: str | None = None

    def describe(self, label: str) -> str:
        day = self.at.date().isoformat() if self.at else "undated"
        extra = f"; {self.note}" if self.note else ""
        return f"{label} {self.value:g} {self.unit} (LOINC {self.code}, {day}{extra})"


def effective(resource: dict[str, Any]) -> dt.datetime | None:
    """When an Observation applies: effective[x], else when it was issued."""
    period = obj(resource.get("effectivePeriod"))
    for candidate in (
        resource.get("effectiveDateTime"),
        resource.get("effectiveInstant"),
        period.get("end"),
        period.get("start"),
        resource.get("issued"),
    ):
        moment = when(candidate)
        if moment is not None:
            return moment
    return None


def components(o: dict[str, Any]) -> list[dict[str, Any]]:
    """Each ``component`` with a value, as an Observation of its own (status and date of the parent).

    A renal panel (FHIR example f205) carries eGFR as a component, not as its own Observation.
    """
    out = []
    for c in o.get("component") or []:
        c = obj(c)
        if c.get("code") is None or not any(k.startswith("value") for k in c):
            continue
        part = {k: v for k, v in o.items() if k not in ("code", "component") and not k.startswith("value")}
        part.update(c)
        out.append(part)
    return out


@dataclass(frozen=True)
class CodedObservations:
    """Observations that count (not entered in error or cancelled), each with its LOINC codes.

    A profile looks up five kinds in the same observations; reading every coding once instead of
    once per kind was a tenth of a CDS Hooks call's CPU.
    """

    items: tuple[tuple[tuple[str, ...], dict[str, Any]], ...]

    @classmethod
    def of(cls, observations: list[dict[str, Any]]) -> CodedObservations:
        items: list[tuple[tuple[str, ...], dict[str, Any]]] = []
        for o in observations:
            if status(o.get("status")) in _EXCLUDED_STATUS:
                continue
            items.append((tuple(codes_in(o.get("code"), LOINC)), o))
            items.extend((tuple(codes_in(c.get("code"), LOINC)), c) for c in components(o))
        return cls(tuple(items))


Observations = list[dict[str, Any]] | CodedObservations


def _candidates(observations: Observations, codes: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:
    coded = observations if isinstance(observations, CodedObservations) else CodedObservations.of(observations)
    out = []
    for found, o in coded.items:
        matched = [c for c in found if c in codes]
        if matched:
            out.append((matched[0], o))
    return out


def _latest(items: list[tuple[Measurement | None, str | None]]) -> tuple[Measurement | None, list[str]]:
    notes = [n for _, n in items if n]
    usable = [m for m, _ in items if m is not None]
    if not usable:
        return None, notes
    floor = dt.datetime.min.replace(tzinfo=dt.UTC)
    best = max(enumerate(usable), key=lambda im: (im[1].at or floor, im[0]))[1]
    if best.at is None and len(usable) > 1:
        notes.append(f"LOINC {best.code}: no dates on the results; the last one listed was used")
    return best, notes


# How far below x a "<x" result is placed so that it bands as below x (values are shown to 0.1).
_BELOW = 0.1


def _quantity(o: dict[str, Any], kind: str = "") -> tuple[float | None, str, str | None]:
    """The value, its unit, and a note when a comparator changed what is used.

    ``<x`` and ``<=x`` eGFR results band as below x (an eGFR "<30" is severe, not moderate); ``>x``
    is used as x, the conservative end for every kind we read (a lower eGFR, weight or height never
    loosens a dose; a creatinine ">x" is at least x).
    """
    q = obj(o.get("valueQuantity"))
    value = number(q.get("value"))
    comparator = text(q.get("comparator"))
    if not comparator or value is None:
        return value, unit_of(q), None
    if comparator in ("<", "<=") and kind == "egfr":
        used = round(value - _BELOW, 1)
        return used, unit_of(q), f"reported as {comparator}{value:g}; treated as below {value:g} ({used:g})"
    return value, unit_of(q), f"reported as {comparator}{value:g}; {value:g} used"


def _convert(kind: str, code: str, value: float, unit: str) -> tuple[float | None, str | None]:
    """``value`` in our unit for ``kind``, or ``None`` and why."""
    if kind == "egfr":
        if unit == "" or unit.startswith("ml/min"):
            return value, None if unit else "no unit given; mL/min/1.73m² assumed"
        if unit.startswith("ml/s"):  # SI reporting (Nordic laboratories): 1 mL/s = 60 mL/min
            return round(value * 60, 1), f"converted from {value:g} mL/s"
    elif kind == "creatinine":
        if unit == "" and code in CREATININE_MASS_CODES:
            return value, "no unit given; mg/dL assumed from the LOINC code"
        if unit == "" and code in CREATININE_MOLAR_CODES:
            return round(value / UMOL_PER_MG_DL_CREATININE, 3), "no unit given; µmol/L assumed from the LOINC code"
        if unit == "mg/dl":
            return value, None
        if unit == "mg/l":
            return round(value / 10, 3), "converted from mg/L"
        if unit in ("umol/l", "micromol/l"):
            return round(value / UMOL_PER_MG_DL_CREATININE, 3), f"converted from {value:g} µmol/L"
        if unit == "mmol/l":
            return round(value * 1000 / UMOL_PER_MG_DL_CREATININE, 3), f"converted from {value:g} mmol/L"
    elif kind == "weight":
        factors = {"kg": 1.0, "g": 0.001, "[lb_av]": 0.45359237, "lb": 0.45359237, "lbs": 0.45359237}
        if unit in factors:
            return round(value * factors[unit], 2), None if unit == "kg" else f"converted from {value:g} {unit}"
    elif kind == "height":
        factors = {"cm": 1.0, "m": 100.0, "[in_i]": 2.54, "in": 2.54, "mm": 0.1}
        if unit in factors:
            return round(value * factors[unit], 1), None if unit == "cm" else f"converted from {value:g} {unit}"
    return None, f"unit {unit!r} not understood"


_UNITS = {"egfr": "mL/min/1.73m²", "creatinine": "mg/dL", "weight": "kg", "height": "cm"}
_DECIMALS = {"egfr": 1, "creatinine": 2, "weight": 1, "height": 1}
_CODES = {
    "egfr": EGFR_CODES,
    "creatinine": CREATININE_MASS_CODES + CREATININE_MOLAR_CODES,
    "weight": (WEIGHT_CODE,),
    "height": (HEIGHT_CODE,),
}


def latest_measurement(observations: Observations, kind: str) -> tuple[Measurement | None, list[str]]:
    """The most recent usable value of ``kind`` (egfr, creatinine, weight, height) and notes on skips."""
    items: list[tuple[Measurement | None, str | None]] = []
    for code, o in _candidates(observations, _CODES[kind]):
        value, unit, comparator_note = _quantity(o, kind)
        if value is None:
            items.append((None, f"{kind} (LOINC {code}) without a numeric value was skipped"))
            continue
        converted, note = _convert(kind, code, value, unit)
        if converted is None:
            items.append((None, f"{kind} (LOINC {code}) skipped: {note}"))
            continue
        joined = "; ".join(n for n in (comparator_note, note) if n) or None
        shown = round(converted, _DECIMALS[kind])
        items.append((Measurement(shown, _UNITS[kind], code, effective(o), joined), None))
    return _latest(items)


def pregnancy_status(observations: Observations) -> tuple[bool | None, Measurement | None, list[str]]:
    """Latest pregnancy status (82810-3): True, False, or None when unknown or not recorded."""
    notes: list[str] = []
    answered: list[tuple[Measurement, bool | None]] = []
    for code, o in _candidates(observations, (PREGNANCY_STATUS_CODE,)):
        answer = o.get("valueCodeableConcept")
        found = {str(c.get("code")) for c in codings(answer)}
        label = (concept_text(answer) or text(o.get("valueString")) or "").strip().lower()
        verdict: bool | None
        if found & _PREGNANT or label in ("pregnant", "currently pregnant"):
            verdict = True
        elif found & _NOT_PREGNANT or label == "not pregnant":
            verdict = False
        elif found & _UNKNOWN or label in ("unknown", "possible pregnancy"):
            verdict = None
        else:
            notes.append(f"pregnancy status answer {label or sorted(found)!r} not understood; skipped")
            continue
        shown = {True: 1.0, False: 0.0, None: -1.0}[verdict]
        answered.append((Measurement(shown, "", code, effective(o), label or None), verdict))
    if not answered:
        return None, None, notes
    floor = dt.datetime.min.replace(tzinfo=dt.UTC)
    _, (best, verdict) = max(enumerate(answered), key=lambda ia: (ia[1][0].at or floor, ia[0]))
    return verdict, best, notes
