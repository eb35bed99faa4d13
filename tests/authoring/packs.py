"""Rule packs for authoring tests: a lean copy of the bundled pack plus one test file.

The lean copy keeps what every pack needs (pack.yaml, shared derivations, terminology) and only
baclofen's drug.yaml (profile, adult start, age-unknown), so band tests see exactly the bands they
write, whatever teammates add to the bundled rules.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from engine.settings import BUNDLED_RULES

HEAD = "drug: baclofen\nrules:\n"
RULE_LINES = 7  # lines per rule written by rule(); the first rule is on line 3
SOURCE = '[{label: Test source, section: "1.1"}]'
INFO = "{finding: {category: disease, severity: info, summary: test summary, detail: test detail}}"


def lean_pack(tmp: Path) -> Path:
    dest = tmp / "rules"
    dest.mkdir()
    for name in ("pack.yaml", "CHANGELOG.md"):
        shutil.copy(BUNDLED_RULES / name, dest / name)
    for folder in ("shared", "terminology"):
        shutil.copytree(BUNDLED_RULES / folder, dest / folder)
    (dest / "baclofen").mkdir()
    shutil.copy(BUNDLED_RULES / "baclofen" / "drug.yaml", dest / "baclofen" / "drug.yaml")
    return dest


def full_pack(tmp: Path) -> Path:
    dest = tmp / "rules"
    shutil.copytree(BUNDLED_RULES, dest)
    return dest


def rule(name: str, when: str, then: str, sources: str = SOURCE, applies_to: str = "start") -> str:
    return (
        f"  - id: baclofen.t.{name}\n"
        f"    title: Test rule {name}\n"
        "    version: 1.0.0\n"
        f"    applies_to: {applies_to}\n"
        f"    sources: {sources}\n"
        f"    when: {when}\n"
        f"    then: {then}\n"
    )


def start(dose_mg: float, times: int = 1, extra: str = "") -> str:
    return f"{{dose: {{start: {{dose_mg: {dose_mg:g}, times_per_day: {times}}}{extra}}}}}"


def line_of(index: int) -> int:
    """Line of the index-th rule written by rule() after HEAD."""
    return 3 + RULE_LINES * index


def write(pack: Path, *rules: str, name: str = "t.yaml") -> Path:
    path = pack / "baclofen" / name
    path.write_text(HEAD + "".join(rules), encoding="utf-8")
    return path
