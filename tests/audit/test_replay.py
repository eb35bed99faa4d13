"""Shadow evaluation: replaying stored decisions on the same pack, an edited pack, and by id.

The decisions are real ones, made through ``/v1/evaluate`` and the CDS Hooks endpoint with input
storage on. The edited pack halves the baclofen mild-band start dose (the edit ``cdsrules diff``'s
own test makes), and the replay must name exactly the decisions ``cdsrules diff`` names for the
same inputs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from engine.audit.pack_archive import ArchiveError, PackArchive
from engine.audit.replay import ReplayError, pairs, replay_one, replay_period, reproduce_bytes
from engine.audit.store import AuditStore
from engine.authoring.diff import diff_cohort
from engine.cli import app as cli
from engine.compiler.model import CompiledPack
from engine.compiler.pack import compile_pack
from engine.runtime.engine import Engine
from engine.settings import BUNDLED_RULES
from schemas.api import EvaluateRequest
from tests.apps import MakeClient
from tests.audit.conftest import app_settings
from tests.authoring.packs import full_pack
from tests.cdshooks.fhirdata import baclofen_draft, full_prefetch, hook_request, order_context

MILD = "        start: {dose_mg: 5, times_per_day: 2}\n        max_daily_mg: 53\n"


def requests() -> list[dict[str, Any]]:
    out = []
    for i, egfr in enumerate(range(8, 120, 4)):
        out.append(
            {
                "patient": {
                    "age_years": 20 + (i * 7) % 70,
                    "sex": "female" if i % 2 else "male",
                    "weight_kg": 55 + i % 30,
                    "egfr_ml_min_1_73m2": egfr,
                },
                "drug": {"name": "baclofen", "action": "start"},
            }
        )
    return out


@pytest.fixture(scope="module")
def packs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    old = full_pack(tmp_path_factory.mktemp("old"))
    new = full_pack(tmp_path_factory.mktemp("new"))
    renal = new / "baclofen" / "renal.yaml"
    text = renal.read_text(encoding="utf-8")
    assert text.count(MILD) == 1, "the baclofen mild band changed; update this test's edit"
    renal.write_text(text.replace(MILD, MILD.replace("dose_mg: 5,", "dose_mg: 2.5,")), encoding="utf-8")
    return old, new


@pytest.fixture(scope="module")
def compiled(packs: tuple[Path, Path]) -> tuple[CompiledPack, CompiledPack]:
    return compile_pack(packs[0]), compile_pack(packs[1])


@pytest.fixture
def stored(db_url: str, make_client: MakeClient) -> TestClient:
    return make_client(app_settings(db_url, audit_store_inputs=True))


def _audit(api: TestClient) -> AuditStore:
    store: AuditStore = api.app.state.cds.audit  # type: ignore[attr-defined]
    return store


def _record(api: TestClient) -> dict[str, str]:
    """Make the decisions; returns decision id -> the request's position in ``requests()``."""
    ids = {}
    for n, body in enumerate(requests()):
        r = api.post("/v1/evaluate", json=body)
        assert r.status_code == 200, r.text
        ids[r.json()["decision_id"]] = f"r{n}"
    return ids


def test_replay_on_the_same_pack_changes_nothing(stored: TestClient, compiled: tuple[CompiledPack, ...]) -> None:
    _record(stored)
    before = _audit(stored).count()
    data = replay_period(_audit(stored), compiled[0])
    assert data["replay"]["decisions"] == len(requests())
    assert data["changed_patients"] == 0 and data["changes"] == []
    assert _audit(stored).count() == before  # replay writes no audit row


