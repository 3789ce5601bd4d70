"""The canary judge: canary versus baseline, both live, one sequential test per metric stream (see `rates`).

Metrics: `errors` (errors per request) and `latency` (requests slower than thresholds taken from the baseline,
per latency sample: one stream per threshold, e.g. p50/p90/p99, averaged into one e-value). Each stream's rates
come from its own metric's counts (errors over requests, slow requests over the latency metric's sample count),
so a metric whose counts are short in a period does not skew another's. alpha is split evenly across metrics
(Bonferroni), so the chance of any false rollback over the whole canary is <= alpha. The absolute rules remain
the "everything is on fire" alarm: when one fires but no comparison says the canary is worse, the verdict is
`not-the-cause` (alert, do not roll back): both versions are equally bad, so the release did not cause it.

Bad values (NaN, infinite, negative or fractional counts, more events than requests) and a baseline without
traffic for `BLIND_AFTER` periods make the judge `blind`: the period is not fed, the verdict says why, and the
next good period feeds the tests again. The judge's whole state is `to_state()` / `from_state()` (JSON), so a
restarted process, or a second one watching the same canary, continues the same test with the alpha it has left.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from lastgood.judge.rates import RateTestBatch, latency_prior
from lastgood.judge.sequential import log_mean_exp

CanaryState = Literal["continue", "rollback", "not-the-cause", "blind"]

BLIND_AFTER = 3  # periods in a row without baseline requests before the judge says it is blind
STATE_VERSION = 3  # 3: own-wobble sums net of the level's noise; 2: one e-process per fixed bet (older: afresh)


@dataclass(frozen=True)
class CanaryInterval:
    """One period's per-version counts. `slow_*` map a threshold label (p50, p90, p99) to requests above it;
    `*_samples` are the latency metric's own request counts (default: the request counts)."""

    canary_requests: float
    baseline_requests: float
    canary_errors: float = 0.0
    baseline_errors: float = 0.0
    canary_slow: Mapping[str, float] = field(default_factory=dict)
    baseline_slow: Mapping[str, float] = field(default_factory=dict)
    share: float | None = None  # the canary's share of requests; default: from the request counts
    canary_samples: float | None = None
    baseline_samples: float | None = None

    @property
    def canary_share(self) -> float | None:
        if self.share is not None:
            return self.share
        total = self.canary_requests + self.baseline_requests
        return self.canary_requests / total if total > 0 else None

    def samples(self) -> tuple[float, float]:
        canary = self.canary_requests if self.canary_samples is None else self.canary_samples
        baseline = self.baseline_requests if self.baseline_samples is None else self.baseline_samples
        return canary, baseline


def _bad_count(name: str, value: float, integer: bool) -> str | None:
    if math.isnan(value):
        return f"{name} is NaN"
    if math.isinf(value):
        return f"{name} is infinite"
    if value < 0:
        return f"{name} is negative ({value:g})"
    if integer and abs(value - round(value)) > 1e-6:
        return f"{name} is not a whole number ({value:g})"
    return None


def problems(interval: CanaryInterval, integer_counts: bool = True) -> list[str]:
    """What makes a period's counts unusable; [] when they are fine. `integer_counts`: CloudWatch's Sum of a
    count is whole; Prometheus' increase() extrapolates, so its counts may be fractional."""
    samples = interval.samples()
    counts: list[tuple[str, float]] = [
        ("canary requests", interval.canary_requests),
        ("baseline requests", interval.baseline_requests),
        ("canary errors", interval.canary_errors),
        ("baseline errors", interval.baseline_errors),
        ("canary latency samples", samples[0]),
        ("baseline latency samples", samples[1]),
    ]
    slow = [(f"canary slow {k}", v) for k, v in interval.canary_slow.items()]
    slow += [(f"baseline slow {k}", v) for k, v in interval.baseline_slow.items()]
    # slow counts may be fractional anywhere: CloudWatch's come from a percentile rank times a sample count
    found = [p for name, value in counts if (p := _bad_count(name, float(value), integer_counts))]
    found += [p for name, value in slow if (p := _bad_count(name, float(value), False))]
    return found or _inconsistent(interval)


