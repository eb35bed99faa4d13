"""The author page in a real browser: Debian's headless Chromium driven by Playwright.

The app runs under uvicorn on a free loopback port; the browser fills the patient form, submits
it, and reads the dose, findings and trace back from the page, which must match what the API
answers for the same request. A rule's example loads into the form with one click. Screenshots go
to pytest's temporary directory and their paths are printed.

Chromium comes from apt (``.ci/run`` installs it), never from ``playwright install``. Without it
the test fails under CI (CI=true) and is skipped, saying why, on a developer machine.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.settings import BUNDLED_RULES, Settings
from tests.authoring.live import live_app
from tests.needs import unavailable

pytestmark = pytest.mark.integration  # a Chromium process and a server on a port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _require_browser() -> None:
    missing = [] if Path(CHROMIUM).exists() else ["chromium (apt-get install chromium)"]
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install -e '.[dev]')")
    if missing:
        unavailable("browser test needs " + " and ".join(missing))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("author") / "audit.db"
    with live_app(Settings(database_url=f"sqlite:///{db}", rules_dir=BUNDLED_RULES)) as (base, _app):
        yield base


@pytest.fixture
def page(server: str) -> Iterator[Any]:
    _require_browser()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=ARGS, viewport={"width": 1400, "height": 1000}
        )
        try:
            yield context.new_page()
        finally:
            context.close()


def _shot(page: Any, tmp_path: Path, name: str) -> None:
    """The form and its answer (the right-hand column), saved where the test output says."""
    path = tmp_path / f"{name}.png"
    page.locator("#try").screenshot(path=str(path))
    print(f"\nscreenshot: {path}")


def test_fill_form_submit_and_read_the_result(server: str, page: Any, tmp_path: Path) -> None:
    page.goto(f"{server}/author?drug=baclofen")
    assert page.title() == "cdsrules author - baclofen"
    assert page.locator("#rule-baclofen\\.renal\\.moderate summary").is_visible()
    assert page.locator("#rules .sources a[href^='https://']").count() > 0, "sources are links"

    page.fill("#f-age_years", "67")
    page.select_option("#f-sex", "female")
    page.fill("#f-weight_kg", "62")
    page.fill("#f-serum_creatinine_mg_dl", "1.3")
    page.fill("#f-conditions", "multiple sclerosis")
    page.fill("#f-co_medications", "oxycodone")
    page.click("#evaluate")
    page.wait_for_selector("#out-trace")
    _shot(page, tmp_path, "author-form")

    body = {
        "patient": {
            "age_years": 67,
            "sex": "female",
            "weight_kg": 62,
            "serum_creatinine_mg_dl": 1.3,
            "hepatic_impairment": "unknown",
            "conditions": ["multiple sclerosis"],
            "co_medications": [{"name": "oxycodone"}],
        },
        "drug": {"name": "baclofen", "action": "start"},
    }
    api = httpx.post(f"{server}/v1/evaluate", json=body, timeout=30).json()
    shown_dose = page.inner_text("#out-dose")
    if api["dose"]:
        assert f"{api['dose']['start']['total_daily_mg']:g} mg/day" in page.inner_text("#out-start-total")
    else:
        assert "No dose suggested" in shown_dose
    findings = page.inner_text("#out-findings")
    assert "drug-interaction" in findings and "baclofen.interaction.opioid" in findings
    assert page.locator("#out-findings li").count() == len(api["findings"])
    trace = page.inner_text("#out-trace")
    for entry in api["trace"]:
        assert entry["rule_id"] in trace
    assert "age_years = 67" in trace, "the trace says which values a rule matched on"
    assert page.inner_text("#out-digest") == api["ruleset"]["digest"]


def test_load_a_rule_example_with_one_click(server: str, page: Any, tmp_path: Path) -> None:
    page.goto(f"{server}/author?drug=baclofen")
    rule = page.locator("#rule-baclofen\\.renal\\.moderate")
    rule.locator("summary").click()
    example = rule.locator(".examples li", has_text="(fires)").first
    example.locator("button.load-example").click()
    assert page.input_value("#f-age_years") != "", "the example filled the form"
    page.click("#evaluate")
    page.wait_for_selector("#out-trace")
    _shot(page, tmp_path, "author-example")
    assert "baclofen.renal.moderate" in page.inner_text("#out-trace")
    assert "renal" in page.inner_text("#out-findings")
