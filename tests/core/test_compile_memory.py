"""A compile leaves nothing of its YAML behind.

A serving process compiles the pack again on every hot reload. If each compile kept its parsed
node tree alive (PyYAML's constructor caches every node it builds), the process would grow with
every reload, and every full garbage collection would walk all of it with the GIL held: pauses of
seconds in which nothing is served and kept-alive connections, their next request already waiting,
are closed by the server's keep-alive timer (the client sees "connection reset by peer").
"""

from __future__ import annotations

import gc
from pathlib import Path

import yaml

from engine.compiler.pack import compile_pack
from tests.authoring.packs import lean_pack


def _live_yaml_nodes() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, yaml.Node))


def test_compiling_again_keeps_no_yaml_node_alive(tmp_path: Path) -> None:
    rules = lean_pack(tmp_path)
    compile_pack(rules)
    before = _live_yaml_nodes()
    for _ in range(3):
        compile_pack(rules)
    assert _live_yaml_nodes() == before
