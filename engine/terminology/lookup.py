"""Terminology: resolve what an EHR or a person sends (RxNorm, NDC, SNOMED CT, ICD-10-CM, free text)
to our ingredient and value-set ids, and say when it could not.

Built and validated once with the rule pack (``engine.compiler.terminology_files`` fills it);
lookups at request time are dictionary hits plus a phrase scan cached by the text as sent. Nothing
here reads files. A match always says how complete it is: a product read as fewer ingredients than it
has, or a problem-list entry that was negated, is reported, never silently dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

from engine.terminology.drugs import NameReader
from engine.terminology.text import STOPWORDS, Abbreviations, PhraseIndex, singular, strip_tag, word_spans
from schemas.api import ICD10CM, SNOMED, CodeableConcept, DrugRef
from schemas.terminology import ValueSetFile

_NON_WORD = re.compile(r"[^a-z0-9]+")
CACHED_TEXT_MAX = 256  # longer free text is resolved uncached, so odd input cannot fill the caches
# ConText modifiers that mean "the patient does not (certainly) have it now" for any value set;
# "historical" only counts against sets marked current_only (pregnancy, lactation, recent MI).
_NOT_PRESENT = ("negated", "possible", "hypothetical", "family")


def normalise_text(text: str) -> str:
    """Case- and punctuation-insensitive form (the key synonyms were stored under before phrases)."""
    return _NON_WORD.sub(" ", text.lower()).strip()


def normalise_icd(code: str) -> str:
    return code.replace(".", "").upper().strip()


def normalise_ndc(code: str) -> str | None:
    """The 11-digit 5-4-2 form of an NDC written 4-4-2, 5-3-2, 5-4-1 or as 11 digits (FDA NDC
    Directory: the HIPAA 11-digit format pads the short segment with a leading zero)."""
    parts = code.strip().split("-")
    if len(parts) == 1:
        digits = parts[0]
        return digits if len(digits) == 11 and digits.isdigit() else None
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    a, b, c = parts
    return (
        a.zfill(5) + b.zfill(4) + c.zfill(2)
        if (len(a), len(b), len(c)) in {(4, 4, 2), (5, 3, 2), (5, 4, 1), (5, 4, 2)}
        else None
    )


class ContextModifiers(Protocol):
    """The negation/uncertainty guard (``engine.terminology.context.ContextGuard``)."""

    def modifiers(self, text: str, start: int, end: int) -> frozenset[str]: ...


@dataclass(frozen=True)
class DrugMatch:
    ingredients: frozenset[str]
    complete: bool  # False: something in the name or product was not placed (see leftover)
    leftover: str | None
    via: str  # rxcui | ndc | name | brand | name+brand | none


@dataclass(frozen=True)
class ConditionMatch:
    value_sets: frozenset[str]  # with every broader set
    excluded: str | None = None  # why text was not taken: "negated: no history of", "historical", ...
    via: str = "none"  # code | text | none


@dataclass(frozen=True)
class TerminologySource:
    """One source of a loaded terminology file, as /readyz and /v1/admin/rules show it."""

    kind: str  # value-set | rxnorm | brands | abbreviations | context-rules | ingredients | products
    file: str  # relative to the pack root
    label: str
    version: str | None

    def as_dict(self) -> dict[str, str | None]:
        return {"kind": self.kind, "file": self.file, "label": self.label, "version": self.version}


_NO_MATCH = ConditionMatch(frozenset())


@dataclass(eq=False)  # identity hash: the lru_caches below key on the instance
class Terminology:
    ingredients: dict[str, str | None] = field(default_factory=dict)  # id -> rxcui
    by_rxcui: dict[str, frozenset[str]] = field(default_factory=dict)  # ingredient or product code
    by_ndc: dict[str, frozenset[str]] = field(default_factory=dict)  # 11-digit NDC -> ingredients
    by_name: dict[str, str] = field(default_factory=dict)  # normalised synonym -> ingredient id
    names: NameReader = field(default_factory=NameReader)
    brands: dict[str, frozenset[str]] = field(default_factory=dict)  # brand as written -> ingredients
    class_members: dict[str, frozenset[str]] = field(default_factory=dict)
    classes_of: dict[str, frozenset[str]] = field(default_factory=dict)  # ingredient -> classes
    class_titles: dict[str, str] = field(default_factory=dict)
    value_sets: dict[str, str] = field(default_factory=dict)  # condition set id -> title
    vs_ancestors: dict[str, frozenset[str]] = field(default_factory=dict)  # id -> itself + broader
    snomed: dict[str, frozenset[str]] = field(default_factory=dict)
    icd_codes: dict[str, frozenset[str]] = field(default_factory=dict)  # exact, dots removed
    icd_prefixes: list[tuple[str, str]] = field(default_factory=list)  # longest first
    vs_by_name: dict[str, str] = field(default_factory=dict)  # a written name per set (synthetic data)
    condition_text: PhraseIndex = field(default_factory=PhraseIndex)
    condition_abbreviations: Abbreviations = field(default_factory=lambda: Abbreviations.of(()))
    text_excludes: dict[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)
    current_only: frozenset[str] = frozenset()
    context: ContextModifiers | None = None
    catalogue: dict[str, ValueSetFile] = field(default_factory=dict)
    provenance: list[TerminologySource] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    # ---- drugs -------------------------------------------------------------------------------
    def match_drug(self, ref: DrugRef) -> DrugMatch:
        """Ingredients of a drug reference, and whether all of it was recognised."""
        if ref.rxcui and ref.rxcui in self.by_rxcui:
            return DrugMatch(self.by_rxcui[ref.rxcui], True, None, "rxcui")
        if ref.ndc:
            key = normalise_ndc(ref.ndc)
            if key is not None and key in self.by_ndc:
                return DrugMatch(self.by_ndc[key], True, None, "ndc")
        if ref.name:
            return self.match_drug_name(ref.name)
        return DrugMatch(frozenset(), False, None, "none")

    def resolve_drug(self, ref: DrugRef) -> frozenset[str]:
        """Ingredient ids for a drug reference; empty when nothing is recognised."""
        return self.match_drug(ref).ingredients

    def match_drug_name(self, name: str) -> DrugMatch:
        if len(name) > CACHED_TEXT_MAX:
            return self._read_name(name)
        return self._drug_name(name)

    def resolve_drug_name(self, name: str) -> frozenset[str]:
        return self.match_drug_name(name).ingredients

    @lru_cache(maxsize=8192)  # noqa: B019 - one Terminology per rule pack, lives as long as the pack
    def _drug_name(self, name: str) -> DrugMatch:
        return self._read_name(name)

    def _read_name(self, name: str) -> DrugMatch:
        r = self.names.read(name)
        if not r.ingredients:
            return DrugMatch(frozenset(), False, r.leftover, "none")
        return DrugMatch(r.ingredients, r.leftover is None, r.leftover, r.via)

    def classes_for(self, ingredients: Iterable[str]) -> frozenset[str]:
        out: set[str] = set()
        for ing in ingredients:
            out |= self.classes_of.get(ing, frozenset())
        return frozenset(out)

    # ---- conditions --------------------------------------------------------------------------
    def match_condition(self, cond: CodeableConcept | str) -> ConditionMatch:
        """Value sets (with broader sets) a condition belongs to, or why its text was not taken."""
        if isinstance(cond, str):
            return self._text(cond) if len(cond) <= CACHED_TEXT_MAX else self._read_text(cond)
        hits: set[str] = set()
        for coding in cond.coding:
            if coding.system == SNOMED:
                hits |= self.snomed.get(coding.code, frozenset())
            elif coding.system == ICD10CM:
                hits |= self._icd(normalise_icd(coding.code))
        if hits:
            return ConditionMatch(self._with_ancestors(hits), None, "code")
        texts = [t for t in (cond.text, *(c.display for c in cond.coding)) if t]
        excluded: str | None = None
        for text in texts:
            m = self.match_condition(text)
            if m.value_sets:
                return m
            excluded = excluded or m.excluded
        return ConditionMatch(frozenset(), excluded, "none")

    def resolve_condition(self, cond: CodeableConcept | str) -> frozenset[str]:
        return self.match_condition(cond).value_sets

    def _icd(self, code: str) -> frozenset[str]:
        """Sets listing the code itself, and the set whose category prefix (longest) covers it."""
        found = self.icd_codes.get(code, frozenset())
        for prefix, vs in self.icd_prefixes:
            if code.startswith(prefix):
                return found | {vs}
        return found

    def _with_ancestors(self, hits: Iterable[str]) -> frozenset[str]:
        out: set[str] = set()
        for vs in hits:
            out |= self.vs_ancestors.get(vs, frozenset({vs}))
        return frozenset(out)

    @lru_cache(maxsize=8192)  # noqa: B019
    def _text(self, raw: str) -> ConditionMatch:
        return self._read_text(raw)

    def _read_text(self, raw: str) -> ConditionMatch:
        lowered = strip_tag(raw.lower())
        spans = word_spans(lowered)
        written, origin = self.condition_abbreviations.expand_traced(tuple(w for w, _, _ in spans))
        toks = [singular(w) for w in written]
        keep = [i for i, w in enumerate(toks) if w not in STOPWORDS]
        found = self.condition_text.find(tuple(toks[i] for i in keep))
        if not found:
            return _NO_MATCH
        sets: set[str] = set()
        excluded: str | None = None
        for hit in found:
            first, last = origin[keep[hit.start]][0], origin[keep[hit.end - 1]][1]
            mods = self._modifiers(lowered, spans[first][1], spans[last][2])
            why = next((m for m in _NOT_PRESENT if m in mods), None)
            if why is None and "historical" in mods and hit.value in self.current_only:
                why = "historical"
            if why is None and self._excluded_by_text(hit.value, tuple(toks[i] for i in keep)):
                why = "excluded wording"
            if why is not None:
                excluded = excluded or f"{why}: {' '.join(hit.phrase)}"
                continue
            sets.add(hit.value)
        if not sets:
            return ConditionMatch(frozenset(), excluded, "none")
        return ConditionMatch(self._with_ancestors(sets), None, "text")

    def _modifiers(self, text: str, start: int, end: int) -> frozenset[str]:
        return self.context.modifiers(text, start, end) if self.context is not None else frozenset()

    def _excluded_by_text(self, vs: str, words: tuple[str, ...]) -> bool:
        for phrase in self.text_excludes.get(vs, ()):
            n = len(phrase)
            if any(words[i : i + n] == phrase for i in range(len(words) - n + 1)):
                return True
        return False


def invert(mapping: Mapping[str, Iterable[str]]) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for key, values in mapping.items():
        for v in values:
            out.setdefault(v, set()).add(key)
    return {k: frozenset(v) for k, v in out.items()}
