"""Read a medication name or an RxNorm display into its ingredients, and say what was left over.

The same reader serves three inputs: a co-medication typed by a person ("oxycodone/APAP 5/325",
"Tylenol #3"), an EHR display ("oxycodone hydrochloride 5 MG / acetaminophen 325 MG Oral Tablet
[Percocet]"), and, at compile time, every RxNorm member of a value set, so that a product code sent
without its name maps to all of its ingredients. What the reader cannot place is kept as
``leftover``: a name with a word that is neither an ingredient, a brand, a salt nor a dose form is
only partly recognised, and the engine says so instead of reading "Tylenol #3" as acetaminophen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.terminology.text import STOPWORDS, Abbreviations, PhraseIndex, content, singular, tokens, words

# Words of an RxNorm clinical drug name that are not ingredients: dose forms and their qualifiers
# (RxNorm Technical Documentation, section 3, "Dose Forms" / RXNDOSEFORM list), strength units
# (UCUM as RxNorm writes them), salt and ester words (USP Salt Policy, the names RxNorm strips to
# form the precise ingredient), and the sig words a medication list carries. A general-purpose list
# is not published in a machine-readable form we could cite instead; this one is kept short and
# only ever widens what counts as "fully read", never what an ingredient is.
_WORDS = """
    oral tablet tablets tab tabs capsule capsules cap caps solution suspension syrup elixir liquid
    concentrate drop drops powder granule granules packet pellet lozenge troche gum film strip
    extended release delayed immediate modified controlled sustained er xr sr cr xl la dr ir ec odt
    disintegrating dispersible chewable coated enteric effervescent sublingual buccal injection
    injectable intravenous intramuscular subcutaneous intrathecal infusion prefilled syringe pen
    injector auto cartridge vial ampule ampoule kit pack day days transdermal patch system topical
    cream ointment gel lotion foam spray nasal inhalation inhaler inhalant metered dose actuation
    aerosol nebulizer ophthalmic otic rectal suppository enema vaginal ring implant shampoo mg mcg
    ug g gm ml l meq unt unit units hr hour hours mmol iu percent hydrochloride hcl dihydrochloride
    hydrobromide bitartrate tartrate maleate succinate citrate phosphate sulfate sodium potassium
    calcium magnesium besylate mesylate fumarate acetate bromide chloride napsylate pamoate lactate
    gluconate monohydrate dihydrate trihydrate hemihydrate anhydrous base xinafoate propionate
    dipropionate valerate hyclate decanoate enanthate palmitate hemifumarate tosylate oxalate
    nitrate inert ingredient ingredients po prn bid tid qid qd qhs hs daily nightly bedtime needed
    every once twice take by mouth times as at per x q generic brand plus
    abuse deterrent actuat matrix delivery sample arginine stearate tannate
"""
NOT_DRUG_WORDS = frozenset(_WORDS.split())


_BRACKETED = re.compile(r"\[([^\]]*)\]")


@dataclass(frozen=True)
class Reading:
    ingredients: frozenset[str]
    leftover: str | None  # words that were not placed, as written (normalised); None when fully read
    via: str  # "name", "brand", or "name+brand"


class NameReader:
    """Ingredient and brand names as one phrase index (longest phrase wins, so the brand "Tylenol 3"
    beats the ingredient synonym "Tylenol")."""

    def __init__(self, abbreviations: Abbreviations | None = None) -> None:
        self.index = PhraseIndex()
        self.brand_ingredients: dict[str, frozenset[str]] = {}
        self.abbreviations = abbreviations or Abbreviations.of(())

    def add_ingredient_name(self, name: str, ingredient: str) -> tuple[str, ...]:
        return self.index.add(name, "i:" + ingredient)

    def add_brand(self, name: str, ingredients: frozenset[str]) -> tuple[str, ...]:
        key = " ".join(content(tokens(name)))
        self.brand_ingredients[key] = self.brand_ingredients.get(key, frozenset()) | ingredients
        return self.index.add(name, "b:" + key)

    def read(self, text: str) -> Reading:
        # RxNorm branded names end in "[Brand]" (and packs in "[Brand Pack Name]"): the brand adds
        # ingredients when we know it, but an unknown brand there is not an unread ingredient,
        # since the name before the bracket already lists every ingredient.
        main = _BRACKETED.sub(" ", text)
        found, kinds, rest = self._read(main)
        if main != text:
            extra, extra_kinds, _ = self._read(" ".join(_BRACKETED.findall(text)))
            found |= extra
            kinds |= extra_kinds
        via = "+".join(sorted(kinds)) if kinds else "name"
        return Reading(frozenset(found), " ".join(rest) or None, via)

    def _read(self, text: str) -> tuple[set[str], set[str], list[str]]:
        toks = content(tuple(singular(w) for w in self.abbreviations.expand(words(text))))
        hits = self.index.find(toks)
        found: set[str] = set()
        kinds: set[str] = set()
        covered = [False] * len(toks)
        for hit in hits:
            kind, _, value = hit.value.partition(":")
            if kind == "i":
                found.add(value)
                kinds.add("name")
            else:
                found |= self.brand_ingredients[value]
                kinds.add("brand")
            for k in range(hit.start, hit.end):
                covered[k] = True
        rest = [t for t, c in zip(toks, covered, strict=True) if not c and _meaningful(t)]
        return found, kinds, rest


def _meaningful(token: str) -> bool:
    """A word that could name a drug: not a number, strength, form, salt or sig word."""
    if token in NOT_DRUG_WORDS or token in STOPWORDS or len(token) < 3:
        return False
    return not any(ch.isdigit() for ch in token)
