"""Load YAML while remembering where every value came from.

Pydantic and the compiler report errors by path inside the document; this module turns that path
into a line number so a rule author sees ``rules/baclofen/renal.yaml:42`` rather than a traceback.
Duplicate keys are errors here (plain YAML silently keeps the last one, which hides edits).

A rule file is data from whoever can write the rules folder, so its size after expansion is
bounded too: nesting deeper than ``MAX_DEPTH`` and more than ``MAX_NODES`` values in one file
(an alias bomb: 350 bytes that expand to millions of values through ``*anchor`` references)
are errors located at the line where the limit was passed, not a stalled worker or a 500.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from engine.errors import RuleProblem

Pointer = tuple[str | int, ...]
MAX_DEPTH = 40  # the deepest bundled rule file nests under 10
MAX_NODES = 200_000  # values in one file after aliases are expanded; the largest bundled has ~20,000


@dataclass
class YamlDocument:
    path: str
    data: Any
    lines: dict[Pointer, int]

    def line_of(self, pointer: Pointer) -> int:
        """Line of the deepest known node on ``pointer`` (1-based)."""
        p = tuple(pointer)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), 1)


class _Loader(yaml.SafeLoader):
    pass


# libyaml's composer builds the same node tree (with the same marks) about 20x faster than the pure
# Python one; scalars are still constructed by the safe Python constructor below.
_COMPOSER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", _Loader)


class _TooBig(Exception):
    def __init__(self, path: str, line: int, why: str) -> None:
        self.problem = RuleProblem(path, line, "E001", why)


def _construct(
    node: yaml.Node,
    ptr: Pointer,
    lines: dict[Pointer, int],
    path: str,
    scalars: yaml.constructor.SafeConstructor,
    budget: list[int],
) -> Any:
    line = node.start_mark.line + 1
    if len(ptr) > MAX_DEPTH:
        raise _TooBig(path, line, f"YAML nested deeper than {MAX_DEPTH} levels")
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooBig(path, line, f"more than {MAX_NODES} values after aliases are expanded (an alias bomb?)")
    lines[ptr] = line
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = scalars.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                key = str(key).lower() if isinstance(key, bool) else str(key)
            if key in out:
                raise _DuplicateKey(path, key_node.start_mark.line + 1, key)
            out[key] = _construct(value_node, (*ptr, key), lines, path, scalars, budget)
            lines[(*ptr, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(child, (*ptr, i), lines, path, scalars, budget) for i, child in enumerate(node.value)]
    return scalars.construct_object(node, deep=True)


class _DuplicateKey(Exception):
    def __init__(self, path: str, line: int, key: str) -> None:
        self.problem = RuleProblem(path, line, "E001", f"duplicate key {key!r} (YAML would keep only the last)")


def load_yaml(path: Path, display_path: str | None = None) -> YamlDocument | RuleProblem:
    """Parse one file; a problem (never an exception) when it is not well-formed YAML."""
    shown = display_path or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return RuleProblem(shown, 1, "E001", f"cannot read file: {exc}")
    return load_yaml_text(text, shown)


def load_yaml_text(text: str, shown: str) -> YamlDocument | RuleProblem:
    try:
        node = yaml.compose(text, Loader=_COMPOSER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        return RuleProblem(shown, line, "E001", f"not valid YAML: {exc.problem or exc}")
    except yaml.YAMLError as exc:
        return RuleProblem(shown, 1, "E001", f"not valid YAML: {exc}")
    except RecursionError:
        return RuleProblem(shown, 1, "E001", f"YAML nested deeper than {MAX_DEPTH} levels")
    if node is None:
        return RuleProblem(shown, 1, "E001", "file is empty")
    lines: dict[Pointer, int] = {}
    # A constructor per document: PyYAML's keeps every node it has built (``constructed_objects``,
    # emptied only by ``construct_document``, which we bypass), so a shared one would hold the node
    # tree of every file ever loaded - each compile of the pack, each hot reload - for the life of
    # the process, and every full garbage collection would walk it with the GIL held.
    scalars = yaml.constructor.SafeConstructor()
    try:
        data = _construct(node, (), lines, shown, scalars, [MAX_NODES])
    except (_DuplicateKey, _TooBig) as failed:
        return failed.problem
    except yaml.YAMLError as exc:
        return RuleProblem(shown, 1, "E001", f"not valid YAML: {exc}")
    return YamlDocument(shown, data, lines)
