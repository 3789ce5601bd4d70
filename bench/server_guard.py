"""One `lastgood server` process guarding 200 environments at 60 s periods: its CPU (% of one core) and RSS.

Sets up, on a moto server in its own process: one app with N environments (default 200), each with one Lambda
alias and the runbooks' error-rate trigger (Errors / Invocations > 5% for 3 minutes, 60 s periods) and a watch
window longer than the run. A writer in this process puts each function's Invocations and Errors for every
minute (one PutMetricData call per 500 values). A release is recorded in every environment from this process
(as the CLI would), then `lastgood server` is started as its own process on the same ledger and must find them
all; its CPU time (utime + stime from /proc) and RSS are sampled every 5 s for --seconds of real time (default
240: four periods of every environment). Figures come from the server's own /metrics: environments watched,
periods judged, lag. The goals: under 10% of one core and under 300 MiB.

    .venv/bin/python bench/server_guard.py                      # 200 environments, 4 minutes (about 5 in all)
    .venv/bin/python bench/server_guard.py --environments 50 --seconds 120 -o json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).parent))

from guard_scale import moto_server

from lastgood.aws.clients import AwsClients
from lastgood.config.loader import load_runbook
from lastgood.config.models import AwsSettings
from lastgood.domain.actor import Actor
from lastgood.service import releases
from lastgood.service.session import open_environment
from lastgood.testing import shop
from lastgood.testing.endpoint import FAKE_CREDENTIALS, free_port

CPU_GOAL = 10.0  # % of one core
RSS_GOAL = 300.0  # MiB
TICKS = os.sysconf("SC_CLK_TCK")


def env_name(i: int) -> str:
    return f"e{i:03d}"


def runbook_text(n: int, endpoint: str, state: str) -> str:
    envs = "".join(f"  {env_name(i)}: {{aws: {{region: us-east-1, endpoint_url: '{endpoint}'}}}}\n" for i in range(n))
    return (
        f"app: fleet\nstate: {state}\nguard: {{watch: 2h}}\nenvironments:\n{envs}"
        "components:\n  - {name: api, kind: lambda-alias, function: 'fleet-api-{env}', alias: live}\n"
        "triggers:\n"
        "  - name: api-errors\n"
        "    cloudwatch: {namespace: AWS/Lambda, metric: Errors, dimensions: {FunctionName: 'fleet-api-{env}'}}\n"
        "    per: {namespace: AWS/Lambda, metric: Invocations, dimensions: {FunctionName: 'fleet-api-{env}'}}\n"
        '    when: "> 5%"\n    for: 3m\n    period: 1m\n    severity: critical\n    action: rollback\n'
    )


class MinuteWriter:
    """Each function's Invocations and Errors (1% errors) for the minute just ended, once a minute."""

    def __init__(self, aws: AwsClients, functions: list[str]) -> None:
        self.aws, self.functions = aws, functions
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def write(self, minute: datetime) -> None:
        data: list[dict[str, Any]] = []
        for name in self.functions:
            dims = [{"Name": "FunctionName", "Value": name}]
            data.append({"MetricName": "Invocations", "Dimensions": dims, "Timestamp": minute, "Value": 600.0})
            data.append({"MetricName": "Errors", "Dimensions": dims, "Timestamp": minute, "Value": 6.0})
        cloudwatch = self.aws.client("cloudwatch")
        for start in range(0, len(data), 500):
            cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=data[start : start + 500])

    def _loop(self) -> None:
        while not self.stop.is_set():
            now = datetime.now(UTC)
            self.write(now.replace(second=0, microsecond=0) - timedelta(minutes=1))
            self.stop.wait(60 - now.second + 1)


