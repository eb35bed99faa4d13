"""Vocabularies shared by rule files, terminology and API responses.

Kept in one module so the rule compiler, the runtime and the API agree on every allowed word.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Category = Literal[
    "drug-interaction",
    "renal",
    "hepatic",
    "pregnancy",
    "lactation",
    "geriatric",
    "pediatric",
    "disease",
    "allergy",
    "duplicate-therapy",
    "dose-range",
    "withdrawal",
    "not-checked",
]
CATEGORIES: tuple[str, ...] = Category.__args__  # type: ignore[attr-defined]

Severity = Literal["info", "warning", "critical"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}

MonitoringCode = Literal[
    "sedation",
    "respiratory",
    "mental-status",
    "mood",
    "falls",
    "renal-function",
    "liver-function",
    "blood-pressure",
    "heart-rate",
    "cardiac-rhythm",
    "seizure-control",
    "serotonin-syndrome",
    "anticholinergic",
    "blood-count",
    "withdrawal",
    "misuse",
    "spasticity-response",
    "neonatal",
]
MONITORING_CODES: tuple[str, ...] = MonitoringCode.__args__  # type: ignore[attr-defined]

MissingDataCode = Literal[
    "age",
    "sex",
    "weight",
    "height",
    "renal-function",
    "hepatic-function",
    "pregnancy-status",
    "breastfeeding-status",
]
MISSING_DATA_CODES: tuple[str, ...] = MissingDataCode.__args__  # type: ignore[attr-defined]


class StrictModel(BaseModel):
    """Base for documents we author ourselves: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(StrictModel):
    """A citation: a label section, guideline table or paper. A rule needs at least one."""

    label: str = Field(min_length=3, description="Human-readable citation, e.g. 'Ozobax PI'.")
    section: str | None = Field(default=None, description="Label section or table, e.g. '2.1'.")
    url: str | None = Field(default=None, pattern=r"^https?://", description="Where a reader can check it.")
    note: str | None = Field(default=None, description="Disagreements with other sources, caveats.")

    @model_validator(mode="after")
    def _locatable(self) -> Source:
        if not self.section and not self.url:
            raise ValueError("a source needs a 'section' or a 'url' so a reviewer can find the text")
        return self
