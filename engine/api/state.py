"""What the running app holds: the serving engine (swappable), the audit store, behind dependencies.

The engine can be replaced by a hot reload at any moment, so code that evaluates must hold a
lease for as long as it uses the engine: routes declare ``engine: EngineDep``; other code (CDS
Hooks, background work) writes ``with state.rules.lease() as engine: ...``. ``state.engine`` is
the serving engine without a lease, for metadata only (version, digest, drugs, terminology).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from engine.audit.store import AuditStore
from engine.authoring.reload import Reloader
from engine.runtime.engine import Engine
from engine.runtime.registry import EngineRegistry
from engine.settings import Settings


@dataclass
class AppState:
    settings: Settings
    rules: EngineRegistry
    audit: AuditStore
    reloader: Reloader

    @property
    def engine(self) -> Engine:
        """The serving engine, unleased: read its pack, never evaluate on it (see module docstring)."""
        return self.rules.current


# Both dependencies are ``async`` on purpose: they never block (the lease is a counter under a
# lock), and FastAPI runs a plain ``def`` dependency in the thread pool, a hop that cost more CPU
# per request than the rule engine.


async def state_dependency(request: Request) -> AppState:
    return get_state(request)


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.cds
    return state


async def leased_engine(request: Request) -> AsyncIterator[Engine]:
    """The serving engine, kept open until the response is done even if a reload swaps it."""
    with get_state(request).rules.lease() as engine:
        yield engine


StateDep = Annotated[AppState, Depends(state_dependency)]
EngineDep = Annotated[Engine, Depends(leased_engine)]
