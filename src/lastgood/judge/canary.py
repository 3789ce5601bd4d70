"""The canary judge: canary versus baseline, both live, one sequential test per metric (see `sequential`).

Each stream allows for arms noisier than Poisson (see `RatioTestBatch`): the evidence shows the dispersion used.
Metrics: `errors` (error counts) and `latency` (counts of requests slower than thresholds from the baseline,
one stream per threshold, e.g. p50/p90/p99, averaged into one e-value). alpha is split evenly across metrics
(Bonferroni), so the chance of any false rollback over the whole canary is <= alpha. The absolute rules remain
the "everything is on fire" alarm: when one fires but no comparison says the canary is worse, the verdict is
`not-the-cause` (alert, do not roll back): both versions are equally bad, so the release did not cause it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from lastgood.judge.sequential import SequentialRatioTest, log_mean_exp

CanaryState = Literal["continue", "rollback", "not-the-cause"]


@dataclass(frozen=True)
class CanaryInterval:
    """One period's per-version counts. `slow_*` map a threshold label (p50, p90, p99) to requests above it."""

    canary_requests: float
    baseline_requests: float
    canary_errors: float = 0.0
    baseline_errors: float = 0.0
    canary_slow: Mapping[str, float] = field(default_factory=dict)
    baseline_slow: Mapping[str, float] = field(default_factory=dict)
    share: float | None = None  # the canary's share of requests; default: from the request counts

    @property
    def canary_share(self) -> float | None:
        if self.share is not None:
            return self.share
        total = self.canary_requests + self.baseline_requests
        return self.canary_requests / total if total > 0 else None


@dataclass(frozen=True)
class CanaryVerdict:
    state: CanaryState
    statistic: float  # log e-value of the deciding (or largest) metric
    threshold: float  # log(1/alpha_metric)
    ratio: float | None  # canary/baseline rate ratio estimate of that metric
    metric: str | None
    evidence: dict[str, dict[str, Any]]

    @property
    def fires_rollback(self) -> bool:
        return self.state == "rollback"

    def detail(self) -> str:
        ratio = "n/a" if self.ratio is None else f"{self.ratio:.3g}x"
        return (
            f"{self.state}: {self.metric or 'no metric'} e-value {math.exp(min(self.statistic, 700)):.3g} "
            f"(rolls back at {math.exp(self.threshold):.3g}), canary/baseline {ratio}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "statistic": self.statistic,
            "threshold": self.threshold,
            "ratio": self.ratio,
            "metric": self.metric,
            "evidence": self.evidence,
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
        max_ratio: float = 100.0,
        latency_r0: float | None = None,
        dispersion: bool = True,
    ) -> None:
        self.metrics: dict[str, dict[str, SequentialRatioTest]] = {}
        count = int(errors) + int(bool(latency_thresholds))
        if count == 0:
            raise ValueError("the canary judge needs at least one metric")
        self.alpha = alpha
        self.alpha_metric = alpha / count
        if errors:
            self.metrics["errors"] = {
                "errors": SequentialRatioTest(self.alpha_metric, r0, warmup, max_ratio, dispersion=dispersion)
            }
        if latency_thresholds:
            lr0 = r0 if latency_r0 is None else latency_r0
            self.metrics["latency"] = {
                label: SequentialRatioTest(self.alpha_metric, lr0, warmup, max_ratio, dispersion=dispersion)
                for label in latency_thresholds
            }
        self.rejected: str | None = None

    @property
    def log_threshold(self) -> float:
        return math.log(1.0 / self.alpha_metric)

    def observe(self, interval: CanaryInterval, absolute_firing: bool = False) -> CanaryVerdict:
        share = interval.canary_share
        if share is not None:
            for metric, tests in self.metrics.items():
                for label, test in tests.items():
                    if metric == "errors":
                        a, b = interval.canary_errors, interval.baseline_errors
                    else:
                        if label not in interval.canary_slow or label not in interval.baseline_slow:
                            continue
                        a, b = interval.canary_slow[label], interval.baseline_slow[label]
                    test.update(a, b, share)
        return self.verdict(absolute_firing)

    def metric_statistic(self, metric: str) -> float:
        return log_mean_exp([t.log_statistic for t in self.metrics[metric].values()])

    def verdict(self, absolute_firing: bool = False) -> CanaryVerdict:
        evidence: dict[str, dict[str, Any]] = {}
        best: tuple[float, str] | None = None
        for metric, tests in self.metrics.items():
            stat = self.metric_statistic(metric)
            if stat >= self.log_threshold and self.rejected is None:
                self.rejected = metric
            streams = {}
            for label, test in tests.items():
                s = test.state()
                streams[label] = {
                    "log_statistic": s.log_statistic,
                    "ratio": s.ratio,
                    "interval": list(s.interval),
                    "canary_events": s.canary_events,
                    "baseline_events": s.baseline_events,
                    "intervals": s.intervals,
                    "dispersion": s.dispersion,
                }
            evidence[metric] = {"log_statistic": stat, "log_threshold": self.log_threshold, "streams": streams}
            if best is None or stat > best[0]:
                best = (stat, metric)
        assert best is not None
        metric = self.rejected or best[1]
        stat = self.metric_statistic(metric)
        ratio = self._ratio(metric)
        if self.rejected is not None:
            state: CanaryState = "rollback"
        elif absolute_firing:
            state = "not-the-cause"
        else:
            state = "continue"
        return CanaryVerdict(state, stat, self.log_threshold, ratio, metric, evidence)

    def _ratio(self, metric: str) -> float | None:
        """The ratio of the stream with the most evidence in that metric."""
        tests = self.metrics[metric].values()
        top = max(tests, key=lambda t: t.log_statistic)
        return top.ratio()
