"""What the running app holds: the compiled engine and the audit store, behind dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from engine.audit.store import AuditStore
from engine.runtime.engine import Engine
from engine.settings import Settings


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    audit: AuditStore


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.cds
    return state


StateDep = Annotated[AppState, Depends(get_state)]
