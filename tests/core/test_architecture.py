"""The layering holds: no import cycles between packages, and the error family is what errors.py says.

The import graph is read from the source (every ``import``, including those inside functions), with
each package of ``engine`` and each top-level module as one node; a cycle between two nodes means
neither can be read or tested without the other.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

from engine import errors
from tests.conftest import REPO

ENGINE = REPO / "engine"


def _node(module: str) -> str | None:
    """``engine.api.routes_v1`` -> ``engine.api``; ``engine.errors`` -> ``engine.errors``."""
    parts = module.split(".")
    if parts[0] != "engine" or len(parts) == 1:
        return None
    return ".".join(parts[:2])


def _module_of(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str) -> bool:
    path = REPO.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _module_of(path)
    found: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            found |= {a.name for a in n.names}
        elif isinstance(n, ast.ImportFrom):
            if n.level:
                keep = len(here.split(".")) - n.level + (1 if path.name == "__init__.py" else 0)
                base = here.split(".")[:keep]
                found.add(".".join([*base, n.module] if n.module else base))
            elif n.module:
                found.add(n.module)
                found |= {f"{n.module}.{a.name}" for a in n.names if _is_module(f"{n.module}.{a.name}")}
    return found


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in ENGINE.rglob("*.py"):
        src = _node(_module_of(path))
        if src is None:
            continue
        deps = {d for m in _imports(path) if (d := _node(m)) is not None and d != src}
        graph.setdefault(src, set()).update(deps)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles_between_packages() -> None:
    graph = package_graph()
    assert {"engine.api", "engine.compiler", "engine.runtime", "engine.cdshooks"} <= graph.keys(), "scan broken"
    assert "engine.compiler" in graph["engine.pipeline"], "scan broken: pipeline must import the compiler"
    assert _cycles(graph) == []


def test_the_cycle_detector_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_engine_core_never_imports_an_adapter() -> None:
    graph = package_graph()
    adapters = {"engine.api", "engine.cli", "engine.ops"}
    for core in ("engine.compiler", "engine.runtime", "engine.pipeline", "engine.fhir", "engine.terminology"):
        assert not graph.get(core, set()) & adapters, core


def _subclasses(cls: type) -> set[str]:
    out: set[str] = set()
    subs: list[type] = cls.__subclasses__()
    for sub in subs:
        out.add(sub.__name__)
        out |= _subclasses(sub)
    return out


def test_the_error_family_docstring_matches_the_classes() -> None:
    for module in (
        "engine.audit.store",
        "engine.audit.pack_archive",
        "engine.audit.replay",
        "engine.service.safety",
        "engine.harness.fhir_import",
        "engine.runtime.engine",
    ):
        importlib.import_module(module)  # a subclass exists once its module is imported
    doc = errors.__doc__ or ""
    tree = set(re.findall(r"[├└]── (\w+)", doc))
    assert tree == _subclasses(errors.CdsRulesError), (tree, _subclasses(errors.CdsRulesError))
    for outside in ("CdsHooksError", "AuthFailed", "ConditionError"):
        assert outside in doc, f"{outside} should be named as outside the family"