def _inconsistent(interval: CanaryInterval) -> list[str]:
    """Counts that cannot all be true: more events than the requests they are counted in."""
    found = []
    samples = interval.samples()
    for role, errors, requests in (
        ("canary", interval.canary_errors, interval.canary_requests),
        ("baseline", interval.baseline_errors, interval.baseline_requests),
    ):
        if errors > requests + 1e-6:
            found.append(f"{role} errors ({errors:g}) exceed its requests ({requests:g})")
    for role, by_label, total in (
        ("canary", interval.canary_slow, samples[0]),
        ("baseline", interval.baseline_slow, samples[1]),
    ):
        found += [
            f"{role} slow {k} ({v:g}) exceed its samples ({total:g})" for k, v in by_label.items() if v > total + 1e-6
        ]
    return found


@dataclass(frozen=True)
class CanaryVerdict:
    state: CanaryState
    statistic: float  # log e-value of the deciding (or largest) metric
    threshold: float  # log(1/alpha_metric)
    ratio: float | None  # canary/baseline rate ratio estimate of that metric
    metric: str | None
    evidence: dict[str, dict[str, Any]]
    blind: str | None = None  # why the judge could not use the data, while it cannot

    @property
    def fires_rollback(self) -> bool:
        return self.state == "rollback"

    def detail(self) -> str:
        ratio = "n/a" if self.ratio is None else f"{self.ratio:.3g}x"
        blind = f"; blind: {self.blind}" if self.blind else ""
        return (
            f"{self.state}: {self.metric or 'no metric'} e-value {math.exp(min(self.statistic, 700)):.3g} "
            f"(rolls back at {math.exp(self.threshold):.3g}), canary/baseline {ratio}{blind}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "statistic": self.statistic,
            "threshold": self.threshold,
            "ratio": self.ratio,
            "metric": self.metric,
            "evidence": self.evidence,
            "blind": self.blind,
        }


