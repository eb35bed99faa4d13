"""What a running service holds, built once at start-up: the serving engine, audit, decider, reloader.

The engine can be replaced by a hot reload at any moment, so code that evaluates takes a lease for
as long as it uses the engine; ``Decider`` does that for every decision. ``state.engine`` is the
serving engine without a lease, for metadata only (version, digest, drugs, terminology).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine.audit.pack_archive import PackArchive
from engine.audit.seen_tokens import SeenTokens
from engine.audit.store import AuditStore
from engine.pipeline import Prepared, log_prepared, prepare_or_raise
from engine.runtime.engine import Engine
from engine.runtime.registry import EngineRegistry
from engine.security.jwt import JwtVerifier
from engine.service import safety
from engine.service.decisions import Decider
from engine.service.reloader import Reloader
from engine.settings import Settings


@dataclass(frozen=True)
class AppState:
    settings: Settings
    rules: EngineRegistry
    audit: AuditStore
    reloader: Reloader
    decider: Decider
    verifier: JwtVerifier | None

    @property
    def engine(self) -> Engine:
        """The serving engine, unleased: read its pack, never evaluate on it (see module docstring)."""
        return self.rules.current

    def derive(self, settings: Settings, audit: AuditStore) -> AppState:
        """The same serving engine with other settings and another store (tests; one pack, many apps)."""
        return AppState(
            settings=settings,
            rules=self.rules,
            audit=audit,
            reloader=self.reloader,
            decider=Decider(self.rules, audit, _explain(settings)),
            verifier=verifier_for(settings, audit),
        )

    def close(self) -> None:
        self.reloader.stop()
        self.rules.close()
        self.audit.dispose()


def _explain(settings: Settings) -> tuple[str, str]:
    return settings.public_base_url, settings.audit_hash_key


def verifier_for(settings: Settings, audit: AuditStore) -> JwtVerifier | None:
    """The one JWT verifier of this process, its jti store per ``replay_store``; None when authentication is off."""
    if not settings.jwt_issuers:
        return None
    shared = SeenTokens(audit, settings.jwt_leeway_s) if settings.replay_store == "database" else None
    return JwtVerifier(
        issuers=settings.jwt_issuers,
        algorithms=settings.jwt_algorithms,
        leeway_s=settings.jwt_leeway_s,
        max_lifetime_s=settings.jwt_max_lifetime_s,
        jwks_timeout_s=settings.jwks_timeout_s,
        jwks_cache_s=settings.jwks_cache_s,
        refresh_cooldown_s=settings.jwks_refresh_cooldown_s,
        failure_cooldown_s=settings.jwks_failure_cooldown_s,
        max_waiters=settings.jwks_max_waiters,
        replay=shared,  # None: this process's memory
    )


def state_from(settings: Settings, prepared: Prepared, audit: AuditStore) -> AppState:
    """Assemble a state from a prepared pack and an open store (tests share one prepared pack)."""
    registry = EngineRegistry(prepared.engine)
    on_serve = _archiver(PackArchive(settings.pack_archive_dir)) if settings.pack_archive_dir else None
    if on_serve is not None:
        on_serve(prepared)
    return AppState(
        settings=settings,
        rules=registry,
        audit=audit,
        reloader=Reloader(registry, prepared, on_serve),
        decider=Decider(registry, audit, _explain(settings)),
        verifier=verifier_for(settings, audit),
    )


def _archiver(archive: PackArchive) -> Callable[[Prepared], None]:
    def keep(p: Prepared) -> None:
        archive.keep_quietly(p.root, p.pack.digest)

    return keep


def build_state(settings: Settings, *, migrate: bool = True) -> AppState:
    """Check settings, pass the pack through the gate, open (and migrate) the store; raises on any error."""
    safety.check(settings)  # the bind address is checked by `cdsrules serve`, which knows it
    prepared = prepare_or_raise(settings.rules_dir)  # the gate every reload passes too
    log_prepared(prepared)
    audit = AuditStore(
        settings.database_url, settings.audit_hash_key, settings.audit_store_inputs, settings.sqlite_journal_mode
    )
    if migrate:
        audit.migrate()  # Alembic to head, under a lock: workers and replicas may start together
    return state_from(settings, prepared, audit)
