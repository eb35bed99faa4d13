"""The only module that talks to durable-rules, and everything it takes to make that safe.

durable-rules 2.0.28 is an unmaintained C engine with hazards we measured (docs/durable-rules.md):

* ``delete_state`` segfaults on a session in which no action fired -> every session first asserts
  a sentinel fact and runs its action before any patient fact goes in;
* the 1,025th live session of a ruleset fails for good -> ``delete_state`` in ``finally``;
* session ids are looked up by a 32-bit FNV-1a hash only, so two ids with one hash share facts ->
  sessions use slot ids from a pool whose hashes are checked distinct, retired after a failure;
* the default ``Host`` runs background timer threads that corrupt state under concurrency -> no
  ``Host`` at all: we call the C module directly and drive the agenda ourselves;
* exceptions in Python actions are swallowed -> there are no Python actions; fired rule names come
  back from the agenda loop and are interpreted by the caller;
* C errors are bare numeric codes -> mapped here, once, to ``EngineError``.

Compile-time limits (fan-out, patterns per rule) are enforced by ``engine.compiler.durable_form``.

Speed (issue 8): the C calls are the floor of an evaluation, and the C engine parses and indexes
every property of a fact it is given. So the patient fact goes in with only the properties some
pattern of this ruleset can test (any name the ruleset JSON mentions; about 15 of 55), and the
JSON of the sentinel and of every derived fact is built once per slot sid and reused.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import durable_rules_engine as _dre

from engine.compiler.durable_form import (
    DERIVED_FACT_TYPE,
    PATIENT_FACT_TYPE,
    SENTINEL_FACT_TYPE,
    SENTINEL_RULE,
)
from engine.errors import EngineError

MAX_FACT_PROPERTIES = 250  # the C engine stores at most 255 properties per fact
MAX_AGENDA_STEPS = 10_000  # a rule pack that chains longer than this is looping
_NAMES = itertools.count()


def fnv1a32(text: str) -> int:
    """The hash durable-rules uses to find a session (state.c)."""
    h = 2166136261
    for byte in text.encode():
        h ^= byte
        h = (h * 16777619) & 0xFFFFFFFF
    return h


class SidPool:
    """Session ids whose FNV-1a hashes are pairwise distinct, over the lifetime of one ruleset.

    A retired sid (its session could not be deleted) is never handed out again, and its hash stays
    reserved, so no later session can ever be routed to its leftover facts.
    """

    def __init__(self, size: int = 4, names: Iterator[str] | None = None) -> None:
        self._hashes: set[int] = set()
        self._names = names if names is not None else (f"slot-{i}" for i in itertools.count())
        self._free: list[str] = [self._fresh() for _ in range(size)]
        self._lock = threading.Lock()

    def _fresh(self) -> str:
        while True:
            sid = next(self._names)
            h = fnv1a32(sid)
            if h not in self._hashes:
                self._hashes.add(h)
                return sid

    def acquire(self) -> str:
        with self._lock:
            return self._free.pop() if self._free else self._fresh()

    def release(self, sid: str) -> None:
        with self._lock:
            self._free.append(sid)

    def retire(self, sid: str) -> None:
        del sid  # its hash stays in self._hashes for good


def _strings(value: Any) -> Iterator[str]:
    """Every string in a JSON-like value, dictionary keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def _patient_json(patient_fact: Mapping[str, Any], sid: str, tested: frozenset[str]) -> str:
    """The patient fact as the C engine sees it: the tested properties, then its type and session."""
    fact = {k: v for k, v in patient_fact.items() if k in tested}
    fact["t"], fact["sid"] = PATIENT_FACT_TYPE, sid
    return json.dumps(fact)


@dataclass(frozen=True)
class Firing:
    """What one evaluation produced: fired rule names and the derived facts asserted."""

    fired: frozenset[str]
    derived: Mapping[str, frozenset[str]]


