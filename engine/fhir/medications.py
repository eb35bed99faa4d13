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
# MedicationStatement (R4 medication-statement-status): what the patient takes, intends to take or
# has paused counts as a co-medication; stopped, completed, not-taken and entered-in-error do not.
STATEMENT_STATUSES = frozenset({"active", "intended", "on-hold"})
NDC = "http://hl7.org/fhir/sid/ndc"
_NDC_FORM = re.compile(r"^[0-9]{4,5}-?[0-9]{3,4}-?[0-9]{1,2}$")
DRAFT_STATUSES = frozenset({"draft"})
# FHIR DSTU2's prescription resource; STU3 renamed and reshaped it as MedicationRequest (STU3
# differences, hl7.org/fhir/STU3/medicationrequest.diff.json: old-name "MedicationOrder", with new
# intent, subject, requester ...). Its fields differ from R4's, so it is not read.
DSTU2_ORDER = "MedicationOrder"

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
    ingredients: tuple[DrugRef, ...] = ()  # Medication.ingredient items, each a drug of its own
    strength: Strength | None = None  # per tablet or per mL: the Medication's ingredient, else the product name
    medication_form: dict[str, Any] | None = None  # Medication.form, when a Medication was resolved

    def refs(self) -> list[DrugRef]:
        """Every drug this order puts in the patient: the product and each listed ingredient."""
        return ([self.drug] if self.drug is not None else []) + list(self.ingredients)


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


def _code_frequency(timing: dict[str, Any]) -> float | None:
    """Times a day named by ``timing.code``: the HL7 abbreviation in any system, or its display/text.

    Vendors send their own code systems (Cerner code set 4003) with "TID" as display or text, so the
    abbreviation is looked for wherever it is written, not only under the HL7 system.
    """
    code = obj(timing.get("code"))
    words = [text(code.get("text"))] + [
        text(obj(c).get(k)) for c in as_list(code.get("coding")) for k in ("code", "display")
    ]
    for w in words:
        if w and w.strip().upper() in _TIMING_CODES:
            return _TIMING_CODES[w.strip().upper()]
    for w in words:
        for pattern, per_day in _TEXT_FREQ:
            if w and pattern.search(w.lower()):
                return per_day
    return None


_INTERVAL_CODES = {"Q4H": 4.0, "Q6H": 6.0, "Q8H": 8.0, "Q12H": 12.0, "Q24H": 24.0}


def _interval_hours(timing: dict[str, Any]) -> float | None:
    """The interval an order was written as ("every 8 hours": ``frequency`` 1 per ``period`` 8 h, or Q8H)."""
    repeat = obj(timing.get("repeat"))
    unit = text(repeat.get("periodUnit")) or text(repeat.get("periodUnits"))
    period = number(repeat.get("period"))
    if repeat.get("frequencyMax") is None and repeat.get("periodMax") is None and unit == "h" and period:
        return period if number(repeat.get("frequency")) in (None, 1.0) else None
    if repeat:
        return None
    code = obj(timing.get("code"))
    words = [text(code.get("text"))] + [
        text(obj(c).get(k)) for c in as_list(code.get("coding")) for k in ("code", "display")
    ]
    return next((_INTERVAL_CODES[w.strip().upper()] for w in words if w and w.strip().upper() in _INTERVAL_CODES), None)


def _times_per_day(dosage: dict[str, Any]) -> tuple[float | None, str | None]:
    timing = obj(dosage.get("timing"))
    repeat = obj(timing.get("repeat"))
    freq = number(repeat.get("frequencyMax")) or number(repeat.get("frequency"))
    period = number(repeat.get("period")) or 1.0
    unit = text(repeat.get("periodUnit")) or text(repeat.get("periodUnits"))  # DSTU2 spelling
    if freq is not None and unit in _PER_DAY and period > 0:
        return freq / period * _PER_DAY[str(unit)], None
    # timeOfDay ["08:00", "14:00", "20:00"] and when ["MORN", "NIGHT"]: one dose at each, daily
    times = [t for t in as_list(repeat.get("timeOfDay")) if text(t)]
    whens = [w for w in as_list(repeat.get("when")) if text(w)]
    if freq is None and (times or whens) and unit in (None, "d") and period == 1.0:
        return float(len(times) + len(whens)), None
    if freq is None and unit in _PER_DAY and period > 0 and repeat:
        return 1.0 / period * _PER_DAY[str(unit)], None
    by_code = _code_frequency(timing)
    if by_code is not None:
        return by_code, None
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


