"""The bundled rule pack, compiled once per test process.

Test modules that parametrize over the pack (its examples, rules, drugs) need it while pytest
collects, and the session fixtures need it again; both get this one compilation.
"""

from __future__ import annotations

from functools import cache

from engine.compiler.model import CompiledPack
from engine.compiler.pack import compile_ruleset
from engine.settings import BUNDLED_RULES


@cache
def bundled_pack() -> CompiledPack:
    return compile_ruleset(BUNDLED_RULES)
