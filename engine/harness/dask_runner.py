"""Run a cohort on a Dask distributed cluster: partitions of patients, one compiled pack per worker.

durable-rules is a C extension whose rulesets live in one process, so an ``Engine`` is never
pickled. Each worker process builds one ``Runtime`` (its own durable-rules rulesets) the first time
it sees a pack digest and keeps it for later partitions, and the digest is checked, so a worker can
never evaluate with a different pack than the client meant.

How the pack travels depends on where the workers run. A ``LocalCluster`` (no scheduler address;
started and torn down around the run) runs this very installation, so the client's compiled
``CompiledPack`` (plain Python data, ~0.7 MB pickled, milliseconds to load) is scattered to it:
compiling the YAML again took 1.3-3 s per worker, most of a small run's fixed start (issue 8).
Workers of a remote scheduler may run another build of cdsrules, so they get the YAML files and
compile them with their own compiler; the digest check then proves they read the same files.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from engine.compiler.model import CompiledPack
from engine.compiler.pack import compile_pack
from engine.harness.cohort import FULL, Checks, CohortStats, Line, Runtime, evaluate_lines

_RUNTIMES: dict[str, Runtime] = {}
_LOCK = threading.Lock()


def pack_files(root: Path) -> dict[str, bytes]:
    """Every YAML file of a rule pack, by path relative to the pack root."""
    root = root.resolve()
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix in (".yaml", ".yml")
    }


def _compile_files(files: dict[str, bytes]) -> CompiledPack:
    root = Path(tempfile.mkdtemp(prefix="cdsrules-pack-")) / "rules"
    for rel, data in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return compile_pack(root)


def worker_runtime(pack: CompiledPack | dict[str, bytes], digest: str) -> Runtime:
    """This process's runtime for ``digest``: from the compiled pack, or compiled once from its files."""
    with _LOCK:
        rt = _RUNTIMES.get(digest)
        if rt is None:
            compiled = pack if isinstance(pack, CompiledPack) else _compile_files(pack)
            if compiled.digest != digest:
                raise RuntimeError(f"worker compiled {compiled.digest}, client sent {digest}")
            rt = Runtime.build(compiled)
            _RUNTIMES[digest] = rt
        return rt


def evaluate_partition(
    pack: CompiledPack | dict[str, bytes], digest: str, lines: list[Line], source: str, checks: Checks
) -> dict[str, Any]:
    """The task each worker runs; returns plain data (``CohortStats.to_state``)."""
    return evaluate_lines(worker_runtime(pack, digest), lines, source, checks).to_state()


def partitions(lines: Iterable[Line], size: int) -> Iterator[list[Line]]:
    batch: list[Line] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def worker_environ() -> dict[str, Any]:
    """Dask's worker environment without its ``MALLOC_TRIM_THRESHOLD_`` (65536).

    Dask pins glibc's trim threshold so pandas workers hand memory back to the OS. durable-rules
    allocates and frees a session (about 700 KB) per patient, and with the pinned threshold every
    patient paid for returning and re-faulting that memory: measured here, 1.4 s instead of 1.0 s
    of CPU per 1,000 patients. Unset, glibc's adaptive threshold applies, as in-process.
    """
    import dask

    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    return env


def run_dask(
    rules_root: Path,
    digest: str,
    lines: Iterable[Line],
    source: str,
    scheduler: str | None = None,
    workers: int = 2,
    partition_size: int = 500,
    progress: Callable[[int], None] | None = None,
    checks: Checks = FULL,
    pack: CompiledPack | None = None,
) -> tuple[CohortStats, int]:
    """(merged statistics, number of workers that were available).

    ``pack``: the client's compiled pack of ``rules_root``; a LocalCluster's workers use it instead
    of compiling the files again (remote workers always compile the files).
    """
    if pack is not None and pack.digest != digest:
        raise RuntimeError(f"the compiled pack is {pack.digest}, not {digest}")
    import dask
    import dask.distributed

    dd: Any = dask.distributed  # untyped library: keep its calls in one place
    cluster = None
    if scheduler is None:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": worker_environ()}):
            cluster = dd.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
        client = dd.Client(cluster)
    else:
        client = dd.Client(scheduler)
    try:
        shipped = pack if pack is not None and cluster is not None else pack_files(rules_root)
        [shipped_future] = client.scatter([shipped], broadcast=True)
        sizes: dict[Any, int] = {}
        futures = []
        for part in partitions(lines, partition_size):
            fut = client.submit(evaluate_partition, shipped_future, digest, part, source, checks, pure=False)
            sizes[fut.key] = len(part)
            futures.append(fut)
        total = CohortStats()
        for fut in dd.as_completed(futures):
            total.merge(CohortStats.from_state(fut.result()))
            if progress:
                progress(sizes[fut.key])
        n_workers = len(client.scheduler_info().get("workers", {}))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return total, n_workers
