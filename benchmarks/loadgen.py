"""A small HTTP/1.1 load generator on raw asyncio streams (keep-alive), closed-loop or paced.

httpx costs more CPU per request than the server under test; on a 2-core machine the client must
be cheap or it measures itself. Every connection sends one request at a time, so `clients` is the
concurrency.

- `run_load` (closed loop, saturation): each connection sends its next request as soon as the
  previous answer arrives. It measures the most the server can do; latency is then set by
  queueing alone (Little's law: mean latency = clients / throughput), not by the endpoint.
- `run_paced` (open loop per connection, a fixed offered rate): connection c sends its k-th
  request at a scheduled time, `start + (c / clients + k) * clients / rate`, and latency is taken
  from that scheduled time, not from when the request actually left. A slow answer therefore
  delays the requests behind it on the same connection, and that wait is counted (no
  "coordinated omission"): if the server cannot keep up with the offered rate, latency grows
  without bound instead of being hidden. This is the latency a production caller sees at that
  traffic. Timer granularity adds up to ~1 ms to every sample, for every endpoint alike.
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


def merged(results: list[LoadResult]) -> LoadResult:
    """Several measurements of one endpoint as one."""
    return LoadResult(
        results[0].name,
        sum(r.requests for r in results),
        sum(r.errors for r in results),
        sum(r.seconds for r in results),
        [x for r in results for x in r.latencies_ms],
    )


def http_request(method: str, path: str, host: str, body: bytes = b"", key: str = "") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\n"
    if key:
        head += f"Authorization: Bearer {key}\r\n"
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
    """Closed loop: `clients` connections, each sending its next request on the last answer."""
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


async def run_paced(
    name: str, host: str, port: int, requests: list[bytes], clients: int, rate: float,
    seconds: float, warmup_seconds: float = 1.0,
) -> LoadResult:  # fmt: skip
    """Open loop per connection: `rate` requests per second in all, spread evenly over `clients`
    connections; latency counts from each request's scheduled send time."""
    latencies: list[float] = []
    counters = {"ok": 0, "errors": 0}
    interval = clients / rate  # between two requests of one connection
    connections = [await asyncio.open_connection(host, port) for _ in range(clients)]
    start = time.perf_counter() + 0.05
    start_measuring = start + warmup_seconds
    stop = start_measuring + seconds
    finished = [stop]

    async def client(c: int) -> None:
        reader, writer = connections[c]
        k = 0
        while True:
            scheduled = start + (c / clients + k) * interval
            if scheduled >= stop:
                break
            wait = scheduled - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(requests[(k * clients + c) % len(requests)])
            k += 1
            status = await _read_response(reader)
            done = time.perf_counter()
            if scheduled >= start_measuring:
                latencies.append((done - scheduled) * 1000)
                counters["ok" if status < 400 else "errors"] += 1
                finished.append(done)
        writer.close()

    await asyncio.gather(*(client(n) for n in range(clients)))
    # A server that falls behind answers the window's requests after it closes: they count, with
    # their latency, and the throughput is over the time it took to answer them.
    elapsed = max(finished) - start_measuring
    return LoadResult(name, counters["ok"], counters["errors"], elapsed, latencies)


def median(values: list[float]) -> float:
    return statistics.median(values)
