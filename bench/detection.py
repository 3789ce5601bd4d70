"""Detection benchmark: the runbooks' fixed rules, a Kayenta-style Mann-Whitney judge and lastgood's canary judge
on the same synthetic canary deployments.

Each run is one deployment watched for --minutes minutes (1-minute intervals): Poisson traffic with daily
seasonality and per-minute jitter, canary share 1-50%, baseline error rate 0.1-2%, log-normal latencies,
arm-specific overdispersion (per-minute gamma noise on each arm's error rate, normal noise on each arm's log
latency), and shared incidents (a dependency failing: error rate x3-x30 and latency x1.5-x3 on both versions
for 3-15 minutes) in a quarter of the runs. Good releases change nothing; bad ones multiply the canary's error
rate (1.5x-50x) or its latency (+20% to +300%: the whole distribution, the tail only (p99 up, p50 unchanged), or
ramping linearly to the full effect over 15 minutes).

Judges (each watches both error rate and latency):
- fixed:    canary error rate > 5% for 5 consecutive minutes, or canary p99 > 2x the service's normal p99 for 5
            consecutive minutes (the runbooks' rules; they do not look at the baseline);
- kayenta:  every 5 minutes, a one-sided Mann-Whitney test of the canary's per-minute error rates and p99s
            against the baseline's since the start, at 98% confidence (Kayenta's default), fail if any metric
            is "high" (score < 75 with two metrics);
- lastgood: `lastgood.judge.canary` semantics, vectorised: mixture sequential test on error counts and on counts
            of requests above the baseline's previous-minute p50/p90/p99 (snapped to Prometheus-style buckets),
            alpha 0.05 split over the two metrics, warm-up 2 minutes, R0 = --r0. A fixed rule firing without the
            sequential test rejecting is `not-the-cause` (an alert), not a rollback.

    .venv/bin/python bench/detection.py                      # 10000 good runs, 500 bad runs per effect
    .venv/bin/python bench/detection.py --runs 4000 --seed 7 -o json
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from regimes import print_tables, run_regimes
from regimes import targets as regime_targets
from scipy.special import ndtr, ndtri
from scipy.stats import mannwhitneyu, poisson

from lastgood.judge.rates import RateTestBatch, latency_prior
from lastgood.judge.sequential import logsumexp

Z99 = float(ndtri(0.99))
QUANTILES = (0.5, 0.9, 0.99)
BUCKET_STEP = math.log(2) / 2  # Prometheus-style buckets every x1.41


@dataclass
class Effect:
    family: str  # none | errors | latency
    size: float  # error ratio, or latency increase (0.5 = +50%)
    shape: str = "whole"  # whole | tail | ramp (latency)

    @property
    def label(self) -> str:
        if self.family == "errors":
            return f"errors x{self.size:g}"
        if self.family == "latency":
            return f"latency +{self.size * 100:.0f}% {self.shape}"
        return "good"


@dataclass
class Traces:
    req_c: np.ndarray  # (R, T) canary requests
    req_b: np.ndarray
    err_c: np.ndarray
    err_b: np.ndarray
    slow_c: np.ndarray  # (R, Q, T) requests above the baseline-derived thresholds
    slow_b: np.ndarray
    p99_c: np.ndarray  # (R, T) per-minute sample p99 (ms), nan when no requests
    p99_b: np.ndarray
    slo_p99: np.ndarray  # (R,) the fixed rule's latency limit
    excess_bad: np.ndarray  # (R, T) bad canary requests attributable to the release in each minute
    incident: np.ndarray  # (R,) a shared incident happened
    expected_canary_errors: np.ndarray  # (R,) canary errors over the horizon at the baseline rate (information)
    null_canary_errors: np.ndarray  # (R,) the same, incidents included: the canary's errors were it as good


def simulate(rng: np.random.Generator, runs: int, minutes: int, effect: Effect) -> Traces:
    R, T = runs, minutes
    t = np.arange(T)[None, :]
    traffic = np.exp(rng.uniform(math.log(300), math.log(6000), (R, 1)))  # requests per minute at the mean
    phase = rng.uniform(0, 1440, (R, 1))
    season = 1 + 0.5 * np.sin(2 * np.pi * (t + phase) / 1440)
    jitter = np.exp(rng.normal(0, 0.1, (R, T)))
    rate = traffic * season * jitter
    share = np.exp(rng.uniform(math.log(0.01), math.log(0.5), (R, 1)))
    req_c = rng.poisson(rate * share).astype(float)
    req_b = rng.poisson(rate * (1 - share)).astype(float)

    # Shared incidents: both versions, same multiplier.
    incident = rng.random(R) < 0.25
    start = rng.integers(0, T - 5, R)
    length = rng.integers(3, 16, R)
    in_incident = incident[:, None] & (t >= start[:, None]) & (t < (start + length)[:, None])
    err_mult = np.where(in_incident, np.exp(rng.uniform(math.log(3), math.log(30), (R, 1))), 1.0)
    lat_shift = np.where(in_incident, rng.uniform(math.log(1.5), math.log(3), (R, 1)), 0.0)

    # Errors: baseline rate, daily seasonality, arm-specific overdispersion (gamma, CV 0-70% per run and version).
    base_err = np.exp(rng.uniform(math.log(0.001), math.log(0.02), (R, 1))) * (
        1 + 0.2 * np.sin(2 * np.pi * (t + phase) / 1440)
    )

    def od(shape: tuple[int, int]) -> np.ndarray:
        k = 1 / np.maximum(rng.uniform(0, 0.7, (shape[0], 1)), 1e-3) ** 2
        return np.asarray(rng.gamma(k, 1 / k, shape))

    ramp = np.minimum((t + 1) / 15, 1.0)
    ratio = effect.size if effect.family == "errors" else 1.0
    e_b = np.clip(base_err * err_mult, 0, 1)
    e_c = np.clip(base_err * ratio * err_mult, 0, 1)
    err_b = rng.binomial(req_b.astype(np.int64), np.clip(e_b * od((R, T)), 0, 1)).astype(float)
    err_c = rng.binomial(req_c.astype(np.int64), np.clip(e_c * od((R, T)), 0, 1)).astype(float)

    # Latency: log-normal, mu with seasonality, per-arm per-minute noise (sd 0-0.1 per run and version), shared
    # incident shift.
    mu0 = np.log(rng.uniform(50, 300, (R, 1)))
    sigma = rng.uniform(0.4, 0.8, (R, 1))
    mu_t = mu0 + 0.1 * np.sin(2 * np.pi * (t + phase) / 1440) + lat_shift
    mu_b = mu_t + rng.normal(0, 1, (R, T)) * rng.uniform(0, 0.1, (R, 1))
    mu_c = mu_t + rng.normal(0, 1, (R, T)) * rng.uniform(0, 0.1, (R, 1))
    sigma_c = np.broadcast_to(sigma, (R, T)).copy()
    if effect.family == "latency":
        grow = math.log1p(effect.size)
        if effect.shape == "whole":
            mu_c = mu_c + grow
        elif effect.shape == "ramp":
            mu_c = mu_c + grow * ramp
        elif effect.shape == "tail":
            sigma_c = sigma_c + grow / Z99  # p99 up by the effect, p50 unchanged
    sigma_b = np.broadcast_to(sigma, (R, T))

    # Thresholds: the baseline's previous-minute quantiles (its sample quantile ~ the true one), snapped up to a
    # bucket bound; the first minute uses the minute itself (it is in the warm-up anyway).
    prev_mu = np.concatenate([mu_b[:, :1], mu_b[:, :-1]], axis=1)
    slow_c = np.empty((R, len(QUANTILES), T))
    slow_b = np.empty((R, len(QUANTILES), T))
    for i, q in enumerate(QUANTILES):
        log_thr = prev_mu + sigma_b * float(ndtri(q))
        log_thr = np.ceil(log_thr / BUCKET_STEP) * BUCKET_STEP
        p_c = 1 - ndtr((log_thr - mu_c) / sigma_c)
        p_b = 1 - ndtr((log_thr - mu_b) / sigma_b)
        slow_c[:, i] = rng.binomial(req_c.astype(np.int64), p_c)
        slow_b[:, i] = rng.binomial(req_b.astype(np.int64), p_b)

    def sample_p99(mu: np.ndarray, sig: np.ndarray, n: np.ndarray) -> np.ndarray:
        nn = np.maximum(n, 1)
        sd = sig * np.sqrt(0.99 * 0.01 / nn) / (np.exp(-(Z99**2) / 2) / math.sqrt(2 * math.pi))
        out = np.exp(mu + sig * Z99 + np.minimum(sd, 1.0) * rng.standard_normal(mu.shape))
        return np.where(n > 0, out, np.nan)

    p99_c = sample_p99(mu_c, sigma_c, req_c)
    p99_b = sample_p99(mu_b, sigma_b, req_b)
    slo = 2 * np.exp(mu0[:, 0] + sigma[:, 0] * Z99)

    if effect.family == "errors":
        excess = req_c * np.clip(e_c - e_b, 0, None)
    elif effect.family == "latency":
        thr = mu_b + sigma_b * Z99
        excess = req_c * np.clip((1 - ndtr((thr - mu_c) / sigma_c)) - 0.01, 0, None)
    else:
        excess = np.zeros((R, T))
    info = (rate * share * base_err).sum(axis=1)
    null = (rate * share * e_b).sum(axis=1)
    return Traces(req_c, req_b, err_c, err_b, slow_c, slow_b, p99_c, p99_b, slo, excess, incident, info, null)


def oracle_power(null_errors: np.ndarray, ratio: float, alpha: float) -> float:
    """An upper bound on any level-alpha test's detection rate: a fixed-horizon test that knows the baseline rate
    exactly and sees the canary's error count over the whole run (Neyman-Pearson for Poisson counts: reject when
    the count reaches the (1 - alpha) quantile; randomised at the boundary, so it is exactly level alpha).
    It ignores the per-minute overdispersion, which only makes detection harder."""
    mean = np.maximum(null_errors, 1e-9)
    k = poisson.isf(alpha, mean)  # P(X > k) <= alpha under the null
    tail0 = poisson.sf(k, mean)
    gamma = np.clip((alpha - tail0) / np.maximum(poisson.pmf(k, mean), 1e-300), 0, 1)
    return float(np.mean(poisson.sf(k, ratio * mean) + gamma * poisson.pmf(k, ratio * mean)))


def first_true(flags: np.ndarray) -> np.ndarray:
    """Minute (1-based) of the first True along the last axis; inf when never."""
    any_ = flags.any(axis=-1)
    idx = flags.argmax(axis=-1).astype(float) + 1
    return np.where(any_, idx, np.inf)


def consecutive(flags: np.ndarray, n: int) -> np.ndarray:
    run = np.zeros(flags.shape[0])
    out = np.zeros(flags.shape, dtype=bool)
    for j in range(flags.shape[1]):
        run = np.where(flags[:, j], run + 1, 0)
        out[:, j] = run >= n
    return out


def judge_fixed(tr: Traces) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(tr.req_c > 0, tr.err_c / np.maximum(tr.req_c, 1), 0.0)
    err = consecutive(rate > 0.05, 5)
    lat = consecutive(np.nan_to_num(tr.p99_c, nan=0.0) > tr.slo_p99[:, None], 5)
    return err | lat  # (R, T): the rule is firing at the end of minute t


def judge_kayenta(tr: Traces, every: int = 5, confidence: float = 0.98) -> np.ndarray:
    R, T = tr.req_c.shape
    fired = np.zeros((R, T), dtype=bool)
    rate_c = tr.err_c / np.maximum(tr.req_c, 1)
    rate_b = tr.err_b / np.maximum(tr.req_b, 1)
    p99_c = np.nan_to_num(tr.p99_c, nan=0.0)
    p99_b = np.nan_to_num(tr.p99_b, nan=0.0)
    for end in range(every, T + 1, every):
        bad = np.zeros(R, dtype=bool)
        for c, b in ((rate_c, rate_b), (p99_c, p99_b)):
            with np.errstate(invalid="ignore", divide="ignore"):
                p = mannwhitneyu(c[:, :end], b[:, :end], alternative="greater", axis=1, method="asymptotic").pvalue
            bad |= np.nan_to_num(p, nan=1.0) < 1 - confidence
        fired[:, end - 1 :] |= bad[:, None]
    return fired


def judge_lastgood(tr: Traces, alpha: float, r0: float, warmup: int) -> np.ndarray:
    """Rejected (R, T): lastgood's own test (`RateTestBatch`), one stream per run and metric, as CanaryJudge."""
    return judge_counts(
        tr.err_c, tr.req_c, tr.err_b, tr.req_b, tr.slow_c, tr.req_c, tr.slow_b, tr.req_b, alpha, r0, warmup
    )


