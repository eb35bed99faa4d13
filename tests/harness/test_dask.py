"""The Dask path gives exactly the in-process answer (LocalCluster, 2 worker processes).

Both ways a pack can reach the workers are run: the client's compiled pack (what the CLI ships to a
LocalCluster) and the YAML files each worker compiles (what remote workers get).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.harness.cohort import Checks, read_lines, run_inprocess
from engine.harness.dask_runner import pack_files, partitions, run_dask
from engine.harness.summary import build_summary
from engine.harness.synth import Generator, write_jsonl
from engine.settings import BUNDLED_RULES
from tests.harness.conftest import PACK

N = 600


@pytest.mark.integration  # a LocalCluster of worker processes
@pytest.mark.parametrize(("ship_pack", "checks"), [(True, Checks()), (False, Checks(invariants=False))])
def test_dask_localcluster_equals_in_process(tmp_path: Path, ship_pack: bool, checks: Checks) -> None:
    path = tmp_path / "patients.jsonl"
    write_jsonl(Generator(PACK, 21).cohort(N), path)
    done: list[int] = []
    stats, workers = run_dask(
        BUNDLED_RULES,
        PACK.digest,
        read_lines(path),
        str(path),
        workers=2,
        partition_size=100,
        progress=done.append,
        checks=checks,
        pack=PACK if ship_pack else None,
    )
    assert workers == 2
    assert sorted(done) == [100] * 6
    local = run_inprocess(PACK, read_lines(path), str(path), checks=checks)
    assert stats.to_state() == local.to_state()
    assert stats.to_state()["counts"]["checks"]["differential"] == N
    meta = {"source": "t", "engine": "x", "workers": None, "seconds": 1.0, "patients_per_second": 1.0}
    dask_results = build_summary(stats.to_state(), PACK, meta)["results"]
    assert dask_results == build_summary(local.to_state(), PACK, meta)["results"]
    assert dask_results["evaluated"] == N


def test_pack_travels_as_files_with_the_same_digest(tmp_path: Path) -> None:
    from engine.harness.dask_runner import worker_runtime

    files = pack_files(BUNDLED_RULES)
    assert "pack.yaml" in files and any(k.startswith("terminology/") for k in files)
    rt = worker_runtime(files, PACK.digest)
    assert rt.pack.digest == PACK.digest and sorted(rt.pack.drugs) == sorted(PACK.drugs)
    assert worker_runtime(files, PACK.digest) is rt  # compiled once per process
    with pytest.raises(RuntimeError, match="client sent sha256:not-this-one"):
        worker_runtime(files, "sha256:not-this-one")
    with pytest.raises(RuntimeError, match="client sent sha256:not-this-one"):
        worker_runtime(PACK, "sha256:not-this-one")


def test_partitions_keep_every_line_once() -> None:
    lines = [(i, str(i)) for i in range(1, 11)]
    parts = list(partitions(lines, 4))
    assert [len(p) for p in parts] == [4, 4, 2]
    assert [x for p in parts for x in p] == lines


def test_workers_do_not_inherit_dasks_malloc_trim_threshold() -> None:
    import dask
    import dask.distributed  # registers distributed's config, as run_dask's import does

    from engine.harness.dask_runner import worker_environ

    assert "MALLOC_TRIM_THRESHOLD_" in dask.config.get("distributed.nanny.pre-spawn-environ")
    env = worker_environ()
    assert "MALLOC_TRIM_THRESHOLD_" not in env and env, "other settings (thread counts) are kept"


def test_unreachable_scheduler_is_a_clear_error(tmp_path: Path) -> None:
    import dask
    from typer.testing import CliRunner

    from engine.cli import app

    path = tmp_path / "p.jsonl"
    write_jsonl(Generator(PACK, 1).cohort(5), path)
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        args = [
            "cohort",
            str(path),
            "--report",
            str(tmp_path / "out"),
            "--engine",
            "dask",
            "--scheduler",
            "tcp://127.0.0.1:9",
        ]
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "dask (tcp://127.0.0.1:9)" in result.output and "Traceback" not in result.output
