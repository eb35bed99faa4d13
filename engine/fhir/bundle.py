"""Unpack whatever a FHIR client sends into plain resources, and find what references point to.

A prefetch value, a ``draftOrders`` context or a Synthea export may be a bare resource, a Bundle
of any type (``searchset``, ``transaction``, ``collection``, or no ``type`` at all, as the CDS
Hooks sandbox sends), or a Bundle whose entries include ``OperationOutcome`` issues. This module
separates the clinical resources from the error reports so callers can say what was unavailable
instead of crashing or silently treating an error as "no data".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from engine.fhir.values import as_list, obj, text

MAX_DEPTH = 4  # nested Bundles (a Bundle in an entry) are unwrapped this deep, no further


@dataclass
class Unpacked:
    """Resources found in a document, and the OperationOutcomes that came with them."""

    resources: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    full_urls: dict[str, dict[str, Any]] = field(default_factory=dict)  # entry.fullUrl -> resource

    def of_type(self, resource_type: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r.get("resourceType") == resource_type]


def is_operation_outcome(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("resourceType") == "OperationOutcome"


def is_bundle(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("resourceType") == "Bundle"


def unpack(doc: Any, into: Unpacked | None = None, depth: int = 0) -> Unpacked:
    """Flatten a resource, a Bundle, or a list of either; nothing here raises on odd input."""
    out = into if into is not None else Unpacked()
    if isinstance(doc, list):
        for item in doc:
            unpack(item, out, depth)
        return out
    if not isinstance(doc, dict):
        return out
    rtype = doc.get("resourceType")  # read once: this runs for every resource of every call
    if not text(rtype):
        return out
    if rtype == "OperationOutcome":
        out.outcomes.append(doc)
    elif rtype == "Bundle":
        if depth >= MAX_DEPTH:
            return out
        for entry in as_list(doc.get("entry")):
            entry = obj(entry)
            resource = entry.get("resource")
            if not isinstance(resource, dict):
                continue
            mode = text(obj(entry.get("search")).get("mode"))
            if mode == "outcome" and not is_operation_outcome(resource):
                continue
            full_url = text(entry.get("fullUrl"))
            if full_url:
                out.full_urls[full_url] = resource
            unpack(resource, out, depth + 1)
    else:
        out.resources.append(doc)
    return out


def outcome_summary(outcomes: Iterable[dict[str, Any]]) -> str:
    """One line from the issues of some OperationOutcomes (severity: details), for notes and logs."""
    parts: list[str] = []
    for oo in outcomes:
        for issue in as_list(oo.get("issue")):
            issue = obj(issue)
            detail = (
                text(obj(issue.get("details")).get("text"))
                or text(issue.get("diagnostics"))
                or text(issue.get("code"))
                or "no details"
            )
            parts.append(f"{text(issue.get('severity')) or 'error'}: {detail}")
    return "; ".join(parts)[:300] or "OperationOutcome without issues"


def only_informational(outcomes: Iterable[dict[str, Any]]) -> bool:
    """True when every issue is ``information`` or ``warning`` (the data beside it is usable)."""
    severities = [text(obj(i).get("severity")) for oo in outcomes for i in as_list(oo.get("issue"))]
    return bool(severities) and all(s in ("information", "warning") for s in severities)


class ReferenceIndex:
    """Resolve ``Type/id``, absolute URLs, ``urn:uuid:`` fullUrls and ``#contained`` references."""

    def __init__(self, resources: Iterable[dict[str, Any]], full_urls: dict[str, dict[str, Any]] | None = None) -> None:
        # The ``Type/id`` keys are built on the first lookup: most calls resolve no reference at
        # all (drugs come as codes), and keying every resource was a visible part of a call's CPU.
        self._resources = list(resources)
        self._full_urls = dict(full_urls or {})
        self._keys: dict[str, dict[str, Any]] | None = None

    def _by_key(self) -> dict[str, dict[str, Any]]:
        if self._keys is None:
            keys = self._full_urls
            for r in self._resources:
                rtype, rid = text(r.get("resourceType")), text(r.get("id"))
                if rtype and rid:
                    keys.setdefault(f"{rtype}/{rid}", r)
            self._keys = keys
        return self._keys

    def resolve(self, reference: Any, container: dict[str, Any] | None = None) -> dict[str, Any] | None:
        ref = text(obj(reference).get("reference")) if isinstance(reference, dict) else text(reference)
        if ref is None:
            return None
        if ref.startswith("#") and container is not None:
            for contained in as_list(container.get("contained")):
                if isinstance(contained, dict) and text(contained.get("id")) == ref[1:]:
                    return contained
            return None
        by_key = self._by_key()
        if ref in by_key:
            return by_key[ref]
        parts = ref.rstrip("/").split("/")
        if "_history" in parts:  # Type/id/_history/vid
            parts = parts[: parts.index("_history")]
        if len(parts) >= 2:
            return by_key.get(f"{parts[-2]}/{parts[-1]}")
        return None
