"""Leases: a swapped-out engine stays open for requests that hold it and is closed after the last one."""

from __future__ import annotations

import threading

import pytest

from engine.compiler.model import CompiledPack
from engine.errors import EngineError
from engine.runtime.engine import Engine
from engine.runtime.registry import EngineRegistry
from tests.conftest import request


def test_old_engine_survives_a_swap_while_leased(pack: CompiledPack) -> None:
    first, second = Engine(pack), Engine(pack)
    registry = EngineRegistry(first)
    req = request(age_years=50)
    with registry.lease() as held:
        registry.swap(second)
        assert registry.current is second
        assert registry.draining() == 1
        assert held.evaluate(req).dose is not None, "an in-flight request finishes on its engine"
    assert registry.draining() == 0
    with pytest.raises(EngineError, match="retired"):
        first.evaluate(req)  # closed once its last lease was returned
    with registry.lease() as now:
        assert now is second and now.evaluate(req).dose is not None
    registry.close()


def test_idle_engine_is_closed_at_swap(pack: CompiledPack) -> None:
    first, second = Engine(pack), Engine(pack)
    registry = EngineRegistry(first)
    assert registry.swap(second) is first
    with pytest.raises(EngineError, match="retired"):
        first.evaluate(request())
    registry.close()
    with pytest.raises(EngineError, match="retired"):
        second.evaluate(request())


def test_many_swaps_under_concurrent_leases(pack: CompiledPack) -> None:
    registry = EngineRegistry(Engine(pack))
    engines: list[Engine] = [registry.current]
    stop = threading.Event()
    errors: list[BaseException] = []
    served = [0]

    def worker() -> None:
        req = request(age_years=70, egfr_ml_min_1_73m2=40)
        while not stop.is_set():
            try:
                with registry.lease() as engine:
                    assert engine.evaluate(req).dose is not None
                served[0] += 1
            except BaseException as exc:  # any failure is the finding
                errors.append(exc)
                return

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for _ in range(25):
        new = Engine(pack)
        engines.append(new)
        registry.swap(new)
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    assert served[0] > 0
    assert registry.draining() == 0
    for old in engines[:-1]:  # every replaced engine was closed, none leaked
        with pytest.raises(EngineError, match="retired"):
            old.evaluate(request())
    registry.close()
