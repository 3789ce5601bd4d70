"""The sequential canary test: validity under the null by simulation, power, R0, warm-up, overdispersion, the
oracles, the judge.

Oracles: savvi (a published implementation of Lindon et al.'s anytime-valid multinomial test) for the mixture
machinery, with savvi's Beta prior moved onto lastgood's grid; and a direct numerical integration with
scipy.integrate.quad of lastgood's own mixture (log-uniform prior on [R0, 100 R0]) over scipy.stats.binom
likelihoods. confseq (its C++ build fails here) and expectation (Python >= 3.12) do not install.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from lastgood.judge.canary import CanaryInterval, CanaryJudge
from lastgood.judge.sequential import (
    RatioTestBatch,
    SequentialRatioTest,
    dispersion_estimate,
    histogram_threshold,
    log_lr_increment,
    logsumexp,
    ratio_grid,
    slow_count_from_percentile_rank,
    slow_counts,
    slow_fraction_from_percentiles,
)


def simulate_rejections(
    rng: np.random.Generator,
    runs: int,
    intervals: int,
    ratio: float,
    alpha: float = 0.05,
    r0: float = 1.0,
    share: np.ndarray | None = None,
    base_rate: np.ndarray | None = None,
) -> np.ndarray:
    """Vectorised runs of the module's own increments; returns the first rejecting interval (inf if none)."""
    thetas, logw = ratio_grid(r0)
    cum = np.zeros((runs, thetas.size))
    first = np.full(runs, np.inf)
    s = share if share is not None else np.full((runs, intervals), 0.1)
    lam = base_rate if base_rate is not None else np.full((runs, intervals), 20.0)
    for t in range(intervals):
        a = rng.poisson(lam[:, t] * s[:, t] * ratio)
        b = rng.poisson(lam[:, t] * (1 - s[:, t]))
        cum += log_lr_increment(a, b, s[:, t], thetas, r0)
        hit = logsumexp(cum + logw) >= math.log(1 / alpha)
        first = np.where(np.isinf(first) & hit, t + 1, first)
    return first


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_type_one_error_under_the_null() -> None:
    rng = np.random.default_rng(20260101)
    first = simulate_rejections(rng, 2000, 100, ratio=1.0)
    assert np.isfinite(first).mean() <= 0.05 + 0.01


def test_validity_with_varying_share_and_shared_incidents() -> None:
    rng = np.random.default_rng(7)
    runs, intervals = 2000, 60
    share = np.exp(rng.uniform(math.log(0.01), math.log(0.5), (runs, intervals)))
    base = np.exp(rng.uniform(math.log(0.5), math.log(200), (runs, intervals)))  # incidents hit both arms
    first = simulate_rejections(rng, runs, intervals, ratio=1.0, share=share, base_rate=base)
    assert np.isfinite(first).mean() <= 0.05 + 0.01


def test_composite_null_below_r0_is_valid() -> None:
    rng = np.random.default_rng(3)
    # the canary is better (0.8x) or tolerated-worse (1.2x with R0 = 1.25): both are in the null
    assert np.isfinite(simulate_rejections(rng, 1000, 60, ratio=0.8)).mean() <= 0.05
    assert np.isfinite(simulate_rejections(rng, 1000, 60, ratio=1.2, r0=1.25)).mean() <= 0.05
    # and with R0 = 1 the same 1.2x is found, given enough data
    busy = np.full((200, 60), 100.0)
    found = simulate_rejections(rng, 200, 60, ratio=1.2, share=np.full((200, 60), 0.5), base_rate=busy)
    assert np.isfinite(found).mean() > 0.9


@pytest.mark.parametrize(("ratio", "within", "power"), [(3.0, 10, 0.95), (10.0, 3, 0.99), (50.0, 2, 0.99)])
def test_power_at_big_effects(ratio: float, within: int, power: float) -> None:
    rng = np.random.default_rng(11)
    first = simulate_rejections(rng, 500, 30, ratio=ratio)
    assert (first <= within).mean() >= power


