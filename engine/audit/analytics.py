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


def _per_card(period: Period) -> Any:
    """One row per card that got feedback: did it get an accept, an override (0/1 each)."""
    f, c = FeedbackRow, DecisionCardRow
    stmt = select(
        f.card_uuid.label("card_uuid"),
        func.max(case((f.outcome == "accepted", 1), else_=0)).label("acc"),
        func.max(case((f.outcome == "overridden", 1), else_=0)).label("ovr"),
    )
    conds = period.where()
    if conds:  # only the period's cards: a month of a year's log should not aggregate the year
        stmt = stmt.where(f.card_uuid.in_(select(c.card_uuid).where(*conds)))
    return stmt.group_by(f.card_uuid).subquery("fb")


def _grouped(period: Period, *keys: ColumnElement[Any] | InstrumentedAttribute[Any]) -> Select[Any]:
    c = DecisionCardRow
    fb = _per_card(period)
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
    )
    conds = period.where()
    return stmt.where(and_(*conds)) if conds else stmt


@dataclass
class _Sums:
    """Counts of one group, summed from the finest groups the database returned."""

    shown: int = 0
    responded: int = 0
    accepted: int = 0
    overridden: int = 0
    with_suggestion: int = 0
    suggestion_accepted: int = 0
    first_seen: Any = None

    def add(self, row: Any) -> None:
        self.shown += int(row.shown)
        self.responded += int(row.responded or 0)
        self.accepted += int(row.accepted or 0)
        self.overridden += int(row.overridden or 0)
        self.with_suggestion += int(row.with_suggestion or 0)
        self.suggestion_accepted += int(row.suggestion_accepted or 0)
        if self.first_seen is None or row.first_seen < self.first_seen:
            self.first_seen = row.first_seen


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


def _counts(sums: _Sums) -> dict[str, Any]:
    shown, responded, accepted, overridden = sums.shown, sums.responded, sums.accepted, sums.overridden
    with_sugg, sugg_acc = sums.with_suggestion, sums.suggestion_accepted
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
    # One scan: the database groups by the finest key (rule, severity, topic, week, pack version),
    # a few thousand rows at most; the coarser views are sums of those groups, not of decisions.
    with engine.connect() as conn:
        fine = conn.execute(_grouped(period, rule, c.severity, c.topic, week, c.ruleset_version)).all()
        reasons = conn.execute(_reasons(period)).all()
    total = _Sums()
    by_card: dict[tuple[str, str, str], _Sums] = {}
    by_week: dict[tuple[str, str], _Sums] = {}
    by_version: dict[tuple[str, str], _Sums] = {}
    for r in fine:
        total.add(r)
        by_card.setdefault((r.rule_id, r.severity, r.topic), _Sums()).add(r)
        by_week.setdefault((str(r.week), r.rule_id), _Sums()).add(r)
        by_version.setdefault((r.ruleset_version, r.rule_id), _Sums()).add(r)

    by_key: dict[tuple[str, str, str], dict[str, Any]] = {}
    for (rid, severity, topic), sums in sorted(by_card.items()):
        by_key[(rid, severity, topic)] = {
            "rule_id": rid or None,
            "severity": severity,
            "topic": topic,
            **_counts(sums),
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
        "weekly": [{"week": wk, "rule_id": rid or None, **_counts(v)} for (wk, rid), v in sorted(by_week.items())],
        "versions": (versions := _versions(by_version)),
        "jumps": _jumps(versions),
    }


def _versions(groups: dict[tuple[str, str], _Sums]) -> list[dict[str, Any]]:
    out = [
        {"ruleset_version": version, "rule_id": rid or None, "first_seen": _iso(v.first_seen), **_counts(v)}
        for (version, rid), v in groups.items()
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
