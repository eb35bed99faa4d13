"""The page a card's explanation link opens: one decision as a clinician can read it.

Reached without the EHR's token by design (see ``engine.cdshooks.explain_link``): the signed link
is the credential, and a wrong or missing signature gets the same 404 as an unknown decision, so
the page says nothing about which ids exist. Everything shown is escaped: order text and problem
names come from the EHR.
"""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from engine.api.deps import StateDep
from engine.cdshooks.explain_link import PATH, verified

router = APIRouter(tags=["cds-hooks"])
_NOT_FOUND = HTMLResponse("<!doctype html><title>Not found</title><p>No such explanation.</p>", status_code=404)


@router.get(PATH + "/{decision_id}", response_class=HTMLResponse, include_in_schema=False)
async def explanation(decision_id: str, request: Request, state: StateDep) -> HTMLResponse:
    sig = request.query_params.get("sig", "")
    if not verified(state.settings.audit_hash_key, decision_id, sig):
        return _NOT_FOUND
    row = await run_in_threadpool(state.audit.get, decision_id)
    if row is None:
        return _NOT_FOUND
    headers = {"Cache-Control": "no-store", "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}
    return HTMLResponse(render(row), headers=headers)


def render(row: dict[str, Any]) -> str:
    response = row.get("response") or {}
    evaluations = response.get("evaluations") or [response]
    parts = [
        "<!doctype html><html lang='en'><meta charset='utf-8'><title>Decision explained</title>",
        "<style>body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
        "td,th{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}"
        "table{border-collapse:collapse;width:100%}.critical{color:#a00}.warning{color:#a60}</style>",
        f"<h1>Decision {_e(row.get('decision_id'))}</h1>",
        f"<p>Rule pack {_e(row['ruleset']['version'])} ({_e(row['ruleset']['digest'][:19])}), "
        f"{_e(row.get('created_at'))}.</p>",
    ]
    for ev in evaluations:
        parts.append(_evaluation(ev))
    notes = response.get("notes") or []
    if notes:
        parts.append("<h2>Data notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>")
    parts.append("</html>")
    return "".join(parts)


def _evaluation(ev: dict[str, Any]) -> str:
    drug = (ev.get("drug") or {}).get("name", "")
    out = [f"<h2>{_e(drug)}" + (f" ({_e(ev['purpose'])})" if ev.get("purpose") else "") + "</h2>"]
    dose = ev.get("dose")
    if dose:
        start = dose["start"]
        out.append(
            f"<p>Suggested start {_e(start['dose_mg'])} mg, {_e(start['total_daily_mg'])} mg/day; "
            f"maximum {_e(dose['max_daily_mg'])} mg/day.</p>"
        )
    findings = ev.get("findings") or []
    if findings:
        out.append("<table><tr><th>Severity</th><th>Finding</th><th>Sources</th></tr>")
        for f in findings:
            sources = "<br>".join(_source(s) for s in f.get("sources") or [])
            out.append(
                f"<tr><td class='{_e(f['severity'])}'>{_e(f['severity'])}</td>"
                f"<td><b>{_e(f['summary'])}</b><br>{_e(f['detail'])}<br><small>{_e(f['rule_id'])}</small></td>"
                f"<td>{sources}</td></tr>"
            )
        out.append("</table>")
    renal = ev.get("renal")
    if renal:
        out.append(f"<p>Renal function: {_e(renal.get('band'))} ({_e(renal.get('method'))}).</p>")
    unrecognized = ev.get("unrecognized") or []
    if unrecognized:
        out.append("<h3>Not recognised</h3><ul>")
        out.extend(f"<li>{_e(u['field'])}: {_e(u['value'])} {_e(u.get('detail') or '')}</li>" for u in unrecognized)
        out.append("</ul>")
    trace = ev.get("trace") or []
    if trace:
        out.append("<h3>Rules that fired, and the facts each one read</h3><table>")
        for t in trace:
            facts = ", ".join(f"{_e(k)} = {_e(v)}" for k, v in (t.get("matched") or {}).items())
            out.append(f"<tr><td>{_e(t['rule_id'])} {_e(t['version'])}</td><td>{facts}</td></tr>")
        out.append("</table>")
    return "".join(out)


def _source(s: dict[str, Any]) -> str:
    text = _e(s.get("label")) + (f", {_e(s['section'])}" if s.get("section") else "")
    link = s.get("url")
    if isinstance(link, str) and link.startswith(("https://", "http://")):
        return f"<a href='{_e(link)}' rel='noreferrer'>{text}</a>"
    return text


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)
