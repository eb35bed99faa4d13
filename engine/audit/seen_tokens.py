"""Accepted client-JWT ids in the audit database: one replay check for every worker and replica.

The insert is the check: (iss, jti) is the primary key, so of two processes verifying the same
token at once exactly one inserts and the other is told it is a replay, with no read-then-write
race. A row whose token has expired (``exp`` plus the clock leeway) no longer refuses anything;
the insert takes it over, and a periodic delete through the ``exp`` index removes such rows, at
most once a minute per process, in the transaction of a verify that is writing anyway.

Any database error is ``ReplayUnavailable``: the token is refused with a 503, as a decision that
cannot be recorded is, never accepted unchecked.
"""

from __future__ import annotations

import threading
from typing import Any, cast

from sqlalchemy import Table, delete, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from engine.audit.models import SeenTokenRow
from engine.audit.store import AuditStore
from engine.security.replay import ReplayUnavailable

PRUNE_EVERY_S = 60.0
_TABLE = cast(Table, SeenTokenRow.__table__)


class SeenTokens:
    def __init__(self, store: AuditStore, leeway_s: float, prune_every_s: float = PRUNE_EVERY_S) -> None:
        self.store = store
        self.leeway = leeway_s
        self._prune_every = prune_every_s
        self._next_prune = 0.0
        self._lock = threading.Lock()

    def _statement(self, iss: str, jti: str, exp: float, cutoff: float) -> Any:
        values = {"iss": iss, "jti": jti, "exp": exp}
        backend = self.store.backend
        if backend not in ("sqlite", "postgresql"):
            return insert(_TABLE).values(**values)  # a duplicate is an IntegrityError below
        dialect_insert = sqlite_insert if backend == "sqlite" else pg_insert
        stmt = dialect_insert(_TABLE).values(**values)
        # an expired row is taken over; a live one is left alone and returns nothing: a replay
        return stmt.on_conflict_do_update(
            index_elements=["iss", "jti"], set_={"exp": exp}, where=_TABLE.c.exp < cutoff
        ).returning(_TABLE.c.jti)

    def _prune_due(self, now: float) -> bool:
        with self._lock:
            if now < self._next_prune:
                return False
            self._next_prune = now + self._prune_every
            return True

    def first_use(self, iss: str, jti: str, exp: float, now: float) -> bool:
        cutoff = now - self.leeway
        stmt = self._statement(iss, jti, exp, cutoff)
        try:
            with self.store.write_lock, self.store.engine.begin() as conn:
                result = conn.execute(stmt)
                first = result.first() is not None if result.returns_rows else True
                if self._prune_due(now):
                    conn.execute(delete(_TABLE).where(_TABLE.c.exp < cutoff))
        except IntegrityError:
            return False  # backends without ON CONFLICT: the primary key refused the second insert
        except (SQLAlchemyError, OSError) as exc:
            raise ReplayUnavailable(f"replay store unavailable: {type(exc).__name__}") from exc
        return first
