"""The application service between the HTTP adapters and the engine: state, decisions, reloads.

Nothing here knows about HTTP. ``Decider`` owns the clinical-safety invariant both surfaces share
(lease the engine, evaluate, write the audit record, only then answer); ``Reloader`` swaps in a
new rule pack only after it passed the gate (``engine.pipeline``); ``safety`` refuses unsafe
settings before anything serves.
"""
