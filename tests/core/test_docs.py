"""Every error code the compiler can emit has its section in docs/errors.md."""

from __future__ import annotations

import re

from tests.conftest import REPO


def test_every_error_code_is_documented() -> None:
    used = set()
    for path in (REPO / "engine").rglob("*.py"):
        used |= set(re.findall(r'"(E\d{3})"', path.read_text(encoding="utf-8")))
    documented = set(re.findall(r"^## (E\d{3})$", (REPO / "docs" / "errors.md").read_text(), re.M))
    assert used, "no codes found: the scan is broken"
    assert used <= documented, f"undocumented: {sorted(used - documented)}"
