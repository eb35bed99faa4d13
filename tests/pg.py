"""A throwaway PostgreSQL cluster for tests, started from Debian's ``postgresql`` binaries.

Why not testcontainers or pytest-postgresql's ``postgresql_proc``: there is no Docker engine on our
machines, and CI runs as root, which ``initdb`` refuses. So when we are root the cluster belongs to
an unprivileged account (``postgres`` if the package created it, else ``nobody``) and every server
command runs through ``setpriv``. The cluster listens on 127.0.0.1 only, on a free port, with trust
authentication, and is deleted afterwards.

When the binaries are missing: under CI (``CI=true``) the PostgreSQL tests fail, because a skipped
backend must never pass for a tested one; locally they skip with the reason (``tests/needs.py``).
``.ci/run`` installs the package before ``make test``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.needs import unavailable

SUPERUSER = "cdsrules"


def find_bin_dir() -> Path | None:
    """Newest ``/usr/lib/postgresql/<major>/bin`` holding ``initdb`` (or $CDSRULES_PG_BIN)."""
    override = os.environ.get("CDSRULES_PG_BIN")
    if override:
        return Path(override) if (Path(override) / "initdb").exists() else None
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgCluster:
    bin_dir: Path
    root: Path
    port: int
    run_as: tuple[int, int] | None  # (uid, gid) when we are root

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _cmd(self, *args: str) -> list[str]:
        if self.run_as is None:
            return list(args)
        uid, gid = self.run_as
        return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--", *args]

    def run(self, *args: str) -> None:
        proc = subprocess.run(self._cmd(*args), capture_output=True, text=True, cwd=self.root, check=False)
        if proc.returncode != 0:
            log = (self.root / "server.log").read_text(errors="replace") if (self.root / "server.log").exists() else ""
            raise RuntimeError(f"{args[0]} failed ({proc.returncode}): {proc.stderr.strip()}\n{log[-2000:]}")

    def start(self) -> None:
        self.run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        self.resume()

    def resume(self) -> None:
        """Start the server on the existing data directory (after ``start`` or a ``halt``)."""
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories='{self.root}'"
        opts += " -c max_connections=200"
        self.run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-o",
            opts,
            "-w",
            "start",
        )

    def halt(self) -> None:
        """Stop the server as a crash would (``-m immediate``), keeping the data for ``resume``."""
        self.run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self) -> str:
        """A fresh, empty database; returns its SQLAlchemy URL."""
        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname=postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _unprivileged_account() -> tuple[int, int]:
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pw = pwd.getpwnam(name)
            return pw.pw_uid, pw.pw_gid
    raise RuntimeError("running as root and found neither a 'postgres' nor a 'nobody' account")


@contextlib.contextmanager
def pg_cluster() -> Iterator[PgCluster]:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        unavailable("PostgreSQL not available (no /usr/lib/postgresql/*/bin/initdb); `apt-get install postgresql`")
    run_as = _unprivileged_account() if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="cdsrules-pg-"))
    if run_as is not None:
        os.chown(root, *run_as)
    cluster = PgCluster(bin_dir, root, _free_port(), run_as)
    try:
        for attempt in range(3):  # the free port can be taken between probing and binding
            try:
                cluster.start()
                break
            except RuntimeError:
                if attempt == 2:
                    raise
                cluster.run("rm", "-rf", str(cluster.data))
                cluster.port = _free_port()
                time.sleep(0.2)
        yield cluster
    finally:
        cluster.stop()
