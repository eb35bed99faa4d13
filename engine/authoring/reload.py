"""Hot reload: build a new rule pack off to the side, prove it, and only then swap it in.

A pharmacist's edit must never take the service down or leave it half-loaded. A reload therefore
compiles and lints the files (``check_pack``), builds a fresh durable-rules engine, runs every
example of the new pack on that engine, and swaps it into the ``EngineRegistry`` only when all of
that is clean. Anything else leaves the old pack serving and records why: in the log, in the
``cdsrules_rule_reloads_total{outcome="rejected"}`` metric, and in ``GET /v1/admin/rules``.

Triggers: ``POST /v1/admin/reload``, or a watcher thread (``cdsrules serve --reload-rules``) that
polls the digest of the rules directory. Reloads are serialised; requests never wait for one.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from prometheus_client import Counter

from engine.authoring.checks import check_pack, example_problems
from engine.compiler.pack import pack_digest
from engine.errors import CdsRulesError, RuleProblem, RuleSetError
from engine.runtime.engine import Engine
from engine.runtime.registry import EngineRegistry

log = logging.getLogger("cdsrules.rules")

Outcome = Literal["loaded", "rejected", "unchanged"]
RELOADS = Counter("cdsrules_rule_reloads", "Rule pack reload attempts by outcome.", ["outcome"])
for _outcome in ("loaded", "rejected", "unchanged"):
    RELOADS.labels(_outcome)  # present at 0, so increase() alerts work from the start
MAX_ATTEMPTS = 3  # files that keep changing while we compile are retried on the next trigger


def build_engine(root: Path) -> tuple[Engine | None, list[RuleProblem]]:
    """A proven engine for ``root`` (compiled, linted, examples pass), or None and the problems."""
    pack, problems = check_pack(root, example_coverage=False)
    if pack is None:
        return None, problems
    engine = Engine(pack)
    failed = example_problems(engine)
    if failed:
        engine.close()
        return None, sorted(problems + failed)
    return engine, problems


def load_engine(root: Path) -> Engine:
    """Start-up: the same gate as a reload; raises ``RuleSetError`` listing every error."""
    engine, problems = build_engine(root)
    if engine is None:
        raise RuleSetError([p for p in problems if p.severity == "error"])
    return engine


def problem_dict(p: RuleProblem) -> dict[str, Any]:
    return {
        "file": p.file,
        "line": p.line,
        "code": p.code,
        "severity": p.severity,
        "message": p.message,
        "hint": p.hint,
    }


@dataclass(frozen=True)
class ReloadResult:
    outcome: Outcome
    reason: str  # what asked for it: "admin", "watch"
    at: str
    digest: str  # of the files that were tried
    serving_digest: str
    problems: tuple[RuleProblem, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "reason": self.reason,
            "at": self.at,
            "digest": self.digest,
            "serving_digest": self.serving_digest,
            "errors": [problem_dict(p) for p in self.problems if p.severity == "error"],
            "warnings": [problem_dict(p) for p in self.problems if p.severity != "error"],
        }


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class Reloader:
    def __init__(self, registry: EngineRegistry, root: Path) -> None:
        self.registry = registry
        self.root = root
        self.loaded_at = _now()
        self.counts: dict[str, int] = {"loaded": 0, "rejected": 0, "unchanged": 0}
        self.last: ReloadResult | None = None
        self._lock = threading.Lock()
        self._tried = registry.current.pack.digest
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def reload(self, reason: str = "admin") -> ReloadResult:
        """Try the files now; swap only a clean pack. Never raises for a bad pack."""
        with self._lock:
            serving = self.registry.current.pack.digest
            digest = pack_digest(self.root)
            self._tried = digest
            if digest == serving:
                return self._record(ReloadResult("unchanged", reason, _now(), digest, serving, ()))
            engine, problems = self._build()
            if engine is None:
                return self._record(ReloadResult("rejected", reason, _now(), digest, serving, tuple(problems)))
            self._tried = engine.pack.digest
            self.registry.swap(engine)
            self.loaded_at = _now()
            new = engine.pack.digest
            return self._record(ReloadResult("loaded", reason, self.loaded_at, new, new, tuple(problems)))

    def _build(self) -> tuple[Engine | None, list[RuleProblem]]:
        for _ in range(MAX_ATTEMPTS):
            try:
                engine, problems = build_engine(self.root)
            except CdsRulesError as exc:  # e.g. durable-rules refusing a ruleset
                return None, [RuleProblem(str(self.root), 1, "reload", f"engine could not be built: {exc}")]
            if engine is None or engine.pack.digest == pack_digest(self.root):
                return engine, problems
            engine.close()  # the files changed while we compiled: what we built is already stale
        return None, [RuleProblem(str(self.root), 1, "reload", "rule files kept changing while loading; try again")]

    def _record(self, result: ReloadResult) -> ReloadResult:
        self.counts[result.outcome] += 1
        RELOADS.labels(result.outcome).inc()
        self.last = result  # "unchanged" too: files back to the serving pack clear a rejection
        pack = self.registry.current.pack
        if result.outcome == "rejected":
            errors = [str(p) for p in result.problems if p.severity == "error"]
            log.error(
                "rule pack reload rejected (%d error(s)); still serving %s %s: %s",
                len(errors),
                pack.version,
                pack.digest,
                "; ".join(errors[:10]),
                extra={"outcome": "rejected", "ruleset_version": pack.version, "kind": result.reason},
            )
        elif result.outcome == "loaded":
            log.info(
                "rule pack %s (%s) loaded: %d drugs, %d rules",
                pack.version,
                pack.digest,
                len(pack.drugs),
                len(pack.rules),
                extra={"outcome": "loaded", "ruleset_version": pack.version, "kind": result.reason},
            )
        return result

    def poll(self) -> ReloadResult | None:
        """Reload if the files differ from the last ones tried (the watcher's tick)."""
        if pack_digest(self.root) == self._tried:
            return None
        return self.reload("watch")

    def watch(self, interval_s: float = 1.0) -> None:
        """Start the polling thread (idempotent)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(interval_s,), name="rules-watcher", daemon=True)
        self._thread.start()

    def _run(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self.poll()
            except Exception:  # the watcher must outlive any surprise; the old pack keeps serving
                log.exception("rule pack watcher failed; will retry")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def status(self) -> dict[str, Any]:
        pack = self.registry.current.pack
        return {
            "serving": {
                "version": pack.version,
                "digest": pack.digest,
                "drugs": sorted(pack.drugs),
                "rules": len(pack.rules),
                "loaded_at": self.loaded_at,
                "warnings": [problem_dict(p) for p in pack.warnings if p.severity != "error"],
            },
            "rules_dir": str(self.root),
            "watching": self._thread is not None,
            "reloads": dict(self.counts),
            "last_reload": self.last.as_dict() if self.last else None,
            "draining_engines": self.registry.draining(),
        }
