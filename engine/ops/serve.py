"""``cdsrules serve``: one uvicorn process, or gunicorn managing N uvicorn workers.

durable-rules keeps its state per process, so scaling is by processes: each worker imports
``engine.api.asgi`` and compiles its own rule pack. Before any worker starts, this process checks
the settings, compiles the pack once (a broken pack is reported here, clearly, not N times from
inside workers) and migrates the audit database, so workers start against a schema at head.
Workers themselves never touch the database while starting (``CDSRULES_MIGRATE_ON_START`` is
set false for them): a worker that gunicorn replaces while the database is down starts
not-ready and becomes ready when the database returns, rather than exiting with a boot error,
which would make gunicorn halt the master and every healthy worker with it.

With several workers, Prometheus counters live in ``PROMETHEUS_MULTIPROC_DIR`` (created here and
removed at exit when not given) so ``/metrics`` from any worker reports the whole server.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]

from engine.settings import Settings

ASGI_APP = "engine.api.asgi:app"
WORKER_CLASS = "uvicorn_worker.UvicornWorker"
# read by prometheus-client when it is first imported, so it is set before anything imports it
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# inherited by the workers: the master migrated once, a worker's start-up must not need the database
WORKER_MIGRATE_ENV = "CDSRULES_MIGRATE_ON_START"
# compiling the pack happens inside each worker's start-up; give it room before gunicorn kills it
WORKER_TIMEOUT_S = 120


def _prepare_multiprocess_metrics() -> Path | None:
    """Point prometheus-client at a clean shared directory; returns it when we created it."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # counts from a previous run would be added to ours
            stale.unlink()
        return None
    created = Path(tempfile.mkdtemp(prefix="cdsrules-metrics-"))
    os.environ[MULTIPROC_ENV] = str(created)
    return created


def prepare(settings: Settings, host: str) -> None:
    """Everything that must happen once, before workers: safety checks, compile, migrate."""
    from engine.audit.store import AuditStore
    from engine.pipeline import prepare_or_raise
    from engine.service import safety

    safety.check(settings, host)
    prepare_or_raise(settings.rules_dir).close()  # the workers' gate: compile, clinical lint, examples
    store = AuditStore(
        settings.database_url, settings.audit_hash_key, settings.audit_store_inputs, settings.sqlite_journal_mode
    )
    try:
        store.migrate()
    finally:
        store.dispose()


def run(settings: Settings, host: str, port: int, workers: int) -> None:
    """Serve until interrupted. Raises ``UnsafeSettingsError``, ``RuleSetError`` or ``AuditError``."""
    created: Path | None = None
    if workers > 1:  # must precede the first import of prometheus_client in this process
        created = _prepare_multiprocess_metrics()
    try:
        from engine.observability.logs import configure_logging

        configure_logging(settings.log_level)
        if workers == 1:  # compile and migrate once, here, and hand the ready app to uvicorn
            import uvicorn

            from engine.api.app import create_app
            from engine.service import safety
            from engine.service.state import build_state

            safety.check(settings, host)  # the bind address; build_state checks the rest
            app = create_app(state=build_state(settings))
            uvicorn.run(
                app,
                host=host,
                port=port,
                log_config=None,
                access_log=False,
                proxy_headers=True,
                timeout_keep_alive=int(settings.keepalive_s),
            )
        else:
            prepare(settings, host)
            os.environ[WORKER_MIGRATE_ENV] = "false"
            _Gunicorn(_gunicorn_options(settings, host, port, workers)).run()
    finally:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)


def _gunicorn_options(settings: Settings, host: str, port: int, workers: int) -> dict[str, Any]:
    from gunicorn import glogging  # type: ignore[import-untyped]

    from engine.observability.logs import configure_logging
    from engine.observability.metrics import mark_worker_dead

    class JsonLogger(glogging.Logger):  # type: ignore[misc]
        """gunicorn's own lines (worker boot, exit) as JSON like everything else."""

        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            configure_logging(settings.log_level)

    def child_exit(_server: Any, worker: Any) -> None:
        mark_worker_dead(int(worker.pid))

    def post_worker_init(_worker: Any) -> None:
        # UvicornWorker rewires uvicorn's loggers when it is constructed; put JSON back in the worker
        configure_logging(settings.log_level)

    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return {
        "bind": bind,
        "workers": workers,
        "worker_class": WORKER_CLASS,
        "timeout": WORKER_TIMEOUT_S,
        "graceful_timeout": 30,
        "keepalive": int(settings.keepalive_s),  # uvicorn-worker passes it on as timeout_keep_alive
        "preload_app": False,  # each worker imports the app and compiles its own rules
        "logger_class": JsonLogger,
        "loglevel": settings.log_level.lower(),
        "accesslog": None,
        "child_exit": child_exit,
        "post_worker_init": post_worker_init,
        "proc_name": "cdsrules",
    }


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    """Embeds gunicorn so ``cdsrules serve`` needs no separate config file."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from gunicorn.util import import_app  # type: ignore[import-untyped]

        return import_app(ASGI_APP)
