"""Pediatric daily maxima from the clinical reference, kept outside the rules on purpose.

The dose invariant must not take its limits from the rules it is checking, or a mistyped cap in a
rule file would be checked against itself. Only caps the team's clinical reference
(/work/shared/clinical-reference.md) states as a number are listed; "not established" statements
give no number and are not invented here. Adult limits come from each drug's
``profile.labelled_max_daily_mg``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PediatricCap:
    drug: str
    age_from: float  # inclusive, years
    age_below: float  # exclusive, years
    max_daily_mg: float
    max_mg_per_kg_day: float | None
    source: str


PEDIATRIC_CAPS: tuple[PediatricCap, ...] = (
    PediatricCap(
        "baclofen",
        2,
        8,
        40,
        2,
        "clinical reference §1 Pediatric and §12.3 (Texas DUR 2-7 y up to 40 mg/day; "
        "UpToDate/Lexicomp 2 to <8 y max 2 mg/kg/day or 40 mg/day; UK SmPC 40 mg/day under 8 y)",
    ),
    PediatricCap(
        "baclofen",
        8,
        12,
        60,
        None,
        "clinical reference §1 Pediatric and §12.3 (Texas DUR 8-11 y up to 60 mg/day; UK SmPC 60 mg/day from 8 y)",
    ),
    PediatricCap(
        "dantrolene",
        0,
        18,
        400,
        12,
        "clinical reference §8 and §12.8 (US label max 100 mg four times daily; PedMed 12 mg/kg/day or "
        "400 mg/day, whichever is lower)",
    ),
)


def caps_for(drug: str, age: float | None) -> list[PediatricCap]:
    if age is None:
        return []
    return [c for c in PEDIATRIC_CAPS if c.drug == drug and c.age_from <= age < c.age_below]
