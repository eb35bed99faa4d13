"""The shared monitoring library: prompts that several rules give, written once and named.

The same sedation prompt used to be pasted into 28 rules; an edit to one copy silently made the
answers of two drugs differ. ``rules/shared/monitoring.yaml`` names each shared prompt once, and
a rule writes ``monitor: [sedation]``, or ``{use: sedation, when: ...}`` to replace a part for
that rule. Names are resolved while each rule file is validated (the library travels in the
validation context, see ``schemas.rulefile``), so compiled rules hold complete items and the
answer is the same as if each prompt were written out. An unknown name is E306 at its line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.compiler.problems import validation_problems
from engine.compiler.yaml_source import load_yaml
from engine.errors import RuleProblem
from schemas.rulefile import MONITORING_CONTEXT, MonitorAction, MonitoringLibrary

MONITORING_FILE = "shared/monitoring.yaml"  # relative to the rules directory


@dataclass(frozen=True)
class Library:
    items: Mapping[str, MonitorAction] = field(default_factory=dict)
    file: str | None = None  # as shown in problems, when the pack has a library

    def context(self) -> dict[str, Any]:
        """The pydantic validation context under which rule files resolve library names."""
        return {MONITORING_CONTEXT: self.items}


def load_library(root: Path, display: Path, problems: list[RuleProblem]) -> Library:
    """The pack's monitoring library (empty when it has none); its problems are appended."""
    path = root / MONITORING_FILE
    if not path.is_file():
        return Library()
    shown = path.relative_to(display).as_posix()
    doc = load_yaml(path, shown)
    if isinstance(doc, RuleProblem):
        problems.append(doc)
        return Library(file=shown)
    try:
        model = MonitoringLibrary.model_validate(doc.data)
    except ValidationError as exc:
        problems.extend(validation_problems(doc, exc, "E002"))
        return Library(file=shown)
    return Library(model.monitoring, shown)
