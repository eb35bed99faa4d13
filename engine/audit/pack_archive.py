"""Every rule pack that ever served, kept by digest, so a decision can be re-run on its exact pack.

A decision records the digest of its pack (sha256 over the pack's YAML paths and contents,
``engine.compiler.pack.pack_digest``). When a pack starts serving, its files are copied to
``<archive>/<hex digest>/``; a copy is written to a temporary directory, checked against the
digest, and only then renamed into place, so a half-written pack is never found by its digest.
Packs are never deleted here: the archive is as long-lived as the audit log that points into it.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from engine.compiler.pack import pack_digest
from engine.errors import CdsRulesError

log = logging.getLogger("cdsrules.archive")


class ArchiveError(CdsRulesError):
    """A pack could not be archived, or the archived copy does not match its digest."""


def _name(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise ArchiveError(f"not a pack digest: {digest!r} (expected sha256:<64 hex>)")
    return hexpart


class PackArchive:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, digest: str) -> Path | None:
        """The archived pack with this digest, or None when it was never archived here."""
        path = self.root / _name(digest)
        return path if path.is_dir() else None

    def keep(self, pack_root: Path, digest: str) -> Path:
        """Copy ``pack_root`` in under ``digest`` (once; a second call is a no-op)."""
        target = self.root / _name(digest)
        if target.is_dir():
            return target
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=self.root))
        try:
            shutil.copytree(pack_root, tmp / "pack")
            got = pack_digest(tmp / "pack")
            if got != digest:  # the files changed after the pack was compiled
                raise ArchiveError(f"{pack_root} now has digest {got}, not the serving {digest}; not archived")
            try:
                os.rename(tmp / "pack", target)
            except OSError:
                if not target.is_dir():  # another process archiving the same pack won the rename
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log.info("rule pack archived", extra={"digest": digest, "path": str(target)})
        return target

    def keep_quietly(self, pack_root: Path, digest: str) -> None:
        """``keep`` for the serving path: a full disk must not stop advice, so it is logged, not raised."""
        try:
            self.keep(pack_root, digest)
        except (OSError, CdsRulesError) as exc:
            log.warning("rule pack not archived: %s", exc, extra={"digest": digest})
