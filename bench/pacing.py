"""Rolling back 1,000 Lambda aliases against Lambda's real quota: how close to the paced minimum, and no failures?

AWS answers Lambda's control plane about 15 requests a second per account and region and refuses the rest
(429). This puts `lastgood.testing.throttle.ThrottlingProxy` (a token bucket of 15 a second, a second's burst,
429 ThrottlingException beyond) in front of moto's server (its own process), creates N functions with versions
1 and 2 behind alias `live`, records r1 (on 1) and r2 (on 2) directly against moto, then times, as a whole
process, `lastgood rollback bench --yes --parallel 16 -o json` through the proxy with the file's
`aws.rate_limits: {lambda: 15}` (the default on AWS's own endpoints; a local endpoint is not paced unless the
file says so).

The paced minimum is the calls the proxy let through during the rollback (its plan, applies and verifications)
divided by 15: no client can do the same calls faster. Goal: the rollback within 10% of it
(ratio <= 1.10) with zero failed steps, printed twice: the whole process (interpreter start-up included, which
a loaded machine stretches), and the span from the rollback's first call to its last as the proxy saw them.
`--compare N` also runs the same rollback of N aliases unpaced (`rate_limits: {lambda: 0}`) to show what pacing
saves: throttles, retries, failed steps.

    .venv/bin/python bench/pacing.py                   # N=1000 (the rollback: 3.5 minutes at 3 calls an alias)
    .venv/bin/python bench/pacing.py --sizes 200 --compare 200 -o json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import yaml

from lastgood.aws.clients import AwsClients
from lastgood.config.models import AwsSettings
from lastgood.testing import shop
from lastgood.testing.endpoint import FAKE_CREDENTIALS, free_port
from lastgood.testing.throttle import ThrottlingProxy

REGION = "us-east-1"
ENV = "bench"
QUOTA = 15.0  # Lambda's control plane, requests a second
GOAL = 1.10
T = TypeVar("T")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parallel_map(fn: Callable[[str], T], items: Sequence[str], workers: int = 16) -> list[T]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def child_environment(home: Path) -> dict[str, str]:
    """Fake credentials and no user AWS config: nothing real can be reached from the bench."""
    scrubbed = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "LASTGOOD_STATE")
    env = {k: v for k, v in os.environ.items() if k not in scrubbed and not k.startswith("AWS_ENDPOINT_URL")}
    env.update(FAKE_CREDENTIALS)
    env.update(
        AWS_CONFIG_FILE=str(home / "aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        LASTGOOD_USER="bench",
    )
    return env


@contextmanager
def moto_server(env: dict[str, str], workdir: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (workdir / "moto.log").open("w") as server_log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=server_log,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                    break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    if time.monotonic() > deadline or process.poll() is not None:
                        reason = (workdir / "moto.log").read_text()[-2000:]
                        raise SystemExit(f"moto's server did not start: {reason}") from None
                    time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)


def reset(url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST", data=b""), timeout=30)


def build(aws: AwsClients, n: int) -> list[str]:
    """N functions with versions 1 and 2, alias `live` on 1."""
    names = [f"paced-fn{i:04d}" for i in range(n)]
    role = shop._role(aws)
    parallel_map(lambda name: shop.create_function(aws, name, role), names)
    parallel_map(lambda name: shop.publish_new_version(aws, name, "r2"), names)
    return names


def write_file(path: Path, endpoint: str, names: Sequence[str], rate: float | None) -> None:
    aws: dict[str, Any] = {"region": REGION, "endpoint_url": endpoint}
    if rate is not None:
        aws["rate_limits"] = {"lambda": rate}
    runbook = {
        "app": "bench",
        "state": "sqlite:///state.db",
        "environments": {ENV: {"aws": aws, "protected": False}},
        "components": [{"name": n, "kind": "lambda-alias", "function": n, "alias": "live"} for n in names],
    }
    path.write_text(yaml.safe_dump(runbook))


def lastgood(args: Sequence[str], workdir: Path, env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    tool = [str(Path(sys.executable).parent / "lastgood")]
    if os.environ.get("PACING_PROFILE") and args[0] == "rollback":
        tool = [sys.executable, "-m", "cProfile", "-o", os.environ["PACING_PROFILE"], tool[0]]
    started = time.perf_counter()
    done = subprocess.run([*tool, *args, "-o", "json"], cwd=workdir, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    try:
        result = json.loads(done.stdout)
    except json.JSONDecodeError:
        result = {"status": f"exit {done.returncode}", "stderr": done.stderr[-2000:]}
    return seconds, result


def run(n: int, rate: float | None, moto: str, env: dict[str, str]) -> dict[str, Any]:
    """One rollback of N aliases through the throttling proxy; `rate`: the file's lambda rate (0: unpaced)."""
    reset(moto)
    direct = AwsClients(AwsSettings(region=REGION, endpoint_url=moto))
    log(f"N={n}: creating {n} functions on moto")
    names = build(direct, n)
    with tempfile.TemporaryDirectory() as directory, ThrottlingProxy(moto, {"lambda": QUOTA}) as proxy:
        workdir = Path(directory)
        write_file(workdir / "record.yaml", moto, names, None)  # records straight to moto: not what is timed
        write_file(workdir / "lastgood.yaml", proxy.url, names, rate)
        for label, version in (("r1", "1"), ("r2", "2")):
            if version == "2":
                parallel_map(lambda name: shop.shift_alias(direct, name, "2", None, 0.0), names)
            _, recorded = lastgood(["release", "record", ENV, "--version", label, "-f", "record.yaml"], workdir, env)
            if recorded.get("label") != label:
                raise SystemExit(f"recording {label} failed: {json.dumps(recorded)[:2000]}")
        proxy.reset_counts()
        log(f"N={n}: rolling back through the proxy ({'paced at ' + str(rate) if rate else 'unpaced'})")
        args = ["rollback", ENV, "--yes", "--parallel", "16", "-f", "lastgood.yaml"]
        seconds, result = lastgood(args, workdir, env)
        forwarded, throttled, span = proxy.forwarded["lambda"], proxy.throttled["lambda"], proxy.span("lambda")
    lam = direct.client("lambda")
    wrong = [m for m in names if lam.get_alias(FunctionName=m, Name="live")["FunctionVersion"] != "1"]
    minimum = forwarded / QUOTA
    return {
        "n": n,
        "rate_limit": rate,
        "status": result.get("status"),
        "failed_steps": len(result.get("failed", [])) + len(result.get("not_started", [])),
        "aliases_not_moved": len(wrong),
        "seconds": round(seconds, 1),
        "engine_seconds": round(float(result.get("seconds") or 0.0), 1),  # the executor's own, in the process
        "calls": forwarded,
        "calls_per_alias": round(forwarded / n, 2),
        "throttled": throttled,
        "paced_minimum_seconds": round(minimum, 1),
        "ratio": round(seconds / minimum, 3) if minimum else None,
        # The first call to the last: the rollback without the interpreter's start-up (which a loaded machine
        # stretches: issue 13's goal 1) and the ledger's last writes.
        "calls_span_seconds": round(span, 1),
        "span_ratio": round(span / minimum, 3) if minimum else None,
    }


