"""The rule-file format: what a pharmacist writes under ``rules/<drug>/*.yaml``.

A rule file is data. Its JSON Schema (``schemas/rule-file.schema.json``) is generated from these
models so editors can validate as authors type; ``when:`` items and monitoring names are filled in
from the condition language table and the pack's shared files (``engine.schema_export``). The
compiler applies the same models and then the checks a schema cannot express (known terminology
ids, contradictions, fan-out limits).
"""

from __future__ import annotations

from collections.abc import Mapping
from difflib import get_close_matches
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from schemas.common import Category, MissingDataCode, MonitoringCode, Severity, Source, StrictModel

RULE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)+$"
SEMVER_PATTERN = r"^[0-9]+\.[0-9]+\.[0-9]+$"
NAME_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
MONITORING_CONTEXT = "monitoring"  # validation context key: the library, name -> MonitorAction
UNKNOWN_MONITORING = "unknown_monitoring_item"  # pydantic error type; the compiler reports it as E306

Condition = dict[str, Any]
"""One test, written as a single-key mapping ``{field: test}``; see docs/rule-language.md.

Kept open here: which fields and operators exist is the language table
(``engine.compiler.language``), which parses conditions and generates their JSON Schema.

Forms: ``{age_years: {gte: 65}}``, ``{renal_band: moderate}``, ``{renal_band: [severe, dialysis]}``,
``{comed_classes: {includes: opioid}}``, ``{conditions: {includes_any: [stroke, seizure-disorder]}}``,
``{comed_class_count: {class: cns-active, gte: 2}}``, ``{any_of: [cond, cond, ...]}``.
"""


class Regimen(StrictModel):
    """A fixed starting regimen."""

    dose_mg: float = Field(gt=0, description="Amount per dose.")
    times_per_day: int = Field(ge=1, le=8)


class WeightBasedStart(StrictModel):
    """A weight-based start: the engine multiplies by the patient's weight and rounds down."""

    mg_per_kg_day: float = Field(gt=0)
    times_per_day: int = Field(ge=1, le=8)
    max_dose_mg: float | None = Field(default=None, gt=0, description="Cap on each dose.")
    round_down_to_mg: float = Field(default=0.5, gt=0, description="Dose step; always rounds down.")


class DoseAction(StrictModel):
    """A dose statement. When several rules speak, the most restrictive value of each part wins."""

    start: Regimen | None = None
    weight_based_start: WeightBasedStart | None = None
    max_daily_mg: float | None = Field(default=None, gt=0)
    max_mg_per_kg_day: float | None = Field(default=None, gt=0)
    titration: str | None = None
    withhold: bool = Field(
        default=False, description="No safe start can be computed (say why in a finding and missing_data)."
    )

    @model_validator(mode="after")
    def _one_start(self) -> DoseAction:
        if self.start and self.weight_based_start:
            raise ValueError("give either 'start' or 'weight_based_start', not both")
        if not (
            self.start
            or self.weight_based_start
            or self.max_daily_mg
            or self.max_mg_per_kg_day
            or self.titration
            or self.withhold
        ):
            raise ValueError("a dose action must say something: start, max_daily_mg, titration or withhold")
        return self


class FindingAction(StrictModel):
    category: Category
    severity: Severity
    summary: str = Field(min_length=5, max_length=139)
    detail: str = Field(min_length=5)


class MonitorAction(StrictModel):
    code: MonitoringCode
    prompt: str = Field(min_length=5)
    when: str = Field(min_length=2, description="When to check, e.g. 'at each dose increase'.")


MonitorName = Annotated[str, Field(pattern=NAME_PATTERN, description="A prompt of rules/shared/monitoring.yaml.")]


class MonitorUse(StrictModel):
    """A prompt of the monitoring library with some of its parts replaced for this rule."""

    use: MonitorName
    prompt: str | None = Field(default=None, min_length=5)
    when: str | None = Field(default=None, min_length=2)


class MonitoringLibrary(StrictModel):
    """rules/shared/monitoring.yaml: prompts that several rules give, each written once."""

    sources: list[Source] = Field(
        min_length=1, description="Where the prompts' wording comes from (each using rule cites its own as well)."
    )
    monitoring: dict[MonitorName, MonitorAction] = Field(min_length=1)


