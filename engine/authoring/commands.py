"""Rule-author commands (``docs``, ``diff``), registered on the main CLI by ``register(app)``.

engine/cli.py only calls ``register``; the bodies live here so authoring tools can grow without
touching the file other adapters edit. Exit codes: 2 for unusable rules or input, 1 for
``diff --fail-on-change`` when advice changed, 0 otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from engine.cli_common import candidate_pack, err
from engine.errors import RuleSetError
from engine.settings import BUNDLED_RULES


def docs(
    out: Annotated[Path, typer.Option(help="Directory to write the Markdown pages into.")] = Path("site"),
    rules: Annotated[Path, typer.Option(help="Rule pack directory.")] = BUNDLED_RULES,
    check: Annotated[bool, typer.Option(help="Write nothing; exit 1 if OUT differs from the rules.")] = False,
) -> None:
    """Generate a page per rule and an index per drug from the rule files (deterministic)."""
    from engine.authoring.docs import render_docs, write_docs

    try:
        if check:
            pages = render_docs(rules)
            stale = sorted(rel for rel, text in pages.items() if _read(out / rel) != text)
            extra = sorted(
                p.relative_to(out).as_posix() for p in out.rglob("*.md") if p.relative_to(out).as_posix() not in pages
            )
            for rel in (stale + extra)[:20]:
                typer.echo(f"out of date: {out / rel}")
            if len(stale + extra) > 20:
                typer.echo(f"... and {len(stale + extra) - 20} more")
            if stale or extra:
                err(f"docs differ from the rules; run `cdsrules docs --out {out}`")
                raise typer.Exit(1)
            return
        written = write_docs(rules, out)
    except RuleSetError as exc:
        err(str(exc))
        raise typer.Exit(2) from exc
    err(f"wrote {len(written)} pages under {out}")


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None


def diff(
    old: Annotated[Path, typer.Argument(help="Rule pack before the edit.")],
    new: Annotated[Path, typer.Argument(help="Rule pack after the edit.")],
    cohort: Annotated[Path, typer.Option(help="JSONL of POST /v1/evaluate bodies (optional 'id').")],
    fmt: Annotated[str, typer.Option("--format", help="text or json")] = "text",
    backend: Annotated[str, typer.Option(help="durable (as served) or reference")] = "durable",
    limit: Annotated[int, typer.Option(min=0, help="Patients listed in text output.")] = 20,
    fail_on_change: Annotated[bool, typer.Option(help="Exit 1 when any patient's advice changes.")] = False,
) -> None:
    """What changes for real patients if this edit ships: per patient and per rule."""
    from engine.authoring.diff import diff_cohort

    if backend not in ("durable", "reference"):
        err("--backend is durable or reference")
        raise typer.Exit(2)
    if not cohort.is_file():
        err(f"{cohort}: no such file")
        raise typer.Exit(2)
    report = diff_cohort(
        candidate_pack(old), candidate_pack(new), cohort, "durable" if backend == "durable" else "reference"
    )
    data = report.as_dict()
    if fmt == "json":
        typer.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        typer.echo(render_text(data, limit))
    for bad in report.invalid:
        err(f"{cohort}:{bad['line']}: invalid request: {bad['error']}")
    if fail_on_change and report.changes:
        raise typer.Exit(1)


def _dose(d: list[float] | tuple[float, float] | None) -> str:
    return f"{d[0]:g} mg/day (max {d[1]:g})" if d else "none"


def render_text(data: dict[str, object], limit: int) -> str:
    d = data
    old, new, rules, dose = d["old"], d["new"], d["rules"], d["dose"]
    assert isinstance(old, dict) and isinstance(new, dict) and isinstance(rules, dict) and isinstance(dose, dict)
    lines = [
        f"old {old['version']} {old['digest'][:19]}  ->  new {new['version']} {new['digest'][:19]}",
        f"rules: {len(rules['added'])} added, {len(rules['removed'])} removed, {len(rules['modified'])} modified",
    ]
    lines += [f"  + {r}" for r in rules["added"]] + [f"  - {r}" for r in rules["removed"]]
    lines += [f"  ~ {r}" for r in rules["modified"]]
    invalid = d["invalid_lines"]
    assert isinstance(invalid, list)
    lines.append(f"cohort: {d['patients']} patients ({len(invalid)} invalid lines), {d['changed_patients']} changed")
    lines.append(
        f"dose: {dose['changed']} changed (start lower {dose['start_lower']}, higher {dose['start_higher']}, "
        f"max only {dose['max_changed_only']}, withheld now {dose['withheld_now']}, given now {dose['given_now']})"
    )
    per_rule = d["per_rule"]
    assert isinstance(per_rule, dict)
    if per_rule:
        cols = ("fires_added", "fires_removed", "findings_added", "findings_removed", "dose_changed")
        width = max(len(r) for r in per_rule)
        lines.append("per rule:".ljust(width + 2) + "  ".join(c.replace("_", " ") for c in cols))
        for rid, counts in per_rule.items():
            cells = "  ".join(str(counts.get(c, 0)).rjust(len(c)) for c in cols)
            lines.append(f"  {rid.ljust(width)}{cells}")
    changes = d["changes"]
    assert isinstance(changes, list)
    for c in changes[:limit]:
        parts = []
        if c["dose_changed"]:
            parts.append(f"dose {_dose(c['dose_before'])} -> {_dose(c['dose_after'])}")
        parts += [f"+fires {r}" for r in c["fires_added"]] + [f"-fires {r}" for r in c["fires_removed"]]
        parts += [f"+{cat}/{sev} ({r})" for r, cat, sev in c["findings_added"]]
        parts += [f"-{cat}/{sev} ({r})" for r, cat, sev in c["findings_removed"]]
        if c["error_before"] != c["error_after"]:
            parts.append(f"error: {c['error_before']} -> {c['error_after']}")
        who = f"line {c['line']}" + (f" ({c['id']})" if c["id"] else "")
        lines.append(f"  {who} {c['drug']}: " + "; ".join(parts))
    if len(changes) > limit:
        lines.append(f"  ... and {len(changes) - limit} more (--limit, or --format json)")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    app.command()(docs)
    app.command()(diff)
