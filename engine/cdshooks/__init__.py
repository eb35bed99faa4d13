"""HL7 CDS Hooks 2.0.1 (STU2) over FHIR R4: wire models, discovery, hook semantics, prefetch, cards.

The CDS Hooks domain without HTTP: ``hook`` parses a call and answers it (mapping FHIR to the
native profile with ``engine.fhir``, evaluating with the same ``Engine.evaluate`` as
``/v1/evaluate``, rendering cards). The HTTP endpoints are ``engine.api.routes_cds``; the audit
record is written by ``engine.service.decisions``.
"""
