"""Which files are terminology files of a pack (for coverage and the import commands).

What a serving pack's terminology came from is ``Terminology.provenance`` (filled by the loader from
the files it loaded, shown by ``GET /readyz`` and ``GET /v1/admin/rules``); the pack digest covers the
same files, imported ones included, so every recorded decision names the terminology it used.
"""

from __future__ import annotations

from pathlib import Path

TERMINOLOGY_DIR = "terminology"


def terminology_files(root: Path) -> list[Path]:
    """Every terminology file of a pack (YAML anywhere under terminology/, JSON under imported/)."""
    folder = root / TERMINOLOGY_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml", ".json"))
