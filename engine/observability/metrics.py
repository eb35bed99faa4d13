"""Prometheus metrics: what the service is asked, how fast it answers, what it advises, what it failed to record.

Labels are bounded on purpose: endpoints are route templates (``/v1/decisions/{decision_id}``, never
the id), rule ids come from the compiled pack, categories and severities from a fixed vocabulary.
Nothing about a patient is ever a label.

Several worker processes (gunicorn) each hold their own counters. When ``PROMETHEUS_MULTIPROC_DIR``
is set before this module is first imported, prometheus-client keeps them in shared files and
``render`` merges every worker; ``cdsrules serve --workers N`` sets it up. Without it, each process
reports only its own counts.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# the *_created series double the output and nobody alerts on them
disable_created_metrics()  # type: ignore[no-untyped-call]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "cdsrules_http_requests",
    "HTTP requests by route template, method and outcome.",
    ["endpoint", "method", "outcome"],
)
REQUEST_SECONDS = Histogram(
    "cdsrules_http_request_duration_seconds",
    "HTTP request latency by route template and outcome.",
    ["endpoint", "outcome"],
    buckets=_LATENCY_BUCKETS,
)
DECISIONS = Counter("cdsrules_decisions", "Decisions recorded in the audit log.", ["endpoint"])
CARDS = Counter(
    "cdsrules_cards", "Findings and CDS Hooks cards returned, by category and severity.", ["category", "severity"]
)
CARD_OUTCOMES = Counter(
    "cdsrules_card_outcomes",
    "CDS Hooks cards shown, and feedback on them (accepted, overridden), by rule id and severity.",
    ["rule_id", "severity", "outcome"],
)
RULES_FIRED = Counter("cdsrules_rules_fired", "Rule firings in recorded decisions.", ["rule_id"])
AUDIT_FAILURES = Counter(
    "cdsrules_audit_write_failures",
    "Audit writes that failed (the request was refused with 503).",
    ["kind"],
)
AUDIT_WRITE_SECONDS = Histogram(
    "cdsrules_audit_write_duration_seconds",
    "Time to commit one audit write.",
    ["kind"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0),
)

for _kind in ("decision", "feedback"):  # present at 0 from the start, so increase() alerts work
    AUDIT_FAILURES.labels(_kind)


def outcome_of(status: int) -> str:
    """A small fixed vocabulary for the ``outcome`` label."""
    if status < 400:
        return "ok"
    if status == 503:
        return "unavailable"
    if status < 500:
        return "rejected"
    return "error"


def observe_request(endpoint: str, method: str, status: int, seconds: float) -> None:
    outcome = outcome_of(status)
    REQUESTS.labels(endpoint, method, outcome).inc()
    REQUEST_SECONDS.labels(endpoint, outcome).observe(seconds)


def cards_of(response: dict[str, Any]) -> list[tuple[str, str]]:
    """(category, severity) of each piece of advice: native ``findings`` or CDS Hooks ``cards``."""
    out: list[tuple[str, str]] = []
    for f in response.get("findings") or []:
        if isinstance(f, dict):
            out.append((str(f.get("category", "unknown")), str(f.get("severity", "unknown"))))
    for c in response.get("cards") or []:
        if isinstance(c, dict):  # CDS Hooks: the category travels as the card source's topic code
            source = c.get("source") if isinstance(c.get("source"), dict) else {}
            topic = (source or {}).get("topic")
            category = str(topic.get("code", "card")) if isinstance(topic, dict) else "card"
            out.append((category, str(c.get("indicator", "unknown"))))
    return out


def observe_decision(endpoint: str, rule_ids: Iterable[str], response: dict[str, Any]) -> None:
    """Count a decision that was recorded (advice that actually left the service)."""
    DECISIONS.labels(endpoint).inc()
    for rule_id in rule_ids:
        RULES_FIRED.labels(rule_id).inc()
    for category, severity in cards_of(response):
        CARDS.labels(category, severity).inc()


def render() -> tuple[bytes, str]:
    """The exposition text and its content type; merges all workers in multi-process mode."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def mark_worker_dead(pid: int) -> None:
    """Gunicorn ``child_exit`` hook: drop a dead worker's live-only series from the shared files."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