def test_class_matches_vectorised_path_and_estimates() -> None:
    rng = np.random.default_rng(5)
    test = SequentialRatioTest(alpha=0.05, dispersion=False)
    thetas, logw = ratio_grid(1.0)
    cum = np.zeros(thetas.size)
    for _ in range(20):
        share = float(rng.uniform(0.05, 0.5))
        a, b = float(rng.poisson(50 * share * 2)), float(rng.poisson(50 * (1 - share)))
        state = test.update(a, b, share)
        cum += log_lr_increment(a, b, share, thetas, 1.0)
    assert state.log_statistic == pytest.approx(float(logsumexp(cum + logw)))
    assert state.rejected
    assert state.ratio is not None and 1.5 < state.ratio < 2.7
    lo, hi = state.interval
    assert lo < 2.0 < hi and lo > 1.0


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_confidence_sequence_covers_the_truth() -> None:
    rng = np.random.default_rng(9)
    misses = 0
    for _ in range(200):
        test = SequentialRatioTest(alpha=0.1)
        missed = False
        for _ in range(15):
            a, b = rng.poisson(30 * 0.2 * 0.7), rng.poisson(30 * 0.8)
            s = test.update(float(a), float(b), 0.2)
            missed |= not (s.interval[0] <= 0.7 <= s.interval[1])
        misses += missed
    assert misses / 200 <= 0.1


def test_warmup_discards_cold_start() -> None:
    cold = [(30.0, 5.0, 0.1), (20.0, 5.0, 0.1)] + [(1.0, 9.0, 0.1)] * 5
    with_warmup, without = SequentialRatioTest(warmup=2), SequentialRatioTest(warmup=0)
    for a, b, s in cold:
        with_warmup.update(a, b, s)
        without.update(a, b, s)
    assert without.rejected and not with_warmup.rejected
    assert with_warmup.state().intervals == 5


def test_no_information_no_evidence() -> None:
    test = SequentialRatioTest()
    for share in (0.0, 1.0, 0.3):
        test.update(0.0, 0.0, share)
    assert test.log_statistic == pytest.approx(0.0) and test.ratio() is None


# ---- overdispersion: arms noisier than Poisson ----


