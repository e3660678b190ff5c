"""A small closed-loop HTTP/1.1 load generator on raw asyncio streams (keep-alive).

httpx costs more CPU per request than the server under test; on a 2-core machine the client must
be cheap or it measures itself. Every connection sends one request at a time, so `clients` is the
concurrency.
"""

import asyncio
import statistics
import time
from dataclasses import dataclass


@dataclass
class LoadResult:
    name: str
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")

    def row(self) -> str:
        return (
            f"{self.name:<28} {self.throughput:>9.0f} req/s   p50 {self.percentile(0.5):6.2f} ms"
            f"   p99 {self.percentile(0.99):6.2f} ms   errors {self.errors}"
        )


def http_request(method: str, path: str, host: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await reader.readexactly(length)
    return status


async def run_load(
    name: str, host: str, port: int, requests: list[bytes], clients: int, seconds: float,
    warmup_seconds: float = 1.0,
) -> LoadResult:  # fmt: skip
    latencies: list[float] = []
    counters = {"ok": 0, "errors": 0}
    start_measuring = time.perf_counter() + warmup_seconds
    stop = start_measuring + seconds

    async def client(offset: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        i = offset
        while True:
            sent = time.perf_counter()
            if sent >= stop:
                break
            writer.write(requests[i % len(requests)])
            i += clients
            status = await _read_response(reader)
            done = time.perf_counter()
            if sent >= start_measuring:
                latencies.append((done - sent) * 1000)
                counters["ok" if status < 400 else "errors"] += 1
        writer.close()

    await asyncio.gather(*(client(n) for n in range(clients)))
    return LoadResult(name, counters["ok"], counters["errors"], seconds, latencies)


def median(values: list[float]) -> float:
    return statistics.median(values)
