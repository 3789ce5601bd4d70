"""What holding an environment costs, and whether it ever lets two operations in at once.

For each ledger (SQLite always; PostgreSQL with --pg URL) this prints, side by side:

1. claim + let go, uncontended: p50 / p95 milliseconds over --rounds rounds (one process);
2. contention: --workers processes each try --tries times to claim the same environment, hold it for
   --hold-ms, and let go; every holder writes its claim into a shared table while it holds, and the run counts
   the rounds where two holders overlapped (must be 0), the claims granted and refused, and the refusal latency.

    .venv/bin/python bench/holds.py
    .venv/bin/python bench/holds.py --pg postgresql+psycopg://postgres@127.0.0.1:5432/bench -o json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from lastgood.aws.clients import AwsClients
from lastgood.config.loader import parse_runbook
from lastgood.domain.actor import Actor
from lastgood.errors import EnvironmentHeld
from lastgood.ledger.db import open_ledger
from lastgood.runtime.context import EnvContext
from lastgood.runtime.lease import acquire

RUNBOOK = "app: bench\nenvironments:\n  prod: {}\ncomponents: []\n"


def context(url: str, name: str) -> EnvContext:
    return EnvContext(parse_runbook(RUNBOOK), "prod", open_ledger(url), AwsClients(), actor=Actor(name=name))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def uncontended(url: str, rounds: int) -> dict[str, float]:
    ctx = context(url, "solo")
    times = []
    for i in range(rounds):
        started = time.perf_counter()
        acquire(ctx, "rollback", f"rb-{i}").release()
        times.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": statistics.median(times), "p95_ms": percentile(times, 0.95)}


def worker(url: str, name: str, tries: int, hold_ms: float, out: Any) -> None:
    ctx = context(url, name)
    granted, refused, refusal_ms, overlaps = 0, 0, [], 0
    for i in range(tries):
        started = time.perf_counter()
        try:
            lease = acquire(ctx, "rollback", f"{name}-{i}")
        except EnvironmentHeld:
            refused += 1
            refusal_ms.append((time.perf_counter() - started) * 1000)
            time.sleep(hold_ms / 2000)
            continue
        granted += 1
        with ctx.ledger.engine.begin() as connection:  # a holder marks itself in; any other mark is an overlap
            connection.execute(text("INSERT INTO bench_inside (who) VALUES (:who)"), {"who": name})
            overlaps += connection.execute(text("SELECT count(*) FROM bench_inside")).scalar_one() - 1
        time.sleep(hold_ms / 1000)
        with ctx.ledger.engine.begin() as connection:
            connection.execute(text("DELETE FROM bench_inside WHERE who = :who"), {"who": name})
        lease.release()
    out.put({"granted": granted, "refused": refused, "refusal_ms": refusal_ms, "overlaps": overlaps})


def contended(url: str, workers: int, tries: int, hold_ms: float) -> dict[str, Any]:
    ledger = open_ledger(url)
    with ledger.engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS bench_inside"))
        connection.execute(text("CREATE TABLE bench_inside (who VARCHAR(64))"))
    queue: Any = multiprocessing.Queue()
    processes = [
        multiprocessing.Process(target=worker, args=(url, f"w{i}", tries, hold_ms, queue)) for i in range(workers)
    ]
    for process in processes:
        process.start()
    results = [queue.get(timeout=600) for _ in processes]
    for process in processes:
        process.join()
    refusals = [ms for r in results for ms in r["refusal_ms"]]
    return {
        "granted": sum(r["granted"] for r in results),
        "refused": sum(r["refused"] for r in results),
        "overlaps": sum(r["overlaps"] for r in results),
        "refusal_p50_ms": statistics.median(refusals) if refusals else None,
        "refusal_p95_ms": percentile(refusals, 0.95) if refusals else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", help="a PostgreSQL URL (an empty database) to measure beside SQLite")
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--tries", type=int, default=50)
    parser.add_argument("--hold-ms", type=float, default=5.0)
    parser.add_argument("-o", "--output", choices=["text", "json"], default="text")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        urls = {"sqlite": f"sqlite:///{Path(directory) / 'holds.db'}"}
        if args.pg:
            urls["postgresql"] = args.pg
        report = {
            name: {
                "uncontended": uncontended(url, args.rounds),
                "contended": contended(url, args.workers, args.tries, args.hold_ms),
            }
            for name, url in urls.items()
        }
    if args.output == "json":
        print(json.dumps(report, indent=2))
        return
    print(f"{args.workers} processes x {args.tries} claims each, holding {args.hold_ms:g} ms")
    header = ("claim+let go p50", 18), ("p95", 8), ("granted", 9), ("refused", 9), ("overlaps", 10), ("refusal p50", 13)
    print(f"{'ledger':<12}" + "".join(f"{title:>{width}}" for title, width in header))
    for name, row in report.items():
        u, c = row["uncontended"], row["contended"]
        refusal = "-" if c["refusal_p50_ms"] is None else f"{c['refusal_p50_ms']:.1f} ms"
        print(
            f"{name:<12}{u['p50_ms']:>15.1f} ms{u['p95_ms']:>6.1f}{c['granted']:>9}{c['refused']:>9}"
            f"{c['overlaps']:>10}{refusal:>13}"
        )


if __name__ == "__main__":
    main()