def judge_counts(
    err_c: np.ndarray,
    req_c: np.ndarray,
    err_b: np.ndarray,
    req_b: np.ndarray,
    slow_c: np.ndarray | None,
    n_c: np.ndarray | None,
    slow_b: np.ndarray | None,
    n_b: np.ndarray | None,
    alpha: float,
    r0: float = 1.0,
    warmup: int = 2,
    restart_every: int = 0,
    keep_state: bool = True,
    fed: np.ndarray | None = None,
) -> np.ndarray:
    """Rejected (R, T) of the judge (errors, and latency when slow counts are given: alpha split over both) on
    counts (R, T) and slow counts (R, Q, T) over the latency metric's samples (R, T). `restart_every`: a new
    process every so many periods, continuing the judge from its saved state (`keep_state`, the ledger) or
    starting a fresh one (each process its own judge). `fed` (R, T): the periods the feed hands over."""
    R, T = req_c.shape
    metrics = 2 if slow_c is not None else 1
    a_metric = alpha / metrics

    def fresh() -> tuple[RateTestBatch, RateTestBatch | None]:
        shape = (R, slow_c.shape[1]) if slow_c is not None else (R, 0)
        priors = np.asarray([latency_prior(f"p{q * 100:g}") for q in QUANTILES])  # per threshold, as CanaryJudge
        lat = RateTestBatch(shape, a_metric, r0, warmup, priors) if slow_c is not None else None
        return RateTestBatch((R,), a_metric, r0, warmup), lat

    errors, latency = fresh()
    rejected = np.zeros((R, T), dtype=bool)
    gone = np.zeros(R, dtype=bool)  # rejected by an earlier process (its rollback was filed)
    for j in range(T):
        if restart_every and j and j % restart_every == 0:
            if keep_state:
                errors = RateTestBatch.from_state(errors.to_state())
                latency = RateTestBatch.from_state(latency.to_state()) if latency is not None else None
            else:
                errors, latency = fresh()
        use = np.ones(R, dtype=bool) if fed is None else fed[:, j]
        e_c, e_b = np.where(use, err_c[:, j], 0.0), np.where(use, err_b[:, j], 0.0)
        q_c, q_b = np.where(use, req_c[:, j], 0.0), np.where(use, req_b[:, j], 0.0)
        errors.update(e_c, q_c, e_b, q_b)
        now = errors.rejected.copy()
        if latency is not None and slow_c is not None and slow_b is not None and n_c is not None and n_b is not None:
            s_c, s_b = np.where(use[:, None], slow_c[:, :, j], 0.0), np.where(use[:, None], slow_b[:, :, j], 0.0)
            m_c, m_b = np.where(use, n_c[:, j], 0.0)[:, None], np.where(use, n_b[:, j], 0.0)[:, None]
            latency.update(s_c, m_c, s_b, m_b)
            stat = logsumexp(latency.log_statistic(), axis=-1) - math.log(slow_c.shape[1])  # the average e-value
            now |= stat >= latency.log_threshold
        gone |= now
        rejected[:, j] = gone
    return rejected


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(c - h, 0.0), min(c + h, 1.0)


