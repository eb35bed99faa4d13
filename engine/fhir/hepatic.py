"""Hepatic function from what an EHR records: liver tests graded by the NCI Organ Dysfunction
Working Group criteria, so the native ``hepatic_impairment`` can be filled from FHIR.

NCI ODWG (Ramalingam SS et al., J Clin Oncol 2010;28(29):4507-4512; the grading the FDA guidance
"Pharmacokinetics in Patients with Impaired Hepatic Function" (2003) accepts beside Child-Pugh),
with ULN the upper limit of the laboratory's own reference range:

- normal: total bilirubin <= ULN and AST <= ULN
- mild: bilirubin <= ULN and AST > ULN, or bilirubin > 1.0-1.5 x ULN
- moderate: bilirubin > 1.5-3 x ULN
- severe: bilirubin > 3 x ULN

Only results that carry a reference range are graded (ULNs differ between laboratories; we do not
assume one). A liver disease on the problem list means the grade is never "none": it is left to the
rules over the conditions. Child-Pugh needs ascites and encephalopathy, which are clinical findings,
so no Child-Pugh class is computed here.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from engine.fhir.observations import CodedObservations, effective
from engine.fhir.values import as_list, codings, concept_text, number, obj

BILIRUBIN_TOTAL = "1975-2"  # LOINC Bilirubin.total [Mass/volume] in Serum or Plasma
AST = "1920-8"  # LOINC Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma
LIVER_TEST_CODES = (BILIRUBIN_TOTAL, AST)
_FLOOR = dt.datetime.min.replace(tzinfo=dt.UTC)
_LIVER_DISEASE = re.compile(r"cirrho|hepat|liver|portal hypertension|ascites|varices", re.IGNORECASE)


def _newest_with_range(obs: CodedObservations, code: str) -> tuple[float, float, dict[str, Any]] | None:
    best: tuple[float, float, dict[str, Any]] | None = None
    for codes, o in obs.items:
        if code not in codes:
            continue
        value = number(obj(o.get("valueQuantity")).get("value"))
        high = next((number(obj(obj(r).get("high")).get("value")) for r in as_list(o.get("referenceRange"))), None)
        if value is None or high is None or high <= 0:
            continue
        if best is None or (effective(o) or _FLOOR) > (effective(best[2]) or _FLOOR):
            best = (value, high, o)
    return best


def liver_disease_listed(conditions: list[dict[str, Any]]) -> str | None:
    for c in conditions:
        words = " ".join(
            filter(None, [concept_text(c.get("code")), *(str(x.get("display") or "") for x in codings(c.get("code")))])
        )
        if _LIVER_DISEASE.search(words):
            return words
    return None


def hepatic_grade(obs: CodedObservations, conditions: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    """(native hepatic_impairment, evidence line), or (None, None) when nothing grades it."""
    bili, ast = _newest_with_range(obs, BILIRUBIN_TOTAL), _newest_with_range(obs, AST)
    if bili is None or ast is None:
        return None, None
    b_ratio, ast_high = bili[0] / bili[1], ast[0] > ast[1]
    shown = f"bilirubin {bili[0]:g} (ULN {bili[1]:g}), AST {ast[0]:g} (ULN {ast[1]:g}); NCI ODWG"
    if b_ratio > 3:
        return "severe", f"hepatic impairment severe: {shown}"
    if b_ratio > 1.5:
        return "moderate", f"hepatic impairment moderate: {shown}"
    if b_ratio > 1.0 or ast_high:
        return "mild", f"hepatic impairment mild: {shown}"
    listed = liver_disease_listed(conditions)
    if listed:
        return None, f"liver tests normal ({shown}) but {listed!r} is on the problem list"
    return "none", f"no hepatic impairment documented: {shown}"
