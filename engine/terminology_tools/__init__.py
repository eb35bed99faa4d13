"""Tools over a pack's terminology that need the compiler: ``cdsrules terminology`` and coverage.

Kept apart from ``engine.terminology`` (the lookup the compiler itself builds on, plus the file
converters and provenance, which need no compiler) so the import graph stays a layering.
"""
