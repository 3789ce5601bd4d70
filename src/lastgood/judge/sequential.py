"""An anytime-valid sequential test that the canary's event rate is at most R0 times the baseline's.

Maths. In interval t the canary serves share s_t of the requests and has a_t events (errors, or requests slower
than a threshold); the baseline has b_t. With Poisson events at rates s*lam_c and (1-s)*lam_b, conditionally on
n_t = a_t + b_t the canary's count is Binomial(n_t, p_t(theta)), p_t(theta) = s_t*theta / (s_t*theta + 1 - s_t),
theta = lam_c / lam_b. Anything that multiplies both arms' rates (traffic, seasonality, a shared incident)
cancels. logit p_t(theta) = logit s_t + log theta, so the likelihood ratio of theta against R0 is an exponential
tilt by d = log(theta/R0): by convexity of the log-partition function its expectation is <= 1 under every
theta' <= R0, i.e. the product over intervals is a nonnegative supermartingale under the composite null.
A mixture over theta > R0 (log-uniform prior on a grid in [R0, max_ratio*R0]) is one too, so by Ville's
inequality P(sup_t M_t >= 1/alpha) <= alpha: we reject (roll back) the first time log M_t >= log(1/alpha), at any
stopping time, without a fixed horizon. An average of such mixtures over the same intervals (e.g. latency counts
above baseline p50/p90/p99) is again a supermartingale, so it can be judged against the same 1/alpha. For
non-rare events (slow requests) the exact null law given n is hypergeometric, which is below the binomial in
convex order (Hoeffding 1963), so the test stays valid. The estimate is the grid MLE of theta; the interval is
the prior-posterior-ratio confidence sequence {theta_j : mixture / L(theta_j) < 1/alpha}, valid at all times.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

# Keeps p away from 0 and 1 when a share is 0 or 1 (an arm with no traffic contributes nothing anyway).
_EPS = 1e-12


def ratio_grid(r0: float = 1.0, max_ratio: float = 100.0, points: int = 64) -> tuple[FloatArray, FloatArray]:
    """Alternatives theta in (R0, max_ratio*R0), log-spaced, with log-uniform prior log-weights summing to 1."""
    if r0 <= 0 or max_ratio <= 1 or points < 1:
        raise ValueError("need r0 > 0, max_ratio > 1 and points >= 1")
    edges = np.linspace(0.0, math.log(max_ratio), points + 1)
    thetas = r0 * np.exp((edges[:-1] + edges[1:]) / 2)  # cell midpoints: the midpoint rule for the integral
    log_weights = np.full(points, -math.log(points))
    return thetas, log_weights


def canary_probability(share: ArrayLike, theta: ArrayLike) -> FloatArray:
    """p(theta): the chance that one event, of the pooled events, is the canary's."""
    s = np.clip(np.asarray(share, dtype=np.float64), _EPS, 1 - _EPS)
    th = np.asarray(theta, dtype=np.float64)
    return np.asarray(s * th / (s * th + 1.0 - s), dtype=np.float64)


def log_lr_increment(
    canary: ArrayLike, baseline: ArrayLike, share: ArrayLike, thetas: ArrayLike, r0: float = 1.0
) -> FloatArray:
    """log L(theta) - log L(R0) for one interval; inputs broadcast, the last axis of the result is theta's."""
    a = np.asarray(canary, dtype=np.float64)[..., None]
    b = np.asarray(baseline, dtype=np.float64)[..., None]
    s = np.asarray(share, dtype=np.float64)[..., None]
    th = np.asarray(thetas, dtype=np.float64)
    p1 = canary_probability(s, th)
    p0 = canary_probability(s, r0)
    out = a * (np.log(p1) - np.log(p0)) + b * (np.log1p(-p1) - np.log1p(-p0))
    return np.asarray(out, dtype=np.float64)


def log_likelihood(canary: ArrayLike, baseline: ArrayLike, share: ArrayLike, thetas: ArrayLike) -> FloatArray:
    """The binomial log-likelihood of each theta for one interval (without the binomial coefficient)."""
    a = np.asarray(canary, dtype=np.float64)[..., None]
    b = np.asarray(baseline, dtype=np.float64)[..., None]
    p = canary_probability(np.asarray(share, dtype=np.float64)[..., None], thetas)
    return np.asarray(a * np.log(p) + b * np.log1p(-p), dtype=np.float64)


