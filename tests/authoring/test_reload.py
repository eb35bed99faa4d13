"""Hot reload under load: broken edits never interrupt service; only a clean pack is swapped in."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.compiler.pack import pack_digest
from engine.settings import Settings
from tests.apps import MakeClient, sqlite_settings
from tests.authoring.live import live_app
from tests.authoring.packs import INFO, full_pack, lean_pack, rule, write

TOKEN = "test-admin-token-0123456789"
AUTH = {"authorization": f"Bearer {TOKEN}"}
BODY = {
    "patient": {"age_years": 67, "sex": "female", "weight_kg": 62, "serum_creatinine_mg_dl": 1.3},
    "drug": {"name": "baclofen", "action": "start"},
}
EXAMPLE = """examples:
  - name: reload example {n}
    patient: {{age_years: 50, sex: male, weight_kg: 80, egfr_ml_min_1_73m2: 90, conditions: [stroke]}}
    expect:
      fires: [baclofen.t.ok{n}]
      dose: {{start_total_daily_mg: {dose}}}
"""


def _good(n: int) -> list[str]:
    return [rule(f"ok{n}", "[{conditions: {includes: stroke}}]", INFO), EXAMPLE.format(n=n, dose=15)]


# three ways to break a pack: not YAML, clinically contradictory (lint), an example that fails
BROKEN: list[tuple[str, list[str]]] = [
    ("E001", ["  - id: [unclosed\n"]),
    ("E604", [rule("never", "[{age_years: {gte: 65}}, {age_years: {lt: 18}}]", INFO)]),
    ("E503", [rule("ok9", "[{conditions: {includes: stroke}}]", INFO), EXAMPLE.format(n=9, dose=999)]),
]


def _settings(tmp_path: Path, rules: Path, **extra: Any) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path}/audit.db", rules_dir=rules, admin_token=TOKEN, **extra)


def _wait(what: str, check: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Load:
    """Threads posting /v1/evaluate until stopped; every answer's status and ruleset digest, in order."""

    def __init__(self, base: str, threads: int = 4) -> None:
        self.base = base
        self.stop = threading.Event()
        self.seen: list[list[tuple[int, str]]] = [[] for _ in range(threads)]
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def _run(self, i: int) -> None:
        with httpx.Client(base_url=self.base, timeout=60) as client:
            while not self.stop.is_set():
                try:
                    r = client.post("/v1/evaluate", json=BODY)
                    digest = r.json().get("ruleset", {}).get("digest", "") if r.status_code == 200 else r.text
                    self.seen[i].append((r.status_code, digest))
                except httpx.HTTPError as exc:
                    self.seen[i].append((0, repr(exc)))

    def count(self) -> int:
        return sum(len(s) for s in self.seen)

    def reached(self, n: int) -> bool:
        return self.count() >= n

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()


@pytest.mark.slow
def test_broken_edits_under_load_never_interrupt_service(tmp_path: Path) -> None:
    rules = full_pack(tmp_path)
    good = [pack_digest(rules)]
    broken: list[str] = []
    with live_app(_settings(tmp_path, rules)) as (base, app):
        with Load(base) as load:
            admin = httpx.Client(base_url=base, headers=AUTH, timeout=300)
            _wait("first answers", partial(load.reached, 20))
            for n, (code, text) in enumerate(BROKEN):
                write(rules, *text, name="zz-reload.yaml")
                broken.append(pack_digest(rules))
                before = load.count()
                r = admin.post("/v1/admin/reload")
                assert r.status_code == 422, r.text
                assert r.json()["outcome"] == "rejected"
                assert any(
                    e["code"] == code and e["file"] == "rules/baclofen/zz-reload.yaml" for e in r.json()["errors"]
                )
                status = admin.get("/v1/admin/rules").json()
                assert status["serving"]["digest"] == good[-1], "a rejected pack never serves"
                assert status["last_reload"]["outcome"] == "rejected"
                assert any(e["code"] == code for e in status["last_reload"]["errors"]), status["last_reload"]
                _wait("answers while the broken edit sits on disk", partial(load.reached, before + 20))

                write(rules, *_good(n), name="zz-reload.yaml")
                # each good edit replaces the previous one's rules: an intended removal, so forced (E506)
                r = admin.post("/v1/admin/reload?force=true")
                assert r.status_code == 200 and r.json()["outcome"] == "loaded", r.text
                good.append(pack_digest(rules))
                assert r.json()["serving"]["digest"] == good[-1]
                _wait("an answer from the new pack", lambda: any(good[-1] in d for s in load.seen for _, d in s[-5:]))
        # every request has returned its lease, so every replaced engine gets closed
        _wait("retired engines to close", lambda: app.state.cds.rules.draining() == 0)
        status = admin.get("/v1/admin/rules").json()
        admin.close()
    answers = [a for s in load.seen for a in s]
    failed = [a for a in answers if a[0] != 200]
    print(f"\nreload under load: {len(answers)} requests, {len(failed)} failed, reloads {status['reloads']}")
    assert not failed, failed[:5]
    assert status["reloads"] == {"loaded": 3, "rejected": 3, "unchanged": 0}
    assert status["last_reload"]["outcome"] == "loaded" and status["draining_engines"] == 0
    assert not set(broken) & set(good)
    for per_thread in load.seen:  # each client saw the packs in order, never a broken one, never back
        order = [good.index(d) for _, d in per_thread]
        assert order == sorted(order), "a client went back to an older pack"
    assert {d for _, d in answers} <= set(good)