class DurableRuleset:
    """One compiled ruleset in the C engine, evaluated one isolated session at a time."""

    def __init__(self, label: str, definition: Mapping[str, Any], derivations: Mapping[str, Mapping[str, str]]):
        self.name = f"{label}#{next(_NAMES)}"
        self._derivations = {k: tuple(v.items()) for k, v in derivations.items()}
        # create_ruleset may keep references into the JSON; hand it a fresh string, never our dict
        try:
            self._handle = _dre.create_ruleset(self.name, json.dumps(definition))
        except _dre.error as exc:
            raise EngineError(f"durable-rules refused ruleset {label!r}: {exc}") from exc
        # properties a pattern can test: every string of the definition (keys and values) - a superset,
        # so nothing a rule could match on is ever left out of the fact the C engine sees
        self._tested: frozenset[str] = frozenset(_strings(definition))
        self._pool = SidPool()
        # C calls hold the GIL but an evaluation is many calls; one session at a time per ruleset
        self._lock = threading.Lock()
        self._closed = False
        # fact JSON that depends only on the slot sid, built on first use (the pool holds few sids)
        self._sentinel_json: dict[str, str] = {}
        self._derived_json: dict[tuple[str, str, str], str] = {}

    def evaluate(self, patient_fact: Mapping[str, Any]) -> Firing:
        if len(patient_fact) > MAX_FACT_PROPERTIES:
            raise EngineError(f"patient fact has {len(patient_fact)} properties (limit {MAX_FACT_PROPERTIES})")
        if "id" in patient_fact:  # durable-rules treats 'id' as fact identity and drops "duplicates"
            raise EngineError("a fact may not carry an 'id' property")
        with self._lock:
            if self._closed:
                raise EngineError(f"ruleset {self.name} was retired")
            sid = self._pool.acquire()
            clean = False
            try:
                result = self._run(sid, patient_fact)
                clean = True
                return result
            except _dre.error as exc:
                raise EngineError(f"durable-rules failed during evaluation: {exc}") from exc
            finally:
                clean = self._delete(sid) and clean
                (self._pool.release if clean else self._pool.retire)(sid)

    def _run(self, sid: str, patient_fact: Mapping[str, Any]) -> Firing:
        h = self._handle
        # 1. the sentinel: one action fires, which initialises the C session's action context
        sentinel = self._sentinel_json.get(sid)
        if sentinel is None:
            sentinel = self._sentinel_json[sid] = json.dumps({"t": SENTINEL_FACT_TYPE, "sid": sid})
        _, state = _dre.assert_fact(h, sentinel)
        fired: set[str] = set()
        derived: dict[str, set[str]] = {}
        self._drain(h, state, sid, fired, derived)
        if SENTINEL_RULE not in fired:
            raise EngineError("sentinel rule did not fire; refusing to evaluate in an uninitialised session")
        # 2. the patient, then the agenda until quiet (derived facts are asserted from the loop)
        _, state = _dre.assert_fact(h, _patient_json(patient_fact, sid, self._tested))
        self._drain(h, state, sid, fired, derived)
        fired.discard(SENTINEL_RULE)
        return Firing(frozenset(fired), {k: frozenset(v) for k, v in derived.items()})

    def _drain(self, h: int, state: int, sid: str, fired: set[str], derived: dict[str, set[str]]) -> None:
        result = _dre.start_action_for_state(h, state)
        message = result[1] if result else None
        for _ in range(MAX_AGENDA_STEPS):
            if not message:
                return
            name = message[2 : message.index('"', 2)]  # message is '{"<rule name>": {...}}'
            fired.add(name)
            for fact_name, value in self._derivations.get(name, ()):
                values = derived.setdefault(fact_name, set())
                if value not in values:
                    values.add(value)
                    _dre.assert_fact(h, self._derived_fact(fact_name, value, sid))
            message = _dre.complete_and_start_action(h, state)
        raise EngineError(f"rule agenda did not settle after {MAX_AGENDA_STEPS} steps")

    def _derived_fact(self, fact_name: str, value: str, sid: str) -> str:
        key = (fact_name, value, sid)
        text = self._derived_json.get(key)
        if text is None:
            payload = {"t": DERIVED_FACT_TYPE, "name": fact_name, "value": value, "sid": sid}
            text = self._derived_json[key] = json.dumps(payload)
        return text

    def _delete(self, sid: str) -> bool:
        try:
            _dre.delete_state(self._handle, sid)
            return True
        except _dre.error:
            return False

    def live_facts(self, sid: str) -> list[dict[str, Any]]:
        """Facts the C engine still holds for ``sid`` (tests use this to prove clean-up)."""
        try:
            facts: list[dict[str, Any]] = json.loads(_dre.get_facts(self._handle, sid))
        except _dre.error:
            return []
        return facts

    def close(self) -> None:
        """Free the C ruleset. Callers drain in-flight evaluations first (the lock does it here)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                _dre.delete_ruleset(self._handle)
