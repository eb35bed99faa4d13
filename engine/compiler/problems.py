"""Turn pydantic validation errors into located rule problems.

The one place where pydantic's error shape meets ours, so messages stay consistent everywhere.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from engine.compiler.yaml_source import Pointer, YamlDocument
from engine.errors import RuleProblem
from schemas.rulefile import UNKNOWN_MONITORING

# pydantic error types raised by our own validators that are not schema errors, and their codes
_CODES = {UNKNOWN_MONITORING: "E306"}


def _readable(loc: tuple[Any, ...]) -> Pointer:
    # pydantic inserts union-member tags ('Regimen', 'function-after[...]') into loc; drop them
    out: list[str | int] = []
    for part in loc:
        if isinstance(part, int):
            out.append(part)
        elif isinstance(part, str) and ("[" in part or part[:1].isupper()):
            continue
        else:
            out.append(part)
    return tuple(out)


def validation_problems(doc: YamlDocument, exc: ValidationError, code: str, base: Pointer = ()) -> list[RuleProblem]:
    problems = []
    for err in exc.errors():
        loc = (*base, *_readable(tuple(err["loc"])))
        where = ".".join(str(p) for p in loc) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling; see docs/rule-language.md)"
        elif err["type"] == "missing":
            msg = "required field is missing"
        problems.append(RuleProblem(doc.path, doc.line_of(loc), _CODES.get(err["type"], code), f"{where}: {msg}"))
    return problems