def test_watcher_reloads_clean_edits_and_reports_broken_ones(tmp_path: Path) -> None:
    rules = lean_pack(tmp_path)
    first = pack_digest(rules)
    settings = _settings(tmp_path, rules, reload_rules=True, reload_interval_s=0.2)
    with live_app(settings) as (base, _app), httpx.Client(base_url=base, headers=AUTH, timeout=60) as client:

        def status() -> dict[str, Any]:
            body: dict[str, Any] = client.get("/v1/admin/rules").json()
            return body

        assert status()["watching"] is True
        write(rules, rule("never", "[{weight_kg: {gt: 10, lt: 5}}]", INFO), name="zz-reload.yaml")
        _wait("the watcher to reject the edit", lambda: (status()["last_reload"] or {}).get("outcome") == "rejected")
        errors = status()["last_reload"]["errors"]
        assert any(e["code"] == "E604" and e["line"] == 3 for e in errors), errors
        r = client.post("/v1/evaluate", json=BODY)
        assert r.status_code == 200 and r.json()["ruleset"]["digest"] == first

        write(rules, *_good(1), name="zz-reload.yaml")
        fixed = pack_digest(rules)
        _wait("the watcher to load the fix", lambda: status()["serving"]["digest"] == fixed)
        assert status()["reloads"]["loaded"] == 1 and status()["reloads"]["rejected"] == 1
        r = client.post("/v1/evaluate", json=BODY)
        assert r.json()["ruleset"]["digest"] == fixed
        metrics = client.get("/metrics").text
        assert 'cdsrules_rule_reloads_total{outcome="rejected"}' in metrics


@pytest.mark.parametrize(
    ("token", "headers", "status", "fragment"),
    [
        (None, AUTH, 403, "set CDSRULES_ADMIN_TOKEN"),
        (TOKEN, {}, 401, "admin bearer token"),
        (TOKEN, {"authorization": "Bearer wrong"}, 401, "admin bearer token"),
        (TOKEN, {"authorization": f"Basic {TOKEN}"}, 401, "admin bearer token"),
    ],
)
def test_admin_endpoints_need_the_token(
    tmp_path: Path, make_client: MakeClient, token: str | None, headers: dict[str, str], status: int, fragment: str
) -> None:
    client = make_client(sqlite_settings(tmp_path, admin_token=token))
    for method, path in (("POST", "/v1/admin/reload"), ("GET", "/v1/admin/rules")):
        r = client.request(method, path, headers=headers)
        assert r.status_code == status and fragment in r.json()["title"], r.text
        if status == 401:
            assert r.headers["www-authenticate"] == "Bearer"


def test_app_refuses_to_start_on_a_pack_with_lint_errors(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from engine.api.app import create_app
    from engine.errors import RuleSetError

    rules = lean_pack(tmp_path)
    write(rules, rule("never", "[{age_years: {gte: 65}}, {age_years: {lt: 18}}]", INFO))
    with pytest.raises(RuleSetError, match="E604"), TestClient(create_app(_settings(tmp_path, rules))):
        pass


def test_serve_reload_rules_flag_reaches_every_worker_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from engine.cli import app
    from engine.ops import serve as serving

    seen: list[Settings] = []
    monkeypatch.delenv("CDSRULES_RELOAD_RULES", raising=False)
    monkeypatch.setattr(serving, "run", lambda settings, *_: seen.append(settings))
    assert CliRunner().invoke(app, ["serve", "--reload-rules"]).exit_code == 0
    assert seen[0].reload_rules is True
    assert Settings().reload_rules is True, "workers read it from the environment"
    monkeypatch.delenv("CDSRULES_RELOAD_RULES")
    assert CliRunner().invoke(app, ["serve"]).exit_code == 0
    assert seen[1].reload_rules is False
