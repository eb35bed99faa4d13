"""Hot reload: build a new rule pack off to the side, prove it, and only then swap it in.

A pharmacist's edit must never take the service down or leave it half-loaded. A reload therefore
runs the one gate (``engine.pipeline.prepare``: compile, clinical lint, a fresh durable-rules
engine with every example of the new pack run on it) and swaps the new engine into the
``EngineRegistry`` only when that is clean. Anything else leaves the old pack serving and records
why: in the log, in the ``cdsrules_rule_reloads_total{outcome="rejected"}`` metric, and in
``GET /v1/admin/rules``.

Triggers: ``POST /v1/admin/reload``, or a watcher thread (``cdsrules serve --reload-rules``) that
polls the digest of the rules directory. Reloads are serialised; requests never wait for one.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from prometheus_client import Counter

from engine.compiler.pack import pack_digest
from engine.errors import CdsRulesError, RuleProblem
from engine.pipeline import Prepared, Rejected, log_prepared, prepare
from engine.runtime.registry import EngineRegistry

log = logging.getLogger("cdsrules.rules")

Outcome = Literal["loaded", "rejected", "unchanged"]
RELOADS = Counter("cdsrules_rule_reloads", "Rule pack reload attempts by outcome.", ["outcome"])
for _outcome in ("loaded", "rejected", "unchanged"):
    RELOADS.labels(_outcome)  # present at 0, so increase() alerts work from the start
MAX_ATTEMPTS = 3  # files that keep changing while we compile are retried on the next trigger


RELOAD_FAILED = "E505"
RELOAD_DROPS = "E506"  # the new pack lacks drugs or rules the serving one has; needs force


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
            "errors": [p.as_dict() for p in self.problems if p.severity == "error"],
            "warnings": [p.as_dict() for p in self.problems if p.severity != "error"],
        }


def _dropped(serving: Any, new: Any) -> str:
    """What ``new`` would stop serving, in words; empty when it keeps every drug and rule."""
    drugs = sorted(set(serving.drugs) - set(new.drugs))
    rules = sorted(set(serving.rules) - set(new.rules))
    parts = []
    if drugs:
        parts.append(f"drug(s) {', '.join(drugs)}")
    if rules:
        shown = ", ".join(rules[:10]) + (f" and {len(rules) - 10} more" if len(rules) > 10 else "")
        parts.append(f"rule(s) {shown}")
    if not parts:
        return ""
    return f"the new pack removes {' and '.join(parts)}; reload with force=true if that is intended"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class Reloader:
    def __init__(
        self, registry: EngineRegistry, prepared: Prepared, on_serve: Callable[[Prepared], None] | None = None
    ) -> None:
        self.registry = registry
        self.on_serve = on_serve  # e.g. the pack archive: told of every pack that starts serving
        self.root = prepared.root
        self.serving = prepared  # the gate's result for the pack being served (warnings, timings)
        self.loaded_at = _now()
        self.counts: dict[str, int] = {"loaded": 0, "rejected": 0, "unchanged": 0}
        self.last: ReloadResult | None = None
        self._lock = threading.Lock()
        self._tried = registry.current.pack.digest
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def reload(self, reason: str = "admin", force: bool = False) -> ReloadResult:
        """Try the files now; swap only a clean pack. Never raises for a bad pack.

        A clean pack that lacks a drug or a rule the serving pack has is refused unless ``force``:
        a half-done checkout or rsync that removed a folder passes every check (its examples went
        with it) and would silently answer "no rules" for that drug. The watcher never forces.
        """
        with self._lock:
            serving = self.registry.current.pack.digest
            digest = pack_digest(self.root)
            self._tried = digest
            if digest == serving:
                return self._record(ReloadResult("unchanged", reason, _now(), digest, serving, ()))
            result = self._build()
            if isinstance(result, Rejected):
                return self._record(ReloadResult("rejected", reason, _now(), digest, serving, result.problems))
            dropped = _dropped(self.registry.current.pack, result.engine.pack)
            if dropped and not force:
                result.close()
                problem = RuleProblem(str(self.root), 1, RELOAD_DROPS, dropped, "error")
                return self._record(ReloadResult("rejected", reason, _now(), digest, serving, (problem,)))
            self._tried = result.digest
            self.registry.swap(result.engine)
            self.serving = result
            if self.on_serve is not None:
                self.on_serve(result)
            self.loaded_at = _now()
            log_prepared(result, "loaded")
            new = result.digest
            return self._record(ReloadResult("loaded", reason, self.loaded_at, new, new, result.warnings))

    def _build(self) -> Prepared | Rejected:
        for _ in range(MAX_ATTEMPTS):
            try:
                result = prepare(self.root)
            except CdsRulesError as exc:  # the gate collects problems; anything else it could not
                return self._failed(f"the rule pack could not be prepared: {exc}")
            if isinstance(result, Rejected) or result.digest == pack_digest(self.root):
                return result
            result.close()  # the files changed while we compiled: what we built is already stale
        return self._failed("rule files kept changing while loading; try again")

    def _failed(self, why: str) -> Rejected:
        problem = RuleProblem(str(self.root), 1, RELOAD_FAILED, why, "error")
        return Rejected(self.root, pack_digest(self.root), (problem,), ())

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
                "warnings": [p.as_dict() for p in self.serving.warnings],
            },
            "rules_dir": str(self.root),
            "watching": self._thread is not None,
            "reloads": dict(self.counts),
            "last_reload": self.last.as_dict() if self.last else None,
            "draining_engines": self.registry.draining(),
        }
