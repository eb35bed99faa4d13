"""Every rule file's examples pass on the served engine, and every rule is shown firing and not firing.

The examples run once, in the gate (``engine.pipeline.prepare``) that built the session's engine;
these tests read its results instead of running them again.
"""

from __future__ import annotations

from engine.compiler.model import CompiledPack
from engine.pipeline import Prepared


def test_every_example_passes(prepared: Prepared) -> None:
    assert prepared.examples, "no examples ran"
    failed = [f"{r.where} {r.example.example.name}: {'; '.join(r.failures)}" for r in prepared.examples if not r.passed]
    assert not failed, failed


def test_every_rule_has_a_firing_and_a_non_firing_example(pack: CompiledPack) -> None:
    missing = []
    for rule_id, rule in sorted(pack.rules.items()):
        if rule.is_derivation:
            continue
        if not any(rule_id in e.example.expect.fires for e in pack.examples):
            missing.append(f"{rule_id}: no example expects it to fire")
        if not any(rule_id in e.example.expect.not_fires for e in pack.examples):
            missing.append(f"{rule_id}: no example expects it not to fire")
    assert not missing, missing


def test_every_derivation_fires_in_some_example(prepared: Prepared) -> None:
    fired = set().union(*(r.fired for r in prepared.examples))
    never = sorted(r for r, rule in prepared.pack.rules.items() if rule.is_derivation and r not in fired)
    assert not never, never
