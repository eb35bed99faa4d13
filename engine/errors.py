"""The one exception family of cdsrules.

Every error carries a location a person can act on: ``file:line`` for rule files, a JSON pointer
for request bodies. Third-party errors are translated at one boundary each, never leaked:
durable-rules in ``engine.runtime.durable_host``, YAML in ``engine.compiler.yaml_source``, pydantic
in ``engine.validation``, SQLAlchemy in ``engine.audit.store``, JWT in ``engine.security.jwt``,
httpx in ``engine.cdshooks.fhirclient``.

    CdsRulesError
    ├── RuleSetError            a rule pack did not pass the gate; holds every RuleProblem found
    ├── InputError              a request is unusable; holds every InputProblem found
    ├── EngineError             the rule runtime (durable-rules) failed while evaluating
    ├── AuditError              the decision could not be recorded (engine.audit.store)
    ├── UnsafeSettingsError     the settings must not serve (engine.service.safety)
    ├── ArchiveError            a pack could not be archived, or its copy is not its digest (engine.audit.pack_archive)
    ├── ReplayError             a stored decision cannot be replayed (engine.audit.replay)
    └── FhirImportError         a FHIR file could not be imported (engine.harness.fhir_import)

Three exceptions stay outside the family on purpose, because they never cross a layer:
``CdsHooksError`` (engine.cdshooks.errors) is the CDS Hooks adapter's 4xx with its
OperationOutcome, ``AuthFailed`` (engine.security.jwt) is why a token was refused and becomes a bare
401, and ``ConditionError`` (engine.compiler.conditions) becomes a located RuleProblem in the
compiler.
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

    def as_dict(self) -> dict[str, str | int]:
        """The JSON shape every surface uses (CLI ``--format json``, admin reload, readiness)."""
        return {
            "file": self.file,
            "line": self.line,
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "hint": self.hint,
        }


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
