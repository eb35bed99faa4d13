"""Free-text building blocks: normalisation, phrase matching, abbreviations, the name reader, NDCs."""

from __future__ import annotations

import pytest

from engine.terminology.drugs import NameReader
from engine.terminology.lookup import normalise_ndc
from engine.terminology.text import Abbreviations, PhraseIndex, content, normalise, tokens


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Chronic hepatitis C (disorder)", "chronic hepatitis c"),
        ("Pregnant (finding)", "pregnant"),
        ("Tylenol #3", "tylenol 3"),
        ("Tylenol No. 3", "tylenol 3"),
        ("  Multiple-Sclerosis (MS) ", "multiple sclerosis ms"),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


def test_phrases_match_contiguously_and_short_entries_in_any_order() -> None:
    index = PhraseIndex()
    index.add("liver cirrhosis", "cirrhosis")
    index.add("hepatitis C", "hepatitis")
    assert [h.value for h in index.find(content(tokens("Cirrhosis of the liver")))] == ["cirrhosis"]
    assert [h.value for h in index.find(content(tokens("chronic hepatitis C virus infection")))] == ["hepatitis"]
    # word order is only set aside for a whole short entry, never inside longer text
    assert index.find(content(tokens("liver transplant, cirrhosis ruled out by biopsy"))) == []
    assert index.find(content(tokens("hepatitis A"))) == []


def test_longest_phrase_wins() -> None:
    index = PhraseIndex()
    index.add("heart failure", "hf")
    index.add("heart failure with preserved ejection fraction", "hfpef")
    assert [h.value for h in index.find(content(tokens("Heart failure with preserved ejection fraction")))] == ["hfpef"]


def test_abbreviations_expand_whole_words_only() -> None:
    abbrev = Abbreviations.of([("HCV", "hepatitis C"), ("ESRD", "end stage renal disease"), ("HD", "hemodialysis")])
    assert abbrev.expand(tuple(normalise("ESRD on HD").split())) == (
        "end", "stage", "renal", "disease", "on", "hemodialysis",
    )  # fmt: skip
    assert abbrev.expand(("hcvx",)) == ("hcvx",)


def test_name_reader_reads_brands_before_synonyms_and_reports_leftovers() -> None:
    reader = NameReader(Abbreviations.of([("APAP", "acetaminophen")]))
    reader.add_ingredient_name("acetaminophen", "acetaminophen")
    reader.add_ingredient_name("Tylenol", "acetaminophen")
    reader.add_ingredient_name("oxycodone", "oxycodone")
    reader.add_brand("Tylenol #3", frozenset({"acetaminophen", "codeine"}))
    assert reader.read("Tylenol #3 tablet").ingredients == {"acetaminophen", "codeine"}
    assert reader.read("Tylenol 500 mg").ingredients == {"acetaminophen"}
    assert reader.read("oxycodone/APAP 5/325").ingredients == {"oxycodone", "acetaminophen"}
    full = reader.read("oxycodone hydrochloride 5 MG / acetaminophen 325 MG Oral Tablet")
    assert full.ingredients == {"oxycodone", "acetaminophen"} and full.leftover is None
    part = reader.read("oxycodone / zorbafen 10 mg")
    assert part.ingredients == {"oxycodone"} and part.leftover == "zorbafen"


@pytest.mark.parametrize(
    ("ndc", "eleven"),
    [("0406-0512-01", "00406051201"), ("59011-410-10", "59011041010"), ("12345-6789-1", "12345678901"),
     ("00406051201", "00406051201"), ("1234-56", None), ("abc", None)],
)  # fmt: skip
def test_ndc_normalised_to_eleven_digits(ndc: str, eleven: str | None) -> None:
    assert normalise_ndc(ndc) == eleven
