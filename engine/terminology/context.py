"""Negation, uncertainty, history and family guard for problem-list text (ConText).

A problem-list entry that names a condition does not always say the patient has it: "no history of
seizures", "rule out MI", "family history of epilepsy", "hepatitis B immune". Matching the name alone
would contraindicate a drug for a condition the patient does not have, or, worse, read "denies chest
pain" as chest pain. This module decides, for one matched concept in one short text, which ConText
modifiers apply (Harkema et al., J Biomed Inform 2009;42(5):839-51, after Chapman et al.'s NegEx,
J Biomed Inform 2001;34(5):301-10):

- ``negated``: the text says the condition is absent ("no", "denies", "negative for", "immune");
- ``possible``: not established ("possible", "rule out", "r/o", "?", "screening for");
- ``historical``: in the past ("history of", "s/p"). For chronic conditions "history of" still means
  the patient has it, so this is reported apart from negation and the caller decides;
- ``hypothetical``: "if", "return for", "risk of";
- ``family``: someone else has it ("family history of", "mother had").

Triggers are data (``rules/terminology/context-rules.yaml``, transcribed from medspaCy's English
ConText rules and the NegEx trigger list). A trigger modifies the concepts in its scope: forward
triggers the text after them, backward triggers the text before them, up to the end of the sentence
(". ; ! ?" followed by a space or the end, or a new line) or a terminating trigger ("but",
"however", "except"). Pseudo-triggers ("no increase", "not only") are matched as phrases of their
own so that the shorter trigger inside them ("no", "not") does not fire.

Why not medspaCy itself: it pulls in spaCy (hundreds of MB with its compiled dependencies), adds
seconds to CI and to every process start (model and pipeline construction), and runs a tokenizer
and matcher per text where this needs one precompiled regular expression over a problem-list line.
The algorithm is small; the lexicon is what carries the knowledge, and that is taken from medspaCy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

from schemas.terminology import ContextRulesFile, ContextTrigger

# At most this many words between a trigger and the concept. On the NegEx test set (see
# docs/terminology.md) 8 words gave negation F1 0.971 against 0.958 for the whole sentence
# (medspaCy's default) and 0.962 for NegEx's 5 (10 words: also 0.971), before 'evaluate for'
# was read as an indication (0.974 now). The value was chosen on
# that same set, so it is not an independent estimate.
DEFAULT_MAX_SCOPE: Final = 8

MODIFIERS: Final = frozenset({"negated", "possible", "historical", "hypothetical", "family"})

# A sentence ends at . ; ! ? followed by white space or the end of the text, or at a line break.
# A colon does not end one ("family history: epilepsy"), nor does a comma (lists keep a negation:
# "no edema, cyanosis or clubbing").
_SENTENCE_END: Final = re.compile(r"[.;!?](?=\s|$)|\n")
_WORD: Final = re.compile(r"\w+")
# Tokens for the trigger trie: words (with an inner apostrophe: "didn't", "mother's") and single
# punctuation marks ("r/o" is three tokens, "?" one). Literals and texts are cut the same way.
_TOKEN: Final = re.compile(r"\w+(?:'\w+)*|[^\w\s]")


def _tokens(text: str) -> list[re.Match[str]]:
    return list(_TOKEN.finditer(text))


class ContextRulesError(ValueError):
    """The trigger list cannot be used as given (e.g. one phrase with two categories)."""


@dataclass(frozen=True, slots=True)
class TriggerHit:
    """One trigger found in a text: character span [start, end) and what it does."""

    start: int
    end: int
    literal: str
    category: str
    direction: str


@dataclass(slots=True)
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    ends: tuple[str, ContextTrigger] | None = None  # the trigger whose last token is this node


class ContextGuard:
    """Precompiled ConText triggers; ``modifiers`` answers for one concept span in one text."""

    def __init__(self, triggers: Iterable[ContextTrigger], max_scope: int | None = DEFAULT_MAX_SCOPE) -> None:
        self._by_literal: dict[str, ContextTrigger] = {}
        for trigger in triggers:
            literal = " ".join(trigger.literal.lower().split())
            if not literal:
                raise ContextRulesError(f"trigger literal {trigger.literal!r} is blank")
            known = self._by_literal.get(literal)
            if known is not None and (known.category, known.direction) != (trigger.category, trigger.direction):
                raise ContextRulesError(
                    f"trigger {literal!r} is listed as {known.category}/{known.direction} "
                    f"and as {trigger.category}/{trigger.direction}"
                )
            self._by_literal[literal] = trigger
        if not self._by_literal:
            raise ContextRulesError("no triggers")
        # A token trie: one dict step per token, where one regular expression with hundreds of
        # alternatives costs milliseconds per line in Python's backtracking engine.
        self._trie = _Node()
        for literal, trigger in self._by_literal.items():
            node = self._trie
            for token in _tokens(literal):
                node = node.children.setdefault(token.group(0), _Node())
            node.ends = (literal, trigger)
        # Words between trigger and concept beyond which a trigger no longer applies; None is the
        # whole sentence, as medspaCy does by default (see DEFAULT_MAX_SCOPE).
        self._max_scope = max_scope
        self._scan_cached = lru_cache(maxsize=4096)(self._scan_uncached)

    # A pack is pickled to cohort workers (Dask); the per-instance cache is rebuilt there, not sent.
    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        del state["_scan_cached"]
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._scan_cached = lru_cache(maxsize=4096)(self._scan_uncached)

    @classmethod
    def from_file(cls, model: ContextRulesFile, max_scope: int | None = DEFAULT_MAX_SCOPE) -> ContextGuard:
        return cls(model.triggers, max_scope=max_scope)

    def __len__(self) -> int:
        return len(self._by_literal)

    def scan(self, text: str) -> list[TriggerHit]:
        """Every trigger in ``text``, left to right, longest phrase at each position (for debugging)."""
        return list(self._scan_cached(text))

    def _scan_uncached(self, text: str) -> tuple[TriggerHit, ...]:
        # Leftmost-longest, non-overlapping: at each token the longest trigger starting there wins
        # ("no increase" over "no", "family history of" over "history"), and matching resumes
        # after it, so a pseudo-trigger hides the shorter trigger inside it.
        tokens = _tokens(text)
        hits: list[TriggerHit] = []
        i = 0
        while i < len(tokens):
            node = self._trie
            best: tuple[int, tuple[str, ContextTrigger]] | None = None
            j = i
            while j < len(tokens):
                child = node.children.get(tokens[j].group(0))
                if child is None:
                    break
                node = child
                if node.ends is not None:
                    best = (j, node.ends)
                j += 1
            if best is None:
                i += 1
                continue
            last, (literal, trigger) = best
            hits.append(TriggerHit(tokens[i].start(), tokens[last].end(), literal, trigger.category, trigger.direction))
            # A trigger that opens with punctuation (medspaCy's ": no", ": none", the answer in a
            # "fever: no" template) looks back at the word before it; it must not hide the forward
            # "no" of "extremities: no edema", so matching goes on from its second token.
            i = i + 1 if not tokens[i].group(0)[0].isalnum() else last + 1
        return tuple(hits)

    def modifiers(self, text: str, start: int, end: int) -> frozenset[str]:
        """The modifiers that apply to the concept at ``text[start:end]`` (text already lowercased)."""
        if not 0 <= start < end <= len(text):
            raise ValueError(f"concept span [{start}, {end}) is not inside a text of {len(text)} characters")
        hits = self._scan_cached(text)
        if any(hit.start < end and start < hit.end for hit in hits):
            # The concept's own words are not triggers ("decline" in "functional decline"), and a
            # trigger that ran into the concept may have hidden a shorter one: scan again with
            # the concept blanked out.
            masked = text[:start] + "\x00" * (end - start) + text[end:]
            hits = self._scan_uncached(masked)
        stops = [m.start() for m in _SENTENCE_END.finditer(text)]
        stops += [hit.start for hit in hits if hit.direction == "terminate"]
        starts = [m.end() for m in _SENTENCE_END.finditer(text)]
        starts += [hit.end for hit in hits if hit.direction == "terminate"]
        found: set[str] = set()
        for hit in hits:
            if hit.category not in MODIFIERS or hit.category in found:
                continue
            if hit.direction in ("forward", "bidirectional") and start >= hit.end:
                scope_end = min((s for s in stops if s >= hit.end), default=len(text))
                if start < scope_end and self._near(text, hit.end, start):
                    found.add(hit.category)
                    continue
            if hit.direction in ("backward", "bidirectional") and end <= hit.start:
                scope_start = max((s for s in starts if s <= hit.start), default=0)
                if start >= scope_start and self._near(text, end, hit.start):
                    found.add(hit.category)
        return frozenset(found)

    def _near(self, text: str, left: int, right: int) -> bool:
        if self._max_scope is None:
            return True
        return len(_WORD.findall(text, left, right)) <= self._max_scope
