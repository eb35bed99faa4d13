"""Where accepted client-JWT ids are remembered until they expire, so a captured token works once.

CDS Hooks asks for a ``jti`` on every client JWT so that a token seen once can be refused the
second time. ``MemoryReplay`` remembers them in this process: cheapest, but with ``--workers N``
(or several replicas) each process has its own memory and a captured token is accepted once per
process. ``engine.audit.seen_tokens.SeenTokens`` remembers them in the audit database, shared by
every process that writes there (``CDSRULES_REPLAY_STORE=database``, the default).

A store that cannot answer raises ``ReplayUnavailable``: the token is then refused (fail closed),
never accepted on the chance that it is new.
"""

from __future__ import annotations

import heapq
import threading
from typing import Protocol


class ReplayUnavailable(Exception):
    """The store could not say whether this ``jti`` was used before; the token must not be accepted."""


class ReplayStore(Protocol):
    def first_use(self, iss: str, jti: str, exp: float, now: float) -> bool:
        """Record (iss, jti) until ``exp``; False when it was already recorded and has not expired."""
        ...


class MemoryReplay:
    """This process's ids, evicted from a heap ordered by expiry: O(log n) per verify, no scan."""

    def __init__(self, leeway_s: float) -> None:
        self.leeway = leeway_s
        self._seen: dict[tuple[str, str], float] = {}  # (iss, jti) -> exp
        self._expiry: list[tuple[float, tuple[str, str]]] = []  # heap of (exp, key) over _seen
        self._lock = threading.Lock()

    def first_use(self, iss: str, jti: str, exp: float, now: float) -> bool:
        with self._lock:
            while self._expiry and self._expiry[0][0] + self.leeway < now:
                _, old = heapq.heappop(self._expiry)
                self._seen.pop(old, None)
            if (iss, jti) in self._seen:
                return False
            self._seen[(iss, jti)] = exp
            heapq.heappush(self._expiry, (exp, (iss, jti)))
            return True

    def __len__(self) -> int:
        return len(self._seen)
