"""Does the ledger's size change what a command costs? 1,000, 10,000 and 100,000 releases, side by side.

For each backend (SQLite, and PostgreSQL on a throwaway cluster) and each size N this seeds a fresh ledger with
bulk inserts (not through the CLI): N releases of the `shop` app's prod (3 components each, one recorded every
3 hours, every 50th marked bad), one audit-chained `release-recorded` event per release, and a rollback (3
steps, 4 events) for every 10 releases. The newest 90 days then hold the same 72 rollbacks at every N (with 2
hours, 1,000 releases spanned 83 days: fewer), so the KPIs read the same window. Then it times, in process,
through the service layer the CLI calls:

- `release record` (the duplicate-label check, the write, the chain's append), on the fake kind;
- `plan` (the live and the target release, the fake kind's reads);
- `show` (a rollback's steps and timeline);
- `kpis --since 90d` (uncached: the KPIs' cache is cleared before each call);
- `release list` (the default page of 20);
- `audit verify`: events a second, and its peak of Python memory (tracemalloc, in its own run).

The commands are timed in paired rounds: every command once per round on every size (the sizes' order
reversed every other round), so a busy spell of a shared machine falls on all sizes alike. Each figure is the
median of --repeat rounds (wall, and CPU of this process: on PostgreSQL the client's only); the ratio is the
largest N's over the smallest. It ends with one verdict line per goal and backend, met or missed with its
figure: the four commands' median ratio within 1.2, audit verify >= 100,000 events/s (wall, on the longest log;
the shortest's rate beside it), its peak memory the same at every size.

    .venv/bin/python bench/ledger_scale.py                          # SQLite and PostgreSQL, 1k / 10k / 100k
    .venv/bin/python bench/ledger_scale.py --sizes 1000 10000 --no-pg --repeat 5
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, delete, insert, text
from sqlalchemy.pool import NullPool

from lastgood.config.loader import load_runbook
from lastgood.domain.actor import Actor
from lastgood.domain.state import state_hash
from lastgood.kinds.fake import FakeWorld, installed
from lastgood.ledger import audit
from lastgood.ledger.db import open_ledger
from lastgood.ledger.tables import (
    ChainHeadRow,
    EnvironmentRow,
    EventRow,
    ReleaseComponentRow,
    ReleaseRow,
    RollbackRow,
    StepRow,
)
from lastgood.service import audit as audit_service
from lastgood.service import kpis as kpis_service
from lastgood.service import releases
from lastgood.service.rollbacks import preview_plan
from lastgood.service.session import forget_ledgers, open_app, open_environment
from lastgood.service.views import rollback_detail

ROOT = Path(__file__).resolve().parent.parent
APP, ENV = "shop", "prod"
COMPONENTS = ("api", "worker", "config")
SPACING = timedelta(hours=3)  # 1,000 releases span 125 days: the 90 days' window is as full at every N
RATIO_GOAL = 1.2
VERIFY_GOAL = 100_000.0
BATCH = 5000


# ------------------------------------------------------------------------------------------------- seeding


def _event(n: int, at: datetime, type_: str, message: str, rollback_id: str | None) -> dict[str, Any]:
    return {
        "id": n,
        "app": APP,
        "env": ENV,
        "rollback_id": rollback_id,
        "at": at,
        "type": type_,
        "message": message,
        "data": {"n": n},
        "actor": "bench",
    }


def seed(url: str, n: int, now: datetime) -> str:
    """N releases, N/10 rollbacks, their chained events; returns the newest rollback's id."""
    ledger = open_ledger(url)
    releases_rows, components, events, rollbacks, steps = [], [], [], [], []
    first = now - SPACING * n
    for i in range(1, n + 1):
        at = first + SPACING * i
        label = f"v{i}"
        bad = i % 50 == 0
        releases_rows.append(
            {
                "id": i,
                "app": APP,
                "env": ENV,
                "label": label,
                "recorded_at": at,
                "recorded_by": "bench",
                "bad": bad,
                "bad_reason": "bench: errors" if bad else None,
                "marked_bad_at": at if bad else None,
            }
        )
        for name in COMPONENTS:
            state = {"value": label}
            components.append(
                {"release_id": i, "component": name, "kind": "fake", "state": state, "state_hash": state_hash(state)}
            )
        events.append(_event(len(events) + 1, at, "release-recorded", f"release {label} recorded (3 components)", None))
        if i % 10 == 0 and i > 1:
            rollback_id = f"rb-{i:08d}"
            rollbacks.append(
                {
                    "id": rollback_id,
                    "app": APP,
                    "env": ENV,
                    "from_release_id": i,
                    "to_release_id": i - 1,
                    "status": "succeeded",
                    "partial": False,
                    "reason": "bench",
                    "requested_by": "bench",
                    "created_at": at + timedelta(minutes=10),
                    "detected_at": at + timedelta(minutes=5),
                    "started_at": at + timedelta(minutes=10),
                    "finished_at": at + timedelta(minutes=11),
                    "approvals_needed": 0,
                    "drill": False,
                }
            )
            for position, name in enumerate(COMPONENTS):
                steps.append(
                    {
                        "rollback_id": rollback_id,
                        "position": position,
                        "component": name,
                        "kind": "fake",
                        "action": "set",
                        "before": f"value v{i}",
                        "after": f"value v{i - 1}",
                        "target": {"value": f"v{i - 1}"},
                        "waits_for": [],
                        "status": "succeeded",
                        "attempts": 1,
                        "started_at": at + timedelta(minutes=10),
                        "finished_at": at + timedelta(minutes=11),
                    }
                )
            for what in ("rollback-started", "step-succeeded", "step-succeeded", "rollback-succeeded"):
                events.append(
                    _event(len(events) + 1, at + timedelta(minutes=10), what, f"{rollback_id}: {what}", rollback_id)
                )
    previous = audit.GENESIS
    for entry in events:
        entry["prev_hash"], entry["hash"] = previous, audit.entry_hash(previous, entry)
        previous = entry["hash"]
    with ledger.engine.begin() as connection:
        for table, rows in (
            (ReleaseRow, releases_rows),
            (ReleaseComponentRow, components),
            (RollbackRow, rollbacks),
            (StepRow, steps),
            (EventRow, events),
        ):
            for start in range(0, len(rows), BATCH):
                connection.execute(insert(table), rows[start : start + BATCH])
        connection.execute(insert(EnvironmentRow), [{"app": APP, "env": ENV, "live_release_id": n}])
        connection.execute(delete(ChainHeadRow))
        connection.execute(insert(ChainHeadRow), [{"id": 1, "last_event_id": len(events), "hash": previous}])
        if url.startswith("postgresql"):  # explicit ids: move the sequences past them, as the ORM would need
            for table in ("releases", "release_components", "steps", "events"):
                connection.execute(text(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))"))
    if url.startswith("postgresql"):
        with ledger.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))
    ledger.close()
    return str(rollbacks[-1]["id"])