class CanaryJudge:
    """Feed one `CanaryInterval` per period to `observe`; stateful, pure (no I/O)."""

    def __init__(
        self,
        alpha: float = 0.05,
        r0: float = 1.0,
        warmup: int = 2,
        latency_thresholds: Sequence[str] = ("p50", "p90", "p99"),
        errors: bool = True,
        latency_r0: float | None = None,
        integer_counts: bool = True,
    ) -> None:
        count = int(errors) + int(bool(latency_thresholds))
        if count == 0:
            raise ValueError("the canary judge needs at least one metric")
        self.alpha = alpha
        self.alpha_metric = alpha / count
        self.integer_counts = integer_counts
        self.metrics: dict[str, dict[str, RateTestBatch]] = {}
        if errors:
            self.metrics["errors"] = {"errors": RateTestBatch((), self.alpha_metric, r0, warmup)}
        if latency_thresholds:
            lr0 = r0 if latency_r0 is None else latency_r0
            self.metrics["latency"] = {
                label: RateTestBatch((), self.alpha_metric, lr0, warmup, latency_prior(label))
                for label in latency_thresholds
            }
        self.rejected: str | None = None
        self.blind: str | None = None
        self.no_baseline = 0  # periods in a row without baseline requests
        self.periods = 0  # periods observed, bad ones included

    @property
    def log_threshold(self) -> float:
        return math.log(1.0 / self.alpha_metric)

    def observe(self, interval: CanaryInterval, absolute_firing: bool = False) -> CanaryVerdict:
        self.periods += 1
        bad = problems(interval, self.integer_counts)
        if bad:
            self.blind = "bad values: " + "; ".join(bad)
            return self.verdict(absolute_firing)
        self.no_baseline = self.no_baseline + 1 if interval.baseline_requests <= 0 else 0
        if self.no_baseline >= BLIND_AFTER:
            self.blind = f"the baseline has served no requests for {self.no_baseline} periods"
            return self.verdict(absolute_firing)
        if interval.baseline_requests > 0:
            self.blind = None
        self._feed(interval)
        return self.verdict(absolute_firing)

    def _feed(self, interval: CanaryInterval) -> None:
        samples_c, samples_b = interval.samples()
        for metric, tests in self.metrics.items():
            for label, test in tests.items():
                if metric == "errors":
                    test.update(
                        interval.canary_errors,
                        interval.canary_requests,
                        interval.baseline_errors,
                        interval.baseline_requests,
                    )
                elif label in interval.canary_slow and label in interval.baseline_slow:
                    test.update(interval.canary_slow[label], samples_c, interval.baseline_slow[label], samples_b)

    def metric_statistic(self, metric: str) -> float:
        return log_mean_exp([float(t.log_statistic()) for t in self.metrics[metric].values()])

    def verdict(self, absolute_firing: bool = False) -> CanaryVerdict:
        evidence: dict[str, dict[str, Any]] = {}
        best: tuple[float, str] | None = None
        for metric, tests in self.metrics.items():
            stat = self.metric_statistic(metric)
            if stat >= self.log_threshold and self.rejected is None:
                self.rejected = metric
            streams = {label: _stream_evidence(test) for label, test in tests.items()}
            evidence[metric] = {"log_statistic": stat, "log_threshold": self.log_threshold, "streams": streams}
            if best is None or stat > best[0]:
                best = (stat, metric)
        assert best is not None
        metric = self.rejected or best[1]
        stat = self.metric_statistic(metric)
        state: CanaryState
        if self.rejected is not None:
            state = "rollback"
        elif self.blind is not None:
            state = "blind"
        elif absolute_firing:
            state = "not-the-cause"
        else:
            state = "continue"
        return CanaryVerdict(state, stat, self.log_threshold, self._ratio(metric), metric, evidence, self.blind)

    def _ratio(self, metric: str) -> float | None:
        """The ratio of the stream with the most evidence in that metric."""
        top = max(self.metrics[metric].values(), key=lambda t: float(t.log_statistic()))
        ratio = float(top.ratio())
        return ratio if math.isfinite(ratio) else None

    # -- the state kept in the ledger ----------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "alpha": self.alpha,
            "rejected": self.rejected,
            "blind": self.blind,
            "no_baseline": self.no_baseline,
            "periods": self.periods,
            "streams": {m: {label: t.to_state() for label, t in tests.items()} for m, tests in self.metrics.items()},
        }

    def restore(self, state: Mapping[str, Any]) -> bool:
        """Continue from a saved state of the same judge (same metrics and alpha); False (nothing changed) when
        the state is of another shape, e.g. the file's canary block changed since."""
        streams = state.get("streams", {})
        same = (
            state.get("version") == STATE_VERSION
            and state.get("alpha") == self.alpha
            and {m: set(s) for m, s in streams.items()} == {m: set(t) for m, t in self.metrics.items()}
        )
        if not same:
            return False
        self.metrics = {
            m: {label: RateTestBatch.from_state(s) for label, s in tests.items()} for m, tests in streams.items()
        }
        self.rejected, self.blind = state.get("rejected"), state.get("blind")
        self.no_baseline, self.periods = int(state.get("no_baseline", 0)), int(state.get("periods", 0))
        return True


def _stream_evidence(test: RateTestBatch) -> dict[str, Any]:
    a, c, b, m = (float(v) for v in test.events)
    ratio = float(test.ratio())
    return {
        "log_statistic": float(test.log_statistic()),
        "rates_log_e": float(test.log_e),
        "counts_log_e": float(test.count_log_e()),
        "ratio": ratio if math.isfinite(ratio) else None,
        "canary_events": a,
        "canary_requests": c,
        "baseline_events": b,
        "baseline_requests": m,
        "intervals": int(test.used),
        "wobble": float(np.sqrt(test.wobble_allowed())),
    }
