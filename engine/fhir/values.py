"""Tolerant readers for FHIR JSON primitives: codings, statuses, dates, numbers, quantities.

Real FHIR payloads are imperfect: a list where one object was expected (or the reverse), STU3
plain-string statuses where R4 has a CodeableConcept, partial dates, numbers sent as strings. Every
reader here takes ``Any`` and returns a typed value or ``None``; none of them raises, so one odd
field never sinks a whole patient record.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"


def as_list(value: Any) -> list[Any]:
    """``value`` as a list: ``None`` is empty, a single object becomes a one-item list."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty dict (first item of a list is taken)."""
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, dict)), None)
    return value if isinstance(value, dict) else {}


def text(value: Any) -> str | None:
    """A non-empty stripped string, or ``None``."""
    if isinstance(value, str):
        return value.strip() or None  # one strip, not two: called ~80 times per CDS Hooks call
    return None


def codings(concept: Any) -> list[dict[str, Any]]:
    """The codings of a CodeableConcept (or of a list of them, or of a bare Coding)."""
    out: list[dict[str, Any]] = []
    for cc in as_list(concept):
        if not isinstance(cc, dict):
            continue
        if "code" in cc and "coding" not in cc:  # a bare Coding where a CodeableConcept belongs
            out.append(cc)
        out.extend(c for c in as_list(cc.get("coding")) if isinstance(c, dict))
    return out


def concept_text(concept: Any) -> str | None:
    """``text`` of a CodeableConcept, else the first coding's display."""
    for cc in as_list(concept):
        if isinstance(cc, dict) and text(cc.get("text")):
            return text(cc.get("text"))
    for c in codings(concept):
        if text(c.get("display")):
            return text(c.get("display"))
    return None


def system_is(coding: dict[str, Any], system: str) -> bool:
    """Same code system, forgiving trailing slashes, http/https and case (``http://loinc.org/``)."""
    got = text(coding.get("system"))
    if got is None:
        return False
    norm = got.lower().rstrip("/").replace("https://", "http://")
    return norm == system.lower().rstrip("/")


def codes_in(concept: Any, system: str) -> list[str]:
    """Codes of ``system`` in a concept, in order."""
    return [str(c["code"]).strip() for c in codings(concept) if system_is(c, system) and text(str(c.get("code", "")))]


def status(value: Any) -> str | None:
    """A status as a lower-case code: R4 CodeableConcept, STU3 plain string, or a bare Coding."""
    if isinstance(value, str):
        return value.strip().lower() or None
    for c in codings(value):
        code = text(c.get("code"))
        if code:
            return code.lower()
    return None


def number(value: Any) -> float | None:
    """A finite number; numeric strings are accepted, booleans are not."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        f = float(value)
    elif isinstance(value, str):
        try:
            f = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return f if f == f and f not in (float("inf"), float("-inf")) else None


_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?$")


def when(value: Any) -> dt.datetime | None:
    """An aware UTC datetime from a FHIR date, dateTime or instant (partial dates start the period)."""
    s = text(value)
    if s is None:
        return None
    m = _PARTIAL.match(s)
    try:
        if m:
            year, month, day = int(m.group(1)), int(m.group(2) or 1), int(m.group(3) or 1)
            return dt.datetime(year, month, day, tzinfo=dt.UTC)
        parsed = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def date(value: Any) -> dt.date | None:
    """A calendar date from a FHIR date (``1974``, ``1974-12`` and ``1974-12-25`` all accepted)."""
    moment = when(value)
    return moment.date() if moment else None


def unit_of(quantity: dict[str, Any]) -> str:
    """A normalised unit string from a Quantity, lower case.

    The ``code`` is a UCUM code only when ``system`` is UCUM (or absent, as many senders omit it);
    a unit coded in another system (SNOMED CT 258814008 for µmol/L) falls back to the ``unit``
    text, which says the same thing in words a person wrote.
    """
    system = text(quantity.get("system"))
    keys = ("code", "unit") if system in (None, UCUM) else ("unit",)
    for key in keys:
        u = text(quantity.get(key))
        if u:
            return u.replace("µ", "u").replace("μ", "u").replace(" ", "").lower()
    return ""
