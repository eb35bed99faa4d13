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
    sources: list[SetSource] = Field(min_length=1)
    members: list[MemberGroup] = Field(default_factory=list)
