"""The one place where pydantic's error shape meets ours: every surface reports the same location.

pydantic's ``loc`` mixes real field names with tags it adds for unions and validators
(``CodeableConcept``, ``function-after[_not_empty(), CodeableConcept]``, ``constrained-str``,
``list[str]``). A tag is not part of the caller's document, so a JSON pointer that keeps it does not
resolve. Guessing tags from their spelling leaks some (``constrained-str`` did); here each part of
``loc`` is checked against the model's own field types instead: below a union, the next string is
a branch tag, and the branch it names is followed. The API (JSON pointer), CDS Hooks (dotted FHIR
path), rule files (YAML line), the cohort, ``cdsrules diff`` and ``cdsrules test`` all render
``locate()``'s answer.
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

Path = tuple[str | int, ...]

_MISSING = "required field is missing"
_UNKNOWN = "unknown field"


@dataclass(frozen=True)
class Located:
    """One bad value: where it is in the caller's document, what is wrong, pydantic's error type."""

    path: Path
    message: str
    kind: str

    @property
    def pointer(self) -> str:
        return json_pointer(self.path)

    @property
    def dotted(self) -> str:
        return dotted(self.path)


def json_pointer(path: Path) -> str:
    """RFC 6901: ``/patient/conditions/0/code``; the whole document is ``""``."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def dotted(path: Path, prefix: str = "") -> str:
    """FHIRPath-like, as OperationOutcome.issue.expression: ``patient.conditions[0].code``."""
    out = prefix
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out = f"{out}.{p}" if out else p
    return out


def message(err: ErrorDetails | Mapping[str, Any]) -> str:
    kind = str(err.get("type", ""))
    if kind == "extra_forbidden":
        return _UNKNOWN
    if kind == "missing":
        return _MISSING
    return str(err.get("msg", "invalid")).removeprefix("Value error, ").removeprefix("Assertion failed, ")


def locate(
    errors: ValidationError | Iterable[ErrorDetails | Mapping[str, Any]],
    model: Any = None,
    *,
    skip: int = 0,
) -> list[Located]:
    """Every error of ``errors`` with its real path, one entry per (path, message).

    ``model`` is the type that was validated (a pydantic model class, or any annotation); without
    it only pydantic's own tag spellings are recognised. ``skip`` drops leading loc parts that are
    not in the caller's document (FastAPI's ``"body"``).
    """
    items: Iterable[ErrorDetails | Mapping[str, Any]] = (
        errors.errors() if isinstance(errors, ValidationError) else errors
    )
    out: list[Located] = []
    seen: set[tuple[Path, str]] = set()
    for err in items:
        loc = tuple(err.get("loc", ()))[skip:]
        path = _real_path(loc, model)
        msg = message(err)
        if (path, msg) in seen:  # union branches repeat one failure once per branch
            continue
        seen.add((path, msg))
        out.append(Located(path, msg, str(err.get("type", "invalid"))))
    return _without_other_branches(out)


def _is_type_mismatch(kind: str) -> bool:
    return kind.endswith("_type") or kind in ("is_instance_of", "model_attributes_type")


def _without_other_branches(found: list[Located]) -> list[Located]:
    """Below a union every branch reports; a branch whose *type* did not match is not the one the
    caller meant when another branch (same place or deeper) has a real complaint: drop it."""
    return [
        b
        for b in found
        if not (
            _is_type_mismatch(b.kind)
            and any(o is not b and o.path[: len(b.path)] == b.path and not _is_type_mismatch(o.kind) for o in found)
        )
    ]


# ---- walking the type alongside loc ---------------------------------------------------------------


def _unwrap(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp


def _union_members(tp: Any) -> tuple[Any, ...] | None:
    if get_origin(tp) in (Union, types.UnionType):
        members = tuple(_unwrap(a) for a in get_args(tp) if a is not type(None))
        return members
    return None


def _name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _branch(members: Sequence[Any], tag: str) -> Any:
    """The union member a pydantic tag names (``CodeableConcept``, ``function-after[..., X]``)."""
    for m in members:
        if isinstance(m, type) and issubclass(m, BaseModel) and _name(m) in tag:
            return m
    for m in members:
        origin = get_origin(m)
        if origin is not None and _name(origin) in tag:  # list[str], dict[str, ...]
            return m
    scalars = [m for m in members if not (isinstance(m, type) and issubclass(m, BaseModel))]
    if len(scalars) == 1 and not tag[:1].isupper():  # 'str', 'constrained-str', 'literal[...]'
        return scalars[0]
    return Any


def _field(model: type[BaseModel], name: str) -> tuple[bool, Any]:
    fields = model.model_fields
    if name in fields:
        return True, fields[name].annotation
    for f in fields.values():
        if f.alias == name or f.validation_alias == name:
            return True, f.annotation
    return False, Any


def _real_path(loc: Sequence[Any], model: Any) -> Path:
    out: list[str | int] = []
    tp = _unwrap(model) if model is not None else Any
    for part in loc:
        tp = _unwrap(tp)
        members = _union_members(tp)
        if members is not None:
            if len(members) == 1:
                tp = members[0]
            elif isinstance(part, str):
                tp = _branch(members, part)  # the tag names a branch: not part of the document
                continue
            else:
                tp = Any
        if tp is Any:
            if isinstance(part, int) or not _looks_like_tag(part):
                out.append(part)
            continue
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            known, tp = _field(tp, str(part))
            if known or not _looks_like_tag(str(part)):
                out.append(part)
            continue
        origin = get_origin(tp)
        args = get_args(tp)
        if origin in (list, tuple, set, frozenset) or tp in (list, tuple):
            if isinstance(part, int):
                out.append(part)
                tp = _unwrap(args[0]) if args else Any
            # a tag below a list (e.g. 'list[str]' for a scalar sent where a list belongs) is dropped
            continue
        if origin in (dict, Mapping) or tp is dict:
            out.append(part)
            tp = _unwrap(args[1]) if len(args) == 2 else Any
            continue
        if origin is Literal:
            continue  # 'literal[...]' tags
        # a scalar: anything below it is a pydantic tag (e.g. 'constrained-str', 'int')
        if isinstance(part, int):
            out.append(part)
    return tuple(out)


def _looks_like_tag(part: object) -> bool:
    """Used only where the type is unknown (``Any``, free dicts): pydantic's own tag spellings."""
    if not isinstance(part, str):
        return False
    return "[" in part or part in {"str", "int", "float", "bool", "constrained-str", "constrained-int"}
