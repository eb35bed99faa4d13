"""FHIR R4 to the engine's native models, tolerant of what real systems send.

Used by the CDS Hooks adapter and the Synthea importer; independent of both. Start at
``profile_from_resources`` (resources in, ``schemas.api.Patient`` and notes out) or
``build_profile`` when the evidence and the active medication orders are needed too.
"""

from engine.fhir.bundle import ReferenceIndex, Unpacked, is_operation_outcome, outcome_summary, unpack
from engine.fhir.medications import MedOrder, med_order
from engine.fhir.profile import FhirProfile, build_profile, profile_from_resources

__all__ = [
    "FhirProfile",
    "MedOrder",
    "ReferenceIndex",
    "Unpacked",
    "build_profile",
    "is_operation_outcome",
    "med_order",
    "outcome_summary",
    "profile_from_resources",
    "unpack",
]