def gamma_noisy_arms(
    rng: np.random.Generator, runs: int, intervals: int, events: float, share: float, cv: float, ratio: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Each arm's rate wobbles on its own, interval to interval (gamma noise with this CV), as real versions do."""
    k = 1 / cv**2
    a = rng.poisson(events * share * ratio * rng.gamma(k, 1 / k, (intervals, runs))).astype(float)
    b = rng.poisson(events * (1 - share) * rng.gamma(k, 1 / k, (intervals, runs))).astype(float)
    return a, b


def first_rejection(a: np.ndarray, b: np.ndarray, share: float, dispersion: bool, warmup: int = 2) -> np.ndarray:
    test = RatioTestBatch((a.shape[1],), alpha=0.05, warmup=warmup, dispersion=dispersion)
    first = np.full(a.shape[1], np.inf)
    for t in range(a.shape[0]):
        test.update(a[t], b[t], share)
        first = np.where(np.isinf(first) & test.rejected, t + 1, first)
    return first


def test_dispersion_estimate_recovers_beta_binomial_rho() -> None:
    from scipy import stats

    rng = np.random.default_rng(4)
    n, p, rho = 400, 0.3, 0.02
    ab = (1 - rho) / rho  # beta-binomial: rho = 1 / (alpha + beta + 1)
    a = stats.betabinom.rvs(n, p * ab, (1 - p) * ab, size=(300, 50), random_state=rng).astype(float)
    share = p / (p + (1 - p))  # theta = 1 at this share
    estimates = dispersion_estimate(a, n - a, np.full(a.shape, share))
    assert np.median(estimates) == pytest.approx(rho, rel=0.15)
    plain = rng.binomial(n, p, (300, 50)).astype(float)
    assert np.median(dispersion_estimate(plain, n - plain, np.full(plain.shape, share))) < 0.002


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
@pytest.mark.parametrize(("cv", "naive_at_least", "tempered_at_most"), [(0.1, 0.04, 0.02), (0.2, 0.3, 0.1)])
def test_overdispersed_arms_keep_the_false_alarm_rate(
    cv: float, naive_at_least: float, tempered_at_most: float
) -> None:
    """300 events a minute, each arm's rate wobbling 10% / 20% a minute. The plain binomial test reads the wobble
    as evidence; the tempered one stays near alpha (approximately: rho is estimated from the first minutes)."""
    rng = np.random.default_rng(12)
    a, b = gamma_noisy_arms(rng, 1000, 60, events=300.0, share=0.3, cv=cv)
    naive = np.isfinite(first_rejection(a, b, 0.3, dispersion=False)).mean()
    tempered = np.isfinite(first_rejection(a, b, 0.3, dispersion=True)).mean()
    assert naive >= naive_at_least
    assert tempered <= tempered_at_most


def test_overdispersion_still_finds_a_real_difference() -> None:
    rng = np.random.default_rng(13)
    a, b = gamma_noisy_arms(rng, 500, 30, events=300.0, share=0.3, cv=0.2, ratio=1.5)
    assert (first_rejection(a, b, 0.3, dispersion=True) <= 20).mean() > 0.9


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_sparse_counts_keep_the_binomial_power() -> None:
    rng = np.random.default_rng(14)
    a, b = gamma_noisy_arms(rng, 2000, 60, events=3.0, share=0.2, cv=0.1, ratio=3.0)
    plain = np.isfinite(first_rejection(a, b, 0.2, dispersion=False)).mean()
    tempered = np.isfinite(first_rejection(a, b, 0.2, dispersion=True)).mean()
    assert tempered > 0.8
    assert tempered >= plain - 0.02


# ---- oracle: numerical integration of the same mixture over scipy.stats.binom likelihoods ----


def oracle_log_mixture(data: list[tuple[int, int, float]], r0: float, max_ratio: float = 100.0) -> float:
    from scipy import integrate, stats

    def loglik(theta: float) -> float:
        total = 0.0
        for a, b, s in data:
            p = s * theta / (s * theta + 1 - s)
            total += float(stats.binom.logpmf(a, a + b, p))
        return total

    base = loglik(r0)
    top = max(loglik(r0 * math.exp(u)) - base for u in np.linspace(0, math.log(max_ratio), 200))

    def integrand(u: float) -> float:  # u = log(theta / r0), uniform on [0, log max_ratio]
        return math.exp(loglik(r0 * math.exp(u)) - base - top) / math.log(max_ratio)

    value, _ = integrate.quad(integrand, 0.0, math.log(max_ratio), limit=200, epsabs=0, epsrel=1e-10)
    return math.log(value) + top


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
@pytest.mark.parametrize(("ratio", "r0"), [(1.0, 1.0), (2.0, 1.0), (4.0, 1.5)])
def test_statistic_matches_numerical_integration_oracle(seed: int, ratio: float, r0: float) -> None:
    rng = np.random.default_rng(seed)
    data = []
    for _ in range(12):
        s = float(rng.uniform(0.05, 0.5))
        data.append((int(rng.poisson(15 * s * ratio)), int(rng.poisson(15 * (1 - s))), s))
    oracle = oracle_log_mixture(data, r0)
    fine = SequentialRatioTest(r0=r0, points=4000, dispersion=False)
    default = SequentialRatioTest(r0=r0, dispersion=False)
    for a, b, s in data:
        fine.update(a, b, s)
        default.update(a, b, s)
    assert fine.log_statistic == pytest.approx(oracle, abs=5e-3)
    assert default.log_statistic == pytest.approx(oracle, abs=0.1)  # 64-point grid: within 10% on the e-value
    threshold = math.log(20)
    if abs(oracle - threshold) > 0.1:
        assert default.rejected == (oracle >= threshold)


# ---- oracle: savvi, a published implementation of Lindon et al.'s anytime-valid multinomial test ----


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
@pytest.mark.parametrize(("share", "ratio", "k"), [(0.25, 1.0, 100.0), (0.2, 1.6, 100.0), (0.5, 2.0, 20.0)])
def test_mixture_matches_savvi_with_its_prior(share: float, ratio: float, k: float) -> None:
    """savvi's Multinomial test (Lindon, Ham, Tingley and Bojinov 2022) mixes the binomial likelihood ratio over a
    Beta(k s, k (1 - s)) prior on the canary's share of events. The same prior, moved onto lastgood's ratio grid
    (p = s theta / (s theta + 1 - s), dp = p (1 - p) d log theta), must give savvi's Bayes factor from lastgood's
    own increments and mixture."""
    from savvi.multinomial import Multinomial
    from scipy import stats

    from lastgood.judge.sequential import canary_probability, mixture_log_statistic

    rng = np.random.default_rng(int(ratio * 10 + k))
    log_thetas = np.linspace(math.log(1e-4), math.log(1e4), 20001)
    thetas = np.exp(log_thetas)
    p = canary_probability(share, thetas)
    log_weights = (
        stats.beta.logpdf(p, k * share, k * (1 - share)) + np.log(p * (1 - p)) + math.log(log_thetas[1] - log_thetas[0])
    )
    savvi = Multinomial(0.05, np.array([share, 1 - share]), k=k)
    cumulative = np.zeros(thetas.size)
    for _ in range(15):
        a = int(rng.poisson(8 * share * ratio))
        b = int(rng.poisson(8 * (1 - share)))
        savvi.update(np.array([a, b]))
        cumulative += log_lr_increment(a, b, share, thetas, 1.0)
    ours = float(mixture_log_statistic(cumulative, log_weights))
    assert ours == pytest.approx(math.log(savvi.odds), abs=1e-3)


# ---- latency inputs ----


def test_slow_counts_from_histograms() -> None:
    inf = math.inf
    canary = {0.1: 10.0, 0.25: 40.0, 0.5: 80.0, 1.0: 95.0, inf: 100.0}
    baseline = {0.1: 300.0, 0.25: 700.0, 0.5: 880.0, 1.0: 990.0, inf: 1000.0}
    assert histogram_threshold(baseline, 0.5) == 0.25
    assert histogram_threshold(baseline, 0.99) == 1.0
    assert slow_counts(canary, baseline, 0.25) == (60.0, 300.0, 0.25)
    assert slow_counts(canary, baseline, 0.3) == (20.0, 120.0, 0.5)  # moved up to the next bucket bound
    assert slow_counts(canary, baseline, 5.0) == (0.0, 0.0, inf)


def test_slow_counts_from_cloudwatch() -> None:
    assert slow_count_from_percentile_rank(1000, 90.0) == pytest.approx(100.0)
    mu, sigma = math.log(100), 0.5
    pct = {p: math.exp(mu + sigma * z) for p, z in ((50, 0.0), (90, 1.2815515655446004), (99, 2.3263478740408408))}
    assert slow_fraction_from_percentiles(pct, pct[90]) == pytest.approx(0.10, abs=1e-6)
    assert slow_fraction_from_percentiles(pct, math.exp(mu + sigma * 1.6448536269514722)) == pytest.approx(
        0.05, abs=1e-6
    )
    assert slow_fraction_from_percentiles(pct, 50.0) > 0.9


# ---- the judge ----


def interval(canary_err: float, base_err: float, slow: tuple[float, float] = (10.0, 90.0)) -> CanaryInterval:
    return CanaryInterval(
        canary_requests=100,
        baseline_requests=900,
        canary_errors=canary_err,
        baseline_errors=base_err,
        canary_slow={"p50": slow[0] * 5, "p90": slow[0], "p99": slow[0] / 10},
        baseline_slow={"p50": slow[1] * 5, "p90": slow[1], "p99": slow[1] / 10},
    )


def test_judge_rolls_back_a_bad_canary() -> None:
    judge = CanaryJudge()
    states = [judge.observe(interval(10, 9)).state for _ in range(8)]
    assert states[0] == "continue" and states[-1] == "rollback"
    verdict = judge.verdict()
    assert verdict.metric == "errors" and verdict.ratio is not None and verdict.ratio > 3
    assert verdict.threshold == pytest.approx(math.log(40))  # alpha 0.05 split over two metrics
    assert verdict.fires_rollback and "errors" in verdict.detail()


def test_judge_says_not_the_cause_when_both_are_equally_bad() -> None:
    judge = CanaryJudge()
    verdicts = [judge.observe(interval(30, 270), absolute_firing=True) for _ in range(10)]
    assert {v.state for v in verdicts} == {"not-the-cause"}
    assert verdicts[-1].to_dict()["evidence"]["errors"]["streams"]["errors"]["ratio"] == pytest.approx(1.0, rel=0.1)


def test_judge_rolls_back_on_latency() -> None:
    judge = CanaryJudge()
    for _ in range(10):
        verdict = judge.observe(interval(1, 9, slow=(18.0, 90.0)))  # 90 of 100 canary requests above p50
    assert verdict.state == "rollback" and verdict.metric == "latency"
    healthy = CanaryJudge()
    for _ in range(10):
        verdict = healthy.observe(interval(1, 9))
    assert verdict.state == "continue"


def test_judge_needs_a_metric() -> None:
    with pytest.raises(ValueError):
        CanaryJudge(errors=False, latency_thresholds=())
