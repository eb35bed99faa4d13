"""Parse a request body as strict JSON: UTF-8, no duplicate keys, bounded nesting.

Python's parser takes the last of two equal keys (a first-wins parser in a WAF or a log pipeline
upstream then sees another request than we evaluate) and recurses on nesting (10,000 brackets
are a ``RecursionError``, a few hundred inside valid JSON broke later copies). Each of these is
a 400 naming the problem here, before any other code walks the document.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64  # a CDS Hooks request nests about 12 deep; FHIR extensions a few more


class JsonProblem(ValueError):
    """Why a body is not acceptable JSON, in words safe to return."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise JsonProblem(f"duplicate key {key!r} in a JSON object")
        out[key] = value
    return out


def _depth(document: Any) -> int:
    deepest, stack = 0, [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                return depth
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return deepest


def loads(raw: bytes) -> Any:
    """The parsed document, or ``JsonProblem`` saying what is wrong with it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonProblem(f"body is not UTF-8 (invalid byte at offset {exc.start})") from exc
    try:
        document = json.loads(text, object_pairs_hook=_no_duplicates)
    except JsonProblem:
        raise
    except RecursionError as exc:
        raise JsonProblem(f"JSON nested deeper than {MAX_DEPTH} levels") from exc
    except ValueError as exc:
        raise JsonProblem(f"malformed JSON: {exc}") from exc
    if _depth(document) > MAX_DEPTH:
        raise JsonProblem(f"JSON nested deeper than {MAX_DEPTH} levels")
    return document
