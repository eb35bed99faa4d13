"""Override analytics: how often each rule's cards are shown, accepted and overridden, and why.

A medication-safety committee decides which alerts stay on these numbers, so they are counted in
the database (GROUP BY over ``decision_cards`` joined to ``feedback``), never by looping over rows
in Python: a million decisions aggregate in seconds on SQLite and PostgreSQL (BENCHMARKS.md).

Definitions (docs/governance.md):

- *shown*: cards the service returned; *responded*: shown cards with any feedback;
- a card counts as *accepted* / *overridden* once however many feedback items it got;
- *override rate* = overridden / responded (cards the EHR sent no feedback for say nothing about
  the prescriber), with a 95 % Wilson score interval, which stays inside [0, 1] and is honest
  for small counts where the normal approximation is not;
- *suggestion acceptance* = accepted cards that carried a suggestion / shown cards with one.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, literal, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import InstrumentedAttribute

from engine.audit.models import DecisionCardRow, FeedbackRow

__all__ = ["Period", "summary", "wilson"]

Z95 = 1.959963984540054  # two-sided 95 % normal quantile


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval for a binomial proportion; None when there is nothing to estimate."""
    if n <= 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # at 0 and at n the bound is exactly 0 or 1; rounding must not put the estimate outside it
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


@dataclass(frozen=True)
class Period:
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    rule_id: str | None = None

    def where(self) -> list[ColumnElement[bool]]:
        c = DecisionCardRow
        out: list[ColumnElement[bool]] = []
        if self.since is not None:
            out.append(c.created_at >= _utc(self.since))
        if self.until is not None:
            out.append(c.created_at < _utc(self.until))
        if self.rule_id:
            out.append(c.rule_id == self.rule_id)
        return out


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _week(engine: Engine) -> ColumnElement[Any]:
    """The Monday (UTC) that starts a card's ISO week, as YYYY-MM-DD, in each database's own dialect."""
    created = DecisionCardRow.created_at
    if engine.dialect.name == "postgresql":
        return func.to_char(func.date_trunc("week", func.timezone("UTC", created)), "YYYY-MM-DD")
    # SQLite: 'weekday 0' moves forward to Sunday (or stays), '-6 days' lands on that week's Monday
    return func.date(created, "weekday 0", "-6 days")


def _per_card() -> Any:
    """One row per card that got feedback: did it get an accept, an override (0/1 each)."""
    f = FeedbackRow
    return (
        select(
            f.card_uuid.label("card_uuid"),
            func.max(case((f.outcome == "accepted", 1), else_=0)).label("acc"),
            func.max(case((f.outcome == "overridden", 1), else_=0)).label("ovr"),
        )
        .group_by(f.card_uuid)
        .subquery("fb")
    )


def _grouped(period: Period, *keys: ColumnElement[Any] | InstrumentedAttribute[Any]) -> Select[Any]:
    c = DecisionCardRow
    fb = _per_card()
    acc = func.coalesce(fb.c.acc, 0)
    ovr = func.coalesce(fb.c.ovr, 0)
    sugg = case((c.has_suggestion, 1), else_=0)
    stmt = (
        select(
            *keys,
            func.count().label("shown"),
            func.min(c.created_at).label("first_seen"),
            func.sum(case((fb.c.card_uuid.is_not(None), 1), else_=0)).label("responded"),
            func.sum(acc).label("accepted"),
            func.sum(ovr).label("overridden"),
            func.sum(sugg).label("with_suggestion"),
            func.sum(sugg * acc).label("suggestion_accepted"),
        )
        .select_from(c)
        .outerjoin(fb, fb.c.card_uuid == c.card_uuid)
        .group_by(*keys)
        .order_by(*keys)
    )
    conds = period.where()
    return stmt.where(and_(*conds)) if conds else stmt


def _reasons(period: Period) -> Select[Any]:
    c, f = DecisionCardRow, FeedbackRow
    code = f.item[("overrideReason", "reason", "code")].as_string()
    comment = f.item[("overrideReason", "userComment")].as_string()
    stmt = (
        select(
            c.rule_id,
            c.severity,
            c.topic,
            func.coalesce(code, literal("(none given)")).label("reason"),
            func.count().label("n"),
            func.sum(case((func.coalesce(comment, "") != "", 1), else_=0)).label("comments"),
        )
        .select_from(f)
        .join(c, c.card_uuid == f.card_uuid)
        .where(f.outcome == "overridden", *period.where())
        .group_by(c.rule_id, c.severity, c.topic, "reason")
        .order_by(c.rule_id, c.severity, c.topic, "reason")
    )
    return stmt


