"""Every rule file's examples pass, and every rule is shown both firing and not firing."""

from __future__ import annotations

import pytest

from engine.authoring.examples import example_request, run_example
from engine.compiler.model import CompiledPack, LocatedExample
from engine.runtime.engine import Engine
from tests.bundled import bundled_pack

PACK = bundled_pack()  # needed to collect; the same compilation the session's ``pack`` fixture returns


@pytest.mark.parametrize("example", PACK.examples, ids=lambda e: f"{e.file}:{e.line}")
def test_example(engine: Engine, example: LocatedExample) -> None:
    result = run_example(engine, example)
    assert result.failures == ()


@pytest.mark.parametrize("rule_id", sorted(r for r in PACK.rules if not PACK.rules[r].is_derivation))
def test_rule_has_a_firing_and_a_non_firing_example(pack: CompiledPack, rule_id: str) -> None:
    fires = [e for e in pack.examples if rule_id in e.example.expect.fires]
    not_fires = [e for e in pack.examples if rule_id in e.example.expect.not_fires]
    assert fires, f"{rule_id}: no example expects it to fire"
    assert not_fires, f"{rule_id}: no example expects it not to fire"


@pytest.fixture(scope="module")
def fired_in_examples(engine: Engine) -> set[str]:
    return {t.rule_id for ex in PACK.examples for t in engine.evaluate(example_request(ex)).trace}


@pytest.mark.parametrize("rule_id", sorted(r for r in PACK.rules if PACK.rules[r].is_derivation))
def test_every_derivation_fires_in_some_example(fired_in_examples: set[str], rule_id: str) -> None:
    assert rule_id in fired_in_examples


def test_every_critical_finding_rule_cites_a_locatable_source(pack: CompiledPack) -> None:
    for rule in pack.rules.values():
        finding = rule.then.finding
        if finding and finding.severity == "critical":
            assert all(s.section or s.url for s in rule.rule.sources), rule.id
