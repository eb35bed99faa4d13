"""A small HTTP/1.1 load generator, run as its own process by ``bench.http_bench``.

Why our own: it needs nothing installed (no apt for wrk, no locust dependency tree), costs little
client CPU per request on a 2-core machine the server shares (asyncio over raw keep-alive sockets,
no HTTP library), and in fixed-rate mode it measures latency from the *scheduled* send time, so a
server that falls behind cannot hide its queue (no coordinated omission). Two modes:

* ``rate``: open loop, one request every 1/rate seconds whatever the server does, up to
  ``max_connections`` in flight (more wait in the client, and that wait is counted);
* ``closed``: saturation, ``concurrency`` connections each sending its next request as soon as the
  previous answer arrives.

Usage: ``python -m bench.loadgen CONFIG.json`` prints one JSON object (counts, statuses, errors,
latency percentiles in ms, achieved rate, client CPU) on stdout. Everything is bounded by
``warmup_s + duration_s`` plus one ``timeout_s`` to drain.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.stats import summarise


def _cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class Connection:
    """One keep-alive HTTP/1.1 connection; just enough parsing for our own server's answers."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def roundtrip(self, raw: bytes) -> int:
        reused = self.writer is not None and self.reader is not None and not self.reader.at_eof()
        if not reused:
            self.close()
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 22)
        reader, writer = self.reader, self.writer
        assert reader is not None and writer is not None
        writer.write(raw)
        line = await reader.readline()
        if not line and reused:
            # an idle keep-alive connection the server closed (its keep-alive timeout) before this
            # request reached it: nothing was processed, so send again on a new connection, as
            # every HTTP client pool does
            self.close()
            return await self.roundtrip(raw)
        if not line:
            raise ConnectionError("server closed the connection")
        status = int(line.split(b" ", 2)[1])
        length: int | None = None
        chunked = close = False
        while True:
            header = await reader.readline()
            if header in (b"\r\n", b"\n", b""):
                break
            name, _, value = header.partition(b":")
            key = name.strip().lower()
            if key == b"content-length":
                length = int(value)
            elif key == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif key == b"connection" and b"close" in value.lower():
                close = True
        if chunked:
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                await reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length is not None:
            await reader.readexactly(length)
        else:
            await reader.read()
            close = True
        if close:
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0
    answered: int = 0  # every answer, warm-up included (server CPU is divided by this)

    def record(self, status: int | None, error: str | None, seconds: float) -> None:
        if error is not None:
            self.errors[error] += 1
            return
        self.statuses[str(status)] += 1
        if status is not None and not 200 <= status < 300:
            self.errors[f"HTTP {status}"] += 1
        self.latencies.append(seconds)


def raw_requests(cfg: dict[str, Any]) -> list[bytes]:
    host = f"{cfg['host']}:{cfg['port']}"
    out = []
    for r in cfg["requests"]:
        body = r.get("body", "").encode()
        head = f"{r['method']} {r['path']} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        out.append(head.encode() + b"\r\n" + body)
    return out


async def _send(conn: Connection, raw: bytes, timeout_s: float) -> tuple[int | None, str | None]:
    try:
        async with asyncio.timeout(timeout_s):
            return await conn.roundtrip(raw), None
    except TimeoutError:
        conn.close()
        return None, "timeout"
    except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
        conn.close()
        return None, type(exc).__name__


async def open_loop(cfg: dict[str, Any], raws: list[bytes], tally: Tally) -> float:
    loop = asyncio.get_running_loop()
    rate, timeout_s = float(cfg["rate"]), float(cfg["timeout_s"])
    warm_n = int(rate * cfg["warmup_s"])
    total = warm_n + int(rate * cfg["duration_s"])
    gate = asyncio.Semaphore(int(cfg["max_connections"]))
    idle: list[Connection] = []
    tasks: set[asyncio.Task[None]] = set()

    async def one(i: int, intended: float) -> None:
        tally.in_flight += 1
        tally.max_in_flight = max(tally.max_in_flight, tally.in_flight)
        async with gate:
            conn = idle.pop() if idle else Connection(cfg["host"], cfg["port"])
            status, error = await _send(conn, raws[i % len(raws)], timeout_s)
            idle.append(conn)
        tally.in_flight -= 1
        tally.answered += 1
        if i >= warm_n:  # latency from the scheduled time: queueing in front of the server counts
            tally.record(status, error, loop.time() - intended)

    start = loop.time() + 0.05
    for i in range(total):
        intended = start + i / rate
        delay = intended - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = loop.create_task(one(i, intended))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    measured_from = start + warm_n / rate
    if tasks:
        _, pending = await asyncio.wait(set(tasks), timeout=timeout_s + 1)
        for t in pending:
            t.cancel()
        if pending:
            tally.errors["unfinished"] += len(pending)
    for c in idle:
        c.close()
    return loop.time() - measured_from


async def closed_loop(cfg: dict[str, Any], raws: list[bytes], tally: Tally) -> float:
    loop = asyncio.get_running_loop()
    timeout_s = float(cfg["timeout_s"])
    begin = loop.time()
    measured_from = begin + float(cfg["warmup_s"])
    end = measured_from + float(cfg["duration_s"])

    async def worker(k: int) -> None:
        conn = Connection(cfg["host"], cfg["port"])
        i = k
        while (t0 := loop.time()) < end:
            status, error = await _send(conn, raws[i % len(raws)], timeout_s)
            i += int(cfg["concurrency"])
            tally.answered += 1
            if t0 >= measured_from:
                tally.record(status, error, loop.time() - t0)
        conn.close()

    await asyncio.gather(*(worker(k) for k in range(int(cfg["concurrency"]))))
    return end - measured_from


async def run(cfg: dict[str, Any]) -> dict[str, Any]:
    raws = raw_requests(cfg)
    tally = Tally()
    cpu0 = _cpu_seconds()
    runner = open_loop if cfg["mode"] == "rate" else closed_loop
    seconds = await runner(cfg, raws, tally)
    n_ok = len(tally.latencies)
    n_err = sum(tally.errors.values())
    return {
        "mode": cfg["mode"],
        "target_rate": cfg.get("rate"),
        "concurrency": cfg.get("concurrency") if cfg["mode"] == "closed" else cfg.get("max_connections"),
        "seconds": round(seconds, 3),
        "completed": n_ok,
        "errors": n_err,
        "error_kinds": dict(tally.errors),
        "statuses": dict(tally.statuses),
        "achieved_rate": round(n_ok / seconds, 1) if seconds > 0 else 0.0,
        "latency_ms": summarise([x * 1000 for x in tally.latencies]),
        "max_in_flight": tally.max_in_flight,
        "answered_including_warmup": tally.answered,
        "client_cpu_s": round(_cpu_seconds() - cpu0, 3),
    }


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as fh:
        cfg = json.load(fh)
    result = asyncio.run(run(cfg))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
