"""Free text as people write it, reduced to a form two spellings of one concept share.

Problem-list entries and medication names arrive as typed by a clinician or as an EHR's display:
"Cirrhosis of the liver", "Liver cirrhosis", "Chronic hepatitis C (disorder)", "ESRD on HD",
"Tylenol #3". Matching them needs the same few steps everywhere: case and punctuation folded, the
SNOMED CT semantic tag dropped, plurals reduced, filler words ignored, word order set aside for short
entries, and abbreviations expanded. This module does those steps and indexes phrases for them; it
knows nothing about value sets or drugs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

# SNOMED CT fully specified names end in a semantic tag; a display sent as text often keeps it
# (SNOMED CT Editorial Guide, "Semantic Tags": disorder, finding, procedure, ...).
_SEMANTIC_TAG = re.compile(
    r"\s*\((?:disorder|finding|situation|procedure|morphologic abnormality|observable entity"
    r"|clinical drug|medicinal product|product|regime/therapy|event|qualifier value)\)\s*$",
    re.IGNORECASE,
)
_NON_WORD = re.compile(r"[^a-z0-9]+")
# "#3" and "No. 3" are how codeine-combination strengths are printed; both become the bare number.
_NUMBER_SIGN = re.compile(r"(?:#|\bno\.)\s*(\d)")

# Words that carry no meaning for matching a concept name. Deliberately short: "no", "not",
# "without", "history" and the like are NOT here, because the negation guard must see them.
STOPWORDS = frozenset({"of", "the", "a", "an", "and", "in", "on", "to", "for", "due", "with", "by", "type"})

# A handful of plural forms the names we match actually use; a general stemmer (Porter) would also
# fold "diabetes" -> "diabet" and "sepsis" -> "seps", which costs nothing here but makes index keys
# unreadable in coverage output, so the rule below is kept to regular -s/-es plurals.
_KEEP_S = ("ss", "us", "is", "sis", "itis", "osis", "ness", "as", "ics")


_WORD = re.compile(r"[a-z0-9]+")


def strip_tag(text: str) -> str:
    """The text without a trailing SNOMED CT semantic tag."""
    return _SEMANTIC_TAG.sub("", text)


def word_spans(text: str) -> list[tuple[str, int, int]]:
    """Each word of lowercased ``text`` with its character span, so a match found on words can be
    handed to the context guard as a span of the text as written (its triggers keep punctuation:
    "h/o", "r/o", "?")."""
    return [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


def normalise(text: str) -> str:
    """Lowercase, semantic tag and punctuation removed, single spaces."""
    text = _SEMANTIC_TAG.sub("", text)
    text = _NUMBER_SIGN.sub(r" \1", text.lower())
    return _NON_WORD.sub(" ", text).strip()


def singular(word: str) -> str:
    if len(word) <= 3 or not word.endswith("s") or word.endswith(_KEEP_S) or word.isdigit():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    return word[:-1]


def words(text: str) -> tuple[str, ...]:
    """Normalised words as written (plurals kept: the context guard's triggers are plural too)."""
    return tuple(normalise(text).split())


def tokens(text: str) -> tuple[str, ...]:
    """Normalised, singular tokens, stop words kept."""
    return tuple(singular(w) for w in words(text))


def content(toks: Iterable[str]) -> tuple[str, ...]:
    return tuple(t for t in toks if t not in STOPWORDS)


@dataclass(frozen=True)
class Hit:
    """A phrase found in a text: what it names and where (token offsets into ``content`` tokens)."""

    value: str
    start: int
    end: int
    phrase: tuple[str, ...]


@dataclass
class PhraseIndex:
    """Phrases (as content tokens) -> values, matched as contiguous runs or, for a whole short
    entry, in any word order ("liver cirrhosis" = "cirrhosis of the liver")."""

    by_first: dict[str, list[tuple[tuple[str, ...], str]]] = field(default_factory=dict)
    by_bag: dict[frozenset[str], set[str]] = field(default_factory=dict)
    longest: int = 0

    def add(self, phrase: str | tuple[str, ...], value: str) -> tuple[str, ...]:
        toks = content(tokens(phrase)) if isinstance(phrase, str) else phrase
        if not toks:
            return toks
        entries = self.by_first.setdefault(toks[0], [])
        if (toks, value) not in entries:
            entries.append((toks, value))
            entries.sort(key=lambda e: -len(e[0]))
        self.by_bag.setdefault(frozenset(toks), set()).add(value)
        self.longest = max(self.longest, len(toks))
        return toks

    def find(self, toks: tuple[str, ...]) -> list[Hit]:
        """Longest contiguous matches, left to right, non-overlapping; then whole-entry word order."""
        hits: list[Hit] = []
        i = 0
        while i < len(toks):
            best: list[Hit] = []
            for phrase, value in self.by_first.get(toks[i], ()):
                n = len(phrase)
                if best and n < len(best[0].phrase):
                    break  # entries are longest first: the rest are shorter
                if toks[i : i + n] == phrase:
                    best.append(Hit(value, i, i + n, phrase))
            if best:
                hits.extend(best)
                i = best[0].end
            else:
                i += 1
        if not hits and 1 < len(toks) <= self.longest:
            for value in sorted(self.by_bag.get(frozenset(toks), ())):
                hits.append(Hit(value, 0, len(toks), toks))
        return hits

    def phrases(self) -> Iterator[tuple[tuple[str, ...], str]]:
        for entries in self.by_first.values():
            yield from entries


@dataclass(frozen=True)
class Abbreviations:
    """Short forms -> their first (most likely) long form, as token tuples, by domain."""

    table: Mapping[tuple[str, ...], tuple[str, ...]]
    longest: int

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str]]) -> Abbreviations:
        table: dict[tuple[str, ...], tuple[str, ...]] = {}
        for short, long in pairs:
            key = words(short)
            if key and key not in table:
                table[key] = words(long)
        return cls(table, max((len(k) for k in table), default=0))

    def expand(self, toks: tuple[str, ...]) -> tuple[str, ...]:
        """The tokens with every known short form replaced by its long form (longest first)."""
        return self.expand_traced(toks)[0] if self.table else toks

    def expand_traced(self, toks: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[tuple[int, int], ...]]:
        """As ``expand``, with the input tokens ``(first, last)`` each output token came from."""
        out: list[str] = []
        origin: list[tuple[int, int]] = []
        i = 0
        while i < len(toks):
            for n in range(min(self.longest, len(toks) - i), 0, -1):
                long = self.table.get(toks[i : i + n])
                if long is not None:
                    out.extend(long)
                    origin.extend([(i, i + n - 1)] * len(long))
                    i += n
                    break
            else:
                out.append(toks[i])
                origin.append((i, i))
                i += 1
        return tuple(out), tuple(origin)