def proc_sample(pid: int) -> tuple[float, float]:
    """(CPU seconds used, RSS in MiB) of process `pid`."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS
    rss = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmRSS")
    )
    return cpu, rss / 1024


def scrape(url: str) -> dict[str, float]:
    """Each sample name's sum over its labels; evaluations also by result (`..._total:error`)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            sums[sample.name] = sums.get(sample.name, 0.0) + sample.value
            if "result" in sample.labels:
                key = f"{sample.name}:{sample.labels['result']}"
                sums[key] = sums.get(key, 0.0) + sample.value
    return sums


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited: {log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(f"{url}/readyz", timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the server did not get ready in 60 s")


def setup(workdir: Path, endpoint: str, n: int) -> tuple[Path, str, AwsClients, list[str]]:
    aws = AwsClients(AwsSettings(region="us-east-1", endpoint_url=endpoint))
    role = shop._role(aws)
    functions = [f"fleet-api-{env_name(i)}" for i in range(n)]
    for name in functions:
        shop.create_function(aws, name, role)
    state = f"sqlite:///{workdir / 'state.db'}"
    path = workdir / "lastgood.yaml"
    path.write_text(runbook_text(n, endpoint, state))
    return path, state, aws, functions


def record_all(path: Path, n: int) -> float:
    runbook = load_runbook(path)
    started = time.monotonic()
    for i in range(n):
        ctx = open_environment(runbook, env_name(i), Actor(name="bench", via="cli"))
        releases.record(ctx, "v1")
    return time.monotonic() - started


def run(n: int, seconds: float, workdir: Path) -> dict[str, Any]:
    with moto_server(workdir) as endpoint:
        for name, value in FAKE_CREDENTIALS.items():
            os.environ[name] = value
        path, state, aws, functions = setup(workdir, endpoint, n)
        writer = MinuteWriter(aws, functions)
        for back in (4, 3, 2):  # history, so that the first periods judged have data
            writer.write(datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=back))
        writer.thread.start()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = workdir / "server.log"
        command = [sys.executable, "-m", "lastgood", "server", "--runbook", str(path), "--state", state]
        server = subprocess.Popen(
            [*command, "--port", str(port)], stdout=log.open("w"), stderr=subprocess.STDOUT, env=dict(os.environ)
        )
        try:
            wait_ready(url, server, log)
            recording = record_all(path, n)
            return measure(server.pid, url, n, seconds) | {"record_seconds": round(recording, 1)}
        finally:
            writer.stop.set()
            server.terminate()
            server.wait(30)


def measure(pid: int, url: str, n: int, seconds: float) -> dict[str, Any]:
    recorded = time.monotonic()
    deadline = recorded + 60
    while scrape(url).get("lastgood_guard_watched_environments", 0) < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"the server watched {scrape(url).get('lastgood_guard_watched_environments')} of {n}")
        time.sleep(0.5)
    found = time.monotonic()
    cpu0, _ = proc_sample(pid)
    wall0 = time.monotonic()
    rss: list[float] = []
    while time.monotonic() - wall0 < seconds:
        time.sleep(5)
        rss.append(proc_sample(pid)[1])
    cpu1, rss_end = proc_sample(pid)
    wall = time.monotonic() - wall0
    figures = scrape(url)
    periods = figures.get("lastgood_guard_evaluations_total", 0.0)
    lag_count = figures.get("lastgood_guard_lag_seconds_count", 0.0)
    lag_sum = figures.get("lastgood_guard_lag_seconds_sum", 0.0)
    cpu_percent = 100 * (cpu1 - cpu0) / wall
    return {
        "environments": n,
        "seconds": round(wall, 1),
        "all_watched_after_recording_seconds": round(found - recorded, 1),
        "cpu_percent_of_one_core": round(cpu_percent, 2),
        "rss_mib_max": round(max([*rss, rss_end]), 1),
        "rss_mib_end": round(rss_end, 1),
        "periods_judged": int(periods),
        "periods_in_error": int(figures.get("lastgood_guard_evaluations_total:error", 0.0)),
        "mean_lag_seconds": round(lag_sum / lag_count, 3) if lag_count else None,
        "mean_evaluation_seconds": round(
            figures.get("lastgood_guard_evaluation_seconds_sum", 0.0)
            / max(1.0, figures.get("lastgood_guard_evaluation_seconds_count", 0.0)),
            4,
        ),
        "cpu_goal_met": cpu_percent < CPU_GOAL,
        "rss_goal_met": max([*rss, rss_end]) < RSS_GOAL,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--environments", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=240.0, help="real time measured (default: 4 periods)")
    parser.add_argument("-o", "--output", choices=["text", "json"], default="text")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lastgood-server-guard-") as folder:
        result = run(args.environments, args.seconds, Path(folder))
    if args.output == "json":
        print(json.dumps(result, indent=2))
        return
    print(f"one server guarding {result['environments']} environments at 60 s periods for {result['seconds']:g} s")
    print(
        f"  periods judged   {result['periods_judged']}  (mean lag {result['mean_lag_seconds']} s, "
        f"mean evaluation {result['mean_evaluation_seconds']} s)"
    )
    cpu, rss = result["cpu_percent_of_one_core"], result["rss_mib_max"]
    cpu_verdict = "met" if result["cpu_goal_met"] else "MISSED"
    rss_verdict = "met" if result["rss_goal_met"] else "MISSED"
    print(f"  CPU              {cpu:.2f}% of one core   goal < {CPU_GOAL:g}%: {cpu_verdict}")
    print(f"  RSS (max)        {rss:.1f} MiB           goal < {RSS_GOAL:g} MiB: {rss_verdict}")
    print(f"  periods in error {result['periods_in_error']}")
    print(
        f"  (recording {result['environments']} releases from another process took {result['record_seconds']} s; "
        f"all watched {result['all_watched_after_recording_seconds']} s after)"
    )


if __name__ == "__main__":
    main()
