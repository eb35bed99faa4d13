"""cdsrules engine: rule compiler, runtime and adapters.

Layers, innermost first: ``schemas`` (data) -> ``engine.compiler`` (load, validate, compile once)
-> ``engine.runtime`` (evaluate one patient, stateless) -> adapters (``engine.api``, ``engine.cli``).
"""

__version__ = "0.1.0"
