"""Benchmarks for issue 8: engine, scaling, HTTP, memory and cohort, run by ``make bench``.

Nothing here is imported by the service or by the tests' assertions about behaviour; timings live
here and never in tests (CONTRIBUTING.md). ``python -m bench.run`` writes ``bench/results.json``.
"""
