"""GET /metrics: the server's figures in Prometheus' text format, from its own registry.

Two kinds of figures. Those the ledger keeps are read from it at scrape time (`LedgerCollector`), so rollbacks
run by the CLI or another server count too: rollbacks by outcome, rollback and step durations, notifications
that failed. Those only this process sees are counted as they happen: guard evaluations, their lag and cost,
trigger and canary verdicts, what the guard did, and the time spent waiting for an environment's hold
(`runtime.telemetry`). Scraping needs no sign-in (the figures carry no secrets, only app, environment, trigger
and component-kind names); put the server behind a proxy to restrict it.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from lastgood.runtime.telemetry import on_lock_wait
from lastgood.service import figures
from lastgood.service.watching import Evaluation

if TYPE_CHECKING:
    from lastgood.server.state import ServerState

DURATION_BUCKETS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
STEP_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
WAIT_BUCKETS = (0.001, 0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0)


def histogram(
    name: str, documentation: str, labels: list[str], rows: Iterable[figures.Duration], buckets: tuple[float, ...]
) -> HistogramMetricFamily:
    """A Prometheus histogram of `rows`' seconds, per label values."""
    counts: dict[tuple[str, ...], list[int]] = {}
    sums: dict[tuple[str, ...], float] = {}
    for row in rows:
        per_bucket = counts.setdefault(row.labels, [0] * (len(buckets) + 1))
        per_bucket[bisect.bisect_left(buckets, row.seconds)] += 1
        sums[row.labels] = sums.get(row.labels, 0.0) + row.seconds
    family = HistogramMetricFamily(name, documentation, labels=labels)
    for values, per_bucket in counts.items():
        cumulative, running = [], 0
        for bound, n in zip((*(str(b) for b in buckets), "+Inf"), per_bucket, strict=True):
            running += n
            cumulative.append((bound, float(running)))
        family.add_metric(list(values), cumulative, sums[values])
    return family


class LedgerCollector(Collector):
    """What the ledger knows, read at each scrape (a few aggregate queries per ledger)."""

    def __init__(self, state: ServerState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        outcomes = CounterMetricFamily(
            "lastgood_rollbacks", "Rollbacks in the ledger by their status.", labels=["app", "env", "status"]
        )
        failures = CounterMetricFamily(
            "lastgood_notification_failures",
            "Notifications that failed after their retries (notify-failed in the timeline).",
            labels=["app", "env"],
        )
        rollbacks: list[figures.Duration] = []
        steps: list[figures.Duration] = []
        for ledger, apps in self.state.apps.by_ledger():
            for count in figures.rollback_outcomes(ledger, apps):
                outcomes.add_metric(list(count.labels), count.value)
            for count in figures.notification_failures(ledger, apps):
                failures.add_metric(list(count.labels), count.value)
            rollbacks += figures.rollback_durations(ledger, apps)
            steps += figures.step_durations(ledger, apps)
        yield outcomes
        yield histogram(
            "lastgood_rollback_duration_seconds",
            "From start to finish of every finished rollback.",
            ["app", "env", "status"],
            rollbacks,
            DURATION_BUCKETS,
        )
        yield histogram(
            "lastgood_step_duration_seconds",
            "Each finished rollback step, by component kind.",
            ["app", "kind", "status"],
            steps,
            STEP_BUCKETS,
        )
        yield failures


class ServerMetrics:
    """One server's registry: the ledger's figures and this process's own."""

    def __init__(self, state: ServerState, watched: Callable[[], float] | None = None) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(LedgerCollector(state))
        r = self.registry
        self.evaluations = Counter(
            "lastgood_guard_evaluations", "Guard periods judged, by result.", ["app", "env", "result"], registry=r
        )
        self.lag = Histogram(
            "lastgood_guard_lag_seconds",
            "From a period's end to its evaluation.",
            ["app"],
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.cost = Histogram(
            "lastgood_guard_evaluation_seconds", "Wall time of one period's evaluation.", ["app"], registry=r
        )
        self.verdicts = Counter(
            "lastgood_guard_verdicts", "Trigger verdicts per judged period.", ["app", "trigger", "state"], registry=r
        )
        self.canary = Counter(
            "lastgood_canary_verdicts",
            "Canary judges' states per judged period (warming-up, continue, not-the-cause, rollback, ...).",
            ["app", "env", "state"],
            registry=r,
        )
        self.actions = Counter(
            "lastgood_guard_actions", "What the guard did when it fired.", ["app", "env", "outcome"], registry=r
        )
        self.lock_wait = Histogram(
            "lastgood_lock_wait_seconds",
            "Time spent waiting to hold an environment (a claim, or its refusal).",
            ["app", "env", "operation", "outcome"],
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.watched = Gauge("lastgood_guard_watched_environments", "Releases being guarded now.", registry=r)
        if watched is not None:
            self.watched.set_function(watched)
        self._unhook: Callable[[], None] | None = None

    def hook(self) -> None:
        """Count this process's waits for an environment's hold (until `unhook`)."""
        self._unhook = on_lock_wait(self._waited)

    def unhook(self) -> None:
        if self._unhook is not None:
            self._unhook()
            self._unhook = None

    def _waited(self, app: str, env: str, operation: str, seconds: float, outcome: str) -> None:
        self.lock_wait.labels(app, env, operation, outcome).observe(seconds)

    def guard_evaluated(self, app: str, env: str, evaluation: Evaluation) -> None:
        self.evaluations.labels(app, env, "error" if evaluation.error else "ok").inc()
        self.lag.labels(app).observe(max(0.0, evaluation.lag))
        self.cost.labels(app).observe(evaluation.seconds)
        for verdict in evaluation.verdicts:
            self.verdicts.labels(app, verdict.trigger, verdict.state).inc()
        for state in evaluation.canary_states:
            self.canary.labels(app, env, state).inc()
        if evaluation.outcome is not None:
            self.actions.labels(app, env, evaluation.outcome).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus' text format; no sign-in."""
    state: ServerState = request.app.state.lastgood
    if state.metrics is None:
        return Response("metrics are off\n", status_code=404, media_type="text/plain")
    return Response(state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
