"""Terminology: resolve what an EHR sends (RxNorm, SNOMED CT, ICD-10-CM, free text) to our ids.

Built and validated once with the rule pack (``engine.compiler.terminology_files`` loads it);
lookups at request time are dictionary hits plus a free-text scan cached by the text as sent, so a
medication list of product names costs microseconds. Nothing here reads files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from schemas.api import ICD10CM, SNOMED, CodeableConcept, DrugRef

_NON_WORD = re.compile(r"[^a-z0-9]+")
CACHED_TEXT_MAX = 256  # longer free text is resolved uncached, so odd input cannot fill the caches


def normalise_text(text: str) -> str:
    """Case- and punctuation-insensitive form used for every free-text match."""
    return _NON_WORD.sub(" ", text.lower()).strip()


def normalise_icd(code: str) -> str:
    return code.replace(".", "").upper().strip()


@dataclass(eq=False)  # identity hash: the lru_caches below key on the instance
class Terminology:
    ingredients: dict[str, str | None] = field(default_factory=dict)  # id -> rxcui
    by_rxcui: dict[str, frozenset[str]] = field(default_factory=dict)  # ingredient or product code
    by_name: dict[str, str] = field(default_factory=dict)  # normalised synonym -> ingredient id
    class_members: dict[str, frozenset[str]] = field(default_factory=dict)
    classes_of: dict[str, frozenset[str]] = field(default_factory=dict)  # ingredient -> classes
    class_titles: dict[str, str] = field(default_factory=dict)
    value_sets: dict[str, str] = field(default_factory=dict)  # id -> title
    vs_ancestors: dict[str, frozenset[str]] = field(default_factory=dict)  # id -> itself + broader
    snomed: dict[str, str] = field(default_factory=dict)
    icd_prefixes: list[tuple[str, str]] = field(default_factory=list)  # longest first
    vs_by_name: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    # ---- drugs -------------------------------------------------------------------------------
    def resolve_drug(self, ref: DrugRef) -> frozenset[str]:
        """Ingredient ids for a drug reference; empty when nothing is recognised."""
        if ref.rxcui and ref.rxcui in self.by_rxcui:
            return self.by_rxcui[ref.rxcui]
        if ref.name:
            return self.resolve_drug_name(ref.name)
        return frozenset()

    def resolve_drug_name(self, name: str) -> frozenset[str]:
        """Ingredient ids named in free text, as sent (normalised here)."""
        if len(name) > CACHED_TEXT_MAX:
            return self._scan_ingredients(normalise_text(name))
        return self._drug_name(name)

    @lru_cache(maxsize=8192)  # noqa: B019 - one Terminology per rule pack, lives as long as the pack
    def _drug_name(self, name: str) -> frozenset[str]:
        return self._scan_ingredients(normalise_text(name))

    def _scan_ingredients(self, text: str) -> frozenset[str]:
        if text in self.by_name:
            return frozenset({self.by_name[text]})
        padded = f" {text} "
        found = {ing for name, ing in self.by_name.items() if f" {name} " in padded}
        return frozenset(found)

    def classes_for(self, ingredients: Iterable[str]) -> frozenset[str]:
        out: set[str] = set()
        for ing in ingredients:
            out |= self.classes_of.get(ing, frozenset())
        return frozenset(out)

    # ---- conditions --------------------------------------------------------------------------
    def resolve_condition(self, cond: CodeableConcept | str) -> frozenset[str]:
        """Value-set ids (with broader sets) a condition belongs to; empty when unrecognised."""
        if isinstance(cond, str):
            return (
                self._condition_text(cond)
                if len(cond) <= CACHED_TEXT_MAX
                else self._with_ancestors(self._vs_in_text(cond))
            )
        hits: set[str] = set()
        for coding in cond.coding:
            if coding.system == SNOMED and coding.code in self.snomed:
                hits.add(self.snomed[coding.code])
            elif coding.system == ICD10CM:
                code = normalise_icd(coding.code)
                for prefix, vs in self.icd_prefixes:
                    if code.startswith(prefix):
                        hits.add(vs)
                        break
        if not hits and cond.text:
            hits |= self._vs_in_text(cond.text)
        if not hits:
            for coding in cond.coding:
                if coding.display:
                    hits |= self._vs_in_text(coding.display)
        return self._with_ancestors(hits)

    def _with_ancestors(self, hits: Iterable[str]) -> frozenset[str]:
        out: set[str] = set()
        for vs in hits:
            out |= self.vs_ancestors[vs]
        return frozenset(out)

    @lru_cache(maxsize=8192)  # noqa: B019
    def _condition_text(self, raw: str) -> frozenset[str]:
        return self._with_ancestors(self._vs_in_text(raw))

    def _vs_in_text(self, raw: str) -> frozenset[str]:
        text = normalise_text(raw)
        if text in self.vs_by_name:
            return frozenset({self.vs_by_name[text]})
        return frozenset()
