"""The native HTTP contract: ``POST /v1/evaluate`` request and response.

Field names are part of the public contract (EHR integrators code against them); do not rename.
Plausibility limits live here so that every adapter (HTTP, CLI, CDS Hooks mapping) rejects the
same impossible values with the same message.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from schemas.common import Category, MissingDataCode, MonitoringCode, Severity

SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UMOL_PER_MG_DL_CREATININE = 88.42


def _not_bool(v: object) -> object:
    if isinstance(v, bool):
        raise ValueError("a number is required, not true/false")
    return v


class _In(BaseModel):
    # Booleans are strict (``strict=True`` on each: ``"yes"`` or ``1`` is not on dialysis) and a
    # boolean is never a number (``true`` is not one year old; ``_not_bool``); each is a 422 at
    # its pointer. Numeric strings ("67") are still read as numbers, as before.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Coding(_In):
    system: str = Field(min_length=1)
    code: str = Field(min_length=1)
    display: str | None = None


class CodeableConcept(_In):
    text: str | None = None
    coding: list[Coding] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_empty(self) -> CodeableConcept:
        if not self.text and not self.coding:
            raise ValueError("a condition needs 'text' or at least one 'coding'")
        return self


class OrderedDose(_In):
    """The dose a prescriber wrote (order-sign); checked against this patient's maximum."""

    dose_mg: float = Field(gt=0, le=10000)
    times_per_day: float = Field(gt=0, le=24)
    every_hours: float | None = Field(
        default=None,
        gt=0,
        le=168,
        description=(
            "The interval the order was written as (8 for every 8 hours), when it was; it must equal "
            "24 / times_per_day. Only changes how the frequency is worded on findings."
        ),
    )

    @field_validator("dose_mg", "times_per_day", "every_hours", mode="before")
    @classmethod
    def _numbers(cls, v: object) -> object:
        return _not_bool(v)

    @model_serializer(mode="wrap")
    def _without_absent_interval(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # an order written without an interval serialises as before (stored requests, cohorts, hashes)
        out: dict[str, Any] = handler(self)
        if out.get("every_hours") is None:
            out.pop("every_hours", None)
        return out

    @model_validator(mode="after")
    def _interval_matches(self) -> OrderedDose:
        if self.every_hours is not None and abs(self.times_per_day * self.every_hours - 24) > 0.01:
            raise ValueError(f"every_hours {self.every_hours:g} does not match times_per_day {self.times_per_day:g}")
        return self


class DrugRef(_In):
    name: str | None = Field(default=None, min_length=1)
    rxcui: str | None = Field(default=None, pattern=r"^[0-9]{1,9}$")
    ndc: str | None = Field(
        default=None,
        pattern=r"^[0-9]{4,5}-?[0-9]{3,4}-?[0-9]{1,2}$",
        description="National Drug Code (10 digits with dashes, or 11 digits), when the source sends one.",
    )
    dose: OrderedDose | None = Field(
        default=None,
        description=(
            "The active regimen of a co-medication, when known: a new order of the same drug is checked "
            "with this dose added to it (duplicate therapy)."
        ),
    )

    @model_validator(mode="after")
    def _identified(self) -> DrugRef:
        if not self.name and not self.rxcui and not self.ndc:
            raise ValueError("a drug needs 'name', 'rxcui' or 'ndc'")
        return self


class DrugOrder(DrugRef):
    route: str = Field(
        default="oral",
        min_length=1,
        max_length=64,
        description=(
            "Route of administration. The rules cover oral use; any other route (intrathecal, transdermal...) is "
            "answered with one 'not covered by these rules: route X' finding and no dose."
        ),
    )
    action: Literal["start", "stop"] = "start"
    ordered_dose: OrderedDose | None = None


class Patient(_In):
    age_years: float | None = Field(default=None, ge=0, le=125)
    birth_date: dt.date | None = None
    sex: Literal["female", "male", "other", "unknown"] | None = None
    weight_kg: float | None = Field(default=None, gt=0.3, le=400)
    height_cm: float | None = Field(default=None, ge=20, le=260)
    serum_creatinine_mg_dl: float | None = Field(default=None, ge=0.05, le=30)
    serum_creatinine_umol_l: float | None = Field(default=None, ge=4, le=2700)
    egfr_ml_min_1_73m2: float | None = Field(default=None, ge=0, le=250)
    on_dialysis: bool | None = Field(default=None, strict=True)
    hepatic_impairment: Literal["none", "mild", "moderate", "severe", "unknown"] = "unknown"
    pregnant: bool | None = Field(default=None, strict=True)
    breastfeeding: bool | None = Field(default=None, strict=True)
    conditions: list[CodeableConcept | str] = Field(default_factory=list, max_length=500)
    co_medications: list[DrugRef] = Field(default_factory=list, max_length=200)
    allergies: list[DrugRef] = Field(default_factory=list, max_length=200)

    @field_validator(
        "age_years",
        "weight_kg",
        "height_cm",
        "serum_creatinine_mg_dl",
        "serum_creatinine_umol_l",
        "egfr_ml_min_1_73m2",
        mode="before",
    )
    @classmethod
    def _numbers(cls, v: object) -> object:
        return _not_bool(v)

    @field_validator("serum_creatinine_mg_dl", mode="before")
    @classmethod
    def _creatinine_units(cls, v: object) -> object:
        if isinstance(v, int | float) and not isinstance(v, bool) and 30 < v <= 2700:
            raise ValueError(
                f"{v} mg/dL is not a plausible serum creatinine; it looks like µmol/L. "
                "Send it as serum_creatinine_umol_l, or divide by 88.42"
            )
        return v

    @field_validator("birth_date")
    @classmethod
    def _past(cls, v: dt.date | None) -> dt.date | None:
        if v is not None and v > dt.date.today():
            raise ValueError("birth_date is in the future")
        if v is not None and v < dt.date.today().replace(year=dt.date.today().year - 125):
            raise ValueError("birth_date is more than 125 years ago")
        return v

    @model_validator(mode="after")
    def _coherent(self) -> Patient:
        if self.serum_creatinine_mg_dl is not None and self.serum_creatinine_umol_l is not None:
            diff = abs(self.serum_creatinine_mg_dl * UMOL_PER_MG_DL_CREATININE - self.serum_creatinine_umol_l)
            if diff > 0.1 * self.serum_creatinine_umol_l:
                raise ValueError("serum_creatinine_mg_dl and serum_creatinine_umol_l disagree; send one")
        if (
            self.age_years is not None
            and self.birth_date is not None
            and abs(self.age_years - age_from_birth_date(self.birth_date)) > 1
        ):
            raise ValueError("age_years and birth_date disagree by more than a year; send one")
        if self.pregnant and self.sex == "male":
            raise ValueError("pregnant is true but sex is male")
        return self

    def resolved_age_years(self) -> float | None:
        if self.age_years is not None:
            return self.age_years
        if self.birth_date is not None:
            return age_from_birth_date(self.birth_date)
        return None

    def creatinine_mg_dl(self) -> float | None:
        if self.serum_creatinine_mg_dl is not None:
            return self.serum_creatinine_mg_dl
        if self.serum_creatinine_umol_l is not None:
            return round(self.serum_creatinine_umol_l / UMOL_PER_MG_DL_CREATININE, 3)
        return None


def age_from_birth_date(born: dt.date, today: dt.date | None = None) -> float:
    today = today or dt.date.today()
    return round((today - born).days / 365.2425, 2)


class EvaluateRequest(_In):
    patient: Patient
    drug: DrugOrder


# ---- response -------------------------------------------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RulesetRef(_Out):
    version: str
    digest: str


class DrugOut(_Out):
    name: str
    rxcui: str | None


class StartDose(_Out):
    dose_mg: float
    times_per_day: int
    total_daily_mg: float


class DoseSuggestion(_Out):
    start: StartDose
    titration: str | None
    max_daily_mg: float
    rule_ids: list[str]


class SourceOut(_Out):
    label: str
    url: str | None = None
    section: str | None = None


class Finding(_Out):
    rule_id: str
    category: Category
    severity: Severity
    summary: str
    detail: str
    sources: list[SourceOut]


class MonitoringPrompt(_Out):
    code: MonitoringCode
    prompt: str
    when: str
    rule_ids: list[str]


class Unrecognized(_Out):
    """An input item the engine could not use in full; ``status`` says how much was used."""

    field: str
    pointer: str
    value: str
    status: Literal["unrecognized", "partial", "not-used"] = "unrecognized"
    detail: str | None = Field(
        default=None,
        description="partial: what was read and what was not; not-used: why (e.g. 'negated: seizure').",
    )


class RenalAssessment(_Out):
    value_ml_min: float | None
    method: str
    band: str


class TraceEntry(_Out):
    rule_id: str
    version: str
    matched: dict[str, object]


class EvaluateResponse(_Out):
    decision_id: str
    ruleset: RulesetRef
    drug: DrugOut
    action: Literal["start", "stop"]
    contraindicated: bool
    dose: DoseSuggestion | None
    findings: list[Finding]
    monitoring: list[MonitoringPrompt]
    missing_data: list[MissingDataCode]
    unrecognized: list[Unrecognized]
    renal: RenalAssessment
    trace: list[TraceEntry]
