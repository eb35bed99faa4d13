"""The dispense amount of a suggested dose: recomputed where the arithmetic is certain, else removed.

A draft's ``dispenseRequest.quantity`` was computed for the dose it was written with; accepting a
new dose with the old quantity would dispense the wrong supply. When the product is a tablet or
capsule of a known strength (the product name, or the Medication's single ingredient), the new
dose is a whole number of them, the order has one dosage line, and the supply is known (from
``expectedSupplyDuration``, or the old quantity divided by the old tablets a day), the quantity is
recomputed: tablets a day at the new dose times the days, rounded up to whole tablets, and the
supply duration is kept. Otherwise both are removed and the reason is said, so the prescriber or
the pharmacy system recomputes them: split tablets (how a tablet is split decides the count) and
dosage schedules (a titration's later steps decide the total) are never guessed.
"""

from __future__ import annotations

import math
import re
from typing import Any

from engine.fhir.medications import MedOrder
from engine.fhir.values import as_list, concept_text, number, obj, unit_of
from schemas.api import StartDose

_SOLID = re.compile(r"\b(tablets?|tabs?|capsules?|caps?)\b", re.IGNORECASE)
_COUNT_UNITS = {"{tbl}", "{tablet}", "{tab}", "tab", "tabs", "tablet", "tablets"}
_COUNT_UNITS |= {"{capsule}", "{cap}", "cap", "caps", "capsule", "capsules"}
_DAYS = {"d": 1.0, "day": 1.0, "days": 1.0, "wk": 7.0, "week": 7.0, "weeks": 7.0}


def _supply_days(order: MedOrder, dispense: dict[str, Any], per_tablet_mg: float) -> tuple[float | None, str]:
    """Days the original dispense was for, and where that came from (or why it is unknown)."""
    duration = obj(dispense.get("expectedSupplyDuration"))
    if duration:
        days, unit = number(duration.get("value")), unit_of(duration)
        if days is not None and days > 0 and unit in _DAYS:
            return days * _DAYS[unit], "supply duration kept"
        return None, "the supply duration is not in days or weeks"
    quantity = obj(dispense.get("quantity"))
    count, unit = number(quantity.get("value")), unit_of(quantity)
    if count is None or count <= 0 or unit not in _COUNT_UNITS:
        return None, "the dispense quantity is not a count of tablets"
    if order.ordered is None:
        return None, "the written dose could not be read, so the supply it implies is unknown"
    old_per_day = order.ordered.dose_mg * order.ordered.times_per_day / per_tablet_mg
    return count / old_per_day, f"supply of {count / old_per_day:g} days implied by the old quantity and dose"


def recompute(order: MedOrder, start: StartDose, dispense: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """(new ``quantity``, words for the suggestion) or (None, why the quantity was removed)."""
    lines = [d for d in as_list(order.resource.get("dosageInstruction")) if isinstance(d, dict)]
    if len(lines) > 1:
        return None, f"the order has {len(lines)} dosage lines (a schedule), so the total depends on every step"
    strength = order.strength
    form = " ".join(filter(None, [order.label, concept_text(order.medication_form)]))
    if strength is None or strength.per_ml or not _SOLID.search(form):
        return None, "the product is not a tablet or capsule of a known strength"
    per_dose = start.dose_mg / strength.mg
    if abs(per_dose - round(per_dose)) > 1e-6 or round(per_dose) < 1:
        return None, f"{start.dose_mg:g} mg is not a whole number of {strength.mg:g} mg tablets (split tablets)"
    days, source = _supply_days(order, dispense, strength.mg)
    if days is None:
        return None, source
    count = math.ceil(round(per_dose) * start.times_per_day * days - 1e-9)
    old = obj(dispense.get("quantity"))
    quantity = {k: v for k, v in old.items() if k in ("unit", "system", "code")} if unit_of(old) in _COUNT_UNITS else {}
    quantity = {"value": count, **(quantity or {"unit": "tablet"})}
    was = f" (was {number(old.get('value')):g})" if number(old.get("value")) is not None else ""
    return quantity, f"dispense quantity recomputed for the new dose: {count} tablets for {days:g} days{was}; {source}"
