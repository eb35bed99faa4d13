"""The author page (``/author``): browse a drug's rules with their sources, try a patient, see why.

Pharmacists keeping the rules current need to see at once what a rule does to a patient. The page
is server-rendered (jinja2, autoescaped) from the pack that is serving now, with a small vanilla
script (no build step, nothing fetched from the network) that posts the form to ``/v1/evaluate``
and shows the dose, findings, monitoring and the trace of which rules fired and on which values.
A rule's examples load into the form with one click.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from engine.api.deps import StateDep
from engine.authoring.explain import Explainer
from engine.compiler.model import SHARED, CompiledPack
from schemas.rulefile import Then

STATIC = Path(__file__).resolve().parent / "author_static"
_env = Environment(loader=FileSystemLoader(STATIC), autoescape=select_autoescape(["html"]), keep_trailing_newline=True)

router = APIRouter(tags=["author"], include_in_schema=False)


def _safe_json(value: Any) -> str:
    """JSON for a <script type="application/json"> block: '<' escaped so no tag can close it."""
    return json.dumps(value, sort_keys=True).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page_model(pack: CompiledPack, drug: str) -> dict[str, Any]:
    explain = Explainer(pack)
    rules = sorted((r for r in pack.rules.values() if r.drug == drug), key=lambda r: (r.file, r.line))
    examples: list[dict[str, Any]] = []
    views = []
    for r in rules:
        mine = []
        for ex in pack.examples:
            exp = ex.example.expect
            if r.id in exp.fires or r.id in exp.not_fires:
                examples.append({"drug": ex.drug, "action": ex.example.action, "patient": ex.example.patient})
                mine.append({"index": len(examples) - 1, "name": ex.example.name, "fires": r.id in exp.fires})
        finding = r.then.finding
        views.append(
            {
                "id": r.id,
                "title": r.rule.title,
                "version": r.version,
                "file": f"{r.file}:{r.line}",
                "severity": finding.severity if finding else _kind(r.then),
                "does": explain.does(r.then),
                "fires": explain.fires_when(r),
                "sources": r.rule.sources,
                "notes": r.rule.notes,
                "examples": mine,
            }
        )
    titles = {rid: r.rule.title for rid, r in pack.rules.items()}
    return {
        "pack": pack,
        "drug": drug,
        "drugs": [(d, dr.profile.title) for d, dr in sorted(pack.drugs.items())],
        "profile": pack.drugs[drug].profile if drug in pack.drugs else None,
        "rules": views,
        "examples_json": _safe_json(examples),
        "titles_json": _safe_json(titles),
    }


def _kind(then: Then) -> str:
    """Badge of a rule without a finding: what it does instead."""
    if then.dose is not None:
        return "dose"
    if then.derive:
        return "derive"
    return "monitor" if then.monitor else "missing-data"


@router.get("/author", response_class=HTMLResponse)
def author_page(state: StateDep, drug: str | None = Query(default=None, max_length=64)) -> HTMLResponse:
    pack = state.engine.pack  # metadata only: evaluation goes through POST /v1/evaluate
    chosen = drug if drug in pack.drugs or drug == SHARED else next(iter(sorted(pack.drugs)), SHARED)
    html = _env.get_template("author.html").render(**page_model(pack, chosen))
    return HTMLResponse(html)


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/author/static", StaticFiles(directory=STATIC), name="author-static")
