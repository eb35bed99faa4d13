"""The engine that is serving now, swappable while requests are in flight.

Hot reload replaces the compiled pack without a restart. Two things must never happen: a request
seeing half of one pack and half of another, and a durable-rules ruleset being freed while a
request still evaluates on it (``DurableRuleset.close`` then makes that request fail with
"retired"). So every request takes a *lease* on the current engine for its whole duration; a swap
changes which engine new leases get, atomically, and a replaced engine is closed when its last
lease is returned - by whichever thread returns it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from engine.runtime.engine import Engine


@dataclass
class _Slot:
    engine: Engine
    leases: int = 0
    retired: bool = False


class EngineRegistry:
    """Holds the serving ``Engine``; hands out leases; swaps atomically; closes retired engines."""

    def __init__(self, engine: Engine) -> None:
        self._lock = threading.Lock()
        self._current = _Slot(engine)
        self._retired: list[_Slot] = []  # replaced engines still leased by in-flight requests
        self.swaps = 0

    @property
    def current(self) -> Engine:
        """The serving engine, without a lease: for reading pack metadata, never for evaluating."""
        return self._current.engine

    @contextmanager
    def lease(self) -> Iterator[Engine]:
        """The serving engine, guaranteed open until the ``with`` block ends."""
        with self._lock:
            slot = self._current
            slot.leases += 1
        try:
            yield slot.engine
        finally:
            self._release(slot)

    def _release(self, slot: _Slot) -> None:
        with self._lock:
            slot.leases -= 1
            done = slot.retired and slot.leases == 0 and slot in self._retired
            if done:
                self._retired.remove(slot)
        if done:
            slot.engine.close()  # outside the lock, so new leases never wait for a close

    def swap(self, engine: Engine) -> Engine:
        """Serve ``engine`` from now on; returns the engine it replaced (closed once unleased)."""
        with self._lock:
            old = self._current
            self._current = _Slot(engine)
            self.swaps += 1
            old.retired = True
            idle = old.leases == 0
            if not idle:
                self._retired.append(old)
        if idle:
            old.engine.close()
        return old.engine

    def draining(self) -> int:
        """Replaced engines still held by in-flight requests."""
        with self._lock:
            return len(self._retired)

    def close(self) -> None:
        """Shut down: close the serving engine (and any retired one) now."""
        with self._lock:
            slots = [self._current, *self._retired]
            self._retired = []
            for s in slots:
                s.retired = True
        for s in slots:
            s.engine.close()
