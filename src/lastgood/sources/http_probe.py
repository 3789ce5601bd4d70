"""A synthetic probe: lastgood itself calls an endpoint `rate` times a second and measures the answers.

Each distinct probe (url, rate, timeout, expected statuses) runs one background thread from the moment the source
is told about it (`start`, or its first `fetch`); samples are kept for `retention` seconds. A period's values are
computed from the calls *sent* in it: `error-rate` is the percentage that failed (an unexpected status, a
timeout, a refused connection), `p50`/`p90`/`p99` the latency in milliseconds of the calls that got an answer
(a timeout counts as the timeout). A period without calls has no point.
"""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, field_validator

from lastgood.aws.clients import AwsClients
from lastgood.config.durations import Condition, Duration
from lastgood.config.models import Strict, positive_period
from lastgood.sources.base import Series, SeriesRequest

_PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0}


class ProbeQuery(Strict):
    """lastgood calls `url` itself, `rate` times a second, and measures the answers."""

    url: str
    rate: float = Field(default=1.0, gt=0, description="Requests per second ('5', '5/s' or '30/m').")
    timeout: Duration = 5.0
    expect_status: list[int] = Field(default_factory=lambda: [200], description="Statuses that count as success.")
    measure: Literal["error-rate", "p50", "p90", "p99"] = Field(
        default="error-rate",
        description="error-rate: % of calls failing (timeouts and unexpected statuses); pNN: latency in ms.",
    )

    @field_validator("rate", mode="before")
    @classmethod
    def _rate(cls, value: Any) -> Any:
        if isinstance(value, str) and "/" in value:
            number, _, unit = value.partition("/")
            per = {"s": 1.0, "m": 60.0}.get(unit.strip().lower())
            if per is None:
                raise ValueError(f"expected a rate such as '5/s' or '30/m', got {value!r}")
            return float(number) / per
        return value

    @field_validator("expect_status", mode="before")
    @classmethod
    def _status_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, int | str) else value


@dataclass(frozen=True)
class Sample:
    sent: float  # unix seconds
    ok: bool
    latency_ms: float | None  # None: no answer (connection refused, ...)


ProbeKey = tuple[str, float, float, tuple[int, ...]]


def probe_key(query: ProbeQuery) -> ProbeKey:
    return (query.url, query.rate, query.timeout, tuple(sorted(query.expect_status)))


class Prober:
    """Calls one endpoint at a fixed rate on a background thread until stopped."""

    def __init__(self, query: ProbeQuery, retention: float) -> None:
        self.query = query
        self.retention = retention
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        workers = max(2, min(64, math.ceil(query.rate * query.timeout) + 1))
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lastgood-probe")
        self._thread = threading.Thread(target=self._run, name=f"lastgood-probe {query.url}", daemon=True)
        self.started = time.time()
        self._thread.start()

    def _run(self) -> None:
        interval = 1.0 / self.query.rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                self._pool.submit(self._call)
            except RuntimeError:  # the pool is shutting down
                return
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _call(self) -> None:
        sent = time.time()
        began = time.perf_counter()
        status: int | None = None
        latency: float | None = None
        import urllib.error  # here: urllib.request costs `lastgood validate` 70 ms
        import urllib.request

        try:
            with urllib.request.urlopen(self.query.url, timeout=self.query.timeout) as response:
                response.read()
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        except TimeoutError:
            latency = self.query.timeout * 1000
        except (urllib.error.URLError, OSError) as error:
            if isinstance(getattr(error, "reason", None), TimeoutError):
                latency = self.query.timeout * 1000
        if status is not None:
            latency = (time.perf_counter() - began) * 1000
        sample = Sample(sent, status in self.query.expect_status, latency)
        with self._lock:
            self.samples.append(sample)
            horizon = time.time() - self.retention
            if self.samples[0].sent < horizon:
                self.samples = [s for s in self.samples if s.sent >= horizon]

    def between(self, start: float, end: float) -> list[Sample]:
        with self._lock:
            return [s for s in self.samples if start <= s.sent < end]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)


class ProbeSource:
    """`probe:` lastgood calls an endpoint and measures it."""

    name = "probe"
    settings: ClassVar[Any] = ProbeQuery
    per_settings: ClassVar[Any] = None
    per_shape: ClassVar[str] = ""

    @classmethod
    def build(cls, aws: AwsClients, queries: list[BaseModel]) -> ProbeSource:
        """A probe source starts calling its endpoints at once."""
        source = cls()
        source.start([q for q in queries if isinstance(q, ProbeQuery)])
        return source

    @classmethod
    def check_period(cls, period: float) -> None:
        positive_period(period)

    @classmethod
    def check_trigger(cls, query: Any, per: Any, when: Condition, period: float) -> None:
        if when.window is not None:
            raise ValueError(f"'when: {when}' counts CloudWatch or Prometheus values, not probe measures")
        if when.kind == "baseline":
            raise ValueError("a probe has no history before the guard starts: it cannot use a baseline")

    def __init__(self, retention: float = 6 * 3600.0) -> None:
        self.retention = retention
        self._probers: dict[ProbeKey, Prober] = {}
        self._lock = threading.Lock()

    def start(self, queries: list[ProbeQuery]) -> None:
        """Start probing now, so that the first periods the guard judges have calls in them."""
        with self._lock:
            for query in queries:
                key = probe_key(query)
                if key not in self._probers:
                    self._probers[key] = Prober(query, self.retention)

    def close(self) -> None:
        with self._lock:
            probers, self._probers = list(self._probers.values()), {}
        for prober in probers:
            prober.stop()

    def fetch(self, requests: list[SeriesRequest], start: datetime, end: datetime) -> dict[str, Series]:
        out: dict[str, Series] = {}
        queries = [r.query for r in requests if isinstance(r.query, ProbeQuery)]
        self.start(queries)
        for request in requests:
            query = request.query
            if not isinstance(query, ProbeQuery):
                out[request.id] = Series(request.id, status="error", error=f"not a probe: {query!r}")
                continue
            prober = self._probers[probe_key(query)]
            series = Series(request.id)
            at = start.timestamp()
            while at + request.period <= end.timestamp():
                samples = prober.between(at, at + request.period)
                value = measure(query.measure, samples)
                if value is not None:
                    series.points[datetime.fromtimestamp(at, UTC)] = value
                at += request.period
            if not series.points:
                series.status = "no-data"
            out[request.id] = series
        return out


def measure(what: str, samples: list[Sample]) -> float | None:
    if not samples:
        return None
    if what == "error-rate":
        return 100.0 * sum(not s.ok for s in samples) / len(samples)
    latencies = sorted(s.latency_ms for s in samples if s.latency_ms is not None)
    if not latencies:
        return None
    rank = math.ceil(_PERCENTILES[what] / 100 * len(latencies))  # nearest rank
    return latencies[max(0, rank - 1)]
