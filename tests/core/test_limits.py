"""The compiler refuses packs that would cross durable-rules' hard limits, before the C engine sees them."""

from __future__ import annotations

from pathlib import Path

import durable_rules_engine
import pytest

from engine.compiler.pack import compile_pack
from engine.pipeline import Rejected, prepare
from engine.runtime.engine import Engine
from tests.authoring.packs import lean_pack
from tests.conftest import request

HEADER = "drug: baclofen\nrules:\n"
RULE = """  - id: baclofen.gen.r{i}
    title: generated rule {i}
    version: 1.0.0
    sources: [{{label: generated, section: test}}]
    when: [{when}]
    then: {{finding: {{category: disease, severity: info, summary: generated {i}, detail: generated detail}}}}
"""


@pytest.fixture
def pack_dir(tmp_path: Path) -> Path:
    return lean_pack(tmp_path)


def _generate(pack_dir: Path, whens: list[str]) -> None:
    body = "".join(RULE.format(i=i, when=w) for i, w in enumerate(whens))
    (pack_dir / "baclofen" / "generated.yaml").write_text(HEADER + body, encoding="utf-8")


def test_too_many_distinct_tests_after_one_prefix_is_refused(pack_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # >64 alpha tests passed from one node gives error 303; >512 siblings hangs create_ruleset
    _generate(pack_dir, [f"{{age_years: {{gte: {i}}}}}" for i in range(60)])
    monkeypatch.setattr(durable_rules_engine, "create_ruleset", _must_not_be_called)  # what durable_host calls
    result = prepare(pack_dir)
    assert isinstance(result, Rejected)
    problems = result.problems
    assert any(p.code == "E401" and "follow the same condition prefix" in p.message for p in problems)


def test_too_many_rules_with_one_identical_pattern_is_refused(pack_dir: Path) -> None:
    # 256 rules sharing one pattern segfault on the first assert
    _generate(pack_dir, ["{weight_kg: {gte: 500}}"] * 210)
    result = prepare(pack_dir)
    assert isinstance(result, Rejected)
    problems = result.problems
    assert any(p.code == "E401" and "share one identical pattern" in p.message for p in problems)


def test_many_rules_under_the_limits_still_work(pack_dir: Path) -> None:
    _generate(pack_dir, [f"{{weight_kg: {{gte: {200 + i}}}}}" for i in range(25)])
    eng = Engine(compile_pack(pack_dir))
    resp = eng.evaluate(request(weight_kg=221))
    fired = {t.rule_id for t in resp.trace if t.rule_id.startswith("baclofen.gen.")}
    assert fired == {f"baclofen.gen.r{i}" for i in range(22)}
    eng.close()


def test_excludes_holds_on_an_empty_list(pack_dir: Path) -> None:
    # durable's $iall over [] is false; 'excludes' must still hold when nothing is listed
    _generate(pack_dir, ["{comed_classes: {excludes: opioid}}"])
    durable = Engine(compile_pack(pack_dir))
    reference = Engine(compile_pack(pack_dir), backend="reference")
    for meds in ([], [{"name": "gabapentin"}], [{"name": "oxycodone"}]):
        req = request(co_medications=meds)
        got = {t.rule_id for t in durable.evaluate(req).trace}
        want = {t.rule_id for t in reference.evaluate(req).trace}
        assert got == want
        assert ("baclofen.gen.r0" in got) == (meds != [{"name": "oxycodone"}])
    durable.close()


def _must_not_be_called(*_: object) -> None:
    raise AssertionError("create_ruleset must not run for a pack that failed its limit checks")
