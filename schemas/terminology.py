"""Terminology files under ``rules/terminology/``: ingredients, drug classes, products, value sets.

Terminology is data, like rules: EHRs send RxNorm product codes, SNOMED CT or ICD-10-CM codes and
free text, and these files are what the compiler resolves them against.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.common import Source, StrictModel

Identifier = str  # lowercase words joined by '-', e.g. 'cyp1a2-inhibitor-strong'
ID_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
CodeStatus = Literal["verified", "corroborated", "unverified"]


class Ingredient(StrictModel):
    id: str = Field(pattern=ID_PATTERN, description="Canonical lowercase ingredient name.")
    rxcui: str | None = Field(default=None, pattern=r"^[0-9]+$", description="RxNorm ingredient (IN) code.")
    rxcui_status: CodeStatus | None = None
    synonyms: list[str] = Field(default_factory=list, description="Other names, brand names, salts.")


class IngredientsFile(StrictModel):
    kind: Literal["ingredients"]
    sources: list[Source] = Field(min_length=1)
    ingredients: list[Ingredient]


class DrugClass(StrictModel):
    id: str = Field(pattern=ID_PATTERN)
    title: str
    members: list[str] = Field(default_factory=list, description="Ingredient ids.")
    include_classes: list[str] = Field(default_factory=list, description="Classes whose members belong here.")
    sources: list[Source] = Field(min_length=1)


class DrugClassesFile(StrictModel):
    kind: Literal["drug-classes"]
    classes: list[DrugClass]


class Product(StrictModel):
    rxcui: str = Field(pattern=r"^[0-9]+$")
    name: str
    tty: Literal["SCD", "SBD", "GPCK", "BPCK", "SCDC", "SBDC", "SCDF", "SBDF", "BN", "MIN", "PIN"]
    ingredients: list[str] = Field(min_length=1, description="Ingredient ids.")
    status: CodeStatus = "unverified"


class ProductsFile(StrictModel):
    kind: Literal["products"]
    sources: list[Source] = Field(min_length=1)
    products: list[Product]


class ValueSet(StrictModel):
    id: str = Field(pattern=ID_PATTERN)
    title: str
    snomed: list[str] = Field(default_factory=list, description="SNOMED CT concept ids, matched exactly.")
    icd10cm_prefixes: list[str] = Field(
        default_factory=list,
        description="ICD-10-CM codes matched by prefix (dot optional): 'G40' matches G40.909.",
    )
    synonyms: list[str] = Field(default_factory=list, description="Plain-text names; case/punctuation-insensitive.")
    include_value_sets: list[str] = Field(default_factory=list, description="Narrower value sets that count here.")
    sources: list[Source] = Field(min_length=1)


class ValueSetsFile(StrictModel):
    kind: Literal["value-sets"]
    value_sets: list[ValueSet]


# ---- value sets with members (one file per set, under terminology/value-sets/) -----------------

CodeSystemName = Literal["rxnorm", "snomed", "icd10cm", "ndc"]
SYSTEM_URIS: dict[str, str] = {
    "rxnorm": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "snomed": "http://snomed.info/sct",
    "icd10cm": "http://hl7.org/fhir/sid/icd-10-cm",
    "ndc": "http://hl7.org/fhir/sid/ndc",
}
OID_PATTERN = r"^[0-2](\.[0-9]+)+$"


class SetSource(StrictModel):
    """Where a group of members comes from: a published expansion (VSAC OID / canonical URL and the
    expansion's version), or the label or guideline that names the ingredients."""

    id: str = Field(pattern=ID_PATTERN, description="Key that member groups refer to.")
    label: str = Field(min_length=3)
    url: str | None = Field(default=None, pattern=r"^(https?|urn):", description="Canonical URL or page.")
    oid: str | None = Field(default=None, pattern=OID_PATTERN, description="VSAC OID, when the set has one.")
    version: str | None = Field(default=None, description="Expansion version or timestamp, as published.")
    section: str | None = None
    note: str | None = None


class MemberGroup(StrictModel):
    """Codes of one system, as one source lists them: ``[code, display]`` pairs."""

    source: str = Field(pattern=ID_PATTERN, description="A SetSource id of this value set.")
    system: CodeSystemName
    codes: list[tuple[str, str]] = Field(min_length=1)


class ValueSetFile(StrictModel):
    kind: Literal["value-set"]
    id: str = Field(pattern=ID_PATTERN, description="The id rule files use (a drug class or condition set).")
    title: str
    domain: Literal["medication", "condition"]
    ingredients: list[str] = Field(
        default_factory=list, description="medication sets: ingredient ids that make a product a member."
    )
    include: list[str] = Field(default_factory=list, description="Narrower value sets of the same domain.")
    icd10cm_prefixes: list[str] = Field(default_factory=list, description="ICD-10-CM categories matched by prefix.")
    text: list[str] = Field(default_factory=list, description="Free-text names a person would write.")
    text_excludes: list[str] = Field(
        default_factory=list,
        description="Phrases that stop a free-text match (e.g. 'immune' for hepatitis B serology findings).",
    )
    current_only: bool = Field(
        default=False,
        description="A past episode does not count ('history of pregnancy', 'old MI'): text qualified as "
        "historical is not matched.",
    )
    sources: list[SetSource] = Field(min_length=1)
    members: list[MemberGroup] = Field(default_factory=list)


# ---- free-text helpers: abbreviations, brand names, the negation/uncertainty lexicon ------------


class Abbreviation(StrictModel):
    short: str = Field(min_length=1, description="As written, e.g. 'HCV', 'afib', 'CKD 3b'.")
    expansions: list[str] = Field(min_length=1, description="Long forms, most likely first.")
    domain: Literal["medication", "condition", "any"] = "condition"
    source: str = Field(pattern=ID_PATTERN, description="A source id of this file.")


class AbbreviationsFile(StrictModel):
    kind: Literal["abbreviations"]
    sources: list[SetSource] = Field(min_length=1)
    abbreviations: list[Abbreviation]


class Brand(StrictModel):
    name: str = Field(min_length=2, description="Brand name as printed, e.g. 'Percocet', 'Tylenol #3'.")
    ingredients: list[str] = Field(min_length=1, description="Ingredient ids: every active ingredient.")
    rxcui: str | None = Field(default=None, pattern=r"^[0-9]+$", description="RxNorm BN code, when known.")
    source: str = Field(pattern=ID_PATTERN, description="A source id of this file.")


class BrandsFile(StrictModel):
    kind: Literal["brands"]
    sources: list[SetSource] = Field(min_length=1)
    brands: list[Brand]


ContextCategory = Literal["negated", "possible", "historical", "hypothetical", "family", "pseudo", "terminate"]


class ContextTrigger(StrictModel):
    literal: str = Field(min_length=1, description="Trigger phrase, lowercase.")
    category: ContextCategory
    direction: Literal["forward", "backward", "bidirectional", "terminate", "pseudo"]
    source: str = Field(pattern=ID_PATTERN)


class ContextRulesFile(StrictModel):
    """ConText-style triggers (Harkema et al. 2009): a trigger modifies the concepts in its scope."""

    kind: Literal["context-rules"]
    sources: list[SetSource] = Field(min_length=1)
    triggers: list[ContextTrigger]


# ---- a deployer's RxNorm release, written by ``cdsrules terminology import rxnorm`` -------------


class RxProduct(StrictModel):
    rxcui: str = Field(pattern=r"^[0-9]+$")
    name: str
    tty: str = Field(description="RxNorm term type (SCD, SBD, GPCK, BPCK, ...).")
    ingredients: list[str] = Field(min_length=1, description="Ingredient RxCUIs (IN).")
    ndc: list[str] = Field(default_factory=list, description="11-digit NDCs of this product.")


class RxIngredient(StrictModel):
    rxcui: str = Field(pattern=r"^[0-9]+$")
    name: str


class RxNormFile(StrictModel):
    kind: Literal["rxnorm"]
    release: str = Field(description="RxNorm release, e.g. '2026-11-03' (from the RRF file set).")
    sources: list[SetSource] = Field(min_length=1)
    ingredients: list[RxIngredient]
    products: list[RxProduct]