# ------------------------------------------------------------------------------------------------- timing

GOALS = ("release record", "plan", "show", "kpis --since 90d")  # the issue's: within 20% at every size
OPERATIONS = (*GOALS, "release list")


@contextmanager
def runbook_file(url: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "lastgood.yaml"
        components = ", ".join(f"{{name: {c}, kind: fake}}" for c in COMPONENTS)
        path.write_text(
            f"app: {APP}\nstate: {json.dumps(url)}\nenvironments: {{{ENV}: {{}}}}\ncomponents: [{components}]\n"
        )
        yield path


def operations(path: Path, n: int, now: datetime, rollback_id: str) -> tuple[dict[str, Callable[[int], Any]], Any]:
    """The five commands on one ledger, as the CLI calls them; and the app's context for audit verify."""
    runbook, actor = load_runbook(path), Actor(name="bench")
    ctx, app_ctx = open_environment(runbook, ENV, actor), open_app(runbook, actor)
    since = now - timedelta(days=90)

    def kpis(_: int) -> None:
        kpis_service._cache.clear()
        kpis_service.kpis_report(app_ctx, None, since)

    calls: dict[str, Callable[[int], Any]] = {
        "release record": lambda i: releases.record(ctx, f"bench-{i}"),
        "plan": lambda _: preview_plan(ctx, None, None),
        "show": lambda _: rollback_detail(runbook, rollback_id),
        "kpis --since 90d": kpis,
        "release list": lambda _: releases.list_releases(ctx, 20),
    }
    return calls, app_ctx


def paired_rounds(calls: dict[int, dict[str, Callable[[int], Any]]], repeat: int) -> dict[int, dict[str, Any]]:
    """Every command once per round on every size, the sizes' order reversed every other round, after a round
    untimed (imports, caches): a busy spell of the machine falls on all sizes alike, not on one."""
    sizes = list(calls)
    wall: dict[int, dict[str, list[float]]] = {n: {op: [] for op in OPERATIONS} for n in sizes}
    cpu: dict[int, dict[str, list[float]]] = {n: {op: [] for op in OPERATIONS} for n in sizes}
    for round_ in range(-1, repeat):
        for op in OPERATIONS:
            for n in sizes if round_ % 2 else reversed(sizes):
                started, cpu_started = time.perf_counter(), time.process_time()
                calls[n][op](round_ + 1)
                if round_ >= 0:
                    wall[n][op].append((time.perf_counter() - started) * 1000)
                    cpu[n][op].append((time.process_time() - cpu_started) * 1000)
    return {
        n: {
            op: {
                "min": round(min(wall[n][op]), 2),
                "median": round(statistics.median(wall[n][op]), 2),
                "max": round(max(wall[n][op]), 2),
                # This process's CPU: on SQLite all the work, whatever else the machine runs; on PostgreSQL the
                # client's.
                "cpu_median": round(statistics.median(cpu[n][op]), 2),
            }
            for op in OPERATIONS
        }
        for n in sizes
    }


def verify_figures(ctx: Any, repeat: int) -> dict[str, float]:
    """Events a second (wall clock, the best run; and per CPU second of this process), and the peak of Python
    memory in a run of its own under tracemalloc."""
    rates, cpu_rates = [], []
    entries = 0
    for _ in range(repeat):
        started, cpu = time.perf_counter(), time.process_time()
        report = audit_service.verify(ctx)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
        if not report.ok:
            raise SystemExit(f"audit verify failed on the seeded ledger: {report.problem}")
        entries = report.entries
        rates.append(entries / seconds)
        cpu_rates.append(entries / max(cpu_seconds, 1e-9))
    gc.collect()
    tracemalloc.start()
    audit_service.verify(ctx)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "entries": entries,
        "events_per_s": round(max(rates)),
        "events_per_cpu_s": round(max(cpu_rates)),
        "peak_mib": round(peak / 2**20, 1),
    }