def _resolve_monitor(item: Any, info: ValidationInfo) -> Any:
    """A library name, or ``{use: name, ...}``, becomes the library's item with the rule's replacements.

    The library comes in the validation context, so a compiled rule holds complete items and the
    answer is exactly what it would be had the rule written the item out.
    """
    if isinstance(item, str):
        name, replaced = item, {}
    elif isinstance(item, dict) and "use" in item:
        name, replaced = item["use"], {k: v for k, v in item.items() if k != "use"}
    else:
        return item
    library: Mapping[str, MonitorAction] = (info.context or {}).get(MONITORING_CONTEXT, {})
    base = library.get(name) if isinstance(name, str) else None
    if base is None:
        close = get_close_matches(str(name), list(library), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        message = f"no prompt {name!r} in rules/shared/monitoring.yaml{hint}"
        raise PydanticCustomError(UNKNOWN_MONITORING, "{message}", {"message": message})
    fixed = sorted(set(replaced) - set(MonitorUse.model_fields) - {"use"})
    if fixed:
        message = f"{', '.join(fixed)}: a rule may replace a library prompt's prompt or when only"
        raise PydanticCustomError("monitoring_item_fixed", "{message}", {"message": message})
    return base.model_dump() | replaced


MonitorItem = Annotated[
    MonitorAction, BeforeValidator(_resolve_monitor, json_schema_input_type=MonitorName | MonitorUse | MonitorAction)
]


class Then(StrictModel):
    dose: DoseAction | None = None
    finding: FindingAction | None = None
    monitor: list[MonitorItem] = Field(
        default_factory=list, description="Prompts: a library name (`sedation`), {use: name, when: ...}, or in full."
    )
    contraindicated: bool = Field(default=False, description="Only for a labelled contraindication.")
    missing_data: list[MissingDataCode] = Field(default_factory=list)
    derive: dict[str, str] | None = Field(
        default=None, description="Derivation rules only: assert derived facts, e.g. {renal_band: moderate}."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Then:
        if self.contraindicated and (self.finding is None or self.finding.severity != "critical"):
            raise ValueError("a contraindication needs a finding with severity 'critical'")
        if self.derive is not None and (self.dose or self.finding or self.monitor or self.contraindicated):
            raise ValueError("a derivation rule only derives facts; put advice in a separate rule")
        if not (self.dose or self.finding or self.monitor or self.missing_data or self.derive):
            raise ValueError("'then' is empty: a rule must derive a fact or give advice")
        return self


class Rule(StrictModel):
    id: str = Field(pattern=RULE_ID_PATTERN, description="Globally unique, e.g. 'baclofen.renal.moderate'.")
    title: str = Field(min_length=5)
    version: str = Field(pattern=SEMVER_PATTERN)
    sources: list[Source] = Field(min_length=1)
    applies_to: Literal["start", "stop", "any"] = Field(
        default="start", description="Which order action the rule speaks to."
    )
    when: list[Condition] = Field(default_factory=list, description="All must hold; empty means always.")
    then: Then
    notes: str | None = Field(default=None, description="Where sources disagree and which one we follow.")


class DerivedFact(StrictModel):
    title: str
    values: list[str] = Field(min_length=2)


class DrugProfile(StrictModel):
    """Drug-level facts the compiler and the safety invariants need (one per drug folder)."""

    ingredient: str = Field(description="Ingredient id from rules/terminology/ingredients.yaml.")
    title: str
    routes: list[Literal["oral"]] = Field(min_length=1)
    labelled_max_daily_mg: float = Field(gt=0)
    renally_cleared: bool
    sources: list[Source] = Field(min_length=1)


class ExpectedFinding(StrictModel):
    category: Category
    severity: Severity | None = None
    rule_id: str | None = None


class ExpectedDose(StrictModel):
    start_total_daily_mg: float | None = None
    start_total_daily_mg_at_most: float | None = None
    start_total_daily_mg_at_least: float | None = None
    max_daily_mg: float | None = None
    max_daily_mg_at_most: float | None = None


class Expectation(StrictModel):
    fires: list[str] = Field(default_factory=list)
    not_fires: list[str] = Field(default_factory=list)
    contraindicated: bool | None = None
    dose: ExpectedDose | Literal["none"] | None = None
    findings: list[ExpectedFinding] = Field(default_factory=list)
    no_findings: list[Category] = Field(default_factory=list)
    monitoring: list[MonitoringCode] = Field(default_factory=list)
    missing_data: list[MissingDataCode] = Field(default_factory=list)


class Example(StrictModel):
    name: str = Field(min_length=3)
    patient: dict[str, Any] = Field(description="A patient profile as in POST /v1/evaluate.")
    action: Literal["start", "stop"] = "start"
    drug: str | None = Field(default=None, description="Ordered drug; defaults to the file's drug.")
    expect: Expectation


class RuleFile(StrictModel):
    """One YAML file under rules/. ``drug: '*'`` marks shared rules compiled into every drug's ruleset."""

    drug: str = Field(description="Ingredient id of the ordered drug these rules speak to, or '*'.")
    profile: DrugProfile | None = None
    derived: dict[str, DerivedFact] = Field(default_factory=dict, description="Shared files only.")
    rules: list[Rule] = Field(default_factory=list)
    examples: list[Example] = Field(default_factory=list)
