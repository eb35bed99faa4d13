"""HL7 CDS Hooks 2.0.1 (STU2) services over FHIR R4: discovery, service calls, feedback.

An adapter like ``engine.api``: it parses, maps FHIR to the native profile (``engine.fhir``),
calls the same ``Engine.evaluate`` as ``/v1/evaluate`` and renders cards. ``install`` mounts it.
"""

from engine.cdshooks.router import build_router, install

__all__ = ["build_router", "install"]
