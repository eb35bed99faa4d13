"""The one gate a rule pack passes before anything serves it: ``prepare()``, in named, timed stages.

Start-up, hot reload, ``POST /v1/admin/reload``, ``cdsrules lint``, ``cdsrules test`` and
``cdsrules eval`` all call ``prepare`` and differ only in what they print, so "lint is clean" and
"the server accepts it" are one statement. The stages, in order (each appends problems to the same
``Compilation``; a stage marked ``after_clean`` runs only when no earlier stage found an error):

    parse -> schema -> terminology -> conditions -> cross-refs -> durable-limits
          -> clinical-lint -> examples

The last stage builds the durable-rules engine the server would serve and runs every example of the
pack on it. What comes back is a ``Prepared`` (the pack, that engine, the warnings, the example
results, the timings) or a ``Rejected`` (every problem, the timings): a pack is never half-loaded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from engine.compiler import pack as stages
from engine.compiler.lint import HINTS, lint_pack
from engine.compiler.model import CompiledPack
from engine.compiler.pack import Compilation, pack_digest
from engine.errors import EngineError, RuleProblem, RuleSetError
from engine.pipeline.examples import ExampleResult, run_examples
from engine.runtime.engine import Engine

log = logging.getLogger("cdsrules.rules")

EXAMPLE_FAILED = "E503"
ENGINE_REFUSED = "E504"
EXAMPLE_HINT = "run `cdsrules test` on the pack; fix the rule or the example's expectation"


class Stage(StrEnum):
    PARSE = "parse"
    SCHEMA = "schema"
    TERMINOLOGY = "terminology"
    CONDITIONS = "conditions"
    CROSS_REFS = "cross-refs"
    DURABLE_LIMITS = "durable-limits"
    CLINICAL_LINT = "clinical-lint"
    EXAMPLES = "examples"


@dataclass
class _Run:
    """The gate's working state: the compilation plus what the last two stages produce."""

    c: Compilation
    pack: CompiledPack | None = None
    engine: Engine | None = None
    examples: tuple[ExampleResult, ...] = ()


def _clinical_lint(run: _Run) -> None:
    run.pack = run.c.pack()
    run.c.problems.extend(lint_pack(run.pack))


def _examples(run: _Run) -> None:
    assert run.pack is not None
    try:
        run.engine = Engine(run.pack)
    except EngineError as exc:
        root = run.c.shown(run.c.root)
        run.c.problems.append(RuleProblem(root, 1, ENGINE_REFUSED, f"durable-rules refused the rule pack: {exc}"))
        return
    run.examples = tuple(run_examples(run.engine, run.pack.examples))
    fired: set[str] = set()
    for r in run.examples:
        fired |= r.fired
        if not r.passed:
            why = "; ".join(r.failures)
            run.c.problems.append(
                RuleProblem(
                    r.example.file,
                    r.example.line,
                    EXAMPLE_FAILED,
                    f"example {r.example.example.name!r} failed: {why}",
                    "error",
                    EXAMPLE_HINT,
                )
            )
    for rule in run.pack.rules.values():
        if rule.id not in fired:
            msg = f"{rule.id} fires in none of the pack's examples"
            run.c.problems.append(RuleProblem(rule.file, rule.line, "W601", msg, "warning", HINTS["W601"]))


@dataclass(frozen=True)
class StageSpec:
    stage: Stage
    run: Callable[[_Run], None]
    after_clean: bool  # needs a pack without errors (it works on the compiled pack)


def _on_compilation(fn: Callable[[Compilation], None]) -> Callable[[_Run], None]:
    return lambda run: fn(run.c)


STAGES: tuple[StageSpec, ...] = (
    StageSpec(Stage.PARSE, _on_compilation(stages.parse_files), False),
    StageSpec(Stage.SCHEMA, _on_compilation(stages.validate_files), False),
    StageSpec(Stage.TERMINOLOGY, _on_compilation(stages.load_terminology_files), False),
    StageSpec(Stage.CONDITIONS, _on_compilation(stages.compile_conditions), False),
    StageSpec(Stage.CROSS_REFS, _on_compilation(stages.cross_references), False),
    StageSpec(Stage.DURABLE_LIMITS, _on_compilation(stages.durable_limits), False),
    StageSpec(Stage.CLINICAL_LINT, _clinical_lint, True),
    StageSpec(Stage.EXAMPLES, _examples, True),
)


@dataclass(frozen=True)
class StageTiming:
    stage: Stage
    seconds: float
    problems: int  # problems (errors and warnings) this stage added
    ran: bool = True


@dataclass(frozen=True)
class Prepared:
    """A pack that passed every stage, and the engine built for it (the caller owns ``engine``)."""

    root: Path
    pack: CompiledPack
    engine: Engine
    warnings: tuple[RuleProblem, ...]
    examples: tuple[ExampleResult, ...]
    timings: tuple[StageTiming, ...]

    @property
    def problems(self) -> tuple[RuleProblem, ...]:
        return self.warnings

    @property
    def digest(self) -> str:
        return self.pack.digest

    def close(self) -> None:
        self.engine.close()


@dataclass(frozen=True)
class Rejected:
    """A pack that did not pass: every problem found (errors and warnings), sorted by location."""

    root: Path
    digest: str
    problems: tuple[RuleProblem, ...]
    timings: tuple[StageTiming, ...]
    examples: tuple[ExampleResult, ...] = field(default=())

    @property
    def errors(self) -> tuple[RuleProblem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    def error(self) -> RuleSetError:
        return RuleSetError(list(self.errors))


def prepare(root: Path) -> Prepared | Rejected:
    """Run every stage on ``root``; never raises for a bad pack."""
    run = _Run(Compilation.of(root))
    timings: list[StageTiming] = []
    for spec in STAGES:
        if spec.after_clean and run.c.failed:
            timings.append(StageTiming(spec.stage, 0.0, 0, ran=False))
            continue
        before, started = len(run.c.problems), time.perf_counter()
        spec.run(run)
        timings.append(StageTiming(spec.stage, time.perf_counter() - started, len(run.c.problems) - before))
    problems = tuple(sorted(run.c.problems))
    if run.c.failed or run.engine is None or run.pack is None:
        if run.engine is not None:
            run.engine.close()
        digest = pack_digest(run.c.root) if run.c.root.is_dir() else ""
        return Rejected(run.c.root, digest, problems, tuple(timings), run.examples)
    return Prepared(run.c.root, run.pack, run.engine, problems, run.examples, tuple(timings))


def prepare_or_raise(root: Path) -> Prepared:
    """``prepare``, raising ``RuleSetError`` (every error, located) when the pack is rejected."""
    result = prepare(root)
    if isinstance(result, Rejected):
        raise result.error()
    return result


def log_prepared(prepared: Prepared, what: str = "compiled") -> None:
    pack = prepared.pack
    total = sum(t.seconds for t in prepared.timings)
    log.info(
        "rule pack %s (%s) %s: %d drugs, %d rules, %d examples, %d warning(s) in %.2f s (%s)",
        pack.version,
        pack.digest,
        what,
        len(pack.drugs),
        len(pack.rules),
        len(prepared.examples),
        len(prepared.warnings),
        total,
        ", ".join(f"{t.stage} {t.seconds * 1000:.0f} ms" for t in prepared.timings),
        extra={"ruleset_version": pack.version, "outcome": what},
    )