def delays(fired: np.ndarray) -> np.ndarray:
    return first_true(fired)


INFORMATIVE = 10.0  # expected canary errors over the horizon at the baseline rate


def summarise(
    d: np.ndarray, excess: np.ndarray, within: float | None = None, info: np.ndarray | None = None
) -> dict[str, Any]:
    n = d.size
    det = np.isfinite(d)
    med = float(np.median(d))  # undetected runs count as never (inf): a median of inf means < half detected
    p90 = float(np.quantile(d, 0.9)) if det.mean() >= 0.9 else math.inf
    T = excess.shape[1]
    upto = np.where(det, d, T).astype(int)
    served = np.array([excess[i, : upto[i]].sum() for i in range(n)])
    out: dict[str, Any] = {
        "runs": n,
        "detected": float(det.mean()),
        "median_delay_min": med,
        "p90_delay_min": p90,
        "median_bad_served": float(np.median(served)),
    }
    if within is not None:
        out[f"detected_within_{within:g}min"] = float((d <= within).mean())
    if info is not None:
        keep = info >= INFORMATIVE
        out["informative_runs"] = int(keep.sum())
        out["detected_informative"] = float(det[keep].mean()) if keep.any() else math.nan
    return out


def fmt(x: float, pct: bool = False) -> str:
    if pct:
        return f"{x * 100:5.1f}%"
    return "never" if not math.isfinite(x) else f"{x:g}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10000, help="good runs [10000]")
    ap.add_argument("--bad-runs", type=int, default=500, help="runs per bad effect [500]")
    ap.add_argument("--minutes", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--r0", type=float, default=1.0)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--regime-runs", type=int, default=2000, help="good runs per regime cell [2000]")
    ap.add_argument("-o", "--output", choices=["table", "json"], default="table")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    T = args.minutes

    def run_all(effect: Effect, runs: int) -> dict[str, Any]:
        tr = simulate(rng, runs, T, effect)
        fixed = judge_fixed(tr)
        kay = judge_kayenta(tr)
        lg = judge_lastgood(tr, args.alpha, args.r0, args.warmup)
        return {"traces": tr, "fixed": fixed, "kayenta": kay, "lastgood": lg}

    results: dict[str, Any] = {"config": vars(args), "good": {}, "errors": {}, "latency": {}}
    good = run_all(Effect("none", 0.0), args.runs)
    tr = good["traces"]
    for name in ("fixed", "kayenta", "lastgood"):
        fired = good[name].any(axis=1)
        k = int(fired.sum())
        lo, hi = wilson(k, args.runs)
        inc = tr.incident
        results["good"][name] = {
            "false_rollbacks": k,
            "rate": k / args.runs,
            "ci95": [lo, hi],
            "rate_with_incident": float(fired[inc].mean()) if inc.any() else 0.0,
            "rate_without_incident": float(fired[~inc].mean()) if (~inc).any() else 0.0,
        }
    # lastgood turns a fixed rule firing without a rejection into an alert: how often that happened.
    nc = (good["fixed"] & ~good["lastgood"]).any(axis=1)
    results["good"]["lastgood"]["not_the_cause_alerts"] = float(nc.mean())

    for size in (1.5, 2, 3, 5, 10, 50):
        eff = Effect("errors", size)
        res = run_all(eff, args.bad_runs)
        results["errors"][eff.label] = {
            name: summarise(delays(res[name]), res["traces"].excess_bad, info=res["traces"].expected_canary_errors)
            for name in ("fixed", "kayenta", "lastgood")
        }
        results["errors"][eff.label]["oracle_bound"] = oracle_power(
            res["traces"].null_canary_errors, size, args.alpha / 2
        )
    for size in (0.2, 0.5, 1.0, 3.0):
        for shape in ("whole", "tail", "ramp"):
            eff = Effect("latency", size, shape)
            res = run_all(eff, args.bad_runs)
            results["latency"][eff.label] = {
                name: summarise(delays(res[name]), res["traces"].excess_bad, within=10)
                for name in ("fixed", "kayenta", "lastgood")
            }

    g = results["good"]["lastgood"]
    e10 = results["errors"]["errors x10"]
    e3 = results["errors"]["errors x3"]
    speedup = e10["fixed"]["median_delay_min"] / e10["lastgood"]["median_delay_min"]
    informative = f"runs with >= {INFORMATIVE:g} expected canary errors at the baseline rate"
    # (met or None for information only, value)
    targets: dict[str, tuple[bool | None, str]] = {
        f"mixed traces: false rollbacks <= alpha ({args.alpha:g}) (good releases, incl. shared incidents)": (
            g["rate"] <= args.alpha,
            f"{g['rate'] * 100:.2f}% (95% CI {g['ci95'][0] * 100:.2f}-{g['ci95'][1] * 100:.2f}%)",
        ),
        "errors x10: median delay >= 3x sooner than '5% for 5 min'": (
            speedup >= 3,
            f"{fmt(e10['lastgood']['median_delay_min'])} vs {fmt(e10['fixed']['median_delay_min'])} min",
        ),
        "errors x3: detected in > 95% of runs": (
            e3["lastgood"]["detected"] > 0.95,
            f"{e3['lastgood']['detected'] * 100:.1f}%",
        ),
        "(info) errors x3: about the most any test at lastgood's alpha for errors could detect (oracle bound)": (
            None,
            f"{e3['oracle_bound'] * 100:.1f}%",
        ),
        f"(info) errors x3 among {informative}": (
            None,
            f"{e3['lastgood']['detected_informative'] * 100:.1f}% of {e3['lastgood']['informative_runs']}",
        ),
    }
    for k, v in results["latency"].items():
        if "+50%" in k:
            share = v["lastgood"]["detected_within_10min"]
            met = share > 0.9 if k.endswith("whole") else None
            targets[f"{'' if met is not None else '(info) '}{k}: detected within 10 min in > 90% of runs"] = (
                met,
                f"{share * 100:.1f}%",
            )
    results["regimes"] = run_regimes(judge_counts, rng, args.regime_runs, args.bad_runs, args.alpha)
    targets.update(regime_targets(results["regimes"], args.alpha))
    results["targets"] = {k: {"met": m, "value": v} for k, (m, v) in targets.items()}
    results["wall_seconds"] = time.perf_counter() - started

    if args.output == "json":
        print(json.dumps(results, indent=2, default=float))
        return 0
    print(
        f"detection benchmark: {args.runs} good runs, {args.bad_runs} bad runs/effect, {T} min each, seed {args.seed}"
    )
    print(f"lastgood: alpha {args.alpha} (split over errors and latency), R0 {args.r0}, warm-up {args.warmup} min\n")
    print("Good releases: false rollback rate (95% Wilson CI)          with incident   without")
    for name in ("fixed", "kayenta", "lastgood"):
        r = results["good"][name]
        print(
            f"  {name:9s} {r['false_rollbacks']:5d}/{args.runs:<5d} {fmt(r['rate'], True)}"
            f"  [{r['ci95'][0] * 100:.2f}%, {r['ci95'][1] * 100:.2f}%]        {fmt(r['rate_with_incident'], True)}"
            f"        {fmt(r['rate_without_incident'], True)}"
        )
    print(f"  lastgood not-the-cause alerts (fixed rule fired, no rollback): {fmt(g['not_the_cause_alerts'], True)}\n")
    for family in ("errors", "latency"):
        extra = (
            "the share detected within 10 minutes"
            if family == "latency"
            else f"the share detected among {INFORMATIVE:g}+ expected canary errors runs"
        )
        print(
            f"{family.upper()}: detected / median delay / p90 delay (min) / median bad requests served before detection"
        )
        bound = " | oracle bound" if family == "errors" else ""
        print(f"  {'effect':24s}" + "".join(f"| {n:^35s}" for n in ("fixed", "kayenta", "lastgood")) + bound)
        for label, row in results[family].items():
            cells = []
            for name in ("fixed", "kayenta", "lastgood"):
                r = row[name]
                if family == "latency":
                    w = f" {r['detected_within_10min'] * 100:4.0f}%"
                else:
                    w = f" {r['detected_informative'] * 100:4.0f}%"
                cells.append(
                    f"| {fmt(r['detected'], True)} {fmt(r['median_delay_min']):>5s} {fmt(r['p90_delay_min']):>5s}"
                    f" {r['median_bad_served']:7.0f}{w}"
                )
            tail = f"|   {row['oracle_bound'] * 100:5.1f}%" if family == "errors" else ""
            print(f"  {label:24s}" + "".join(f"{c:37s}" for c in cells) + tail)
        print(f"  (cells end with {extra})")
        if family == "errors":
            print(
                "  (oracle bound: the detection rate of a fixed-horizon test that knows the baseline rate exactly, at "
                "the same alpha; no valid test can beat it on these runs)"
            )
        print()
    print_tables(results["regimes"])
    print("Targets (lastgood):")
    for k, v in results["targets"].items():
        mark = "info" if v["met"] is None else "met" if v["met"] else "MISSED"
        print(f"  [{mark:6s}] {k}: {v['value']}")
    print(f"\nwall time {results['wall_seconds']:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