def run_backend(urls: Iterator[tuple[int, str]], repeat: int) -> list[dict[str, Any]]:
    """Seed every size, then time them in paired rounds, then audit verify on each."""
    now = datetime.now(UTC)
    seeded: dict[int, tuple[str, str, float]] = {}
    for n, url in urls:
        started = time.perf_counter()
        seeded[n] = (url, seed(url, n, now), round(time.perf_counter() - started, 1))
    with ExitStack() as stack:
        stack.enter_context(installed(FakeWorld({c: "v1" for c in COMPONENTS})))
        calls, app_contexts = {}, {}
        for n, (url, rollback_id, _) in seeded.items():
            calls[n], app_contexts[n] = operations(stack.enter_context(runbook_file(url)), n, now, rollback_id)
        timed = paired_rounds(calls, repeat)
        figures = [
            {"n": n, "seed_seconds": seeded[n][2], **timed[n], "audit verify": verify_figures(app_contexts[n], 3)}
            for n in seeded
        ]
    forget_ledgers()
    return figures


# ------------------------------------------------------------------------------------------------- backends


def sqlite_urls(sizes: list[int], directory: str) -> Iterator[tuple[int, str]]:
    for n in sizes:
        yield n, f"sqlite:///{directory}/ledger-{n}.db"


def postgres_server(given: str | None) -> tuple[str, Any]:
    if given:
        return given, None
    sys.path.insert(0, str(ROOT / "tests"))
    from pg_fixture import _Cluster  # the tests' throwaway cluster, started the same way

    cluster = _Cluster()
    cluster.init()
    return cluster.start(), cluster


def postgres_urls(server: str, sizes: list[int]) -> Iterator[tuple[int, str]]:
    engine = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    for n in sizes:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "ledger_{n}"'))
            connection.execute(text(f'CREATE DATABASE "ledger_{n}"'))
        yield n, server.rsplit("/", 1)[0] + f"/ledger_{n}"
    engine.dispose()


# ------------------------------------------------------------------------------------------------- report


