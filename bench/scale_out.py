"""Several `lastgood server --role worker` processes on one PostgreSQL: guard throughput, cost and lag, rollbacks.

For each worker count (default 1, 2, 3), on a fresh database of a throwaway PostgreSQL cluster and a moto server
in its own process: one app with N environments (default 1,000), each with one SSM parameter and one CloudWatch
rollback trigger (a Lambda error count, period P, default 60 s), and a release recorded in each. The workers guard
them all for --seconds (default 150, at least two periods of each). Read from the ledger: the periods judged
(`guard_periods`, each claimed once), the evaluation lag (the verdict's time, `finished_at`, minus the period's
end: how late a period was judged), evaluations per second over the measured span; from /proc: the workers' CPU
time per evaluation. Then an API replica takes K rollback requests (default 24, one per environment of a second
app, each moving one alias back) and the rollbacks per minute are timed until all succeeded. Printed side by side;
the goal: lag p95 < 5 s at 1,000 environments and 60 s periods. `load` is the machine's 1-minute load average at
the start and the end of the measured span (everything on the machine, not only the bench).

    .venv/bin/python bench/scale_out.py                                   # about 12 minutes
    .venv/bin/python bench/scale_out.py --environments 300 --period 20 --seconds 60 --workers 1,2
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))

from guard_scale import moto_server
from sqlalchemy import select

from lastgood.aws.clients import AwsClients
from lastgood.config.models import AwsSettings
from lastgood.ledger import store
from lastgood.ledger.tables import GuardPeriodRow
from lastgood.server.apps import Apps
from lastgood.service import releases
from lastgood.service.access import create_token
from lastgood.testing import shop
from lastgood.testing.endpoint import FAKE_CREDENTIALS, free_port
from pg_fixture import _admin, _throwaway_cluster

LAG_GOAL = 5.0
TICKS = os.sysconf("SC_CLK_TCK")


def fleet_runbook(n: int, endpoint: str, state: str, period: int, watch: int) -> str:
    aws = f"{{aws: {{region: us-east-1, endpoint_url: '{endpoint}'}}}}"
    envs = "".join(f"  e{i:04d}: {aws}\n" for i in range(n))
    return (
        f"app: fleet\nstate: {state}\nguard: {{watch: {watch}s}}\nenvironments:\n{envs}"
        "components:\n  - {name: config, kind: ssm-parameter, parameters: ['/fleet/{env}/']}\n"
        "triggers:\n  - name: errors\n"
        "    cloudwatch: {namespace: AWS/Lambda, metric: Errors, stat: Sum,"
        " dimensions: {FunctionName: 'fleet-{env}'}}\n"
        f"    when: '> 5'\n    for: {period}s\n    period: {period}s\n    action: rollback\n"
    )


def rollback_runbook(k: int, endpoint: str, state: str) -> str:
    aws = f"{{aws: {{region: us-east-1, endpoint_url: '{endpoint}'}}}}"
    envs = "".join(f"  r{i:03d}: {aws}\n" for i in range(k))
    return (
        f"app: rb\nstate: {state}\nenvironments:\n{envs}"
        "components:\n  - {name: api, kind: lambda-alias, function: 'rb-{env}', alias: live}\n"
    )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def start_server(role: str, directory: Path, state: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = (directory / f"{role}-{port}.log").open("wb")
    command = [sys.executable, "-m", "lastgood", "server", "--role", role, "--runbook", str(directory)]
    command += ["--state", state, "--port", str(port), "--insecure-cookies"]
    process = subprocess.Popen(command, env={**os.environ, **FAKE_CREDENTIALS}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/readyz", timeout=2).status == 200:
                return process, url
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"the {role} replica did not become ready: {directory}")


def setup_aws(aws: AwsClients, n: int, k: int) -> None:
    ssm = aws.client("ssm")
    for i in range(n):
        ssm.put_parameter(Name=f"/fleet/e{i:04d}/level", Value="1", Type="String", Overwrite=True)
    role = shop._role(aws)
    for i in range(k):
        shop.create_function(aws, f"rb-r{i:03d}", role)


def record_all(apps: Apps, app: str, envs: list[str], label: str) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda env: releases.record(apps.env_context(app, env, "bench"), label), envs))


def run_one(workers: int, args: argparse.Namespace, endpoint: str, server_url: str, root: Path) -> dict[str, Any]:
    database = f"bench_scale_{workers}_{os.getpid()}"
    _admin(server_url, f'CREATE DATABASE "{database}"')
    state = server_url.rsplit("/", 1)[0] + f"/{database}"
    directory = root / f"w{workers}"
    directory.mkdir()
    watch = args.seconds + 4 * args.period + 120
    (directory / "fleet.yaml").write_text(fleet_runbook(args.environments, endpoint, state, args.period, watch))
    (directory / "rb.yaml").write_text(rollback_runbook(args.rollbacks, endpoint, state))
    apps = Apps.load([directory], state)
    aws = AwsClients(AwsSettings(region="us-east-1", endpoint_url=endpoint))
    with ExitStack() as stack:
        processes = []
        for _ in range(workers):
            process, _url = start_server("worker", directory, state)
            stack.callback(process.kill)
            processes.append(process)
        record_all(apps, "fleet", [f"e{i:04d}" for i in range(args.environments)], "r1")
        time.sleep(2 * args.period)  # every watch started and judged its first periods
        cpu_before = sum(cpu_seconds(p.pid) for p in processes)
        since, load_before = datetime.now(UTC), os.getloadavg()[0]
        time.sleep(args.seconds)
        until, load_after = datetime.now(UTC), os.getloadavg()[0]
        cpu = sum(cpu_seconds(p.pid) for p in processes) - cpu_before
        time.sleep(args.period)  # the periods due before `until` get judged, however late
        lags, per_worker = judged(apps, since, until)
        api, api_url = start_server("api", directory, state)
        stack.callback(api.kill)
        per_minute = rollbacks_per_minute(apps, aws, api_url, args.rollbacks)
    evaluations = len(lags)
    return {
        "workers": workers,
        "environments": args.environments,
        "period_s": args.period,
        "evaluations": evaluations,
        "evaluations_per_s": round(evaluations / (until - since).total_seconds(), 1),
        "expected_per_s": round(args.environments / args.period, 1),
        "cpu_ms_per_evaluation": round(1000 * cpu / evaluations, 1) if evaluations else None,
        "lag_p50_s": round(statistics.median(lags), 2) if lags else None,
        "lag_p95_s": round(quantile(lags, 0.95), 2) if lags else None,
        "lag_max_s": round(max(lags), 2) if lags else None,
        "per_worker": per_worker,
        "rollbacks_per_minute": per_minute,
        "load_1min": [round(load_before, 1), round(load_after, 1)],  # the machine's, all its users
    }


def judged(apps: Apps, since: datetime, until: datetime) -> tuple[list[float], dict[str, int]]:
    with apps.ledger.session() as session:
        rows = session.scalars(
            select(GuardPeriodRow).where(GuardPeriodRow.period_end >= since, GuardPeriodRow.period_end < until)
        ).all()
    lags = [(row.finished_at - row.period_end).total_seconds() for row in rows if row.finished_at is not None]
    per_worker: dict[str, int] = {}
    for row in rows:
        per_worker[row.claimed_by] = per_worker.get(row.claimed_by, 0) + 1
    return lags, per_worker


def rollbacks_per_minute(apps: Apps, aws: AwsClients, api_url: str, k: int) -> float:
    envs = [f"r{i:03d}" for i in range(k)]
    record_all(apps, "rb", envs, "v1")
    for env in envs:
        shop.shift_alias(aws, f"rb-{env}", shop.publish_new_version(aws, f"rb-{env}", "v2"), None, 0)
    record_all(apps, "rb", envs, "v2")
    token = create_token(apps.ledger, "bench", "operator", created_by="bench").token
    started = time.monotonic()
    ids = []
    for env in envs:
        request = urllib.request.Request(
            f"{api_url}/api/v1/apps/rb/environments/{env}/rollbacks",
            data=json.dumps({"reason": "bench"}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=120) as answer:
            ids.append(json.load(answer)["id"])
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        with apps.ledger.session() as session:
            statuses = [store.get_rollback(session, rollback_id).status for rollback_id in ids]
        if all(status in ("succeeded", "failed") for status in statuses):
            break
        time.sleep(0.5)
    elapsed = time.monotonic() - started
    return round(60 * sum(s == "succeeded" for s in statuses) / elapsed, 1)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--environments", type=int, default=1000)
    parser.add_argument("--period", type=int, default=60)
    parser.add_argument("--seconds", type=int, default=150)
    parser.add_argument("--workers", default="1,2,3")
    parser.add_argument("--rollbacks", type=int, default=24)
    parser.add_argument("-o", "--output", choices=["text", "json"], default="text")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: the servers and the cluster stop too
    os.environ.update(FAKE_CREDENTIALS)
    results = []
    with tempfile.TemporaryDirectory(prefix="lastgood-scale-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        endpoint = stack.enter_context(moto_server(root))
        cluster, server_url = _throwaway_cluster()
        stack.callback(cluster.stop)
        aws = AwsClients(AwsSettings(region="us-east-1", endpoint_url=endpoint))
        setup_aws(aws, args.environments, args.rollbacks)
        for workers in [int(w) for w in args.workers.split(",")]:
            results.append(run_one(workers, args, endpoint, server_url, root))
            print(json.dumps(results[-1]), file=sys.stderr)
    report(results, args)


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    if args.output == "json":
        print(json.dumps(results, indent=2))
        return
    base = results[0]["evaluations_per_s"] or 1
    print(f"{args.environments} environments, {args.period} s periods, {args.seconds} s measured per row")
    print("workers  eval/s (needed)  x1    CPU ms/eval  lag p50  p95    max    rollbacks/min  load     judged by")
    for r in results:
        split = "/".join(str(v) for v in sorted(r["per_worker"].values(), reverse=True))
        load = "-".join(f"{v:g}" for v in r["load_1min"])
        print(
            f"{r['workers']:>7}  {r['evaluations_per_s']:>6} ({r['expected_per_s']:>6})  "
            f"{r['evaluations_per_s'] / base:>4.2f}  {r['cpu_ms_per_evaluation']!s:>11}  {r['lag_p50_s']!s:>7}  "
            f"{r['lag_p95_s']!s:>5}  {r['lag_max_s']!s:>5}  {r['rollbacks_per_minute']:>13}  {load:<7}  {split}"
        )
    lags = [r["lag_p95_s"] for r in results]
    worst = None if None in lags else max(lags)
    verdict = "not measured (a row judged no period)" if worst is None else "met" if worst < LAG_GOAL else "missed"
    print(f"goal lag p95 < {LAG_GOAL:g} s at 1,000 environments, 60 s periods: {verdict} (worst p95 {worst} s)")


if __name__ == "__main__":
    main()
