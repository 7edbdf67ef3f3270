"""A lean closed-loop HTTP/1.1 load generator for the inference bench: keep-alive connections on asyncio streams.

Lean on purpose: on a 2-core machine the load generator shares the CPU with the servers it
measures, and a full HTTP client library would cost more per request than the servers do. It
sends one pre-encoded POST per request and reads the status line, the headers and exactly
Content-Length body bytes. Every server it drives (the inference node, the baseline) is a real
ASGI stack on uvicorn; only the load generator is minimal.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass

__all__ = ["HttpLoad", "percentile", "run_http_load"]


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values by nearest rank; 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))]


@dataclass(frozen=True)
class HttpLoad:
    """One load run: requests done, errors, wall time and per-request latencies (seconds)."""

    requests: int
    errors: int
    elapsed_s: float
    latencies: tuple[float, ...]
    first_error: str | None

    @property
    def throughput(self) -> float:
        """Successful requests per second."""
        return (self.requests - self.errors) / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def summary(self, rows_per_request: int = 1) -> dict[str, float | int | str | None]:
        """The figures the bench reports, latencies in ms."""
        lat = list(self.latencies)
        return {"requests": self.requests, "errors": self.errors, "concurrency_elapsed_s": round(self.elapsed_s, 3),
                "p50_ms": round(percentile(lat, 0.5) * 1e3, 3), "p95_ms": round(percentile(lat, 0.95) * 1e3, 3),
                "mean_ms": round(statistics.fmean(lat) * 1e3, 3) if lat else 0.0,
                "requests_per_s": round(self.throughput, 1),
                "inferences_per_s": round(self.throughput * rows_per_request, 1), "first_error": self.first_error}


async def _worker(host: str, port: int, request: bytes, count: int, out: list[float],
                  errors: list[str]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for _ in range(count):
            start = time.perf_counter()
            writer.write(request)
            status = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            await reader.readexactly(length)
            out.append(time.perf_counter() - start)
            if not status.startswith(b"HTTP/1.1 200"):
                errors.append(status.decode(errors="replace").strip())
    finally:
        writer.close()


def run_http_load(host: str, port: int, path: str, body: bytes, *, total: int, concurrency: int) -> HttpLoad:
    """POST `body` to `path` `total` times over `concurrency` keep-alive connections; wait for every answer."""
    request = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    concurrency = max(1, min(concurrency, total))
    share = [total // concurrency + (1 if i < total % concurrency else 0) for i in range(concurrency)]
    latencies: list[float] = []
    errors: list[str] = []

    async def main() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(_worker(host, port, request, n, latencies, errors) for n in share))
        return time.perf_counter() - start

    elapsed = asyncio.run(main())
    return HttpLoad(requests=total, errors=len(errors), elapsed_s=elapsed, latencies=tuple(latencies),
                    first_error=errors[0] if errors else None)