def test_replay_on_an_edited_pack_matches_cdsrules_diff(
    stored: TestClient, compiled: tuple[CompiledPack, CompiledPack], tmp_path: Path
) -> None:
    ids = _record(stored)
    data = replay_period(_audit(stored), compiled[1])
    cohort = tmp_path / "cohort.jsonl"
    cohort.write_text("".join(json.dumps({"id": f"r{n}", **b}) + "\n" for n, b in enumerate(requests())))
    expected = diff_cohort(compiled[0], compiled[1], cohort).as_dict()
    assert expected["changed_patients"] > 0, "the edit must touch some of these patients"
    got = {ids[c["id"]]: c for c in data["changes"]}
    want = {c["id"]: c for c in expected["changes"]}
    assert set(got) == set(want)
    for key, change in want.items():
        assert got[key]["dose_before"] == change["dose_before"]
        assert got[key]["dose_after"] == change["dose_after"]
    assert data["per_rule"] == expected["per_rule"]
    assert data["per_rule"]["baclofen.renal.mild"] == {"dose_changed": len(want)}
    assert set(data["examples"]) == set(data["per_rule"])
    assert len(data["examples"]["baclofen.renal.mild"]) == min(5, len(want))
    assert all(ex in ids for ex in data["examples"]["baclofen.renal.mild"])


def test_replay_cli_writes_the_diff(stored: TestClient, packs: tuple[Path, Path], tmp_path: Path) -> None:
    _record(stored)
    out = tmp_path / "diff"
    args = ["audit", "replay", "--rules", str(packs[1]), "--out", str(out), "--database-url", _audit(stored).url]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    data = json.loads((out / "replay.json").read_text())
    assert data["replay"]["decisions"] == len(requests())
    assert data["changed_patients"] == len(data["changes"]) > 0
    assert "per rule:" in (out / "replay.txt").read_text()


def test_one_decision_reproduces_byte_for_byte(stored: TestClient, compiled: tuple[CompiledPack, ...]) -> None:
    ids = list(_record(stored))
    for decision_id in ids[:6]:
        one = replay_one(_audit(stored), decision_id, compiled[0], None)
        assert one.reproduced, decision_id
        assert one.recorded_pack_from == "current"
        assert one.changes_on_current == []
    # the comparison is byte-exact: one changed value anywhere is a mismatch
    row = _audit(stored).get(ids[0])
    assert row is not None
    ((req, recorded),) = pairs(row)
    engine = Engine(compiled[0])
    try:
        again = engine.evaluate(EvaluateRequest.model_validate(req), decision_id="other-id").model_dump(mode="json")
    finally:
        engine.close()
    a, b = reproduce_bytes(recorded, again)
    assert a == b  # ids aside
    again["renal"]["band"] = "something-else"
    a, b = reproduce_bytes(recorded, again)
    assert a != b


def test_one_decision_from_the_archive_and_against_the_current_pack(
    stored: TestClient, compiled: tuple[CompiledPack, CompiledPack], packs: tuple[Path, Path], tmp_path: Path
) -> None:
    ids = _record(stored)
    old, new = compiled
    archive = PackArchive(tmp_path / "archive")
    with pytest.raises(ReplayError, match="not in the pack archive"):
        replay_one(_audit(stored), next(iter(ids)), new, archive)
    archive.keep(packs[0], old.digest)
    assert archive.keep(packs[0], old.digest) == archive.path_for(old.digest)  # once
    diff_ids = {c["id"] for c in replay_period(_audit(stored), new)["changes"]}
    for decision_id in ids:
        one = replay_one(_audit(stored), decision_id, new, archive)
        assert one.reproduced
        assert one.recorded_pack_from == str(archive.path_for(old.digest))
        assert bool(one.changes_on_current) == (decision_id in diff_ids)


def test_archive_refuses_a_pack_that_is_not_its_digest(packs: tuple[Path, Path], tmp_path: Path) -> None:
    archive = PackArchive(tmp_path / "a")
    wrong = "sha256:" + "0" * 64
    with pytest.raises(ArchiveError, match="not the serving"):
        archive.keep(packs[0], wrong)
    assert archive.path_for(wrong) is None
    with pytest.raises(ArchiveError, match="not a pack digest"):
        archive.path_for("../../etc")


def test_hook_decision_replays_by_id(stored: TestClient, compiled: tuple[CompiledPack, ...]) -> None:
    ctx = order_context(baclofen_draft(), selected=["MedicationRequest/request-123"])
    r = stored.post("/cds-services/muscle-relaxant-dosing", json=hook_request("order-select", ctx, full_prefetch()))
    assert r.status_code == 200
    (row,) = _audit(stored).list(limit=10)
    assert pairs(row), "the hook decision stored its mapped requests"
    one = replay_one(_audit(stored), row["decision_id"], compiled[0], None)
    assert one.reproduced


