"""The regimes of issue 12 for bench/detection.py: per-version wobble, volumes, missing zero counts, partial
periods, restarts, sparse traffic, and the power targets; each cell judged by lastgood's own `RateTestBatch`
(`detection.judge_counts`), vectorised over runs.

A regime is one canary deployment shape: requests a minute, the canary's share, the baseline's error rate, each
version's per-minute wobble (gamma noise with this CV on its error rate; normal noise with sd `lat_sd` on its
log-latency), an effect (errors x ratio, latency +lat_effect). Latency is log-normal (median 100 ms, sigma 0.6);
its thresholds are the baseline's previous-minute p50/p90/p99 snapped up to Prometheus-style buckets.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri
from scipy.stats import poisson

QUANTILES = (0.5, 0.9, 0.99)
BUCKET_STEP = math.log(2) / 2


@dataclass(frozen=True)
class Regime:
    rpm: float = 2000.0
    share: float = 0.1
    base: float = 0.005
    ratio: float = 1.0
    cv_c: float = 0.0
    cv_b: float = 0.0
    lat_sd_c: float = 0.0
    lat_sd_b: float = 0.0
    lat_effect: float = 0.0
    short: float = 0.0  # the canary's requests and errors this much short each period; latency samples complete


@dataclass
class Counts:
    err_c: np.ndarray
    req_c: np.ndarray
    err_b: np.ndarray
    req_b: np.ndarray
    slow_c: np.ndarray  # (R, Q, T)
    n_c: np.ndarray
    slow_b: np.ndarray
    n_b: np.ndarray
    null_canary_errors: np.ndarray  # (R,) expected canary errors over the run at the baseline rate


def _wobble(rng: np.random.Generator, cv: float, shape: tuple[int, int]) -> np.ndarray | float:
    if cv <= 0:
        return 1.0
    k = 1 / cv**2
    return np.asarray(rng.gamma(k, 1 / k, shape))


def draw(rng: np.random.Generator, runs: int, minutes: int, g: Regime) -> Counts:
    shape = (runs, minutes)
    req_c = rng.poisson(g.rpm * g.share, shape)
    req_b = rng.poisson(g.rpm * (1 - g.share), shape)
    p_c = np.clip(g.base * g.ratio * _wobble(rng, g.cv_c, shape), 0, 1)
    p_b = np.clip(g.base * _wobble(rng, g.cv_b, shape), 0, 1)
    err_c = rng.binomial(req_c, p_c)
    err_b = rng.binomial(req_b, p_b)
    mu, sigma = math.log(100.0), 0.6
    mu_b = mu + rng.normal(0, 1, shape) * g.lat_sd_b
    mu_c = mu + rng.normal(0, 1, shape) * g.lat_sd_c + math.log1p(g.lat_effect)
    prev = np.concatenate([mu_b[:, :1], mu_b[:, :-1]], axis=1)
    slow_c = np.empty((runs, len(QUANTILES), minutes))
    slow_b = np.empty_like(slow_c)
    for i, q in enumerate(QUANTILES):
        thr = np.ceil((prev + sigma * float(ndtri(q))) / BUCKET_STEP) * BUCKET_STEP
        slow_c[:, i] = rng.binomial(req_c, 1 - ndtr((thr - mu_c) / sigma))
        slow_b[:, i] = rng.binomial(req_b, 1 - ndtr((thr - mu_b) / sigma))
    seen_c, seen_err_c = req_c, err_c
    if g.short:
        seen_c = rng.binomial(req_c, 1 - g.short)
        seen_err_c = rng.binomial(err_c, 1 - g.short)
    null = (g.rpm * g.share * g.base * minutes) * np.ones(runs)
    f = np.asarray
    return Counts(
        f(seen_err_c, float), f(seen_c, float), f(err_b, float), f(req_b, float),
        slow_c, f(req_c, float), slow_b, f(req_b, float), null,
    )  # fmt: skip


def oracle(null_errors: np.ndarray, ratio: float, alpha: float) -> float:
    """A fixed-horizon test that knows the baseline rate and sees the canary's whole run of errors (Neyman-Pearson
    for Poisson counts, randomised at the boundary): no level-alpha test detects more on these runs."""
    mean = np.maximum(null_errors, 1e-9)
    k = poisson.isf(alpha, mean)
    gamma = np.clip((alpha - poisson.sf(k, mean)) / np.maximum(poisson.pmf(k, mean), 1e-300), 0, 1)
    return float(np.mean(poisson.sf(k, ratio * mean) + gamma * poisson.pmf(k, ratio * mean)))


Judge = Callable[..., np.ndarray]


def first(rejected: np.ndarray) -> np.ndarray:
    return np.where(rejected.any(axis=1), rejected.argmax(axis=1) + 1.0, np.inf)


def run_regimes(judge: Judge, rng: np.random.Generator, runs: int, bad_runs: int, alpha: float) -> dict[str, Any]:
    """Every cell of the issue's regimes; returns {section: {row: value}} and the targets."""
    T = 60

    def good(g: Regime, n: int = runs, **kw: Any) -> float:
        c = draw(rng, n, T, g)
        latency = kw.pop("latency", True)
        fed = kw.pop("fed", None)
        slow = (c.slow_c, c.n_c, c.slow_b, c.n_b) if latency else (None, None, None, None)
        fed_mask = fed(c) if fed is not None else None
        rej = judge(c.err_c, c.req_c, c.err_b, c.req_b, *slow, alpha, fed=fed_mask, **kw)
        return float(rej.any(axis=1).mean())

    out: dict[str, Any] = {"validity": {}, "latency_wobble": {}, "missing": {}, "partial": {}, "restarts": {}}
    wobbles = {"none": (0.0, 0.0), "canary 0.7": (0.7, 0.0), "baseline 0.7": (0.0, 0.7), "both 0.3": (0.3, 0.3)}
    wobbles["both 0.7"] = (0.7, 0.7)
    for rpm in (100, 2000, 20000, 100000):
        for base in (0.005, 0.02):
            row = {}
            for name, (cc, cb) in wobbles.items():
                g = Regime(rpm=rpm, base=base, cv_c=cc, cv_b=cb, lat_sd_c=cc / 7, lat_sd_b=cb / 7)
                row[name] = good(g)
            out["validity"][f"{rpm} req/min, {base * 100:g}% errors"] = row
    for name, (sc, sb) in {"canary": (0.1, 0.0), "baseline": (0.0, 0.1), "both": (0.1, 0.1)}.items():
        out["latency_wobble"][f"log-latency wobble sd 0.1, {name}, 2000 req/min"] = good(
            Regime(lat_sd_c=sc, lat_sd_b=sb)
        )
    # CloudWatch publishes no datapoint for a minute whose error Sum is 0: zero (lastgood's default) vs skip.
    for base in (0.001, 0.005):
        g = Regime(base=base, cv_c=0.2, cv_b=0.2)
        out["missing"][f"{base * 100:g}% errors, missing: zero (default)"] = good(g)
        skip = good(g, fed=lambda c: (c.err_c > 0) & (c.err_b > 0))
        out["missing"][f"{base * 100:g}% errors, missing: skip (the old feed)"] = skip
    out["partial"]["canary requests and errors 10% short, latency samples complete"] = good(Regime(short=0.1))
    g = Regime(cv_c=0.3, cv_b=0.3, lat_sd_c=0.05, lat_sd_b=0.05)
    out["restarts"]["no restart"] = good(g)
    out["restarts"]["restart every 5 min, judge kept in the ledger"] = good(g, restart_every=5, keep_state=True)
    out["restarts"]["restart every 5 min, a fresh judge each time"] = good(g, restart_every=5, keep_state=False)

    def bad(g: Regime, minutes: int = T) -> tuple[np.ndarray, Counts]:
        c = draw(rng, bad_runs, minutes, g)
        return first(judge(c.err_c, c.req_c, c.err_b, c.req_b, c.slow_c, c.n_c, c.slow_b, c.n_b, alpha)), c

    power: dict[str, Any] = {}
    d3, _ = bad(Regime(ratio=3.0))
    d10, _ = bad(Regime(ratio=10.0))
    dl, _ = bad(Regime(lat_effect=0.5))
    power["errors x3, 2000 req/min, 10% canary, 0.5% errors: detected within 15 min"] = float((d3 <= 15).mean())
    power["errors x10, same: median minutes to detection"] = float(np.median(d10))
    power["latency +50%, same: detected within 10 min"] = float((dl <= 10).mean())
    wob3, _ = bad(replace(Regime(ratio=3.0), cv_c=0.3, cv_b=0.3))
    power["(info) errors x3 with wobble CV 0.3 on both: detected within 15 min"] = float((wob3 <= 15).mean())
    out["power"] = power
    sparse: dict[str, Any] = {}
    for share, rpm in ((0.01, 300.0), (0.01, 1000.0), (0.05, 300.0)):
        ds, cs = bad(Regime(rpm=rpm, share=share, base=0.02, ratio=3.0))
        detected = float(np.isfinite(ds).mean())
        bound = oracle(cs.null_canary_errors, 3.0, alpha / 2)
        sparse[f"errors x3, {share * 100:g}% canary of {rpm:g} req/min, 2% errors, 60 min"] = (detected, bound)
    out["sparse"] = sparse
    return out


