"""A small closed-loop load generator: N keep-alive clients, bounded in count
and time, loopback only. Returns throughput and latency percentiles."""

from __future__ import annotations

import http.client
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    statuses: dict[int, int]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else float("nan")

    def summary(self) -> dict:
        return {"requests": self.requests, "errors": self.errors, "rps": round(self.rps, 1),
                "p50_ms": round(self.percentile(50), 3), "p99_ms": round(self.percentile(99), 3),
                "mean_ms": round(statistics.fmean(self.latencies_ms), 3) if self.latencies_ms else None,
                "statuses": self.statuses}


def run_load(base_url: str, make_request: Callable[[int], tuple[str, str, bytes | None, dict]],
             total: int, concurrency: int, max_seconds: float = 300.0,
             on_response: Callable[[int, int, bytes], None] | None = None) -> LoadResult:
    """`make_request(i)` returns (method, path, body, headers) for request i."""
    parts = urlsplit(base_url)
    assert parts.hostname in ("127.0.0.1", "localhost", "::1"), "load is sent to loopback only"
    counter = iter(range(total))
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    deadline = time.monotonic() + max_seconds

    def worker():
        nonlocal errors
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        while time.monotonic() < deadline:
            with lock:
                index = next(counter, None)
            if index is None:
                break
            method, path, body, headers = make_request(index)
            started = time.perf_counter()
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
                status, payload = 0, b""
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)
                statuses[status] = statuses.get(status, 0) + 1
                if status == 0 or status >= 500:
                    errors += 1
            if on_response:
                on_response(index, status, payload)
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return LoadResult(len(latencies), errors, time.perf_counter() - started, latencies, statuses)
