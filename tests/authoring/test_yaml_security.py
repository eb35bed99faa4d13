"""Alias bombs and deep nesting in a rule file are located errors, not a stalled worker or a 500."""

from __future__ import annotations

from engine.compiler.yaml_source import MAX_DEPTH, YamlDocument, load_yaml_text
from engine.errors import RuleProblem


def _bomb(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x]"]
    for i in range(1, levels + 1):
        refs = ", ".join([f"*a{i - 1}"] * 8)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_with_its_line() -> None:
    got = load_yaml_text(_bomb(7), "rules/baclofen/bomb.yaml")  # 8**8 values from ~400 bytes
    assert isinstance(got, RuleProblem)
    assert got.code == "E001" and "alias" in got.message and got.file.endswith("bomb.yaml")


def test_small_aliases_still_load() -> None:
    got = load_yaml_text(_bomb(2), "rules/baclofen/ok.yaml")
    assert isinstance(got, YamlDocument)
    assert len(got.data["a2"]) == 8


def test_deep_nesting_is_refused() -> None:
    text = "a: " + "[" * 3000 + "]" * 3000 + "\n"
    got = load_yaml_text(text, "rules/baclofen/deep.yaml")
    assert isinstance(got, RuleProblem) and "nest" in got.message


def test_nesting_within_the_limit_loads() -> None:
    text = "a: " + "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2) + "\n"
    assert isinstance(load_yaml_text(text, "rules/baclofen/fine.yaml"), YamlDocument)