def _to_mg(quantity: dict[str, Any], strength: Strength | None) -> tuple[float | None, str | None]:
    amount, unit = number(quantity.get("value")), unit_of(quantity)
    if amount is None or amount <= 0:
        return None, "no dose quantity"
    if unit in _MASS_TO_MG:
        return amount * _MASS_TO_MG[unit], None
    if strength is not None and (unit == "ml" if strength.per_ml else unit in _UNIT_DOSES):
        return amount * strength.mg, None
    return None, f"dose {amount:g} {unit or '(no unit)'} could not be converted to mg"


def _cap_per_day(dosage: dict[str, Any], strength: Strength | None) -> float | None:
    """``maxDosePerPeriod`` (the prescriber's own ceiling, e.g. 6 tablets a day) in mg/day."""
    for ratio in as_list(dosage.get("maxDosePerPeriod")):  # 0..1 in R4, 0..* in R5
        r = obj(ratio)
        mg, _ = _to_mg(obj(r.get("numerator")), strength)
        den = obj(r.get("denominator"))
        per, unit = number(den.get("value")) or 1.0, unit_of(den)
        unit = {"day": "d", "days": "d", "hour": "h", "hours": "h", "week": "wk"}.get(unit, unit)
        if mg is not None and unit in _PER_DAY and per > 0:
            return mg / per * _PER_DAY[unit]
    return None


@dataclass(frozen=True)
class _Line:
    sequence: int | None
    dose_mg: float
    per_day: float
    note: str | None
    every_hours: float | None = None  # the interval the line was written as, for its wording

    @property
    def total(self) -> float:
        return self.dose_mg * self.per_day


def _line(dosage: dict[str, Any], strength: Strength | None) -> tuple[_Line | None, str | None]:
    quantity, range_note = _dose_quantity(dosage)
    dose_mg, why = _to_mg(quantity, strength)
    per_day, freq_note = _times_per_day(dosage)
    cap = _cap_per_day(dosage, strength)
    if dose_mg is None and cap is None:
        return None, why
    if dose_mg is None or per_day is None:
        if cap is None:
            return None, freq_note if dose_mg is not None else why
        return _Line(None, cap, 1.0, "the maximum dose per period was checked"), None
    notes = [n for n in (range_note, freq_note) if n]
    every = _interval_hours(obj(dosage.get("timing")))
    if cap is not None and cap < dose_mg * per_day:
        per_day = cap / dose_mg
        every = None
        notes.append("limited by the order's maximum dose per period")
    seq = dosage.get("sequence")
    return _Line(seq if isinstance(seq, int) else None, dose_mg, per_day, "; ".join(notes) or None, every), None


def ordered_dose(dosages: Any, label: str | None, strength: Strength | None) -> tuple[OrderedDose | None, str | None]:
    """mg per dose and doses per day from ``dosageInstruction``, or None and the reason.

    Every line is read. Lines of one ``sequence`` (or all lines without one: split doses such as
    10 mg in the morning and 20 mg at night) are taken together; of several sequences (a titration
    or taper) the one with the highest daily total is checked, since the maximum applies to each
    day. The answer is the largest single dose of that step and the times a day that give its total.
    """
    dosage_list = [obj(d) for d in as_list(dosages) if isinstance(d, dict)]
    if not dosage_list:
        return None, "no dosage instruction"
    strength = strength or strength_from_text(label)
    lines: list[_Line] = []
    reasons: list[str] = []
    for d in dosage_list:
        line, why = _line(d, strength)
        if line is not None:
            lines.append(line)
        elif why:
            reasons.append(why)
    if not lines:
        return None, reasons[0] if reasons else "no dose quantity"
    steps: dict[int | None, list[_Line]] = {}
    for line in lines:
        steps.setdefault(line.sequence, []).append(line)
    if None in steps and len(steps) > 1:  # unsequenced lines run alongside every step
        shared = steps.pop(None)
        steps = {k: v + shared for k, v in steps.items()}
    step = max(steps.values(), key=lambda ls: sum(line.total for line in ls))
    total = sum(line.total for line in step)
    largest = max(line.dose_mg for line in step)
    every = step[0].every_hours if len(step) == 1 else None  # one line: worded as it was written
    try:
        dose = OrderedDose(dose_mg=round(largest, 4), times_per_day=round(total / largest, 4))
        if every is not None and abs(dose.times_per_day * every - 24) <= 0.01:
            dose = dose.model_copy(update={"every_hours": every})
    except ValidationError:
        return None, f"dose {largest:g} mg, {total:g} mg a day, is outside plausible limits"
    notes = [n for line in step for n in [line.note] if n]
    if len(steps) > 1:
        notes.append(f"{len(steps)} dosage steps: the highest daily total ({total:g} mg/day) was checked")
    elif len(step) > 1:
        notes.append(f"{len(step)} dosage lines taken together ({total:g} mg/day)")
    if reasons:
        notes.append(f"{len(reasons)} dosage line(s) not read: {reasons[0]}")
    return dose, "; ".join(dict.fromkeys(notes)) or None


