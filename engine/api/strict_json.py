"""Parse a request body as strict JSON: UTF-8, no duplicate keys, bounded nesting, finite numbers.

Python's parser takes the last of two equal keys (a first-wins parser in a WAF or a log pipeline
upstream then sees another request than we evaluate), accepts ``NaN`` and ``Infinity`` (not JSON,
RFC 8259 section 6; ``NaN`` then failed a range check with a misleading message), reads ``1e400``
as infinity, converts integers of any length digit by digit (quadratic; Python itself refuses
over 4,300 digits with an error naming no place) and recurses on nesting (10,000 brackets are a
``RecursionError``, a few hundred inside valid JSON broke later copies). Each of these is a 400
naming the problem and its JSON pointer here, before any other code walks the document.

The common case pays C parsing plus one Python pass over the parsed document (depth, infinite
floats, long integers). Duplicate keys and ``NaN`` are left in place as markers while parsing, and
only when the parse or the pass found something does a second pass find the pointers, so a clean
body never builds a path.
"""

from __future__ import annotations

import json
import math
from typing import Any

from engine.errors import InputProblem
from engine.validation import json_pointer

MAX_DEPTH = 64  # a CDS Hooks request nests about 12 deep; FHIR extensions a few more
MAX_INTEGER_DIGITS = 100  # FHIR integers are 32 or 64 bit; a measurement never needs more
_MAX_PROBLEMS = 20


class JsonProblem(ValueError):
    """Why a body is not acceptable JSON, in words safe to return, each with its JSON pointer."""

    def __init__(self, problems: list[InputProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.message for p in problems[:3]))

    @classmethod
    def at(cls, pointer: str, message: str, code: str) -> JsonProblem:
        return cls([InputProblem(pointer, message, code)])


class _Refused:
    """What the parser left where a value was refused; the second pass reports it with its pointer."""

    __slots__ = ("code", "message")

    def __init__(self, message: str, code: str) -> None:
        self.message = message
        self.code = code


class _Duplicated(dict[str, Any]):
    """An object in which each of ``keys`` appeared more than once."""

    keys_twice: tuple[str, ...] = ()


def _at(pointer: str, message: str) -> str:
    """The message naming its place too: the CDS Hooks endpoints report the message alone."""
    return f"{message} (at {pointer})" if pointer else message


def _quoted(key: str) -> str:
    return repr(key) if len(key) <= 64 else repr(key[:64] + "...")


class _Parser:
    """One ``loads``: the hooks note that a value was refused, so clean bodies skip the second pass."""

    def __init__(self) -> None:
        self.refused = False

    def pairs(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(pairs)
        if len(out) == len(pairs):
            return out
        self.refused = True
        seen: set[str] = set()
        twice: dict[str, None] = {}  # ordered: reported in document order
        for key, _ in pairs:
            if key in seen:
                twice[key] = None
            seen.add(key)
        dup = _Duplicated(out)
        dup.keys_twice = tuple(twice)
        return dup

    def constant(self, name: str) -> _Refused:
        self.refused = True
        return _Refused(f"{name} is not a JSON number: JSON has no NaN or Infinity", "number_not_finite")

    def integer(self, digits: str) -> int | _Refused:
        """Only for a body Python refused to parse (an integer over its 4,300 digits): find it."""
        if len(digits) - digits.startswith("-") > MAX_INTEGER_DIGITS:
            self.refused = True
            return _Refused(_too_long(len(digits) - digits.startswith("-")), "integer_too_long")
        return int(digits)


def _too_long(count: int) -> str:
    return f"integer with {count} digits; at most {MAX_INTEGER_DIGITS} are accepted"


# 10**100 - 1 (100 digits) and 10**100 (101) both take 333 bits: the cheap test flags both, and
# ``_bad_value`` counts digits
_SUSPECT_BITS = (10**MAX_INTEGER_DIGITS).bit_length()


def _suspect(document: Any) -> bool:
    """One pass over a clean parse: too deep, an infinite float (``1e400``) or a very long integer."""
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                return True
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
        elif type(value) is float:
            if math.isinf(value):
                return True
        elif type(value) is int and value.bit_length() >= _SUSPECT_BITS:
            return True
    return False


def _bad_value(value: Any) -> tuple[str, str] | None:
    """(message, code) for a scalar that is refused, else None."""
    if isinstance(value, _Refused):
        return value.message, value.code
    if type(value) is float and math.isinf(value):
        return "number out of range (it would be infinite)", "number_not_finite"
    if type(value) is int and value.bit_length() >= _SUSPECT_BITS:
        count = len(str(abs(value)))
        if count > MAX_INTEGER_DIGITS:
            return _too_long(count), "integer_too_long"
    return None


def _problems(document: Any) -> list[InputProblem]:
    """Every refused value, too-deep container and duplicated key, in document order, with its pointer."""
    found: list[InputProblem] = []
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(document, ())]
    while stack and len(found) < _MAX_PROBLEMS:
        value, path = stack.pop()
        if isinstance(value, dict | list):
            if len(path) >= MAX_DEPTH:
                at = json_pointer(path)
                found.append(InputProblem(at, _at(at, f"JSON nested deeper than {MAX_DEPTH} levels"), "too_deep"))
                continue
            if isinstance(value, _Duplicated):
                for key in value.keys_twice:
                    at = json_pointer((*path, key))
                    found.append(InputProblem(at, _at(at, f"duplicate key {_quoted(key)}"), "duplicate_key"))
            children = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend(reversed([(v, (*path, k)) for k, v in children]))
        elif (bad := _bad_value(value)) is not None:
            at = json_pointer(path)
            found.append(InputProblem(at, _at(at, bad[0]), bad[1]))
    return found


def _parse(text: str, parser: _Parser) -> Any:
    try:
        return json.loads(text, object_pairs_hook=parser.pairs, parse_constant=parser.constant)
    except ValueError as exc:
        if "Exceeds the limit" not in str(exc):  # Python's own bound on integer digits
            raise
    # a bounded integer parser is a Python call per number: only for the body that needs it
    return json.loads(text, object_pairs_hook=parser.pairs, parse_constant=parser.constant, parse_int=parser.integer)


def loads(raw: bytes) -> Any:
    """The parsed document, or ``JsonProblem`` saying what is wrong with it and where."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonProblem.at("", f"body is not UTF-8 (invalid byte at offset {exc.start})", "not_utf8") from exc
    if not text.strip():
        raise JsonProblem.at("", "the body is empty; send a JSON object", "json_invalid")
    parser = _Parser()
    try:
        document = _parse(text, parser)
    except RecursionError as exc:
        raise JsonProblem.at("", f"JSON nested deeper than {MAX_DEPTH} levels", "too_deep") from exc
    except ValueError as exc:
        raise JsonProblem.at("", f"malformed JSON: {exc}", "json_invalid") from exc
    if parser.refused or _suspect(document):
        problems = _problems(document)
        if problems:
            raise JsonProblem(problems)
    return document