def _counts(row: Any) -> dict[str, Any]:
    shown, responded = int(row.shown), int(row.responded or 0)
    accepted, overridden = int(row.accepted or 0), int(row.overridden or 0)
    with_sugg, sugg_acc = int(row.with_suggestion or 0), int(row.suggestion_accepted or 0)
    ci = wilson(overridden, responded)
    return {
        "shown": shown,
        "responded": responded,
        "accepted": accepted,
        "overridden": overridden,
        "override_rate": overridden / responded if responded else None,
        "override_rate_ci95": list(ci) if ci else None,
        "with_suggestion": with_sugg,
        "suggestion_accepted": sugg_acc,
        "suggestion_acceptance_rate": sugg_acc / with_sugg if with_sugg else None,
    }


def summary(engine: Engine, period: Period) -> dict[str, Any]:
    """Every number the report, the admin endpoint and the dashboards show, as one JSON object."""
    c = DecisionCardRow
    rule = func.coalesce(c.rule_id, literal("")).label("rule_id")
    week = _week(engine).label("week")
    with engine.connect() as conn:
        cards = conn.execute(_grouped(period, rule, c.severity, c.topic)).all()
        reasons = conn.execute(_reasons(period)).all()
        weekly = conn.execute(_grouped(period, week, rule)).all()
        versions = conn.execute(_grouped(period, c.ruleset_version, rule)).all()
        (total,) = conn.execute(_grouped(period)).all()

    by_key: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in cards:
        by_key[(r.rule_id, r.severity, r.topic)] = {
            "rule_id": r.rule_id or None,
            "severity": r.severity,
            "topic": r.topic,
            **_counts(r),
            "override_reasons": {},
            "comments": 0,
        }
    for r in reasons:
        entry = by_key.get((r.rule_id or "", r.severity, r.topic))
        if entry is not None:  # always present: a reason belongs to a shown card in the period
            entry["override_reasons"][r.reason] = int(r.n)
            entry["comments"] += int(r.comments or 0)
    return {
        "period": {
            "since": period.since.isoformat() if period.since else None,
            "until": period.until.isoformat() if period.until else None,
            "rule_id": period.rule_id,
        },
        "definitions": {
            "override_rate": "overridden / responded (cards with any feedback)",
            "override_rate_ci95": "Wilson score interval, 95 %",
            "suggestion_acceptance_rate": "accepted cards with a suggestion / shown cards with a suggestion",
        },
        "totals": _counts(total),
        "cards": list(by_key.values()),
        "weekly": [{"week": str(r.week), "rule_id": r.rule_id or None, **_counts(r)} for r in weekly],
        "versions": (by_version := _versions(versions)),
        "jumps": _jumps(by_version),
    }


def _versions(rows: Sequence[Any]) -> list[dict[str, Any]]:
    out = [
        {
            "ruleset_version": r.ruleset_version,
            "rule_id": r.rule_id or None,
            "first_seen": _iso(r.first_seen),
            **_counts(r),
        }
        for r in rows
    ]
    out.sort(key=lambda v: (v["rule_id"] or "", v["first_seen"]))
    return out


def _iso(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return _utc(value).isoformat()
    return str(value).replace(" ", "T", 1)  # SQLite hands back an aggregate's datetime as its stored text


def _jumps(versions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A rule whose override rate moved between consecutive pack versions by more than chance.

    "More than chance" here is that the two 95 % Wilson intervals do not overlap: conservative
    (it misses some real changes), but a committee is never sent chasing noise.
    """
    out: list[dict[str, Any]] = []
    for before, after in itertools.pairwise(versions):
        if before["rule_id"] != after["rule_id"]:
            continue
        a, b = before["override_rate_ci95"], after["override_rate_ci95"]
        if a is None or b is None or (a[1] >= b[0] and b[1] >= a[0]):
            continue
        out.append(
            {
                "rule_id": after["rule_id"],
                "from_version": before["ruleset_version"],
                "to_version": after["ruleset_version"],
                "from_rate": before["override_rate"],
                "to_rate": after["override_rate"],
            }
        )
    return out
