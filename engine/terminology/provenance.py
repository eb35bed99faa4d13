"""Which terminology a pack serves, file by file: kind, file, label and version of every source.

``GET /readyz`` and ``GET /v1/admin/rules`` show it, so an operator can tell which VSAC expansion or
RxNorm release answered a request; the pack digest (``engine.compiler.pack.pack_digest``) covers the
same files, imported ones included, so every recorded decision names the terminology it used.
Read straight from the files (cached per pack digest), independent of how the loader builds its
lookup tables.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

TERMINOLOGY_DIR = "terminology"
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class TerminologySource:
    kind: str  # the file's kind: value-set, rxnorm, ingredients, ...
    file: str  # relative to the pack root
    label: str
    version: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def terminology_files(root: Path) -> list[Path]:
    """Every terminology file of a pack (YAML anywhere under terminology/, JSON under imported/)."""
    folder = root / TERMINOLOGY_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml", ".json"))


def _read(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=_Loader)


def _sources_of(data: Any) -> list[tuple[str, str | None]]:
    if not isinstance(data, dict):
        return []
    found: list[tuple[str, str | None]] = []
    blocks: list[Any] = list(data.get("sources") or [])
    for key in ("classes", "value_sets"):  # older files carry sources per entry
        for entry in data.get(key) or []:
            if isinstance(entry, dict):
                blocks.extend(entry.get("sources") or [])
    release = data.get("release") if isinstance(data.get("release"), str) else None
    for s in blocks:
        if isinstance(s, dict) and isinstance(s.get("label"), str):
            version = s.get("version") if isinstance(s.get("version"), str) else None
            pair = (s["label"], version or release)
            if pair not in found:
                found.append(pair)
    return found


def provenance(root: Path) -> list[TerminologySource]:
    """Sources of every terminology file; a file that cannot be read is listed as such, not hidden."""
    out: list[TerminologySource] = []
    for path in terminology_files(root):
        rel = path.relative_to(root).as_posix()
        try:
            data = _read(path)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            out.append(TerminologySource("unreadable", rel, f"cannot read: {type(exc).__name__}", None))
            continue
        kind = str(data.get("kind")) if isinstance(data, dict) else "unknown"
        sources = _sources_of(data) or [("no source listed", None)]
        out.extend(TerminologySource(kind, rel, label, version) for label, version in sources)
    return out


@lru_cache(maxsize=8)
def _cached(root: str, digest: str) -> tuple[TerminologySource, ...]:
    del digest  # part of the key only: a new pack digest means the files changed
    return tuple(provenance(Path(root)))


def provenance_for(root: Path, digest: str) -> list[dict[str, Any]]:
    """``provenance`` as JSON-ready dicts, computed once per pack digest."""
    return [s.as_dict() for s in _cached(str(root), digest)]
