"""Read a MedicationRequest as a drug reference and, where it can be computed, the dose written.

EHRs send the drug as ``medicationCodeableConcept`` (often a product-level RxNorm code such as
"Baclofen 10 MG Oral Tablet"), as a ``medicationReference`` to a contained or bundled Medication,
or in R5 style as ``medication.concept``. Doses arrive in mg, g or µg, in ``{pill}``/``{tablet}``
units that need the product strength, or in mL that need the concentration; frequency comes from
``timing.repeat``, a ``timing.code`` such as BID, or only the free text ("1 tid prn"). When the
mg/day cannot be computed the order still counts as a medication; ``dose_note`` says why there
is no dose, so the dose-range check is reported as not done rather than passed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from engine.fhir.bundle import ReferenceIndex
from engine.fhir.route import non_oral_route
from engine.fhir.values import RXNORM, as_list, codes_in, concept_text, number, obj, status, text, unit_of
from schemas.api import DrugRef, OrderedDose

ACTIVE_STATUSES = frozenset({"active"})
DRAFT_STATUSES = frozenset({"draft"})

_MASS_TO_MG = {"mg": 1.0, "g": 1000.0, "ug": 0.001, "mcg": 0.001}
_UNIT_DOSES = {"{pill}", "{tablet}", "{tbl}", "{tab}", "tab", "tablet", "tablets", "{capsule}", "cap", "capsule", "1"}
_PER_DAY = {"s": 86400.0, "min": 1440.0, "h": 24.0, "d": 1.0, "wk": 1 / 7, "mo": 1 / 30, "a": 1 / 365}
# HL7 v3 GTSAbbreviation timing codes (R4 TimingAbbreviation value set)
_TIMING_CODES = {"QD": 1.0, "BID": 2.0, "TID": 3.0, "QID": 4.0, "AM": 1.0, "PM": 1.0, "QOD": 0.5}
_TIMING_CODES |= {"Q4H": 6.0, "Q6H": 4.0, "Q8H": 3.0, "Q12H": 2.0, "Q24H": 1.0}
_TEXT_FREQ = [
    (re.compile(r"\b(qid|four times (a |per )?day|four times daily)\b"), 4.0),
    (re.compile(r"\b(tid|three times (a |per )?day|three times daily)\b"), 3.0),
    (re.compile(r"\b(bid|twice (a |per )?day|twice daily)\b"), 2.0),
    (re.compile(r"\b(qd|daily|once (a |per )?day|once daily|qhs|nightly|at bedtime)\b"), 1.0),
]
_COMBINED = re.compile(r"\d\s*/\s*\d+(?:\.\d+)?\s*(mg|mcg|ug|g)\b", re.IGNORECASE)  # "5/500mg"
_STRENGTH = re.compile(r"(\d+(?:\.\d+)?)\s*(mg|mcg|ug|g)\b(?:\s*/\s*(\d+(?:\.\d+)?)?\s*(ml)\b)?", re.IGNORECASE)


@dataclass(frozen=True)
class Strength:
    """mg per tablet/capsule, or mg per mL for liquids."""

    mg: float
    per_ml: bool


@dataclass(frozen=True)
class MedOrder:
    """One MedicationRequest, read tolerantly."""

    resource: dict[str, Any]
    ref: str | None  # "MedicationRequest/<id>" when the resource has an id
    status: str | None
    drug: DrugRef | None  # None: nothing identifies the drug (no code, no name)
    label: str
    ordered: OrderedDose | None
    dose_note: str | None  # why ``ordered`` is None when a dose was (or was not) written
    route: str | None = None  # a non-oral route or dose form ("intrathecal"); None: oral


def _medication_concept(mr: dict[str, Any], index: ReferenceIndex) -> tuple[Any, str | None, dict[str, Any] | None]:
    """(CodeableConcept, display, Medication resource) for the drug of a MedicationRequest."""
    if isinstance(mr.get("medicationCodeableConcept"), dict | list):
        return mr["medicationCodeableConcept"], None, None
    ref = mr.get("medicationReference")
    medication = obj(mr.get("medication"))  # R5 CodeableReference, sent by some newer clients
    if ref is None and medication:
        if medication.get("concept") is not None:
            return medication["concept"], None, None
        ref = medication.get("reference")
    if isinstance(ref, dict):
        resolved = index.resolve(ref, container=mr)
        display = text(ref.get("display"))
        if resolved is not None and resolved.get("resourceType") == "Medication":
            return resolved.get("code"), display, resolved
        return None, display, None
    return None, None, None


def _strength_from_medication(med: dict[str, Any] | None) -> Strength | None:
    if med is None:
        return None
    ingredients = [obj(i) for i in as_list(med.get("ingredient"))]
    if len(ingredients) != 1:
        return None
    ratio = obj(ingredients[0].get("strength"))
    num, den = obj(ratio.get("numerator")), obj(ratio.get("denominator"))
    amount, per = number(num.get("value")), number(den.get("value")) or 1.0
    factor = _MASS_TO_MG.get(unit_of(num))
    if amount is None or factor is None or per <= 0:
        return None
    return Strength(amount * factor / per, unit_of(den) == "ml")


def strength_from_text(label: str | None) -> Strength | None:
    """The single strength named in a product name ("Baclofen 10 MG Oral Tablet"); None if 0 or 2+."""
    if not label or _COMBINED.search(label):
        return None
    found = {
        (float(a), unit.lower(), float(vol) if vol else 1.0, bool(ml)) for a, unit, vol, ml in _STRENGTH.findall(label)
    }
    if len(found) != 1:
        return None
    (amount, unit, volume, per_ml) = found.pop()
    return Strength(amount * _MASS_TO_MG[unit] / volume, per_ml)


def _times_per_day(dosage: dict[str, Any]) -> tuple[float | None, str | None]:
    timing = obj(dosage.get("timing"))
    repeat = obj(timing.get("repeat"))
    freq = number(repeat.get("frequencyMax")) or number(repeat.get("frequency"))
    period = number(repeat.get("period")) or 1.0
    unit = text(repeat.get("periodUnit")) or text(repeat.get("periodUnits"))  # DSTU2 spelling
    if freq is not None and unit in _PER_DAY and period > 0:
        return freq / period * _PER_DAY[str(unit)], None
    if freq is None and unit in _PER_DAY and period > 0 and repeat:
        return 1.0 / period * _PER_DAY[str(unit)], None
    for code in codes_in(timing.get("code"), "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"):
        if code.upper() in _TIMING_CODES:
            return _TIMING_CODES[code.upper()], None
    words = (text(dosage.get("text")) or "").lower()
    for pattern, per_day in _TEXT_FREQ:
        if pattern.search(words):
            return per_day, f"frequency read from the dosage text {words!r}"
    return None, "no frequency given"


def _dose_quantity(dosage: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    for dr in as_list(dosage.get("doseAndRate")):
        dr = obj(dr)
        if isinstance(dr.get("doseQuantity"), dict):
            return dr["doseQuantity"], None
        rng = obj(dr.get("doseRange"))
        if isinstance(rng.get("high"), dict):
            return rng["high"], "dose range: the upper dose was checked"
    if isinstance(dosage.get("doseQuantity"), dict):  # STU3 shape, still sent by some R4 clients
        return dosage["doseQuantity"], None
    return {}, None


def ordered_dose(dosages: Any, label: str | None, strength: Strength | None) -> tuple[OrderedDose | None, str | None]:
    """mg per dose and doses per day from ``dosageInstruction``, or None and the reason."""
    dosage_list = [obj(d) for d in as_list(dosages) if isinstance(d, dict)]
    if not dosage_list:
        return None, "no dosage instruction"
    dosage = dosage_list[0]
    quantity, range_note = _dose_quantity(dosage)
    amount, unit = number(quantity.get("value")), unit_of(quantity)
    if amount is None or amount <= 0:
        return None, "no dose quantity"
    strength = strength or strength_from_text(label)
    if unit in _MASS_TO_MG:
        dose_mg = amount * _MASS_TO_MG[unit]
    elif strength is not None and (unit == "ml" if strength.per_ml else unit in _UNIT_DOSES):
        dose_mg = amount * strength.mg
    else:
        return None, f"dose {amount:g} {unit or '(no unit)'} could not be converted to mg"
    per_day, freq_note = _times_per_day(dosage)
    if per_day is None:
        return None, freq_note
    try:
        dose = OrderedDose(dose_mg=round(dose_mg, 4), times_per_day=round(per_day, 4))
    except ValidationError:
        return None, f"dose {dose_mg:g} mg {per_day:g} times a day is outside plausible limits"
    notes = [n for n in (range_note, freq_note) if n]
    if len(dosage_list) > 1:
        notes.append("several dosage instructions: the first was checked")
    return dose, "; ".join(notes) or None


def med_order(mr: dict[str, Any], index: ReferenceIndex | None = None) -> MedOrder:
    """Read one MedicationRequest (R4, or STU3 with the same fields)."""
    index = index or ReferenceIndex([])
    concept, display, medication = _medication_concept(mr, index)
    rx_codes = [c for c in codes_in(concept, RXNORM) if re.fullmatch(r"[0-9]{1,9}", c)]
    name = concept_text(concept) or display
    drug: DrugRef | None = None
    if name or rx_codes:
        drug = DrugRef(name=name, rxcui=rx_codes[0] if rx_codes else None)
    label = name or (f"RxNorm {rx_codes[0]}" if rx_codes else "unidentified medication")
    strength = _strength_from_medication(medication)
    dose, note = ordered_dose(mr.get("dosageInstruction"), name, strength)
    rid = text(mr.get("id"))
    return MedOrder(
        resource=mr,
        ref=f"MedicationRequest/{rid}" if rid else None,
        status=status(mr.get("status")),
        drug=drug,
        label=label,
        ordered=dose,
        dose_note=note,
        route=non_oral_route(mr, medication, name),
    )