def test_replay_without_stored_inputs_says_so(api: TestClient, compiled: tuple[CompiledPack, ...]) -> None:
    r = api.post("/v1/evaluate", json=requests()[0])
    with pytest.raises(ReplayError, match="no stored input"):
        replay_one(_audit(api), r.json()["decision_id"], compiled[0], None)
    assert replay_period(_audit(api), compiled[0])["replay"]["without_stored_input"] == 1
    with pytest.raises(ReplayError, match="no decision"):
        replay_one(_audit(api), "nope", compiled[0], None)


def test_the_archive_keeps_the_serving_pack(db_url: str, make_client: MakeClient, tmp_path: Path) -> None:
    from engine.service.state import state_from

    del db_url, make_client
    from engine.pipeline import prepare_or_raise

    prepared = prepare_or_raise(BUNDLED_RULES)
    store = AuditStore(f"sqlite:///{tmp_path}/a.db", "k" * 40)
    try:
        state = state_from(
            app_settings(f"sqlite:///{tmp_path}/a.db", pack_archive_dir=tmp_path / "archive"), prepared, store
        )
        kept = PackArchive(tmp_path / "archive").path_for(prepared.pack.digest)
        assert kept is not None and (kept / "baclofen" / "renal.yaml").is_file()
        state.reloader.stop()
    finally:
        prepared.engine.close()
        store.dispose()


def test_decision_endpoint_links_pack_rules_cards_and_input(
    db_url: str, make_client: MakeClient, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    api = make_client(app_settings(db_url, audit_store_inputs=True, pack_archive_dir=archive))
    ctx = order_context(baclofen_draft(), selected=["MedicationRequest/request-123"])
    r = api.post("/cds-services/muscle-relaxant-dosing", json=hook_request("order-select", ctx, full_prefetch()))
    cards = r.json()["cards"]
    dose = next(c for c in cards if c.get("suggestions"))
    item = {
        "card": dose["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": dose["suggestions"][0]["uuid"]}],
        "outcomeTimestamp": "2026-12-01T09:00:00Z",
    }
    assert api.post("/cds-services/muscle-relaxant-dosing/feedback", json={"feedback": [item]}).status_code == 200
    (row,) = _audit(api).list(limit=10)
    got = api.get(f"/v1/decisions/{row['decision_id']}").json()
    digest = got["ruleset"]["digest"]
    assert digest.startswith("sha256:") and got["ruleset"]["version"]
    assert got["pack_archived"] is False  # the test app shares a pack it did not start
    PackArchive(archive).keep(BUNDLED_RULES, digest)
    got = api.get(f"/v1/decisions/{row['decision_id']}").json()
    assert got["pack_archived"] is True
    assert {c["card_uuid"] for c in got["cards"]} == {c["uuid"] for c in cards}
    shown = {c["card_uuid"]: c for c in got["cards"]}
    assert shown[dose["uuid"]]["feedback"] == [item]
    assert shown[dose["uuid"]]["has_suggestion"] is True
    fired = {(f["rule_id"], f["version"]) for f in got["rules_fired"]}
    for card in got["cards"]:
        if card["rule_id"]:
            assert (card["rule_id"], card["rule_version"]) in fired
    assert got["input_stored"] is True and got["input_document"]["requests"]
    assert got["replay"] == f"cdsrules audit replay {row['decision_id']}"


def test_replay_cli_by_id(stored: TestClient, packs: tuple[Path, Path], tmp_path: Path) -> None:
    decision_id = next(iter(_record(stored)))
    url = _audit(stored).url
    res = CliRunner().invoke(cli, ["audit", "replay", decision_id, "--rules", str(packs[0]), "--database-url", url])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["reproduced"] is True
    missing = CliRunner().invoke(cli, ["audit", "replay", "no-such-id", "--database-url", url])
    assert missing.exit_code == 2 and "no decision no-such-id" in missing.output
    no_out = CliRunner().invoke(cli, ["audit", "replay", "--rules", str(packs[1]), "--database-url", url])
    assert no_out.exit_code == 2 and "--out" in no_out.output
