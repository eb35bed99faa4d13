"""``cdsrules audit ...``: read the decision log from the command line (export, migrate).

Kept apart from ``engine/cli.py`` so the audit commands stay one idea in one file; ``cli.py``
mounts this Typer group as ``audit``.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from engine.errors import CdsRulesError
from engine.settings import Settings

if TYPE_CHECKING:  # the store imports prometheus-client, which `serve` must configure first
    from engine.audit.export import Format
    from engine.audit.store import AuditStore

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Read and maintain the decision audit log.")

DbOpt = Annotated[
    str | None, typer.Option("--database-url", help="SQLAlchemy URL (default: CDSRULES_DATABASE_URL / settings).")
]


def _when(value: str | None, name: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 date or date-time", param_hint=name) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _store(database_url: str | None) -> AuditStore:
    from engine.audit.store import AuditStore

    settings = Settings()
    return AuditStore(
        database_url or settings.database_url,
        settings.audit_hash_key,
        settings.audit_store_inputs,
        settings.sqlite_journal_mode,
    )


@app.command("export")
def export_cmd(
    since: Annotated[str | None, typer.Option(help="From this ISO date/time (UTC unless an offset is given).")] = None,
    until: Annotated[str | None, typer.Option(help="Before this ISO date/time.")] = None,
    rule_id: Annotated[str | None, typer.Option("--rule-id", help="Only decisions in which this rule fired.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
    database_url: DbOpt = None,
) -> None:
    """Export decisions, oldest first, as JSON Lines or CSV."""
    from engine.audit.export import export

    if fmt not in ("jsonl", "csv"):
        raise typer.BadParameter("must be jsonl or csv", param_hint="--format")
    start, end = _when(since, "--since"), _when(until, "--until")
    form = cast("Format", fmt)
    store = _store(database_url)
    try:
        if out is None:
            n = export(store, sys.stdout, form, start, end, rule_id)
        else:
            with out.open("w", encoding="utf-8", newline="") as fh:
                n = export(store, fh, form, start, end, rule_id)
    except CdsRulesError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except Exception as exc:  # a database that is down or has no audit tables: say so, no traceback
        typer.echo(f"error: cannot read the audit log: {type(exc).__name__}", err=True)
        raise typer.Exit(2) from exc
    finally:
        store.dispose()
    typer.echo(f"exported {n} decision(s)", err=True)


@app.command("migrate")
def migrate_cmd(database_url: DbOpt = None) -> None:
    """Bring the audit database to the newest schema (the server also does this at start-up)."""
    from engine.audit import migrate

    store = _store(database_url)
    try:
        store.migrate()
        typer.echo(f"audit schema at {migrate.current_revision(store.engine)} ({store.backend})", err=True)
    except CdsRulesError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    finally:
        store.dispose()


@app.command("report")
def report_cmd(
    out: Annotated[Path, typer.Option(help="Directory for report.html, summary.json and the figures.")],
    since: Annotated[str | None, typer.Option(help="Cards shown from this ISO date/time (UTC by default).")] = None,
    until: Annotated[str | None, typer.Option(help="Cards shown before this ISO date/time.")] = None,
    rule_id: Annotated[str | None, typer.Option("--rule-id", help="Only this rule's cards.")] = None,
    database_url: DbOpt = None,
) -> None:
    """Override analytics: shown, accepted, overridden and why, per rule, per week and per pack version."""
    from engine.audit.analytics import Period, summary
    from engine.audit.report import write_report

    period = Period(_when(since, "--since"), _when(until, "--until"), rule_id)
    store = _store(database_url)
    try:
        result = summary(store.engine, period)
    except Exception as exc:  # a database that is down or not migrated: say so, no traceback
        typer.echo(f"error: cannot read the audit log: {type(exc).__name__}: {_short(exc)}", err=True)
        raise typer.Exit(2) from exc
    finally:
        store.dispose()
    path = write_report(result, out)
    t = result["totals"]
    typer.echo(f"{t['shown']} card(s) shown, {t['accepted']} accepted, {t['overridden']} overridden; {path}", err=True)


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else ""


@app.command("replay")
def replay_cmd(
    decision_id: Annotated[str | None, typer.Argument(help="Replay this one decision (else a period).")] = None,
    rules: Annotated[
        Path | None,
        typer.Option(help="Candidate pack (a period), or the current pack (one decision; default: settings)."),
    ] = None,
    since: Annotated[str | None, typer.Option(help="Decisions from this ISO date/time.")] = None,
    until: Annotated[str | None, typer.Option(help="Decisions before this ISO date/time.")] = None,
    out: Annotated[Path | None, typer.Option(help="Directory for replay.json and replay.txt (a period).")] = None,
    archive: Annotated[Path | None, typer.Option(help="Pack archive (default: CDSRULES_PACK_ARCHIVE_DIR).")] = None,
    database_url: DbOpt = None,
) -> None:
    """Re-run stored requests on another pack: what would change (never writes the log, never calls an EHR)."""
    import json

    from engine.audit.pack_archive import PackArchive
    from engine.audit.replay import replay_one, replay_period
    from engine.authoring.commands import render_text
    from engine.cli_common import candidate_pack

    settings = Settings()
    store = _store(database_url)
    try:
        if decision_id is not None:
            where = archive or settings.pack_archive_dir
            one = replay_one(
                store, decision_id, candidate_pack(rules or settings.rules_dir), PackArchive(where) if where else None
            )
            text = json.dumps(one.as_dict(), indent=2, sort_keys=True)
            if out is not None:
                out.mkdir(parents=True, exist_ok=True)
                (out / "replay.json").write_text(text + "\n", encoding="utf-8")
            typer.echo(text)
            if not one.reproduced:
                typer.echo(f"error: decision {decision_id} does not reproduce on its recorded pack", err=True)
                raise typer.Exit(1)
            return
        if rules is None or out is None:
            raise typer.BadParameter("a period replay needs --rules (the candidate pack) and --out")
        data = replay_period(store, candidate_pack(rules), _when(since, "--since"), _when(until, "--until"))
    except CdsRulesError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    finally:
        store.dispose()
    out.mkdir(parents=True, exist_ok=True)
    (out / "replay.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    r = data["replay"]
    summary_text = render_text(data, 20)
    head = f"replayed {r['decisions']} decision(s), {r['evaluations']} evaluation(s); "
    head += f"{r['without_stored_input']} decision(s) without a stored input were skipped\n"
    (out / "replay.txt").write_text(head + summary_text + "\n", encoding="utf-8")
    typer.echo(head + summary_text)
