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


MAX_DEPTH = 100  # deeper than any document we accept (engine/api/strict_json.py allows 64)


def without_secrets(value: Any, _depth: int = 0) -> Any:
    """A copy of ``value`` with every secret-named key removed (dicts and lists).

    Below ``MAX_DEPTH`` the rest is replaced by a marker rather than walked: a hostile document
    must not turn the audit write into a ``RecursionError``, and nothing is kept unread.
    """
    if _depth > MAX_DEPTH and isinstance(value, dict | list):
        return "[nested too deep; not stored]"
    if isinstance(value, dict):
        return {k: without_secrets(v, _depth + 1) for k, v in value.items() if str(k).lower() not in SECRET_KEYS}
    if isinstance(value, list):
        return [without_secrets(v, _depth + 1) for v in value]
    return value
