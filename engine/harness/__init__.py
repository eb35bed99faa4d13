"""Population-level evidence that the rules behave: synthetic cohorts, invariants, differential runs.

Reviewers (pharmacists, the medication-safety committee) need more than hand-written examples.
This package generates realistic seeded patients (``synth``), checks safety invariants on them
(``invariants``), runs durable-rules against the pure-Python reference (``differential``), and
evaluates whole cohorts in-process or on Dask (``cohort``, ``dask_runner``) into an HTML report
(``report``). Nothing here changes advice; it only observes ``Engine``.
"""