def verdicts(backend: str, figures: list[dict[str, Any]]) -> list[str]:
    """One line per goal: met or missed, with the figure it was judged on."""
    small, large = figures[0], figures[-1]
    lines = []
    for op in GOALS:
        ratio = large[op]["median"] / small[op]["median"]
        cpu_ratio = large[op]["cpu_median"] / small[op]["cpu_median"]
        verdict = "met" if ratio <= RATIO_GOAL else "missed"
        lines.append(
            f"{backend:<11} {op:<17} {verdict:<7} median {small[op]['median']:.2f} -> {large[op]['median']:.2f} ms, "
            f"ratio {ratio:.2f} (goal <= {RATIO_GOAL}; CPU ratio {cpu_ratio:.2f})"
        )
    # Judged on the longest log, where the rate is the streaming's; on 1,400 events a run is ~10 ms and its fixed
    # cost (a transaction, the head's read) weighs: that rate is printed beside it.
    longest, shortest = large["audit verify"], small["audit verify"]
    verdict = "met" if longest["events_per_s"] >= VERIFY_GOAL else "missed"
    lines.append(
        f"{backend:<11} {'audit verify':<17} {verdict:<7} {longest['events_per_s']:,} events/s wall over "
        f"{longest['entries']:,} events (goal >= {VERIFY_GOAL:,.0f}; {longest['events_per_cpu_s']:,} per CPU second "
        f"of this process; {shortest['events_per_s']:,} over {shortest['entries']:,})"
    )
    small_mib, large_mib = small["audit verify"]["peak_mib"], large["audit verify"]["peak_mib"]
    growth = large["audit verify"]["entries"] / small["audit verify"]["entries"]
    verdict = "met" if large_mib <= small_mib * 1.5 + 0.5 else "missed"
    lines.append(
        f"{backend:<11} {'verify memory':<17} {verdict:<7} peak {small_mib} -> {large_mib} MiB for {growth:.0f}x "
        "the events (goal: constant)"
    )
    return lines


def print_table(runs: dict[str, list[dict[str, Any]]]) -> None:
    sizes = [f["n"] for f in next(iter(runs.values()))]
    columns = "".join(f"{f'{n:,}':>10}" for n in sizes)
    for backend, figures in runs.items():
        print(f"{backend}: ms, median of paired rounds (min-max of the largest), CPU ms median")
        print(f"  {'command':<18}{columns}{'ratio':>7}   {'largest min-max':<17}{columns}{'ratio':>7}")
        for op in OPERATIONS:
            wall = [f[op]["median"] for f in figures]
            cpu = [f[op]["cpu_median"] for f in figures]
            spread = f"{figures[-1][op]['min']:.1f}-{figures[-1][op]['max']:.1f}"
            print(
                f"  {op:<18}"
                + "".join(f"{v:>10.2f}" for v in wall)
                + f"{wall[-1] / wall[0]:>7.2f}   {spread:<17}"
                + "".join(f"{v:>10.2f}" for v in cpu)
                + f"{cpu[-1] / cpu[0]:>7.2f}"
            )
        for key, label in (
            ("events_per_s", "verify events/s"),
            ("events_per_cpu_s", "verify ev/CPU-s"),
            ("peak_mib", "verify peak MiB"),
            ("entries", "events"),
        ):
            print(f"  {label:<18}" + "".join(f"{f['audit verify'][key]:>10,}" for f in figures))
        print(f"  {'seed seconds':<18}" + "".join(f"{f['seed_seconds']:>10}" for f in figures))
    print(f"verdicts ({', '.join(f'{n:,}' for n in sizes)} releases; load average now {_load()}):")
    for backend, figures in runs.items():
        for line in verdicts(backend, figures):
            print("  " + line)


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=15, help="paired rounds (the median is judged)")
    parser.add_argument("--pg", help="a PostgreSQL server URL where databases may be created [default: throwaway]")
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    parser.add_argument("-o", "--output", choices=["text", "json"], default="text")
    args = parser.parse_args()
    print(f"load average before: {_load()}", file=sys.stderr)
    runs: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as directory:
        runs["sqlite"] = run_backend(sqlite_urls(args.sizes, directory), args.repeat)
    cluster = None
    if not args.no_pg:
        server, cluster = postgres_server(args.pg)
        try:
            runs["postgresql"] = run_backend(postgres_urls(server, args.sizes), args.repeat)
        finally:
            if cluster is not None:
                cluster.stop()
    if args.output == "json":
        print(json.dumps(runs, indent=2))
    else:
        print_table(runs)


if __name__ == "__main__":
    main()
