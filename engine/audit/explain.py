"""One decision, explained later: its pack (and where to load it), the rules and cards, the input.

``GET /v1/decisions/{id}`` answers with the audit row plus what links it to everything needed to
re-run it: the pack version and digest and whether the pack archive holds that exact pack, the
fired rules with their versions, the cards shown (each with the rule behind it and the feedback
it got), and the normalised input when input storage was on.
"""

from __future__ import annotations

from typing import Any

from engine.audit.pack_archive import PackArchive
from engine.audit.store import AuditStore


def explain(store: AuditStore, decision_id: str, archive: PackArchive | None) -> dict[str, Any] | None:
    row = store.get(decision_id)
    if row is None:
        return None
    digest = row["ruleset"]["digest"]
    kept = archive.path_for(digest) if archive is not None else None
    cards = store.cards_of(decision_id)
    for card in cards:
        card["feedback"] = store.feedback_for(card["card_uuid"])
    return {
        **row,
        "pack_archived": kept is not None,  # beside "ruleset", which keeps the shape of the answer
        "cards": cards,
        "input_stored": row["input_document"] is not None,
        "replay": f"cdsrules audit replay {decision_id}" if row["input_document"] is not None else None,
    }