def logsumexp(x: FloatArray, axis: int = -1) -> FloatArray:
    top = np.max(x, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return np.asarray(np.log(np.sum(np.exp(x - top), axis=axis)) + np.squeeze(top, axis=axis), dtype=np.float64)


def mixture_log_statistic(cumulative: FloatArray, log_weights: FloatArray) -> FloatArray:
    """log of the mixture likelihood ratio, from cumulative per-theta log-LRs (last axis)."""
    return logsumexp(cumulative + log_weights, axis=-1)


def log_mean_exp(log_values: Sequence[float]) -> float:
    """log of the average of e-values given as logs (an average of test supermartingales is one)."""
    if not log_values:
        return 0.0
    arr = np.asarray(log_values, dtype=np.float64)
    return float(logsumexp(arr, axis=0) - math.log(len(arr)))


@dataclass(frozen=True)
class TestState:
    log_statistic: float
    log_threshold: float
    rejected: bool
    intervals: int
    canary_events: float
    baseline_events: float
    ratio: float | None
    interval: tuple[float, float]
    dispersion: float  # rho: the extra-binomial correlation the test allowed for (0 = plain binomial)


# Two-sided grid for the estimate and confidence sequence: 1/1000 .. 1000.
_EST_GRID = np.exp(np.linspace(math.log(1e-3), math.log(1e3), 481))
_EST_LOGW = np.full(_EST_GRID.size, -math.log(_EST_GRID.size))

# How many recent intervals the dispersion estimate looks at: enough for a stable estimate, bounded work.
DISPERSION_WINDOW = 120
DISPERSION_UPPER = 0.25  # standard errors added to the estimate (see RatioTestBatch)


def dispersion_estimate(canary: FloatArray, baseline: FloatArray, share: FloatArray, upper: float = 0.0) -> FloatArray:
    """rho in Var(a | n) = n p (1 - p) (1 + (n - 1) rho), by moments, from past intervals (axis 0).

    p comes from the Mantel-Haenszel ratio of the same intervals, so a real difference between the arms is not
    mistaken for noise. Intervals with few events carry little weight (the weights are n (n - 1) p (1 - p)), so
    sparse error counts keep the plain binomial and its power.
    """
    theta = (np.sum(canary * (1 - share), axis=0) + 0.5) / (np.sum(baseline * share, axis=0) + 0.5)
    p = canary_probability(share, theta)
    n = canary + baseline
    binomial = n * p * (1 - p)
    excess = np.sum((canary - n * p) ** 2 - binomial, axis=0)
    weight = np.maximum(np.sum(binomial * np.maximum(n - 1, 0), axis=0), 1e-12)
    rho = np.clip(excess / weight, 0.0, 1.0)
    if upper:
        # Var((a - np)^2) ~ 2 Var(a)^2: a few intervals give a loose estimate, so take its upper side.
        spread = np.sqrt(np.sum(2 * (binomial * (1 + np.maximum(n - 1, 0) * rho)) ** 2, axis=0)) / weight
        rho = np.clip(rho + upper * spread, 0.0, 1.0)
    return np.asarray(rho, dtype=np.float64)


class RatioTestBatch:
    """The sequential test for many independent streams at once (arrays of one `shape`), e.g. every run of a
    benchmark or every stream of a judge. `SequentialRatioTest` is the one-stream view with estimates.

    Overdispersion. Real arms are noisier than Poisson: each version's rate wobbles minute to minute on its own
    (a cold container, one slow host), so given n the canary's count varies more than binomially, by a factor
    1 + (n - 1) rho. Each interval's log-LR is tempered by the inverse of that factor, with rho estimated from
    earlier intervals only (warm-up ones included), so the weight is predictable. Tempering by lambda <= 1 keeps
    the binomial supermartingale (E[X^lambda] <= E[X]^lambda <= 1), and with lambda ~ 1/factor the increment's
    variance matches the noisier arms, so noise is not read as evidence. Sparse error counts (n small) keep
    lambda ~ 1: no power is lost where the binomial is right.
    """

    def __init__(
        self,
        shape: tuple[int, ...] = (),
        alpha: float = 0.05,
        r0: float = 1.0,
        warmup: int = 0,
        max_ratio: float = 100.0,
        points: int = 64,
        dispersion: bool = True,
    ) -> None:
        if not 0 < alpha < 1:
            raise ValueError("alpha must be in (0, 1)")
        if warmup < 0:
            raise ValueError("warmup must be >= 0")
        self.alpha, self.r0, self.warmup, self.dispersion = alpha, r0, warmup, dispersion
        self.thetas, self.log_weights = ratio_grid(r0, max_ratio, points)
        self.cumulative = np.zeros((*shape, self.thetas.size))
        self.rejected = np.zeros(shape, dtype=bool)
        self.used = np.zeros(shape, dtype=np.int64)
        self.seen = 0
        self.last_rho = np.zeros(shape)  # the dispersion the last update allowed for
        self.last_weight = np.ones(shape)  # and the weight it gave that interval
        self._history = np.zeros((3, DISPERSION_WINDOW, *shape))  # canary, baseline, share; a ring

    @property
    def log_threshold(self) -> float:
        return math.log(1.0 / self.alpha)

    def log_statistic(self) -> FloatArray:
        return mixture_log_statistic(self.cumulative, self.log_weights)

    def rho(self) -> FloatArray:
        """The dispersion allowed for in the next interval (0 until there is history)."""
        if not self.dispersion or not self.seen:
            return np.zeros(self.rejected.shape)
        a, b, s = self._history[:, : min(self.seen, DISPERSION_WINDOW)]
        return dispersion_estimate(a, b, s, DISPERSION_UPPER)

    def update(self, canary: ArrayLike, baseline: ArrayLike, share: ArrayLike) -> FloatArray:
        """Add one interval to every stream; returns the tempered log-LR increments that were added (per theta)."""
        a = np.broadcast_to(np.asarray(canary, dtype=np.float64), self.rejected.shape)
        b = np.broadcast_to(np.asarray(baseline, dtype=np.float64), self.rejected.shape)
        s = np.broadcast_to(np.asarray(share, dtype=np.float64), self.rejected.shape)
        if np.any(a < 0) or np.any(b < 0) or np.any((s < 0) | (s > 1)):
            raise ValueError("counts must be >= 0 and the share in [0, 1]")
        informative = (s > 0) & (s < 1) & (a + b > 0)
        self.last_rho = self.rho()
        weight = self.last_weight = 1.0 / (1.0 + np.maximum(a + b - 1, 0) * self.last_rho)
        slot = self.seen % DISPERSION_WINDOW
        self.seen += 1
        added = np.zeros(self.cumulative.shape)
        if self.seen > self.warmup:
            increment = log_lr_increment(a, b, s, self.thetas, self.r0)
            added = np.where(informative[..., None], weight[..., None] * increment, 0.0)
            self.cumulative += added
            self.used += informative
            self.rejected |= self.log_statistic() >= self.log_threshold
        self._history[:, slot] = (
            np.where(informative, a, 0.0),
            np.where(informative, b, 0.0),
            np.where(informative, s, 0.5),
        )
        return np.asarray(added, dtype=np.float64)


class SequentialRatioTest:
    """One stream of (canary_events, baseline_events, canary_share) per interval, with estimates.

    The first `warmup` intervals are not accumulated (a canary's first minutes carry cold starts that are not
    what the release is judged on; a fresh start after the warm-up keeps the martingale exact), but they do
    inform the dispersion estimate. Once rejected, the test stays rejected (Ville bounds the chance of ever
    crossing).
    """

    __test__ = False  # not a pytest class

    def __init__(
        self,
        alpha: float = 0.05,
        r0: float = 1.0,
        warmup: int = 0,
        max_ratio: float = 100.0,
        points: int = 64,
        dispersion: bool = True,
    ) -> None:
        self.batch = RatioTestBatch((), alpha, r0, warmup, max_ratio, points, dispersion)
        self.alpha, self.r0, self.warmup = alpha, r0, warmup
        self.estimate_loglik = np.zeros(_EST_GRID.size)
        self.canary_events = 0.0
        self.baseline_events = 0.0
        self.last_rho = 0.0

    @property
    def thetas(self) -> FloatArray:
        return self.batch.thetas

    @property
    def log_threshold(self) -> float:
        return self.batch.log_threshold

    @property
    def log_statistic(self) -> float:
        return float(self.batch.log_statistic())

    @property
    def rejected(self) -> bool:
        return bool(self.batch.rejected)

    def update(self, canary_events: float, baseline_events: float, canary_share: float) -> TestState:
        used_before = int(self.batch.used)
        self.batch.update(canary_events, baseline_events, canary_share)
        if int(self.batch.used) > used_before:
            self.last_rho = float(self.batch.last_rho)
            weight = float(self.batch.last_weight)
            self.canary_events += canary_events
            self.baseline_events += baseline_events
            self.estimate_loglik += weight * log_likelihood(canary_events, baseline_events, canary_share, _EST_GRID)
        return self.state()

    def ratio(self) -> float | None:
        """The maximum-likelihood ratio on the grid; None before any event."""
        if self.canary_events + self.baseline_events == 0:
            return None
        return float(_EST_GRID[int(np.argmax(self.estimate_loglik))])

    def confidence_interval(self) -> tuple[float, float]:
        """An anytime-valid (1 - alpha) confidence sequence for theta, clipped to [1e-3, 1e3]."""
        log_mix = float(mixture_log_statistic(self.estimate_loglik, _EST_LOGW))
        keep = np.nonzero(log_mix - self.estimate_loglik < self.log_threshold)[0]
        lo = max(int(keep[0]) - 1, 0)
        hi = min(int(keep[-1]) + 1, _EST_GRID.size - 1)
        return float(_EST_GRID[lo]), float(_EST_GRID[hi])

    def state(self) -> TestState:
        return TestState(
            log_statistic=self.log_statistic,
            log_threshold=self.log_threshold,
            rejected=self.rejected,
            intervals=int(self.batch.used),
            canary_events=self.canary_events,
            baseline_events=self.baseline_events,
            ratio=self.ratio(),
            interval=self.confidence_interval(),
            dispersion=self.last_rho,
        )


# ---- latency: counts of requests slower than a threshold taken from the baseline ----

Histogram = Mapping[float, float]
"""Prometheus-style cumulative buckets: upper bound `le` -> count of requests <= le (math.inf -> total)."""


def histogram_total(hist: Histogram) -> float:
    """All the requests of a histogram: its +Inf bucket, or its largest count."""
    return _total(hist)


def _total(hist: Histogram) -> float:
    if math.inf in hist:
        return float(hist[math.inf])
    return float(max(hist.values(), default=0.0))


def histogram_threshold(hist: Histogram, quantile: float) -> float:
    """The smallest finite bucket bound with at least `quantile` of the requests at or below it."""
    total = _total(hist)
    bounds = sorted(b for b in hist if math.isfinite(b))
    if not bounds:
        raise ValueError("the histogram has no finite buckets")
    for bound in bounds:
        if total > 0 and hist[bound] >= quantile * total:
            return bound
    return bounds[-1]


def slow_counts(canary_hist: Histogram, baseline_hist: Histogram, threshold: float) -> tuple[float, float, float]:
    """(canary slow, baseline slow, bound used): requests above the smallest common bucket bound >= threshold.

    Both histograms are one interval's increments (rate/increase of the cumulative buckets). The count above a
    bucket bound is exact, so the threshold is moved up to a bound; take it from the baseline's *previous*
    interval (`histogram_threshold`) so that it does not depend on the data it is tested on.
    """
    common = sorted(b for b in set(canary_hist) & set(baseline_hist) if math.isfinite(b) and b >= threshold)
    if not common:
        return 0.0, 0.0, math.inf
    bound = common[0]
    canary = max(_total(canary_hist) - canary_hist[bound], 0.0)
    baseline = max(_total(baseline_hist) - baseline_hist[bound], 0.0)
    return canary, baseline, bound


def slow_count_from_percentile_rank(sample_count: float, percent_at_or_below: float) -> float:
    """CloudWatch: SampleCount and PR(:threshold) (percent of requests <= threshold) -> requests above it."""
    return max(sample_count * (1.0 - percent_at_or_below / 100.0), 0.0)


def slow_fraction_from_percentiles(percentiles: Mapping[float, float], threshold: float) -> float:
    """Approximate share of requests above `threshold` from a few percentiles (e.g. {50: p50, 90: p90, 99: p99}).

    Interpolates linearly between the known points in (log latency, normal quantile) coordinates, which is exact
    for a log-normal; use PR(:threshold) (`slow_count_from_percentile_rank`) when the metric supports it.
    """
    from statistics import NormalDist

    nd = NormalDist()
    points = sorted((math.log(v), nd.inv_cdf(p / 100.0)) for p, v in percentiles.items() if v > 0 and 0 < p < 100)
    if not points:
        raise ValueError("need at least one percentile in (0, 100) with a positive value")
    x = math.log(threshold) if threshold > 0 else -math.inf
    xs = [p[0] for p in points]
    zs = [p[1] for p in points]
    if len(points) == 1:
        z = zs[0] + (x - xs[0]) * 3.0  # one point: assume a spread like sigma = 1/3 in log space
    elif x <= xs[0]:
        z = zs[0] + (x - xs[0]) * (zs[1] - zs[0]) / max(xs[1] - xs[0], 1e-12)
    elif x >= xs[-1]:
        z = zs[-1] + (x - xs[-1]) * (zs[-1] - zs[-2]) / max(xs[-1] - xs[-2], 1e-12)
    else:
        z = float(np.interp(x, xs, zs))
    return 1.0 - nd.cdf(z)
