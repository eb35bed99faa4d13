"""Sets of patient values a condition admits: the arithmetic behind the clinical-logic lint.

A rule speaks to a *region* of one dimension (renal function, age, weight, hepatic class): a set of
numeric intervals plus tokens for what is not on the number line ("missing", "dialysis", or the
values of an enumerated field). Overlaps, gaps and contradictions between rules are then plain set
operations, so ``engine.compiler.lint`` can say "25 <= x < 30 is covered by no rule" instead of
guessing from rule titles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

INF = math.inf
MISSING = "missing"
DIALYSIS = "dialysis"


@dataclass(frozen=True, order=True)
class Interval:
    lo: float
    lo_closed: bool
    hi: float
    hi_closed: bool

    def is_empty(self) -> bool:
        return self.lo > self.hi or (self.lo == self.hi and not (self.lo_closed and self.hi_closed))

    def __str__(self) -> str:
        if self.lo == self.hi:
            return f"x = {_num(self.lo)}"
        left = "" if self.lo == -INF else f"{_num(self.lo)} {'≤' if self.lo_closed else '<'} "
        right = "" if self.hi == INF else f" {'≤' if self.hi_closed else '<'} {_num(self.hi)}"
        if not left and not right:
            return "any value"
        if not left:
            return f"x{right}"
        if not right:
            return f"x {'≥' if self.lo_closed else '>'} {_num(self.lo)}"
        return f"{left}x{right}"


def _num(x: float) -> str:
    return f"{x:g}"


IntervalSet = tuple[Interval, ...]
EVERYTHING: IntervalSet = (Interval(-INF, False, INF, False),)
NON_NEGATIVE: IntervalSet = (Interval(0.0, True, INF, False),)


def _cap(a: Interval, b: Interval) -> Interval:
    lo, lo_c = max((a.lo, not a.lo_closed), (b.lo, not b.lo_closed))
    hi, hi_c = min((a.hi, a.hi_closed), (b.hi, b.hi_closed))
    return Interval(lo, not lo_c, hi, hi_c)


def normalise(ivs: list[Interval] | IntervalSet) -> IntervalSet:
    """Sorted, disjoint, merged; empty intervals dropped."""
    items = sorted((i for i in ivs if not i.is_empty()), key=lambda i: (i.lo, not i.lo_closed))
    out: list[Interval] = []
    for iv in items:
        if out:
            last = out[-1]
            touching = last.hi > iv.lo or (last.hi == iv.lo and (last.hi_closed or iv.lo_closed))
            if touching:
                hi, hi_c = max((last.hi, last.hi_closed), (iv.hi, iv.hi_closed))
                out[-1] = Interval(last.lo, last.lo_closed, hi, hi_c)
                continue
        out.append(iv)
    return tuple(out)


def intersect(a: IntervalSet, b: IntervalSet) -> IntervalSet:
    return normalise([_cap(x, y) for x in a for y in b])


def union(a: IntervalSet, b: IntervalSet) -> IntervalSet:
    return normalise([*a, *b])


def complement(a: IntervalSet) -> IntervalSet:
    out: list[Interval] = []
    lo, lo_closed = -INF, False
    for iv in normalise(a):
        out.append(Interval(lo, lo_closed, iv.lo, not iv.lo_closed))
        lo, lo_closed = iv.hi, not iv.hi_closed
    out.append(Interval(lo, lo_closed, INF, False))
    return normalise(out)


def subtract(a: IntervalSet, b: IntervalSet) -> IntervalSet:
    return intersect(a, complement(b))


def describe(ivs: IntervalSet) -> str:
    return " or ".join(str(i) for i in ivs) if ivs else "no value"


@dataclass(frozen=True)
class Region:
    """Numeric intervals plus non-numeric tokens of one dimension."""

    ivs: IntervalSet = ()
    tokens: frozenset[str] = frozenset()

    def __and__(self, other: Region) -> Region:
        return Region(intersect(self.ivs, other.ivs), self.tokens & other.tokens)

    def __or__(self, other: Region) -> Region:
        return Region(union(self.ivs, other.ivs), self.tokens | other.tokens)

    def __sub__(self, other: Region) -> Region:
        return Region(subtract(self.ivs, other.ivs), self.tokens - other.tokens)

    def is_empty(self) -> bool:
        return not self.ivs and not self.tokens

    def within(self, other: Region) -> bool:
        return (self - other).is_empty()

    def __str__(self) -> str:
        parts = [str(i) for i in self.ivs] + sorted(self.tokens)
        return " or ".join(parts) if parts else "nothing"
