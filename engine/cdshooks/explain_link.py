"""A link on each card to a page that explains the decision: what fired, on which facts, from which sources.

CDS Hooks cards should be short (summary under 140 characters, one problem each), so the trace and
the facts are not repeated on every card; instead each card carries a ``links`` entry of type
``absolute`` (CDS Hooks 2.0 "Link") that the EHR opens on demand. The link is a capability: it
names one decision and carries an HMAC of its id under the audit hash key, so it can be opened from
the clinician's browser without the EHR's token, yet decision ids cannot be enumerated and nothing
else is reachable through it. The page shows the stored answer, which holds no raw patient
identifier unless input storage is on (see docs/deployment.md, security model).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

PATH = "/cds-services/explanations"
LABEL = "Why: rules, facts and sources"


def signature(key: str, decision_id: str) -> str:
    return hmac.new(key.encode(), f"explain:{decision_id}".encode(), hashlib.sha256).hexdigest()[:32]


def verified(key: str, decision_id: str, sig: str) -> bool:
    return hmac.compare_digest(signature(key, decision_id), sig)


def url(base_url: str, key: str, decision_id: str) -> str:
    return f"{base_url.rstrip('/')}{PATH}/{decision_id}?sig={signature(key, decision_id)}"


def add_links(cards: list[dict[str, Any]], base_url: str, key: str, decision_id: str) -> None:
    """Every card but the dosing one (which lists the facts itself) gets the explanation link."""
    link = {"label": LABEL, "url": url(base_url, key, decision_id), "type": "absolute"}
    for card in cards:
        topic = card.get("source", {}).get("topic", {}).get("code")
        if topic != "dosing":
            card["links"] = [*card.get("links", []), link]
