"""The harness's CLI commands (``synth``, ``cohort``, ``import-fhir``), registered on the main app.

engine/cli.py only calls ``register(app)``; bodies live here so the harness can change without
touching the file other adapters edit. Progress goes to stderr (rich), results to stdout and files,
and exit codes are CI-usable: 2 for unusable input or rules, 1 when the cohort needs a human
(engine disagreement, invariant violation, invalid line), 0 otherwise.

matplotlib, Dask and rich are an optional extra (``pip install cdsrules[harness]``) so that the
service and its image do without them; a command that needs one says so in one line and exits 2.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from engine.cli_common import err, gated_pack
from engine.settings import BUNDLED_RULES

RulesOpt = Annotated[Path, typer.Option(help="Rule pack directory.")]


HARNESS_EXTRA = "cdsrules[harness]"


def _require_extra(command: str, *modules: str) -> None:
    """Exit 2 with one line when a library of the harness extra is not installed."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            err(f"install {HARNESS_EXTRA} for `cdsrules {command}` ({name} is missing)")
            raise typer.Exit(2) from exc


@contextmanager
def _progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False, disable=not console.is_terminal) as prog:
        task = prog.add_task(description, total=total)
        yield lambda n: prog.advance(task, n)


def synth(
    out: Annotated[Path, typer.Option(help="JSONL file to write (one request per line).")],
    n: Annotated[int, typer.Option("--n", min=1, help="Number of patients.")] = 1000,
    seed: Annotated[int, typer.Option(help="Same seed + same rule pack = same file.")] = 7,
    rules: RulesOpt = BUNDLED_RULES,
    describe: Annotated[bool, typer.Option(help="Print the observed distributions as JSON.")] = False,
) -> None:
    """Generate seeded synthetic patients, each ordering one of the pack's drugs."""
    from engine.harness.synth import Generator, write_jsonl

    if not out.parent.is_dir():
        err(f"--out {out}: directory {out.parent} does not exist")
        raise typer.Exit(2)
    pack = gated_pack(rules)
    gen = Generator(pack, seed)
    patients = list(gen.cohort(n))
    write_jsonl(patients, out)
    err(f"wrote {n} patients to {out} (seed {seed}, rule pack {pack.version} {pack.digest[:19]})")
    if describe:
        from engine.harness.describe import describe as describe_cohort

        typer.echo(json.dumps(describe_cohort(patients, pack.terminology.classes_of), indent=2))


