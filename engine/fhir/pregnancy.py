"""Whether a pregnancy Condition on the problem list still means the patient is pregnant.

Problem lists keep pregnancies long after they end: Synthea charts carry decades-old "Tubal
pregnancy" Conditions still marked active, which made women of 58 and 76 "pregnant". A pregnancy
Condition counts only when its onset or recorded date is within the length of a pregnancy and the
patient is 55 or younger. An active one with no date at all, in a patient of 55 or younger (or of
unknown age), may be a current pregnancy: it is "possible", a warning to confirm pregnancy before
prescribing, while ``pregnant`` stays unset (neither assumed nor ruled out). Older patients and
pregnancies dated more than 42 weeks ago are left out and pregnancy status is "not checked", with
the entry named, never assumed either way.

- 42 weeks (294 days): ACOG Committee Opinion 579, "Definition of Term Pregnancy" (2013): post-term
  is 42 0/7 weeks and beyond, so a pregnancy recorded longer ago than that has ended.
- 55 years: the limit issue 17 sets for this check (pregnancy Conditions in women of 58 and 76);
  the average age at menopause is 51 (ACOG Practice Bulletin 141, Management of Menopausal
  Symptoms, 2014).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from engine.fhir.values import codings, concept_text, obj, when

PREGNANCY_MAX_DAYS = 294
MAX_AGE_YEARS = 55
_PREGNANT_CODES = {"77386006"}  # SNOMED CT |Pregnant (finding)|
_PREGNANCY_WORDS = re.compile(r"\bpregnan", re.IGNORECASE)
_NOT = re.compile(r"\b(not|no|history of|never)\b", re.IGNORECASE)

Assessment = Literal["pregnant", "possible", "not-current"]


def is_pregnancy_condition(c: dict[str, Any]) -> bool:
    code = c.get("code")
    if {str(x.get("code")) for x in codings(code)} & _PREGNANT_CODES:
        return True
    words = " ".join(filter(None, [concept_text(code), *(str(x.get("display") or "") for x in codings(code))]))
    return bool(_PREGNANCY_WORDS.search(words)) and not _NOT.search(words)


def dated(c: dict[str, Any]) -> dt.datetime | None:
    period = obj(c.get("onsetPeriod"))
    for candidate in (c.get("onsetDateTime"), period.get("start"), c.get("recordedDate"), c.get("assertedDate")):
        moment = when(candidate)
        if moment is not None:
            return moment
    return None


def still_pregnant(c: dict[str, Any], age_years: float | None, now: dt.datetime) -> tuple[Assessment, str]:
    """(pregnant, possible or not-current; why) for one active pregnancy Condition."""
    name = concept_text(c.get("code")) or "pregnancy"
    where = f"Condition/{c.get('id')}" if c.get("id") else "a Condition"
    if age_years is not None and age_years > MAX_AGE_YEARS:
        return "not-current", f"{where} {name!r} ignored: patient is {age_years:.0f}, over {MAX_AGE_YEARS}"
    at = dated(c)
    if at is None:
        return "possible", f"{where} {name!r} is active with no onset or recorded date"
    if (now - at).days > PREGNANCY_MAX_DAYS:
        return "not-current", f"{where} {name!r} ignored: dated {at.date().isoformat()}, over 42 weeks ago"
    return "pregnant", f"pregnant: {where} {name!r} dated {at.date().isoformat()}"
