"""The server's reads with a big ledger: p50/p95 of the dashboard's pages and the main API reads.

Seeds a ledger with 10,000 rollbacks (4 steps each) and 100,000 audit-chained events for the shop app, starts
`lastgood server` on it as its own process (as a team runs it), and times sequential GETs with one keep-alive
client, on SQLite and on PostgreSQL. Goal: p95 < 100 ms for every read.

    .venv/bin/python bench/server.py                        # SQLite, and PostgreSQL on a throwaway cluster
    .venv/bin/python bench/server.py --rollbacks 1000 --events 10000 --requests 50   # quicker
    .venv/bin/python bench/server.py --pg postgresql+psycopg://postgres@127.0.0.1:5432/bench -o json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, delete, insert, text
from sqlalchemy.pool import NullPool

from lastgood.ledger import audit
from lastgood.ledger.db import open_ledger
from lastgood.ledger.tables import ChainHeadRow, EventRow, ReleaseRow, RollbackRow, StepRow
from lastgood.service.access import create_token
from lastgood.testing import shop
from lastgood.testing.endpoint import FAKE_CREDENTIALS, LocalEndpoint, free_port

GOAL_P95_MS = 100.0
ROOT = Path(__file__).resolve().parent.parent


def seed(url: str, rollbacks: int, events: int) -> str:
    """Fill the ledger; returns a rollback id to read."""
    ledger = open_ledger(url)
    start = datetime.now(UTC) - timedelta(days=30)  # every rollback inside the KPIs' 90 days
    with ledger.session() as session:
        releases = [
            ReleaseRow(app="shop", env=env, label=f"v{i}", recorded_at=start, recorded_by="bench")
            for env in ("staging", "prod")
            for i in range(1, 51)
        ]
        session.add_all(releases)
        session.flush()
        release_ids = {(r.env, r.label): r.id for r in releases}
    ids = [f"rb-{uuid.uuid4().hex[:10]}" for _ in range(rollbacks)]
    rows, steps = [], []
    for n, rollback_id in enumerate(ids):
        env = "prod" if n % 2 else "staging"
        at = start + timedelta(minutes=n)
        rows.append(
            {
                "id": rollback_id,
                "app": "shop",
                "env": env,
                "from_release_id": release_ids[(env, f"v{2 + n % 49}")],
                "to_release_id": release_ids[(env, f"v{1 + n % 49}")],
                "status": "succeeded",
                "partial": False,
                "reason": "bench",
                "requested_by": "bench",
                "created_at": at,
                "finished_at": at + timedelta(seconds=30),
                "approvals_needed": 0,
                "drill": False,
            }
        )
        for position, component in enumerate(("api", "worker", "api-config", "db-credentials")):
            steps.append(
                {
                    "rollback_id": rollback_id,
                    "position": position,
                    "component": component,
                    "kind": "lambda-alias",
                    "action": "update-alias",
                    "before": "version 2",
                    "after": "version 1",
                    "target": {},
                    "waits_for": [],
                    "status": "succeeded",
                    "attempts": 1,
                }
            )
    chained, previous = [], audit.GENESIS
    for n in range(events):
        entry: dict[str, Any] = {
            "app": "shop",
            "env": "prod" if n % 2 else "staging",
            "rollback_id": ids[n % len(ids)] if ids else None,
            "at": start + timedelta(seconds=n),
            "type": "step-succeeded",
            "message": f"step {n} done",
            "data": {},
            "actor": "bench",
        }
        entry["prev_hash"], entry["hash"] = previous, audit.entry_hash(previous, entry)
        previous = entry["hash"]
        chained.append(entry)
    engine = ledger.engine
    with engine.begin() as connection:
        for table, batch in ((RollbackRow, rows), (StepRow, steps), (EventRow, chained)):
            for i in range(0, len(batch), 5000):
                connection.execute(insert(table), batch[i : i + 5000])
        connection.execute(delete(ChainHeadRow))  # the migrations' genesis head
        connection.execute(insert(ChainHeadRow), [{"id": 1, "last_event_id": events, "hash": previous}])
    token = create_token(ledger, "bench", "admin", created_by="bench").token
    ledger.close()
    return token + " " + ids[-1]


def start_server(runbook: Path, url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = os.environ | {"LASTGOOD_STATE": url}
    command = [str(Path(sys.executable).parent / "lastgood"), "server", "--runbook", str(runbook), "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"the server did not start: {process.stderr.read().decode() if process.stderr else ''}")


def measure(base: str, token: str, paths: dict[str, str], requests: int) -> dict[str, dict[str, float | int]]:
    results: dict[str, dict[str, float | int]] = {}
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        for name, path in paths.items():
            first = client.get(path)
            if first.status_code != 200:
                results[name] = {"status": first.status_code}
                continue
            times = []
            for _ in range(requests):
                began = time.perf_counter()
                client.get(path).raise_for_status()
                times.append((time.perf_counter() - began) * 1000)
            times.sort()
            results[name] = {
                "status": 200,
                "p50_ms": round(statistics.median(times), 1),
                "p95_ms": round(times[int(len(times) * 0.95) - 1], 1),
            }
    return results


def run_backend(name: str, url: str, args: argparse.Namespace, endpoint: LocalEndpoint) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"lastgood-bench-server-{name}-"))
    runbook = work / "lastgood.yaml"
    runbook.write_text(shop.runbook_text(endpoint.url, url))
    began = time.perf_counter()
    token, rollback_id = seed(url, args.rollbacks, args.events).split(" ")
    seeded = time.perf_counter() - began
    process, base = start_server(runbook, url)
    try:
        paths = {
            "page: overview /": "/",
            "page: environment prod": "/apps/shop/environments/prod",
            "page: rollback": f"/rollbacks/{rollback_id}",
            "page: audit": "/audit",
            "page: kpis": "/kpis",
            "api: environment status": "/api/v1/apps/shop/environments/prod",
            "api: releases (page of 20)": "/api/v1/apps/shop/environments/prod/releases?limit=20",
            "api: rollback detail": f"/api/v1/rollbacks/{rollback_id}",
            "api: audit log (50)": "/api/v1/apps/shop/audit?limit=50",
            "api: kpis 90d": "/api/v1/apps/shop/kpis?since=90d",
        }
        return {"backend": name, "seed_seconds": round(seeded, 1), "reads": measure(base, token, paths, args.requests)}
    finally:
        process.terminate()
        process.wait(timeout=30)


def postgres_url(given: str | None) -> tuple[str, Any]:
    if given:
        return given, None
    sys.path.insert(0, str(ROOT / "tests"))
    from pg_fixture import _Cluster  # the tests' throwaway cluster, started the same way

    cluster = _Cluster()
    cluster.init()
    server = cluster.start()
    engine = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with engine.connect() as connection:
        connection.execute(text('CREATE DATABASE "bench_server"'))
    engine.dispose()
    return server.rsplit("/", 1)[0] + "/bench_server", cluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rollbacks", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200, help="timed GETs per read")
    parser.add_argument("--pg", help="a PostgreSQL URL to use [default: a throwaway cluster]")
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    parser.add_argument("-o", "--output", choices=["text", "json"], default="text")
    args = parser.parse_args()
    os.environ.update(FAKE_CREDENTIALS)
    endpoint = LocalEndpoint().start()
    cluster = None
    try:
        runs = []
        with tempfile.TemporaryDirectory() as directory:
            runs.append(run_backend("sqlite", f"sqlite:///{directory}/ledger.db", args, endpoint))
        if not args.no_pg:
            url, cluster = postgres_url(args.pg)
            runs.append(run_backend("postgresql", url, args, endpoint))
    finally:
        endpoint.stop()
        if cluster is not None:
            cluster.stop()
    if args.output == "json":
        print(json.dumps({"rollbacks": args.rollbacks, "events": args.events, "runs": runs}, indent=2))
        return
    print(f"ledger: {args.rollbacks:,} rollbacks, {args.events:,} events; {args.requests} GETs per read")
    names = list(runs[0]["reads"])
    header = f"{'read':<30}" + "".join(f"{r['backend'] + ' p50/p95 ms':>26}" for r in runs) + "  goal p95<100ms"
    print(header)
    for name in names:
        cells, met = [], True
        for run in runs:
            read = run["reads"][name]
            if read.get("status") != 200:
                cells.append(f"{'HTTP ' + str(read.get('status')):>26}")
                met = False
                continue
            cells.append(f"{read['p50_ms']:>12} / {read['p95_ms']:<11}")
            met = met and read["p95_ms"] < GOAL_P95_MS
        print(f"{name:<30}" + "".join(cells) + ("  met" if met else "  MISSED"))
    for run in runs:
        print(f"{run['backend']}: seeded in {run['seed_seconds']} s")


if __name__ == "__main__":
    main()
