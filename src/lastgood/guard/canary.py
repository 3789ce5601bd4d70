"""The canary feed: every period, the canary's and the baseline's series -> one `CanaryInterval` for the judge.

Each version's requests and errors are fetched with the file's `canary:` queries, `{version}`, `{component}` and
the weighted kind's placeholders (`WeightedKind.placeholders`: lambda-alias `{function}`, `{alias}`; see
`feed_for`) replaced. A period is read once it is complete: for each version a requests datapoint, and an errors
datapoint or none under `missing.errors: zero` (CloudWatch publishes no datapoint for a minute whose Sum is 0),
which applies once the version's requests have a datapoint (for requests: the other version's). A period still
missing a count is waited for `settle` periods (data arrive late), then the block's `missing` rule for that
metric decides: `zero` (a count of 0), `skip` (reported missing, never counted as healthy, never fed to the
judge) or `breaching` (the watch is blind). A failed fetch is never zero.
Each period is fed once, in order; with a `JudgeStore`, once across processes too.

Latency is judged as counts of requests slower than thresholds taken from the baseline's *previous* period (so
the thresholds do not depend on the data they test): with CloudWatch, the baseline's p50/p90/p99 of that period,
then each version's percentile rank `PR(:threshold)` and `SampleCount` in this period; with Prometheus, the
histogram buckets (`sum by (le)`) of both versions. A period without a threshold is judged on errors only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from lastgood.config.models import Canary, Component, MetricQuery
from lastgood.judge.canary import CanaryInterval, CanaryJudge, CanaryVerdict
from lastgood.judge.sequential import (
    histogram_threshold,
    histogram_total,
    slow_count_from_percentile_rank,
    slow_counts,
)
from lastgood.kinds.base import State, WeightedKind
from lastgood.sources.base import MetricSource, Series, SeriesRequest
from lastgood.sources.prometheus import PrometheusQuery, PrometheusSource

Role = Literal["canary", "baseline"]
ROLES: tuple[Role, Role] = ("canary", "baseline")
COUNTS = ("requests", "errors")
QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}


@dataclass(frozen=True)
class CanaryReading:
    """One period: its interval for the judge, or what was missing (then `interval` is None)."""

    start: datetime
    interval: CanaryInterval | None
    missing: tuple[str, ...] = ()
    thresholds: Mapping[str, float] = field(default_factory=dict)  # latency label -> threshold used (ms, s...)
    notes: tuple[str, ...] = ()  # e.g. no latency threshold for this period
    breaching: bool = False  # missing data that the block's `missing` rules call breaching

    def to_dict(self) -> dict[str, Any]:
        interval = self.interval
        return {
            "start": self.start.isoformat(),
            "complete": interval is not None,
            "missing": list(self.missing),
            "canary_requests": interval.canary_requests if interval else None,
            "baseline_requests": interval.baseline_requests if interval else None,
            "canary_errors": interval.canary_errors if interval else None,
            "baseline_errors": interval.baseline_errors if interval else None,
            "canary_slow": dict(interval.canary_slow) if interval else {},
            "baseline_slow": dict(interval.baseline_slow) if interval else {},
            "share": interval.canary_share if interval else None,
            "canary_samples": interval.samples()[0] if interval else None,
            "baseline_samples": interval.samples()[1] if interval else None,
            "thresholds": dict(self.thresholds),
            "notes": list(self.notes),
            "breaching": self.breaching,
        }


def fill(text: str, values: Mapping[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


class CanaryFeed:
    def __init__(
        self,
        canary: Canary,
        canary_version: str,
        baseline_version: str,
        source: MetricSource,
        since: datetime,
        placeholders: Mapping[str, str] | None = None,
        settle: int = 2,
        version_placeholders: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        """`source`: a CloudWatch or Prometheus source as the block names; periods starting at or after `since`
        are read; `placeholders`: e.g. {"function": ..., "alias": ...} of the deploying component;
        `version_placeholders`: more, per version (e.g. an elbv2 target group's `{target_group}`)."""
        self.canary = canary
        self.versions: dict[Role, str] = {"canary": canary_version, "baseline": baseline_version}
        self.source = source
        self.period = canary.period
        self.placeholders = dict(placeholders or {})
        self.version_placeholders = {v: dict(p) for v, p in (version_placeholders or {}).items()}
        self.settle = settle
        stamp = math.ceil(since.timestamp() / self.period) * self.period
        self.next_start = datetime.fromtimestamp(stamp, UTC)
        self.labels = canary.latency_thresholds

    # -- the queries, per version -----------------------------------------------------------------------------

    def query(self, what: str, role: Role, stat: str | None = None) -> MetricQuery | PrometheusQuery:
        version = self.versions[role]
        values = {**self.placeholders, **self.version_placeholders.get(version, {}), "version": version}
        if self.canary.cloudwatch is not None:
            metric = getattr(self.canary.cloudwatch, what)
            assert isinstance(metric, MetricQuery)
            dimensions = {k: fill(v, values) for k, v in metric.dimensions.items()}
            return metric.model_copy(update={"dimensions": dimensions, "stat": stat or metric.stat})
        prometheus = self.canary.prometheus
        assert prometheus is not None
        text = getattr(prometheus, "latency_buckets" if what == "latency" else what)
        return PrometheusQuery(url=prometheus.url, query=fill(str(text), values))

    def _request(self, id_: str, query: MetricQuery | PrometheusQuery) -> SeriesRequest:
        return SeriesRequest(id_, query, self.period)

    # -- reading ----------------------------------------------------------------------------------------------

    def poll(self, now: datetime) -> list[CanaryReading]:
        """The periods completed since the last poll, in order, each once (a missing one after `settle`)."""
        end = now.timestamp() // self.period * self.period
        first = self.next_start.timestamp()
        if first + self.period > end:
            return []
        starts = [
            datetime.fromtimestamp(first + k * self.period, UTC) for k in range(int((end - first) // self.period))
        ]
        window = (starts[0] - timedelta(seconds=self.period), datetime.fromtimestamp(end, UTC))
        requests = [self._request(f"{w}|{r}", self.query(w, r)) for w in COUNTS for r in ROLES]
        series = self.source.fetch(requests, *window)
        latency: _Latency | None = None
        readings = []
        for start in starts:
            settled = end - start.timestamp() >= (self.settle + 1) * self.period
            counts, gaps = self._counts(series, start, settled)
            if gaps and not settled:
                break  # not settled yet: read it again at the next poll
            self.next_start = start + timedelta(seconds=self.period)
            if gaps:
                breaching = any(self.canary.missing.model_dump()[what] == "breaching" for what, _ in gaps)
                readings.append(CanaryReading(start, None, tuple(g for _, g in gaps), breaching=breaching))
                continue
            if self.labels and latency is None:
                latency = self._latency_source(window)
            readings.append(self._reading(start, counts, latency))
        return readings

    def _counts(
        self, series: Mapping[str, Series], start: datetime, settled: bool
    ) -> tuple[dict[str, float], list[tuple[str, str]]]:
        """Each version's requests and errors at `start`, missing datapoints read by the block's rules; and the
        gaps left, as (metric, why)."""
        rules = self.canary.missing
        counts: dict[str, float] = {}
        gaps: list[tuple[str, str]] = []
        for role in ROLES:
            for what in COUNTS:
                key = f"{what}|{role}"
                found = series.get(key)
                if found is not None and start in found.points:
                    counts[key] = found.points[start]
                    continue
                failed = found is None or found.status == "error"
                arrived = settled or self._arrived(series, what, role, start, counts)
                if not failed and getattr(rules, what) == "zero" and arrived:
                    counts[key] = 0.0
                    continue
                gaps.append((what, _missing(f"{role} {what}", found, start)))
        return counts, gaps

    @staticmethod
    def _arrived(
        series: Mapping[str, Series], what: str, role: Role, start: datetime, counts: Mapping[str, float]
    ) -> bool:
        """Whether the period's data have arrived, so that no datapoint means none: for errors, the version's own
        requests have a datapoint; for requests, the other version's do."""
        if what == "errors":
            return f"requests|{role}" in counts
        other = series.get(f"requests|{'baseline' if role == 'canary' else 'canary'}")
        return other is not None and start in other.points

    def _reading(self, start: datetime, counts: Mapping[str, float], latency: _Latency | None) -> CanaryReading:
        c_requests, b_requests = counts["requests|canary"], counts["requests|baseline"]
        total = c_requests + b_requests
        canary_slow: dict[str, float] = {}
        baseline_slow: dict[str, float] = {}
        thresholds: dict[str, float] = {}
        notes: list[str] = []
        samples: tuple[float | None, float | None] = (None, None)
        if latency is not None:
            for label in self.labels:
                slow = latency.slow(label, start)
                if isinstance(slow, str):
                    notes.append(f"latency {label}: {slow}")
                    continue
                canary_slow[label], baseline_slow[label], thresholds[label] = slow.canary, slow.baseline, slow.bound
                samples = (slow.canary_samples, slow.baseline_samples)
        interval = CanaryInterval(
            canary_requests=c_requests,
            baseline_requests=b_requests,
            canary_errors=counts["errors|canary"],
            baseline_errors=counts["errors|baseline"],
            canary_slow=canary_slow,
            baseline_slow=baseline_slow,
            share=c_requests / total if total > 0 else None,
            canary_samples=samples[0],
            baseline_samples=samples[1],
        )
        return CanaryReading(start, interval, (), thresholds, tuple(notes))

    def _latency_source(self, window: tuple[datetime, datetime]) -> _Latency:
        if self.canary.cloudwatch is not None:
            return _CloudWatchLatency(self, window)
        return _PrometheusLatency(self, window)


def feed_for(
    canary: Canary,
    kind: WeightedKind[Any],
    spec: Component,
    state: State,
    versions: tuple[str, str],
    source: MetricSource,
    since: datetime,
) -> CanaryFeed:
    """The feed comparing `versions` (canary, baseline) of a weighted component whose live state is `state`:
    `{component}` is its name, the kind adds its own placeholders per version (`WeightedKind.placeholders`)."""
    per_version = {v: kind.placeholders(spec, state, v) for v in versions}
    return CanaryFeed(
        canary, *versions, source, since, placeholders={"component": spec.name}, version_placeholders=per_version
    )


@dataclass(frozen=True)
class Slow:
    """One period's requests above a threshold, per version, with the latency metric's own request counts."""

    canary: float
    baseline: float
    bound: float
    canary_samples: float
    baseline_samples: float


class _Latency(Protocol):
    def slow(self, label: str, start: datetime) -> Slow | str:
        """The slow counts in the period starting at `start`, or why there are none."""
        ...


class _CloudWatchLatency:
    """The baseline's percentiles per period, then PR(:threshold) and SampleCount of each version."""

    def __init__(self, feed: CanaryFeed, window: tuple[datetime, datetime]) -> None:
        self.feed, self.window = feed, window
        requests = [feed._request(f"pct|{label}", feed.query("latency", "baseline", label)) for label in feed.labels]
        requests += [feed._request(f"n|{r}", feed.query("latency", r, "SampleCount")) for r in ROLES]
        self.series = feed.source.fetch(requests, *window)
        self.ranks: dict[tuple[str, datetime], dict[str, Series]] = {}

    def slow(self, label: str, start: datetime) -> Slow | str:
        previous = start - timedelta(seconds=self.feed.period)
        threshold = _point(self.series.get(f"pct|{label}"), previous)
        if threshold is None:
            return "no baseline percentile in the previous period"
        key = (label, start)
        if key not in self.ranks:
            stat = f"PR(:{threshold:g})"
            requests = [self.feed._request(f"pr|{r}", self.feed.query("latency", r, stat)) for r in ROLES]
            self.ranks[key] = self.feed.source.fetch(requests, start, start + timedelta(seconds=self.feed.period))
        out, totals = [], []
        for role in ROLES:
            count = _point(self.series.get(f"n|{role}"), start)
            rank = _point(self.ranks[key].get(f"pr|{role}"), start)
            if count is None or rank is None:
                return f"no {role} sample count or percentile rank"
            out.append(slow_count_from_percentile_rank(count, rank))
            totals.append(count)
        return Slow(out[0], out[1], threshold, totals[0], totals[1])


class _PrometheusLatency:
    """Histogram bucket increments of each version: the threshold from the baseline's previous period."""

    def __init__(self, feed: CanaryFeed, window: tuple[datetime, datetime]) -> None:
        self.feed = feed
        self.buckets: dict[Role, dict[str, Series] | Series] = {}
        source = feed.source
        for role in ROLES:
            request = feed._request(f"buckets|{role}", feed.query("latency", role))
            if isinstance(source, PrometheusSource):
                self.buckets[role] = source.fetch_by_label(request, "le", *window)
            else:
                self.buckets[role] = Series(request.id, status="error", error="histograms need a Prometheus source")

    def histogram(self, role: Role, start: datetime) -> dict[float, float] | str:
        buckets = self.buckets[role]
        if isinstance(buckets, Series):
            return f"{role} buckets: {buckets.error or buckets.status}"
        hist = {float(le): s.points[start] for le, s in buckets.items() if start in s.points}
        return hist if hist else f"no {role} buckets"

    def slow(self, label: str, start: datetime) -> Slow | str:
        previous = self.histogram("baseline", start - timedelta(seconds=self.feed.period))
        canary, baseline = self.histogram("canary", start), self.histogram("baseline", start)
        for hist in (previous, canary, baseline):
            if isinstance(hist, str):
                return hist
        assert isinstance(previous, dict) and isinstance(canary, dict) and isinstance(baseline, dict)
        if not any(math.isfinite(le) for le in previous) or max(previous.values(), default=0) <= 0:
            return "no baseline requests in the previous period"
        threshold = histogram_threshold(previous, QUANTILES[label])
        c, b, bound = slow_counts(canary, baseline, threshold)
        return Slow(c, b, bound, histogram_total(canary), histogram_total(baseline))


def _point(series: Series | None, at: datetime) -> float | None:
    return None if series is None else series.points.get(at)


def _missing(name: str, series: Series | None, at: datetime) -> str:
    if series is None:
        return f"{name}: not fetched"
    if at in series.points:
        return ""
    if series.status == "error":
        return f"{name}: {series.error}"
    return f"{name}: no data"


@dataclass(frozen=True)
class SavedJudge:
    """A canary's judge as kept in the ledger: its state, the next period to feed, and a version to compare."""

    state: dict[str, Any]
    next_start: datetime
    version: int


class JudgeStore(Protocol):
    """Where the judge of a canary lives between periods and processes (`guard.judges.LedgerJudgeStore`)."""

    def load(self, key: str) -> SavedJudge | None: ...

    def save(self, key: str, state: dict[str, Any], next_start: datetime, expected: int) -> bool:
        """Store it when the stored version is still `expected` (0: none stored yet); False when another
        process saved first (then nothing was written)."""
        ...


def judge_key(
    app: str, env: str, component: str, canary_version: str, baseline_version: str, deployment: str | None = None
) -> str:
    """One judge per canary: the same component, the same two versions (and the deployment shifting them, when
    one is), whoever watches them; a new deployment of the same versions starts a new test."""
    tail = f"@{deployment}" if deployment else ""
    return f"{app}/{env}/{component}/{canary_version}->{baseline_version}{tail}"


class CanaryWatch:
    """The canary judge of one deployment and its feed; `update` reads the periods completed since the last call.

    With a `store`, the judge is the canary's, not the process's: it is loaded when the watch starts (a
    restarted guard or deploy continues the same test, with the alpha it has left), reloaded before each
    update (a guard and a deploy watching the same canary share it: a period the other fed is not fed again),
    and saved after each period judged.
    """

    # How many periods an absolute rollback trigger waits for a judge that has not judged a period yet.
    PATIENCE = 3

    def __init__(
        self,
        canary: Canary,
        feed: CanaryFeed,
        label: str = "",
        store: JudgeStore | None = None,
        key: str | None = None,
    ) -> None:
        """`label`: what is judged, for messages (e.g. "api at 10%"); `key`: the canary's (`judge_key`)."""
        self.canary = canary
        self.feed = feed
        self.label = label
        self.judge = self._new_judge()
        self.verdict: CanaryVerdict | None = None
        self.judged = 0
        self.missing = 0
        self.last: CanaryReading | None = None
        self.absolute_firing = False
        self.store: JudgeStore | None = store if key is not None else None
        self.key: str | None = key
        self.version = 0
        self.blind: str | None = None  # why the judge cannot judge, in the current episode
        self.blind_started = False  # the last update started an episode (notify once)
        self.restored = False
        self._reload()

    def _new_judge(self) -> CanaryJudge:
        return CanaryJudge(
            alpha=self.canary.alpha,
            r0=self.canary.tolerated_ratio,
            warmup=self.canary.warmup_intervals,
            latency_thresholds=self.canary.latency_thresholds,
            integer_counts=self.canary.cloudwatch is not None,
        )

    def _reload(self) -> None:
        if self.store is None or self.key is None:
            return
        saved = self.store.load(self.key)
        if saved is None or saved.version == self.version:
            return
        judge = self._new_judge()
        if not judge.restore(saved.state.get("judge", {})):
            return  # another block's judge (the file changed): this one starts afresh and replaces it
        self.judge, self.version, self.restored = judge, saved.version, True
        self.judged, self.missing = int(saved.state.get("judged", 0)), int(saved.state.get("missing", 0))
        self.blind = judge.blind
        self.verdict = judge.verdict(self.absolute_firing) if self.judged else None
        self.feed.next_start = max(self.feed.next_start, saved.next_start)

    def _save(self) -> None:
        if self.store is None or self.key is None:
            return
        state = {"judge": self.judge.to_state(), "judged": self.judged, "missing": self.missing}
        if self.store.save(self.key, state, self.feed.next_start, self.version):
            self.version += 1
        else:
            self._reload()  # another process judged these periods first: its judge is the canary's

    def update(self, now: datetime, absolute_firing: bool) -> list[CanaryReading]:
        """Read and judge the periods completed since the last call; never raises on bad data (see `blind`)."""
        self.absolute_firing = absolute_firing
        was_blind = self.blind is not None
        self._reload()
        if self.store is not None:
            was_blind = was_blind or self.blind is not None
        readings = self.feed.poll(now)
        for reading in readings:
            self.last = reading
            if reading.interval is None:
                self.missing += 1
                if reading.breaching:
                    self.blind = "no data, and the block's missing rule says breaching: " + "; ".join(reading.missing)
                continue
            self.verdict = self.judge.observe(reading.interval, absolute_firing)
            self.blind = self.verdict.blind
            self.judged += self.blind is None  # a period the judge could not use is not judged
        if readings:
            self._save()
        self.blind_started = self.blind is not None and not was_blind
        return readings

    @property
    def ready(self) -> bool:
        """The judge has judged a period past its warmup: its `not-the-cause` means something."""
        return self.judged > self.canary.warmup_intervals

    @property
    def comparing(self) -> bool:
        """Both versions served requests in the last period read: the judge speaks about now. After a promotion
        (or a rollback) one version has all the traffic, and "no worse" can no longer excuse a firing trigger."""
        last = self.last.interval if self.last is not None else None
        share = last.canary_share if last is not None else None
        return share is not None and 0 < share < 1

    @property
    def state(self) -> str:
        if self.verdict is not None and self.verdict.fires_rollback:
            return "rollback"  # the judge's rejection is final
        if self.blind is not None:
            return "blind"
        if not self.ready:
            return "warming-up"
        if not self.comparing:
            return "no-comparison"
        return "not-the-cause" if self.absolute_firing else "continue"

    @property
    def patience(self) -> float:
        return self.PATIENCE * self.canary.period

    def reason(self, percent: float | None = None) -> str:
        verdict = self.verdict
        assert verdict is not None
        ratio = "n/a" if verdict.ratio is None else f"{verdict.ratio:.3g}x"
        return (
            f"canary judge{self._where(percent)}: {verdict.metric} worse on version {self.feed.versions['canary']} "
            f"than on {self.feed.versions['baseline']}: e-value {_exp(verdict.statistic)} >= "
            f"{_exp(verdict.threshold)} (log {verdict.statistic:.2f} >= {verdict.threshold:.2f}), "
            f"canary/baseline ratio {ratio}"
        )

    def blind_message(self, percent: float | None = None) -> str:
        return (
            f"canary judge{self._where(percent)} is blind: {self.blind}; it judges again when good data return "
            f"({self.judged} periods judged, {self.missing} missing)"
        )

    def _where(self, percent: float | None) -> str:
        return f" at {percent:g}%" if percent is not None else f" ({self.label})" if self.label else ""

    def to_dict(self) -> dict[str, Any]:
        verdict = self.verdict.to_dict() if self.verdict is not None else {}
        return {
            **verdict,
            "state": self.state,
            "detail": self.detail(),
            "label": self.label,
            "canary_version": self.feed.versions["canary"],
            "baseline_version": self.feed.versions["baseline"],
            "periods_judged": self.judged,
            "periods_missing": self.missing,
            "blind": self.blind,
            "shared": self.key,
            "last_period": self.last.to_dict() if self.last is not None else None,
        }

    def detail(self) -> str:
        verdict = self.verdict
        blind = f"; blind: {self.blind}" if self.blind else ""
        if verdict is None:
            return f"no period judged yet ({self.missing} missing){blind}"
        ratio = "n/a" if verdict.ratio is None else f"{verdict.ratio:.3g}x"
        return (
            f"{self.state}: {verdict.metric} e-value {_exp(verdict.statistic)} (rolls back at "
            f"{_exp(verdict.threshold)}), canary/baseline {ratio}; {self.judged} periods judged, {self.missing} "
            f"missing{blind}"
        )


def _exp(log_value: float) -> str:
    return f"{math.exp(min(log_value, 700.0)):.3g}"