def targets(out: dict[str, Any], alpha: float) -> dict[str, tuple[bool | None, str]]:
    cells = [v for row in out["validity"].values() for v in row.values()]
    worst = max(cells)
    t: dict[str, tuple[bool | None, str]] = {
        f"validity: false rollbacks <= alpha ({alpha:g}) in every volume x wobble cell": (
            worst <= alpha,
            f"worst {worst * 100:.2f}% of {len(cells)} cells",
        ),
    }
    for k, v in out["latency_wobble"].items():
        t[f"validity, {k}: <= alpha"] = (v <= alpha, f"{v * 100:.2f}%")
    for k, v in out["missing"].items():
        met = v <= alpha if "default" in k else None
        t[f"{'' if met is not None else '(info) '}zero-count minutes without datapoints, {k}: <= alpha"] = (
            met,
            f"{v * 100:.2f}%",
        )
    for k, v in out["partial"].items():
        t[f"partial periods, {k}: <= alpha"] = (v <= alpha, f"{v * 100:.2f}%")
    for k, v in out["restarts"].items():
        met = v <= alpha if "fresh" not in k else None
        t[f"{'' if met is not None else '(info) '}restarts, {k}: <= alpha"] = (met, f"{v * 100:.2f}%")
    p = out["power"]
    key3, key10, keyl = list(p)[:3]
    t[f"power, {key3} > 95%"] = (p[key3] > 0.95, f"{p[key3] * 100:.1f}%")
    t[f"power, {key10} <= 4"] = (p[key10] <= 4, f"{p[key10]:g} min")
    t[f"power, {keyl} > 90%"] = (p[keyl] > 0.9, f"{p[keyl] * 100:.1f}%")
    for k, v in list(p.items())[3:]:
        t[k] = (None, f"{v * 100:.1f}%")
    for k, (detected, bound) in out["sparse"].items():
        met = detected * 1.5 >= bound if bound >= 0.8 else None
        label = f"sparse, {k}: within 1.5x of the oracle" if met is not None else f"(info) sparse, {k} (oracle < 80%)"
        t[label] = (met, f"{detected * 100:.1f}% vs oracle {bound * 100:.1f}%")
    return t


def print_tables(out: dict[str, Any]) -> None:
    print("REGIMES (good releases unless said; the whole judge: errors and latency, alpha split over both)")
    cols = list(next(iter(out["validity"].values())))
    print(f"  {'false rollbacks, wobble CV ->':30s}" + "".join(f"{c:>14s}" for c in cols))
    for label, row in out["validity"].items():
        print(f"  {label:30s}" + "".join(f"{v * 100:13.2f}%" for v in row.values()))
    for section in ("latency_wobble", "missing", "partial", "restarts"):
        for k, v in out[section].items():
            print(f"  {section}: {k}: {v * 100:.2f}%")
    for k, v in out["power"].items():
        print(f"  power: {k}: {v * 100:.1f}%" if v <= 1 else f"  power: {k}: {v:g}")
    for k, (detected, bound) in out["sparse"].items():
        print(f"  sparse: {k}: {detected * 100:.1f}% (oracle {bound * 100:.1f}%)")
    print()