def _drug_ref(concept: Any, display: str | None = None) -> DrugRef | None:
    rx_codes = [c for c in codes_in(concept, RXNORM) if re.fullmatch(r"[0-9]{1,9}", c)]
    ndcs = [c for c in codes_in(concept, NDC) if _NDC_FORM.match(c)]
    name = concept_text(concept) or display
    if not (name or rx_codes or ndcs):
        return None
    return DrugRef(name=name, rxcui=rx_codes[0] if rx_codes else None, ndc=ndcs[0] if ndcs else None)


def _ingredients(medication: dict[str, Any] | None) -> tuple[DrugRef, ...]:
    """Medication.ingredient[].itemCodeableConcept (R4) or item.concept (R5), each as a drug."""
    out: list[DrugRef] = []
    for i in as_list(obj(medication).get("ingredient")):
        item = obj(i).get("itemCodeableConcept") or obj(obj(i).get("item")).get("concept")
        ref = _drug_ref(item)
        if ref is not None:
            out.append(ref)
    return tuple(out) if len(out) > 1 else ()  # one ingredient is the product itself


def med_order(mr: dict[str, Any], index: ReferenceIndex | None = None) -> MedOrder:
    """Read one MedicationRequest or MedicationStatement (R4, or STU3 with the same fields)."""
    index = index or ReferenceIndex([])
    concept, display, medication = _medication_concept(mr, index)
    drug = _drug_ref(concept, display)
    rx_codes = [c for c in codes_in(concept, RXNORM) if re.fullmatch(r"[0-9]{1,9}", c)]
    ndcs = [c for c in codes_in(concept, NDC) if _NDC_FORM.match(c)]
    name = concept_text(concept) or display
    label = name or (f"RxNorm {rx_codes[0]}" if rx_codes else f"NDC {ndcs[0]}" if ndcs else "unidentified medication")
    strength = _strength_from_medication(medication)
    statement = mr.get("resourceType") == "MedicationStatement"
    dose, note = ordered_dose(mr.get("dosage" if statement else "dosageInstruction"), name, strength)
    rid = text(mr.get("id"))
    rtype = "MedicationStatement" if statement else "MedicationRequest"
    return MedOrder(
        resource=mr,
        ref=f"{rtype}/{rid}" if rid else None,
        status=status(mr.get("status")),
        drug=drug,
        label=label,
        ordered=dose,
        dose_note=note,
        route=non_oral_route(mr, medication, name),
        ingredients=_ingredients(medication),
        strength=strength or strength_from_text(name),
        medication_form=obj(obj(medication).get("form")) or None,
    )


def dstu2_orders(resources: list[dict[str, Any]]) -> list[str]:
    """One "not checked" line per DSTU2 ``MedicationOrder``: not read, and said so, never dropped silently."""
    out: list[str] = []
    for r in resources:
        if r.get("resourceType") != DSTU2_ORDER:
            continue
        rid = text(r.get("id"))
        reference = obj(r.get("medicationReference"))
        name = concept_text(r.get("medicationCodeableConcept")) or text(reference.get("display"))
        what = f"{DSTU2_ORDER}/{rid}" if rid else f"a {DSTU2_ORDER}"
        drug = f" ({name})" if name else ""
        out.append(
            f"DSTU2 {what}{drug}: a FHIR DSTU2 resource, not read; this service reads FHIR R4 (MedicationRequest)"
        )
    return out
