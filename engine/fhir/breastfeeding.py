"""Breastfeeding status from the Observation an EHR records, as the native ``breastfeeding`` field.

The lactation rules (baclofen.lactation and the other drugs') fire on the shared derived
``lactation``, which reads ``breastfeeding`` first and a current lactation on the problem list
only when it is not stated (rules/shared/derived.yaml). This module fills ``breastfeeding`` the way
``engine.fhir.observations.pregnancy_status`` fills ``pregnant``: the newest answer wins, an
unknown or unreadable answer leaves it unset, and nothing is assumed.

Codes, verified in published FHIR implementation guides:

- LOINC 63895-7 "Breastfeeding status": gematik ISiK profile ISiKStillstatus (code 63895-7, value
  bound to StillstatusVS) and the Charité medication-plan profile (github.com/BIH-CEI/medikationsplan,
  input/fsh/Observation-stillzeit.fsh, code 63895-7 with valueBoolean).
- Answers, ValueSet https://gematik.de/fhir/isik/ValueSet/StillstatusVS (expansion on LOINC 2.81):
  LA29252-6 "Currently breastfeeding", LA29253-4 "Not currently breastfeeding", LA4489-6 "Unknown".
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from engine.fhir.observations import CodedObservations, effective
from engine.fhir.values import codings, concept_text, text

BREASTFEEDING_STATUS_CODE = "63895-7"
_BREASTFEEDING = {"LA29252-6"}
_NOT_BREASTFEEDING = {"LA29253-4"}
_UNKNOWN = {"LA4489-6"}
_YES_WORDS = {"currently breastfeeding", "breastfeeding", "yes"}
_NO_WORDS = {"not currently breastfeeding", "not breastfeeding", "no"}
_FLOOR = dt.datetime.min.replace(tzinfo=dt.UTC)


def _answer(o: dict[str, Any]) -> tuple[bool | None, str, bool]:
    """(verdict, label, understood) for one Observation."""
    flag = o.get("valueBoolean")
    if isinstance(flag, bool):
        return flag, "currently breastfeeding" if flag else "not currently breastfeeding", True
    concept = o.get("valueCodeableConcept")
    found = {str(c.get("code")) for c in codings(concept)}
    label = (concept_text(concept) or text(o.get("valueString")) or "").strip().lower()
    if found & _BREASTFEEDING or label in _YES_WORDS:
        return True, label or "currently breastfeeding", True
    if found & _NOT_BREASTFEEDING or label in _NO_WORDS:
        return False, label or "not currently breastfeeding", True
    if found & _UNKNOWN or label == "unknown":
        return None, label or "unknown", True
    return None, label or ", ".join(sorted(found)), False


def breastfeeding_status(obs: CodedObservations) -> tuple[bool | None, str | None, list[str]]:
    """(verdict, evidence line, notes): the newest 63895-7 answer; verdict None when unknown or absent."""
    notes: list[str] = []
    best: tuple[dt.datetime, bool | None, str] | None = None
    for codes, o in obs.items:
        if BREASTFEEDING_STATUS_CODE not in codes:
            continue
        verdict, label, understood = _answer(o)
        if not understood:
            notes.append(f"breastfeeding status answer {label or 'missing'!r} not understood; skipped")
            continue
        at = effective(o)
        day = at.date().isoformat() if at else "undated"
        line = f"breastfeeding status {label} (LOINC {BREASTFEEDING_STATUS_CODE}, {day})"
        if best is None or (at or _FLOOR) >= best[0]:
            best = (at or _FLOOR, verdict, line)
    if best is None:
        return None, None, notes
    return best[1], best[2], notes
