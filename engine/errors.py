"""The one exception family of cdsrules.

Every error carries a location a person can act on: ``file:line`` for rule files, a JSON pointer
for request bodies. Third-party errors (durable-rules, YAML, pydantic) are translated at one
boundary each, never leaked.

    CdsRulesError
    ├── RuleSetError            a rule pack failed to compile; holds every RuleProblem found
    ├── InputError              a request is unusable; holds every InputProblem found
    └── EngineError             the rule runtime (durable-rules) failed while evaluating
        └── EngineLimitError    a compiled ruleset would cross a durable-rules hard limit
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class RuleProblem:
    """One finding of the compiler or linter, printed as ``file:line: code: message``."""

    file: str
    line: int
    code: str
    message: str
    severity: str = "error"  # "error" stops the pack from loading; "warning" does not
    hint: str = field(default="", compare=False)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.code}: {self.message}"


@dataclass(frozen=True)
class InputProblem:
    """One bad field in a request, located by JSON pointer (RFC 6901)."""

    pointer: str
    message: str
    code: str = "invalid"


class CdsRulesError(Exception):
    """Base of every error cdsrules raises on purpose."""


class RuleSetError(CdsRulesError):
    def __init__(self, problems: list[RuleProblem]) -> None:
        self.problems = sorted(problems)
        lines = "\n".join(str(p) for p in self.problems[:50])
        more = f"\n... and {len(self.problems) - 50} more" if len(self.problems) > 50 else ""
        super().__init__(f"rule pack has {len(self.problems)} problem(s):\n{lines}{more}")


class InputError(CdsRulesError):
    def __init__(self, problems: list[InputProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.pointer or '/'}: {p.message}" for p in problems))


class EngineError(CdsRulesError):
    """durable-rules misbehaved. The evaluation is abandoned; no partial advice is returned."""


class EngineLimitError(EngineError):
    pass
