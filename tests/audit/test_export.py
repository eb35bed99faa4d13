"""``cdsrules audit export``: the decision log out as JSON Lines or CSV, filtered by time and rule."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import time

from typer.testing import CliRunner

from engine.audit.store import AuditStore
from engine.cli import app
from tests.audit.records import make_record

runner = CliRunner()


def _fill(store: AuditStore) -> dt.datetime:
    store.record(make_record(id="d-old", rules=[("a.rule", "1.0.0")], patient_ref="p1"))
    cutoff = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    store.record(make_record(id="d-new-1", rules=[("a.rule", "1.0.0"), ("b.rule", "2.1.0")], patient_ref="p2"))
    store.record(make_record(id="d-new-2", rules=[("b.rule", "2.1.0")]))
    return cutoff


def _export(db_url: str, *args: str) -> str:
    result = runner.invoke(app, ["audit", "export", "--database-url", db_url, *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_jsonl_export_has_every_decision_as_stored(store: AuditStore, db_url: str) -> None:
    _fill(store)
    lines = _export(db_url, "--format", "jsonl").splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["decision_id"] for r in rows] == ["d-old", "d-new-1", "d-new-2"]
    assert rows[1] == store.get("d-new-1")
    assert rows[1]["rules_fired"] == [
        {"rule_id": "a.rule", "version": "1.0.0"},
        {"rule_id": "b.rule", "version": "2.1.0"},
    ]


def test_since_and_rule_filters(store: AuditStore, db_url: str) -> None:
    cutoff = _fill(store)
    since = [json.loads(x)["decision_id"] for x in _export(db_url, "--since", cutoff.isoformat()).splitlines()]
    assert since == ["d-new-1", "d-new-2"]
    rule = [json.loads(x)["decision_id"] for x in _export(db_url, "--rule-id", "a.rule").splitlines()]
    assert rule == ["d-old", "d-new-1"]


def test_csv_export_is_one_flat_row_per_decision(store: AuditStore, db_url: str) -> None:
    _fill(store)
    rows = list(csv.DictReader(io.StringIO(_export(db_url, "--format", "csv"))))
    assert [r["decision_id"] for r in rows] == ["d-old", "d-new-1", "d-new-2"]
    assert rows[1]["rules_fired"] == "a.rule@1.0.0;b.rule@2.1.0"
    assert rows[1]["ruleset_version"] == "0.1.0"
    assert json.loads(rows[1]["response"]) == store.get("d-new-1")["response"]  # type: ignore[index]
    assert rows[1]["patient_ref_hash"] == store.patient_hash("p2")
    assert rows[2]["patient_ref_hash"] == ""


def test_export_to_a_file_and_bad_options(store: AuditStore, db_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _fill(store)
    out = tmp_path / "audit.jsonl"
    result = runner.invoke(app, ["audit", "export", "--database-url", db_url, "--out", str(out)])
    assert result.exit_code == 0
    assert len(out.read_text().splitlines()) == 3
    assert "exported 3 decision(s)" in result.stderr
    bad_format = runner.invoke(app, ["audit", "export", "--database-url", db_url, "--format", "xml"])
    assert bad_format.exit_code == 2
    bad_date = runner.invoke(app, ["audit", "export", "--database-url", db_url, "--since", "last tuesday"])
    assert bad_date.exit_code == 2
    assert "ISO 8601" in bad_date.output


def test_export_pages_through_more_than_one_page(store: AuditStore) -> None:
    from engine.audit.export import export

    for i in range(1203):
        store.record(make_record(id=f"d{i:05d}"))
    buf = io.StringIO()
    assert export(store, buf) == 1203
    ids = [json.loads(x)["decision_id"] for x in buf.getvalue().splitlines()]
    assert len(set(ids)) == 1203
