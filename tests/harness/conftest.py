"""Harness fixtures: the pack compiled once (its drugs parametrize the tests), engines, a cohort.

The drug list is read from the compiled pack at collection time, so a drug a teammate adds gets
every invariant test without anyone editing this folder. Hypothesis runs derandomized (the same
examples every run, reproducible in CI) with no deadline; ``CDSRULES_HYPOTHESIS_SCALE`` multiplies
the example counts for a longer local soak.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from engine.compiler.model import CompiledPack
from engine.compiler.pack import compile_pack
from engine.harness.case import Case, Checker
from engine.harness.differential import Differential
from engine.harness.synth import Generator
from engine.runtime.engine import Engine
from engine.settings import BUNDLED_RULES

SCALE = float(os.environ.get("CDSRULES_HYPOTHESIS_SCALE", "1"))
PACK: CompiledPack = compile_pack(BUNDLED_RULES)
DRUGS = sorted(PACK.drugs)
COHORT_SEED = 20261121
COHORT_SIZE = 3000  # make test: invariants and the differential check over this many synthetic patients

settings.register_profile(
    "harness",
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
HARNESS = settings.get_profile("harness")


def examples(n: int) -> int:
    return max(1, int(n * SCALE))


@pytest.fixture(scope="session")
def harness_pack() -> CompiledPack:
    return PACK


@pytest.fixture(scope="session")
def durable_engine() -> Iterator[Engine]:
    eng = Engine(PACK, backend="durable")
    yield eng
    eng.close()


@pytest.fixture(scope="session")
def checker(durable_engine: Engine) -> Checker:
    return Checker(durable_engine)


@pytest.fixture(scope="session")
def differential(durable_engine: Engine) -> Differential:
    return Differential(durable_engine, Engine(PACK, backend="reference"))


@pytest.fixture(scope="session")
def cohort_cases() -> dict[str, list[Case]]:
    """COHORT_SIZE synthetic patients grouped by ordered drug (answers cached across tests)."""
    by_drug: dict[str, list[Case]] = {d: [] for d in DRUGS}
    for sp in Generator(PACK, COHORT_SEED).cohort(COHORT_SIZE):
        by_drug[sp.truth.ordered].append(Case(sp.id, sp.request, sp.truth))
    return by_drug
