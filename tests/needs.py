"""What a test needs from outside the repository, and the one rule for when it is missing.

Some checks need things a clone does not carry: third-party reference data kept in a ``shared``
folder beside the clone (the Synthea bundles), PostgreSQL's binaries, Chromium. On a developer's
machine a test whose need is missing skips and says what to install or where to put the data; under
CI (``CI=true``, set by ``.ci/run``) it fails, because a skipped check must never pass for a run one.
Every such test goes through ``unavailable`` so the rule is written once.

The shared folder is ``../shared`` next to the checkout; ``CDSRULES_SHARED_DIR`` points elsewhere
(a git worktree, for instance, does not sit beside it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_ENV = "CDSRULES_SHARED_DIR"
T = TypeVar("T")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable(message: str) -> NoReturn:
    """Fail under CI, skip locally; ``message`` says what is missing and how to get it."""
    if in_ci():
        pytest.fail(f"cannot run in CI: {message}", pytrace=False)
    pytest.skip(message)


def shared_root() -> Path:
    given = os.environ.get(SHARED_ENV)
    return Path(given).expanduser().resolve() if given else REPO.parent / "shared"


def shared_path(*parts: str) -> Path:
    """A file or folder of the shared reference data, or skip (fail under CI) when it is absent."""
    path = shared_root().joinpath(*parts)
    if not path.exists():
        unavailable(f"shared reference data {path} not found (clone beside ../shared or set {SHARED_ENV})")
    return path


def shared_params(read: Callable[[Path], Sequence[T]], *parts: str, ids: Callable[[T], str] | None = None) -> list[Any]:
    """Parameters read from shared data at collection time.

    When the data is absent there is one placeholder parameter instead of none, so the test is
    still collected and its ``shared_path`` call (or a fixture's) skips or fails it with the reason;
    an empty parameter list would be skipped silently, even under CI.
    """
    path = shared_root().joinpath(*parts)
    if not path.exists():
        return [pytest.param(None, id="shared-data-missing")]
    return [pytest.param(v, id=ids(v) if ids else None) for v in read(path)]
