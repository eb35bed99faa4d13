"""The ``cdsrules`` command line: serve, eval, lint, test, schema.

Rule authors live here: ``lint`` prints ``file:line: code: message`` and ``test`` runs the
examples beside the rules, both with exit codes CI can rely on.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from engine.errors import CdsRulesError, RuleProblem, RuleSetError
from engine.settings import BUNDLED_RULES, Settings

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


@app.command("eval")
def eval_cmd(
    request_file: Annotated[Path, typer.Argument(help="JSON body as for POST /v1/evaluate ('-' for stdin).")],
    rules: Annotated[Path, typer.Option(help="Rule pack directory.")] = BUNDLED_RULES,
) -> None:
    """Evaluate one request and print the same JSON as the API."""
    from engine.compiler.pack import compile_ruleset
    from engine.runtime.engine import Engine
    from schemas.api import EvaluateRequest

    text = sys.stdin.read() if str(request_file) == "-" else request_file.read_text(encoding="utf-8")
    try:
        req = EvaluateRequest.model_validate_json(text)
    except ValidationError as exc:
        from engine.api.problems import validation_problems

        for p in validation_problems([dict(e) for e in exc.errors()]):
            _err(f"{request_file}: {p.pointer or '/'}: {p.message}")
        raise typer.Exit(2) from exc
    try:
        engine = Engine(compile_ruleset(rules))
        resp = engine.evaluate(req)
    except RuleSetError as exc:
        _err(str(exc))
        raise typer.Exit(2) from exc
    except CdsRulesError as exc:
        _err(f"{request_file}: {exc}")
        raise typer.Exit(2) from exc
    typer.echo(resp.model_dump_json(indent=2))


def _print_problems(problems: list[RuleProblem], fmt: str) -> None:
    if fmt == "json":
        rows = [
            {
                "file": p.file,
                "line": p.line,
                "code": p.code,
                "severity": p.severity,
                "message": p.message,
                "hint": p.hint,
            }
            for p in sorted(problems)
        ]
        typer.echo(json.dumps(rows, indent=2))
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
) -> None:
    """Check a rule pack (schema, terminology, clinical logic: docs/errors.md); exit 1 if it would not load."""
    from engine.authoring.checks import check_pack

    pack, problems = check_pack(rules)
    _print_problems(problems, fmt)
    errors = [p for p in problems if p.severity == "error" or strict]
    if fmt == "text":
        status = "FAILED" if errors else "ok"
        summary = f"{len(pack.rules)} rules, {len(pack.drugs)} drugs" if pack else "not loaded"
        _err(f"lint {status}: {len(errors)} error(s), {len(problems) - len(errors)} warning(s); {summary}")
    if errors:
        raise typer.Exit(1)


@app.command()
def test(
    rules: RulesArg = BUNDLED_RULES,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Print failures only.")] = False,
) -> None:
    """Run every rule file's examples; exit 1 on any failure or when there are none."""
    from engine.authoring.examples import run_examples
    from engine.compiler.pack import compile_ruleset
    from engine.runtime.engine import Engine

    try:
        pack = compile_ruleset(rules)
    except RuleSetError as exc:
        _err(str(exc))
        raise typer.Exit(1) from exc
    engine = Engine(pack)
    results = run_examples(engine, pack.examples)
    failed = [r for r in results if not r.passed]
    for r in results:
        if r.passed and not quiet:
            typer.echo(f"PASS {r.where} {r.example.example.name}")
        elif not r.passed:
            typer.echo(f"FAIL {r.where} {r.example.example.name}")
            for f in r.failures:
                typer.echo(f"     {f}")
    untested = sorted(set(pack.rules) - {rid for r in results for rid in r.fired})
    typer.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if untested:
        _err(f"note: {len(untested)} rule(s) fire in no example: {', '.join(untested)}")
    if not results:
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


def main() -> None:
    app()
