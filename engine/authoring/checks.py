"""One gate for a rule pack, shared by ``cdsrules lint``, the server's start-up and hot reload.

The compiler proves a pack well-formed, ``engine.compiler.lint`` that it is clinically coherent,
and the examples beside the rules that it does what its authors say. The same gate everywhere
means a pack that lints clean is exactly a pack the server will accept.
"""

from __future__ import annotations

from pathlib import Path

from engine.authoring.examples import example_request, run_examples
from engine.compiler.lint import lint_pack
from engine.compiler.model import CompiledPack
from engine.compiler.pack import compile_with_problems
from engine.errors import CdsRulesError, RuleProblem
from engine.runtime.engine import Engine

EXAMPLE_FAILED = "E503"
EXAMPLE_HINT = "run `cdsrules test` on the pack; fix the rule or the example's expectation"


def fired_by_examples(pack: CompiledPack) -> set[str]:
    """Rule ids some example fires, by the reference evaluator (pure Python, cheap)."""
    engine = Engine(pack, backend="reference")
    fired: set[str] = set()
    for ex in pack.examples:
        try:
            resp = engine.evaluate(example_request(ex))
        except (CdsRulesError, ValueError):
            continue  # an example that cannot run is reported by `cdsrules test` / E503
        fired.update(t.rule_id for t in resp.trace)
    return fired


def check_pack(root: Path, *, example_coverage: bool = True) -> tuple[CompiledPack | None, list[RuleProblem]]:
    """Compile and lint ``root``: the pack (None when anything is an error) and every problem."""
    pack, problems = compile_with_problems(root)
    if pack is None:
        return None, problems
    found = lint_pack(pack, fired_by_examples(pack) if example_coverage else None)
    problems = sorted(problems + found)
    pack.warnings = [p for p in problems if p.severity != "error"]
    if any(p.severity == "error" for p in found):
        return None, problems
    return pack, problems


def example_problems(engine: Engine) -> list[RuleProblem]:
    """Every failing example of the engine's pack, as located E503 problems."""
    return [
        RuleProblem(
            r.example.file,
            r.example.line,
            EXAMPLE_FAILED,
            f"example {r.example.example.name!r} failed: {'; '.join(r.failures)}",
            "error",
            EXAMPLE_HINT,
        )
        for r in run_examples(engine, engine.pack.examples)
        if not r.passed
    ]