def cohort(
    patients: Annotated[Path, typer.Argument(help="JSONL of requests (from synth or import-fhir).")],
    report: Annotated[Path, typer.Option(help="Directory for report.html, summary.json and PNGs.")],
    engine: Annotated[str, typer.Option(help="inprocess or dask.")] = "inprocess",
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler, e.g. tcp://host:8786.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Workers of the LocalCluster (no --scheduler).")] = 2,
    partition_size: Annotated[int, typer.Option(min=1, help="Patients per Dask task.")] = 500,
    invariants: Annotated[bool, typer.Option(help="Check single-answer safety invariants.")] = True,
    differential: Annotated[
        bool, typer.Option(help="Compare every durable-rules answer with the reference evaluator.")
    ] = True,
    rules: RulesOpt = BUNDLED_RULES,
) -> None:
    """Evaluate a cohort and write an HTML report with plots and a JSON summary.

    By default every answer is checked (differential check and safety invariants); with
    --no-differential --no-invariants only the engine's answers are counted, several times faster,
    and the report says so.
    """
    from engine.harness.cohort import Checks, read_lines, run_inprocess
    from engine.harness.report import write_report
    from engine.harness.summary import build_summary, needs_attention

    if engine not in ("inprocess", "dask"):
        err(f"--engine: expected 'inprocess' or 'dask', got {engine!r}")
        raise typer.Exit(2)
    if scheduler and engine != "dask":
        err("--scheduler needs --engine dask")
        raise typer.Exit(2)
    _require_extra("cohort", "rich", "matplotlib")
    if engine == "dask":
        _require_extra("cohort --engine dask", "dask.distributed")
    if not patients.is_file():
        err(f"{patients}: no such file")
        raise typer.Exit(2)
    pack = gated_pack(rules)
    checks = Checks(differential=differential, invariants=invariants)
    total = sum(1 for _ in read_lines(patients))
    started = time.perf_counter()
    n_workers = 0
    with _progress(f"evaluating ({engine})", total) as advance:
        if engine == "dask":
            from engine.harness.dask_runner import run_dask

            try:
                stats, n_workers = run_dask(
                    rules,
                    pack.digest,
                    read_lines(patients),
                    str(patients),
                    scheduler,
                    workers,
                    partition_size,
                    advance,
                    checks,
                    pack,
                )
            except (OSError, TimeoutError, RuntimeError) as exc:  # unreachable scheduler, pack mismatch
                err(f"dask ({scheduler or 'LocalCluster'}): {type(exc).__name__}: {exc}")
                raise typer.Exit(2) from exc
        else:
            stats = run_inprocess(pack, read_lines(patients), str(patients), advance, checks=checks)
    seconds = time.perf_counter() - started
    meta = {
        "source": str(patients),
        "engine": engine,
        "checks": checks.label,
        "scheduler": scheduler or ("LocalCluster" if engine == "dask" else None),
        "workers": n_workers or None,
        "seconds": round(seconds, 3),
        "patients_per_second": round(total / seconds, 1) if seconds else 0.0,
    }
    summary = build_summary(stats.to_state(), pack, meta)
    html = write_report(summary, report)
    r = summary["results"]
    typer.echo(
        f"{r['evaluated']} of {r['patients']} patients evaluated in {seconds:.1f} s "
        f"({meta['patients_per_second']:.0f}/s, {checks.label}); report: {html}; summary: {report / 'summary.json'}"
    )
    for w in summary["warnings"]:
        err(f"warning: {w}")
    if needs_attention(summary):
        raise typer.Exit(1)


def import_fhir(
    bundles: Annotated[list[Path], typer.Argument(help="FHIR bundle files, one patient each (R4; STU3 tolerated).")],
    out: Annotated[Path, typer.Option(help="JSONL file to write (cohort lines).")],
    drug: Annotated[
        list[str] | None,
        typer.Option(help="Order this drug for every patient (repeatable). Default: the bundle's own."),
    ] = None,
    all_drugs: Annotated[bool, typer.Option(help="One line per patient for every drug in the pack.")] = False,
    action: Annotated[str, typer.Option(help="start or stop.")] = "start",
    rules: RulesOpt = BUNDLED_RULES,
) -> None:
    """Import FHIR patient bundles (e.g. Synthea) as a cohort file for `cdsrules cohort`."""
    from engine.harness.fhir_import import FhirImportError, import_document, read_document, records
    from schemas.api import DrugRef

    pack = gated_pack(rules)
    if action not in ("start", "stop"):
        err(f"--action: expected 'start' or 'stop', got {action!r}")
        raise typer.Exit(2)
    wanted = sorted(pack.drugs) if all_drugs else []
    for name in drug or []:
        found = pack.terminology.resolve_drug(DrugRef(name=name)) & set(pack.drugs)
        if len(found) != 1:
            err(f"--drug {name!r}: not a drug of this rule pack; supported: {', '.join(sorted(pack.drugs))}")
            raise typer.Exit(2)
        wanted.append(next(iter(found)))
    wanted = list(dict.fromkeys(wanted))
    lines: list[str] = []
    failed = without_order = 0
    for path in bundles:
        try:
            imported = import_document(read_document(path), str(path), pack)
        except FhirImportError as exc:
            err(str(exc))
            failed += 1
            continue
        rows = records(imported, wanted, action)
        if not rows:
            without_order += 1
            err(f"{path}: no active order for a drug of the pack; use --drug to add one")
        lines.extend(json.dumps(r, ensure_ascii=False, sort_keys=True) for r in rows)
    out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    err(
        f"imported {len(bundles) - failed} of {len(bundles)} bundle(s) into {len(lines)} cohort line(s) in {out}"
        + (f"; {failed} could not be imported" if failed else "")
        + (f"; {without_order} without an order" if without_order else "")
    )
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("synth")(synth)
    app.command("cohort")(cohort)
    app.command("import-fhir")(import_fhir)