def print_rows(rows: list[dict[str, Any]]) -> None:
    columns = (
        ("n", "aliases"),
        ("rate_limit", "rate"),
        ("status", "status"),
        ("failed_steps", "failed"),
        ("aliases_not_moved", "not moved"),
        ("calls", "calls"),
        ("calls_per_alias", "calls/alias"),
        ("throttled", "429s"),
        ("paced_minimum_seconds", "min s"),
        ("engine_seconds", "engine s"),
        ("seconds", "took s"),
        ("ratio", "ratio"),
        ("calls_span_seconds", "span s"),
        ("span_ratio", "span ratio"),
    )
    print("".join(f"{title:>12}" for _, title in columns))
    for row in rows:
        print("".join(f"{row[key]!s:>12}" for key, _ in columns))
    for row in rows:
        if row["rate_limit"]:
            for key, what in (("ratio", "whole process"), ("span_ratio", "first call to last")):
                met = row[key] is not None and row[key] <= GOAL and row["failed_steps"] == 0
                print(
                    f"goal at N={row['n']} ({what}): within {GOAL:.2f}x of the paced minimum with zero failed "
                    f"steps: {row[key]}x, {row['failed_steps']} failed ({'met' if met else 'missed'})"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000])
    parser.add_argument("--compare", type=int, default=0, help="also roll back this many aliases unpaced")
    parser.add_argument("-o", "--output", choices=["text", "json"], default="text")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as home:
        env = child_environment(Path(home))
        os.environ.update(FAKE_CREDENTIALS)
        with moto_server(env, Path(home)) as moto:
            rows += [run(n, QUOTA, moto, env) for n in args.sizes]
            if args.compare:
                rows.append(run(args.compare, 0, moto, env))
    if args.output == "json":
        print(json.dumps(rows, indent=2))
    else:
        print_rows(rows)


if __name__ == "__main__":
    main()
