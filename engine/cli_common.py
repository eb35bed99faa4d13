"""What every ``cdsrules`` command group shares: stderr messages and a pack that passed the gate."""

from __future__ import annotations

from pathlib import Path

import typer

from engine.compiler.model import CompiledPack


def err(msg: str) -> None:
    typer.echo(msg, err=True)


def gated_pack(rules: Path, code: int = 2) -> CompiledPack:
    """The pack at ``rules`` if the server's gate accepts it; otherwise every error and exit ``code``.

    A reviewer's cohort or an author's diff on a pack the server would refuse answers a question
    nobody asked, so the harness and authoring commands go through the same gate as ``serve``.
    """
    from engine.pipeline import Rejected, prepare

    result = prepare(rules)
    if isinstance(result, Rejected):
        for p in result.errors:
            err(str(p))
        err(f"{rules}: rule pack rejected: {len(result.errors)} error(s) (run `cdsrules lint` for hints)")
        raise typer.Exit(code)
    result.close()  # commands build the engines they need (durable and/or reference)
    return result.pack


def candidate_pack(rules: Path, code: int = 2) -> CompiledPack:
    """A pack that compiles, even if its examples or clinical lint would stop the server.

    ``cdsrules diff`` compares a draft edit before its examples are updated; refusing it would hide
    the very answer the author asks for. The gate's verdict is still said, on stderr.
    """
    from engine.compiler.pack import compile_pack
    from engine.errors import RuleSetError
    from engine.pipeline import Rejected, prepare

    try:
        pack = compile_pack(rules)
    except RuleSetError as exc:
        err(f"{rules}: {exc}")
        raise typer.Exit(code) from exc
    result = prepare(rules)
    if isinstance(result, Rejected):
        first = result.errors[0]
        err(f"note: {rules} compiles but the server would refuse it ({len(result.errors)} error(s), e.g. {first})")
    else:
        result.close()
    return pack
