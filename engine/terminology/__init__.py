"""Terminology: what an EHR or a person sends (codes, names, free text), resolved to our ids.

``lookup`` holds the request-time index built once per pack; the loader that fills it from files
is part of the compiler (``engine.compiler.terminology_files``).
"""

from engine.terminology.lookup import CACHED_TEXT_MAX, Terminology, normalise_icd, normalise_text

__all__ = ["CACHED_TEXT_MAX", "Terminology", "normalise_icd", "normalise_text"]
