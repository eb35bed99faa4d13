"""The ``cdsrules`` command line: serve, eval, lint, test, schema (and the audit, harness, authoring and
terminology groups).

Rule authors live here: ``lint`` runs the server's own gate (``engine.pipeline.prepare``) and
prints ``file:line: code: message``, ``test`` prints each example's PASS/FAIL from that same gate,
and ``eval`` answers one request on the engine the gate built; exit codes CI can rely on.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from engine.errors import CdsRulesError, RuleProblem
from engine.pipeline import Prepared, Rejected, prepare
from engine.settings import BUNDLED_RULES, Settings
from engine.validation import locate

app = typer.Typer(add_completion=False, no_args_is_help=True, help="cdsrules: clinical decision-support rules.")

RulesArg = Annotated[Path, typer.Argument(help="Rule pack directory.")]


def _err(msg: str) -> None:
    typer.echo(msg, err=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PORT", help="Port (PORT env var).")] = 8000,
    rules: Annotated[Path | None, typer.Option(help="Rule pack directory.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes; each compiles its own rules.")] = 1,
    reload_rules: Annotated[bool, typer.Option(help="Watch the rules directory; hot-reload clean edits.")] = False,
) -> None:
    """Serve the HTTP API until interrupted (gunicorn with uvicorn workers when --workers > 1)."""
    import os

    from engine.ops import serve as serving

    if rules is not None:
        os.environ["CDSRULES_RULES_DIR"] = str(rules)
    if reload_rules:  # through the environment so every worker process starts its own watcher
        os.environ["CDSRULES_RELOAD_RULES"] = "true"
    settings = Settings()
    try:  # safety checks, one compile (a broken pack is reported here, not per worker), migrations
        serving.run(settings, host, port, workers)
    except CdsRulesError as exc:  # broken pack, unsafe settings, unusable audit database
        _err(str(exc))
        raise typer.Exit(2) from exc


def _prepared(rules: Path, code: int) -> Prepared:
    """The gate every entry point shares; its errors printed and exit ``code`` when it rejects."""
    result = prepare(rules)
    if isinstance(result, Rejected):
        _print_problems(list(result.problems), "text")
        _err(f"rule pack rejected: {len(result.errors)} error(s)")
        raise typer.Exit(code)
    return result


@app.command("eval")
def eval_cmd(
    request_file: Annotated[Path, typer.Argument(help="JSON body as for POST /v1/evaluate ('-' for stdin).")],
    rules: Annotated[Path, typer.Option(help="Rule pack directory.")] = BUNDLED_RULES,
) -> None:
    """Evaluate one request and print the same JSON as the API."""
    from schemas.api import EvaluateRequest

    text = sys.stdin.read() if str(request_file) == "-" else request_file.read_text(encoding="utf-8")
    try:
        req = EvaluateRequest.model_validate_json(text)
    except ValidationError as exc:
        for bad in locate(exc, EvaluateRequest):
            _err(f"{request_file}: {bad.pointer or '/'}: {bad.message}")
        raise typer.Exit(2) from exc
    prepared = _prepared(rules, 2)
    try:
        resp = prepared.engine.evaluate(req)
    except CdsRulesError as exc:
        _err(f"{request_file}: {exc}")
        raise typer.Exit(2) from exc
    finally:
        prepared.close()
    typer.echo(resp.model_dump_json(indent=2))


def _print_problems(problems: list[RuleProblem], fmt: str) -> None:
    if fmt == "json":
        typer.echo(json.dumps([p.as_dict() for p in sorted(problems)], indent=2))
        return
    for p in sorted(problems):
        typer.echo(f"{p}" + (f" [{p.severity}]" if p.severity != "error" else ""))
        if p.hint:
            typer.echo(f"    how to fix: {p.hint}")


@app.command()
def lint(
    rules: RulesArg = BUNDLED_RULES,
    fmt: Annotated[str, typer.Option("--format", help="text or json")] = "text",
    strict: Annotated[bool, typer.Option(help="Treat warnings as errors.")] = False,
    timings: Annotated[bool, typer.Option(help="Print how long each stage of the gate took.")] = False,
) -> None:
    """Run the server's gate on a rule pack (docs/errors.md); exit 1 if the server would refuse it."""
    result = prepare(rules)
    problems = list(result.problems)
    _print_problems(problems, fmt)
    errors = [p for p in problems if p.severity == "error" or strict]
    if fmt == "text":
        status = "FAILED" if errors else "ok"
        if isinstance(result, Prepared):
            pack = result.pack
            summary = f"{len(pack.rules)} rules, {len(pack.drugs)} drugs, {len(result.examples)} examples pass"
        else:
            summary = "the server would refuse this pack"
        _err(f"lint {status}: {len(errors)} error(s), {len(problems) - len(errors)} warning(s); {summary}")
        if timings:
            for t in result.timings:
                _err(
                    f"  {t.stage:<15} {t.seconds * 1000:8.1f} ms  {t.problems} problem(s)"
                    + ("" if t.ran else "  (skipped)")
                )
    if isinstance(result, Prepared):
        result.close()
    if errors:
        raise typer.Exit(1)


@app.command()
def test(
    rules: RulesArg = BUNDLED_RULES,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Print failures only.")] = False,
) -> None:
    """Run every rule file's examples (through the same gate); exit 1 on any failure or when there are none."""
    result = prepare(rules)
    for r in result.examples:
        if r.passed and not quiet:
            typer.echo(f"PASS {r.where} {r.example.example.name}")
        elif not r.passed:
            typer.echo(f"FAIL {r.where} {r.example.example.name}")
            for f in r.failures:
                typer.echo(f"     {f}")
    failed = [r for r in result.examples if not r.passed]
    if isinstance(result, Rejected) and not result.examples:
        _print_problems(list(result.errors), "text")
        _err("rule pack rejected before its examples could run")
        raise typer.Exit(1)
    typer.echo(f"{len(result.examples) - len(failed)} passed, {len(failed)} failed")
    if isinstance(result, Prepared):
        untested = sorted(p.message.split(" ")[0] for p in result.warnings if p.code == "W601")
        if untested:
            _err(f"note: {len(untested)} rule(s) fire in no example: {', '.join(untested)}")
        result.close()
    elif not failed:  # rejected for something other than its examples (e.g. durable-rules refused it)
        _print_problems(list(result.errors), "text")
        raise typer.Exit(1)
    if not result.examples:
        _err("no examples found")
        raise typer.Exit(1)
    if failed:
        raise typer.Exit(1)


@app.command()
def schema(
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
    rules: Annotated[Path, typer.Option(help="Rule pack whose derived facts and monitoring names to include.")] = (
        BUNDLED_RULES
    ),
) -> None:
    """Print the JSON Schema of rule files."""
    from engine.schema_export import rule_file_schema

    text = json.dumps(rule_file_schema(rules), indent=2, sort_keys=True) + "\n"
    if out:
        out.write_text(text, encoding="utf-8")
    else:
        typer.echo(text, nl=False)


from engine.ops.cli_audit import app as audit_app  # noqa: E402  (kept beside its registration)

app.add_typer(audit_app, name="audit")


from engine.harness.commands import register as register_harness  # noqa: E402  (synth, cohort, import-fhir)

register_harness(app)


from engine.authoring.commands import register as register_authoring  # noqa: E402  (docs, diff)

register_authoring(app)


from engine.terminology_tools.commands import register as register_terminology  # noqa: E402  (import, coverage)

register_terminology(app)


def main() -> None:
    app()
