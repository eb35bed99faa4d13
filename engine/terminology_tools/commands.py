"""``cdsrules terminology``: import a deployer's value sets and RxNorm release; show coverage.

An import never edits the serving pack in place: the new file is written into a copy of the pack,
the copy goes through the one gate (``engine.pipeline.prepare``: compile, lint, every example), and
only a copy that passes has its file moved into place with an atomic rename. A running server with
``--reload-rules`` then picks the change up through its own gate; a broken import changes nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
import yaml

from engine.pipeline import Prepared, Rejected, prepare
from engine.settings import BUNDLED_RULES
from engine.terminology.imports import (
    IMPORTED_DIR,
    RXNORM_FILE,
    Domain,
    ImportError_,
    read_value_set,
    release_from_folder,
    rxnorm_from_release,
    rxnorm_json,
    value_set_yaml,
)
from engine.terminology_tools import coverage as cov
from schemas.terminology import RxNormFile, ValueSetFile

app = typer.Typer(no_args_is_help=True, help="Deployer terminology: import value sets and RxNorm; coverage.")
import_app = typer.Typer(no_args_is_help=True, help="Import licensed terminology into a rule pack (gated).")
app.add_typer(import_app, name="import")

RulesOpt = Annotated[Path, typer.Option("--rules", help="Rule pack directory.")]
IMPORT_REFUSED = 2  # bad input: nothing was tried
GATE_REJECTED = 1  # the pack with the import would be refused: nothing was changed


def _err(msg: str) -> None:
    typer.echo(msg, err=True)


class GateRefused(Exception):
    def __init__(self, result: Rejected) -> None:
        super().__init__(f"{len(result.errors)} error(s)")
        self.result = result


def install(rules: Path, rel: Path, content: str) -> Prepared:
    """Write ``content`` at ``rules/rel`` only if the pack with it passes the gate; return the verdict.

    The copy lives beside the pack (same filesystem), so the final ``os.replace`` is atomic: a reader
    sees the old file or the new one, never half of either. Raises ``GateRefused`` (pack untouched).
    """
    rules = rules.resolve()
    with tempfile.TemporaryDirectory(prefix=".cdsrules-import-", dir=rules.parent) as tmp:
        trial = Path(tmp) / rules.name
        shutil.copytree(rules, trial, symlinks=True)
        target = trial / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        result = prepare(trial)
        if isinstance(result, Rejected):
            raise GateRefused(result)
        result.close()
        final = rules / rel
        final.parent.mkdir(parents=True, exist_ok=True)
        staged = final.with_name(f".{final.name}.importing")
        shutil.copyfile(target, staged)
        os.replace(staged, final)
        return result


def _collisions(rules: Path, vs: ValueSetFile, rel: Path) -> str | None:
    """A value set id already defined elsewhere in the pack (a re-import of the same file is fine)."""
    for c in cov.catalogue(rules).values():
        others = [f for f in c.files if f != rel.as_posix()]
        if c.id == vs.id and others:
            return f"value set id {vs.id!r} is already defined in {', '.join(others)}; pick another --id"
    return None


def _report_gate(result: Prepared | Rejected) -> None:
    if isinstance(result, Prepared):
        warnings = len(result.warnings)
        typer.echo(f"gate: passed ({len(result.examples)} examples, {warnings} warning(s)); digest {result.digest}")
        return
    for p in result.errors:
        _err(str(p))
    _err(f"gate: REJECTED ({len(result.errors)} error(s)); the pack was not changed")


def _run_install(rules: Path, rel: Path, content: str) -> None:
    try:
        result = install(rules, rel, content)
    except GateRefused as refused:
        _report_gate(refused.result)
        raise typer.Exit(GATE_REJECTED) from refused
    typer.echo(f"wrote {rules / rel}")
    _report_gate(result)


@import_app.command("valueset")
def import_valueset(
    file: Annotated[Path, typer.Argument(help="FHIR R4 ValueSet JSON with an expansion.")],
    domain: Annotated[
        str, typer.Option("--domain", help="condition (SNOMED CT/ICD-10-CM) or medication (RxNorm/NDC).")
    ],
    vs_id: Annotated[
        str | None, typer.Option("--id", help="Value set id rules use (default: from ValueSet.name).")
    ] = None,
    rules: RulesOpt = BUNDLED_RULES,
) -> None:
    """Import a value set expansion as terminology/imported/valueset-<id>.yaml, through the gate."""
    if domain not in ("condition", "medication"):
        _err(f"--domain must be condition or medication, not {domain!r}")
        raise typer.Exit(IMPORT_REFUSED)
    the_domain: Domain = "condition" if domain == "condition" else "medication"
    try:
        vs = read_value_set(file, vs_id, the_domain)
    except ImportError_ as exc:
        _err(str(exc))
        raise typer.Exit(IMPORT_REFUSED) from exc
    rel = IMPORTED_DIR / f"valueset-{vs.id}.yaml"
    clash = _collisions(rules, vs, rel)
    if clash:
        _err(f"{file}: {clash}")
        raise typer.Exit(IMPORT_REFUSED)
    content = value_set_yaml(vs)
    ValueSetFile.model_validate(yaml.safe_load(content))  # what the loader will read back
    counts = ", ".join(f"{g.system} {len(g.codes)}" for g in vs.members)
    src = vs.sources[0]
    typer.echo(f"value set {vs.id} ({vs.domain}): {counts}; source {src.label}, OID {src.oid}, version {src.version}")
    _run_install(rules, rel, content)


@import_app.command("rxnorm")
def import_rxnorm(
    rrf_dir: Annotated[Path, typer.Argument(help="RxNorm release rrf/ folder (RXNCONSO.RRF, RXNREL.RRF, RXNSAT.RRF).")],
    release: Annotated[
        str | None, typer.Option(help="Release date, e.g. 2026-11-03 (default: from the folder name).")
    ] = None,
    rules: RulesOpt = BUNDLED_RULES,
) -> None:
    """Import an RxNorm release as terminology/imported/rxnorm.json, through the gate."""
    try:
        rx = rxnorm_from_release(rrf_dir, release or release_from_folder(rrf_dir))
    except ImportError_ as exc:
        _err(str(exc))
        raise typer.Exit(IMPORT_REFUSED) from exc
    content = rxnorm_json(rx)
    RxNormFile.model_validate_json(content)
    ttys = Counter(p.tty for p in rx.products)
    ndcs = sum(len(p.ndc) for p in rx.products)
    by_tty = ", ".join(f"{t} {n}" for t, n in sorted(ttys.items())) or "none"
    typer.echo(
        f"RxNorm {rx.release}: {len(rx.ingredients)} ingredients, {len(rx.products)} products ({by_tty}), {ndcs} NDCs"
    )
    if rx.sources[0].note:
        typer.echo(f"note: {rx.sources[0].note}")
    _run_install(rules, IMPORTED_DIR / RXNORM_FILE, content)


@app.command("coverage")
def coverage_cmd(
    rules: RulesOpt = BUNDLED_RULES,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of text.")] = False,
) -> None:
    """Per value set: members by system and source, the rules using it, and which rely on text alone."""
    result = prepare(rules)
    pack = result.pack if isinstance(result, Prepared) else None
    rows = cov.coverage(rules, pack)
    if isinstance(result, Prepared):
        result.close()
    else:
        _err("note: the pack is rejected by the gate; rule usage is not shown (run `cdsrules lint`)")
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in rows], indent=2))
    else:
        typer.echo(cov.render_text(rows), nl=False)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="terminology")
