"""Strip credentials from documents before they reach the audit log.

A CDS Hooks request carries the EHR's FHIR access token in ``fhirAuthorization``. The audit log
outlives any token, is read by people who must never be able to act as the EHR, and is exported
to files; so tokens are removed before hashing and before storing, whatever ``store_inputs`` says.
Matching is by key name, at any depth, case-insensitively.
"""

from __future__ import annotations

from typing import Any

SECRET_KEYS = frozenset(
    {
        "fhirauthorization",
        "access_token",
        "accesstoken",
        "refresh_token",
        "id_token",
        "authorization",
        "token",
        "password",
        "client_secret",
        "jwt",
    }
)


def without_secrets(value: Any) -> Any:
    """A copy of ``value`` with every secret-named key removed (dicts and lists, any depth)."""
    if isinstance(value, dict):
        return {k: without_secrets(v) for k, v in value.items() if str(k).lower() not in SECRET_KEYS}
    if isinstance(value, list):
        return [without_secrets(v) for v in value]
    return value
