"""The override report from the command line: the JSON equals the analytics, the HTML shows it all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from engine.audit.analytics import Period, summary
from engine.cli import app as cli
from tests.audit.test_analytics import drive

pytest.importorskip("matplotlib", reason="the report needs the harness extra")


def _report(api: TestClient, out: Path, *extra: str) -> dict[str, Any]:
    url = api.app.state.cds.audit.url  # type: ignore[attr-defined]
    res = CliRunner().invoke(cli, ["audit", "report", "--out", str(out), "--database-url", url, *extra])
    assert res.exit_code == 0, res.output
    data: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return data


def test_cli_report_writes_the_summary_and_html(api: TestClient, tmp_path: Path) -> None:
    drive(api, 30)
    data = _report(api, tmp_path / "r")
    audit = api.app.state.cds.audit  # type: ignore[attr-defined]
    assert data == json.loads(json.dumps(summary(audit.engine, Period())))
    html = (tmp_path / "r" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3
    assert f'<td id="total-shown">{data["totals"]["shown"]}</td>' in html
    for card in data["cards"]:
        assert f"<code>{card['rule_id'] or 'not checked'}</code>" in html


def test_cli_report_refuses_a_bad_date(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["audit", "report", "--out", str(tmp_path), "--since", "last tuesday"])
    assert res.exit_code == 2
    assert "--since" in res.output


@pytest.mark.integration  # a Chromium process
def test_html_report_renders_its_plots_in_chromium(api: TestClient, tmp_path: Path) -> None:
    from tests.authoring.test_author_page import ARGS, CHROMIUM, _require_browser

    _require_browser()
    from playwright.sync_api import sync_playwright

    drive(api, 30)
    data = _report(api, tmp_path / "r")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            page.goto((tmp_path / "r" / "report.html").as_uri())
            assert page.title() == "cdsrules override report"
            for fig in ("#fig-rates", "#fig-reasons", "#fig-weekly"):
                # a decoded image has a natural size; a broken data URI has none
                width = page.eval_on_selector(fig, "img => img.complete ? img.naturalWidth : 0")
                assert width > 100, fig
            assert page.locator("#cards tr").count() == len(data["cards"]) + 1  # header row
            assert page.locator("#total-shown").inner_text() == str(data["totals"]["shown"])
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"\nscreenshot: {shot}")
        finally:
            browser.close()
