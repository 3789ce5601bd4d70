"""How fast does `lastgood rollback` move N Lambda aliases back, next to the two ways people do it by hand?

For each N (default 50 and 200) this creates N functions with versions 1 and 2 behind alias `live` on a local
moto server (its own process, so it does not share a GIL with the clients being timed), records release r1
(every alias on 1) and r2 (every alias on 2), then times, as whole processes including interpreter start-up:

1. lastgood:     `lastgood rollback bench --yes --parallel K -o json`
2. aws-cli loop: one `aws lambda update-alias ... --function-version 1` process per function, one after the
                 other (the runbooks' way)
3. bare boto3:   one Python process, one lambda client, a ThreadPoolExecutor of K workers calling update_alias

Aliases are put back on version 2 before each method, and checked to be on version 1 after it. The targets (at
N=200): aws-cli loop / lastgood >= 20, lastgood / bare boto3 <= 3.

    .venv/bin/python bench/rollback_speed.py                      # N=50 and N=200, everything in full
    .venv/bin/python bench/rollback_speed.py --sizes 200 --cli-sample 20 --output json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from lastgood.aws.clients import AwsClients
from lastgood.config.models import AwsSettings
from lastgood.testing import shop
from lastgood.testing.endpoint import FAKE_CREDENTIALS, free_port

REGION = "us-east-1"
ENV = "bench"
ALIAS = "live"
TARGET_N = 200
CLI_TARGET = 20.0  # aws-cli loop seconds / lastgood seconds, at least
BARE_TARGET = 3.0  # lastgood seconds / bare boto3 seconds, at most

# Variables that would point a child process at something other than the local endpoint and the bench's files.
_SCRUBBED = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_LAMBDA",
    "AWS_REGION",
    "AWS_CA_BUNDLE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "LASTGOOD_FILE",
    "LASTGOOD_STATE",
    "LASTGOOD_TEST_STEP_DELAY",
)

BARE_SCRIPT = '''\
"""The bare parallel way: one client, K threads, update_alias on every function."""
import sys
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config

endpoint, region, workers, version, names_file = sys.argv[1:6]
with open(names_file) as handle:
    names = handle.read().split()
client = boto3.client(
    "lambda", region_name=region, endpoint_url=endpoint, config=Config(max_pool_connections=int(workers))
)


def move(name):
    client.update_alias(FunctionName=name, Name="live", FunctionVersion=version)


with ThreadPoolExecutor(max_workers=int(workers)) as pool:
    list(pool.map(move, names))
print(len(names))
'''

T = TypeVar("T")


class BenchError(RuntimeError):
    """The benchmark could not run, or a method did not leave the aliases where it should have."""


@dataclass
class SizeResult:
    n: int
    parallel: int
    lastgood_seconds: float
    lastgood_engine_seconds: float  # lastgood's own "seconds": executor start to finish, inside the process
    cli_seconds: float
    cli_calls_timed: int
    bare_seconds: float

    @property
    def cli_extrapolated(self) -> bool:
        return self.cli_calls_timed < self.n

    @property
    def cli_over_lastgood(self) -> float:
        return self.cli_seconds / self.lastgood_seconds

    @property
    def lastgood_over_bare(self) -> float:
        return self.lastgood_seconds / self.bare_seconds

    @property
    def cli_target_met(self) -> bool:
        return self.cli_over_lastgood >= CLI_TARGET

    @property
    def bare_target_met(self) -> bool:
        return self.lastgood_over_bare <= BARE_TARGET

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            cli_extrapolated=self.cli_extrapolated,
            cli_basis=(
                f"extrapolated from {self.cli_calls_timed} calls" if self.cli_extrapolated else f"all {self.n} calls"
            ),
            cli_over_lastgood=round(self.cli_over_lastgood, 2),
            lastgood_over_bare=round(self.lastgood_over_bare, 2),
            cli_target_met=self.cli_target_met,
            bare_target_met=self.bare_target_met,
        )
        for key in ("lastgood_seconds", "lastgood_engine_seconds", "cli_seconds", "bare_seconds"):
            data[key] = round(data[key], 3)
        return data


@dataclass(frozen=True)
class Tools:
    python: str
    lastgood: str
    aws: str


# ---------------------------------------------------------------------------------------------------- helpers


def find_tools() -> Tools:
    """The interpreter running this script, and lastgood and aws from the same virtualenv (else from PATH)."""
    bindir = Path(sys.executable).parent

    def tool(name: str) -> str:
        local = bindir / name
        if local.exists():
            return str(local)
        found = shutil.which(name)
        if found is None:
            raise BenchError(f"cannot find `{name}` next to {sys.executable} or on PATH")
        return found

    return Tools(python=sys.executable, lastgood=tool("lastgood"), aws=tool("aws"))


def bench_environment(home: Path) -> dict[str, str]:
    """Fake credentials and no user AWS config: nothing real can reach, or be taken from, the local endpoint."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env.update(FAKE_CREDENTIALS)
    env.update(
        AWS_CONFIG_FILE=str(home / "aws-config"),  # absent files: no profiles, no surprises
        AWS_SHARED_CREDENTIALS_FILE=str(home / "aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_PAGER="",
        LASTGOOD_USER="bench",
    )
    return env


def parallel_map(fn: Callable[[str], T], items: Sequence[str], workers: int) -> list[T]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def failed(what: str, done: subprocess.CompletedProcess[str]) -> BenchError:
    return BenchError(f"{what} exited {done.returncode}\nstdout: {done.stdout[-2000:]}\nstderr: {done.stderr[-2000:]}")


def run_checked(args: Sequence[str], cwd: Path, env: dict[str, str], what: str) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise failed(what, done)
    return done.stdout


def timed_run(args: Sequence[str], cwd: Path, env: dict[str, str], what: str) -> tuple[float, str]:
    """Wall-clock seconds of one whole process, start-up included; its stdout. Fails loudly on a non-zero exit."""
    started = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise failed(what, done)
    return seconds, done.stdout


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------- the local endpoint


@contextmanager
def moto_server(python: str, env: dict[str, str], workdir: Path) -> Iterator[str]:
    """moto's server in its own process on a free port; yields its URL and stops it afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server_log = (workdir / "moto-server.log").open("w")
    process = subprocess.Popen(
        [python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=server_log,
    )
    try:
        wait_until_up(url, process, workdir / "moto-server.log")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        server_log.close()


def wait_until_up(url: str, process: subprocess.Popen[bytes], log_file: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"moto server exited with {process.returncode}:\n{log_file.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise BenchError(f"moto server did not answer on {url} within {timeout:.0f}s")


def reset_endpoint(url: str) -> None:
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST", data=b"")
    urllib.request.urlopen(request, timeout=30).close()


# ---------------------------------------------------------------------------------------------------- fixture


def function_names(n: int) -> list[str]:
    return [f"bench-fn{i:04d}" for i in range(n)]


def runbook(url: str, names: Sequence[str]) -> dict[str, Any]:
    return {
        "app": "bench",
        "environments": {ENV: {"aws": {"region": REGION, "endpoint_url": url}, "protected": False}},
        "components": [
            {"name": name.removeprefix("bench-"), "kind": "lambda-alias", "function": name, "alias": ALIAS}
            for name in names
        ],
    }


def move_aliases(aws: AwsClients, names: Sequence[str], version: str, workers: int) -> None:
    parallel_map(lambda name: shop.shift_alias(aws, name, version, None, 0.0), names, workers)


def expect_aliases(aws: AwsClients, names: Sequence[str], version: str, workers: int, after: str) -> None:
    """Every alias on `version` with no extra routing weight, or BenchError naming the ones that are not."""
    client = aws.client("lambda")

    def check(name: str) -> str | None:
        alias = client.get_alias(FunctionName=name, Name=ALIAS)
        weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        if alias["FunctionVersion"] != version or weights:
            return f"{name} on {alias['FunctionVersion']} {weights or ''}".rstrip()
        return None

    wrong = [problem for problem in parallel_map(check, names, workers) if problem]
    if wrong:
        shown = ", ".join(wrong[:10]) + (f" and {len(wrong) - 10} more" if len(wrong) > 10 else "")
        raise BenchError(f"after {after}: {len(wrong)} of {len(names)} aliases are not on version {version}: {shown}")


def build_fixture(aws: AwsClients, names: Sequence[str], workers: int) -> None:
    """N functions, each with versions 1 and 2, alias `live` on version 1."""
    role_arn = shop._role(aws)
    parallel_map(lambda name: shop.create_function(aws, name, role_arn), names, workers)
    versions = parallel_map(lambda name: shop.publish_new_version(aws, name, "r2"), names, workers)
    unexpected = sorted({v for v in versions if v != "2"})
    if unexpected:
        raise BenchError(f"publishing a second version gave version(s) {unexpected}, expected 2")


# ----------------------------------------------------------------------------------------------- the methods


def time_lastgood(tools: Tools, workdir: Path, env: dict[str, str], n: int, parallel: int) -> tuple[float, float]:
    args = [tools.lastgood, "rollback", ENV, "--yes", "--parallel", str(parallel), "-o", "json"]
    seconds, out = timed_run(args, workdir, env, "lastgood rollback")
    try:
        result = json.loads(out)
    except json.JSONDecodeError:
        raise BenchError(f"lastgood rollback printed no JSON: {out[-2000:]}") from None
    if result.get("status") != "succeeded" or len(result.get("done", [])) != n:
        raise BenchError(f"lastgood rollback did not roll back all {n} aliases: {json.dumps(result)[:2000]}")
    return seconds, float(result.get("seconds", 0.0))


def time_cli_loop(tools: Tools, workdir: Path, env: dict[str, str], url: str, names: Sequence[str]) -> float:
    """The runbook way: one `aws lambda update-alias` after another. Total seconds for `names`."""
    started = time.perf_counter()
    for name in names:
        args = [
            tools.aws, "lambda", "update-alias",
            "--function-name", name, "--name", ALIAS, "--function-version", "1",
            "--endpoint-url", url, "--region", REGION,
        ]  # fmt: skip
        done = subprocess.run(args, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            raise BenchError(f"aws lambda update-alias {name} exited {done.returncode}: {done.stderr[-2000:]}")
    return time.perf_counter() - started


def time_bare(tools: Tools, workdir: Path, env: dict[str, str], url: str, names: Sequence[str], parallel: int) -> float:
    script = workdir / "bare_parallel.py"
    script.write_text(BARE_SCRIPT)
    names_file = workdir / "functions.txt"
    names_file.write_text("\n".join(names) + "\n")
    args = [tools.python, str(script), url, REGION, str(parallel), "1", str(names_file)]
    seconds, out = timed_run(args, workdir, env, "bare boto3 script")
    if out.strip() != str(len(names)):
        raise BenchError(f"bare boto3 script moved {out.strip()!r} aliases, expected {len(names)}")
    return seconds


# ------------------------------------------------------------------------------------------------- one size


def bench_size(
    n: int, parallel: int, cli_sample: int | None, tools: Tools, url: str, root: Path, env: dict[str, str]
) -> SizeResult:
    reset_endpoint(url)
    workdir = root / f"n{n}"
    workdir.mkdir()
    names = function_names(n)
    aws = AwsClients(AwsSettings(region=REGION, endpoint_url=url), max_pool_connections=parallel + 4)

    log(f"N={n}: creating {n} functions with versions 1 and 2 behind alias {ALIAS!r}")
    build_fixture(aws, names, parallel)
    (workdir / "lastgood.yaml").write_text(yaml.safe_dump(runbook(url, names), sort_keys=False))
    run_checked([tools.lastgood, "release", "record", ENV, "--version", "r1", "-o", "json"], workdir, env, "record r1")
    move_aliases(aws, names, "2", parallel)
    run_checked([tools.lastgood, "release", "record", ENV, "--version", "r2", "-o", "json"], workdir, env, "record r2")
    expect_aliases(aws, names, "2", parallel, "recording r2")

    log(f"N={n}: lastgood rollback --parallel {parallel}")
    lastgood_seconds, engine_seconds = time_lastgood(tools, workdir, env, n, parallel)
    expect_aliases(aws, names, "1", parallel, "lastgood rollback")

    move_aliases(aws, names, "2", parallel)
    timed_names = names[: min(cli_sample, n)] if cli_sample else names
    log(f"N={n}: aws lambda update-alias loop ({len(timed_names)} calls, one after another)")
    cli_elapsed = time_cli_loop(tools, workdir, env, url, timed_names)
    cli_seconds = cli_elapsed * n / len(timed_names)
    expect_aliases(aws, timed_names, "1", parallel, "the aws-cli loop")

    move_aliases(aws, names, "2", parallel)
    log(f"N={n}: bare boto3 script, {parallel} threads")
    bare_seconds = time_bare(tools, workdir, env, url, names, parallel)
    expect_aliases(aws, names, "1", parallel, "the bare boto3 script")

    return SizeResult(
        n=n,
        parallel=parallel,
        lastgood_seconds=lastgood_seconds,
        lastgood_engine_seconds=engine_seconds,
        cli_seconds=cli_seconds,
        cli_calls_timed=len(timed_names),
        bare_seconds=bare_seconds,
    )


# ---------------------------------------------------------------------------------------------------- report


def targets_verdict(results: Sequence[SizeResult]) -> dict[str, Any]:
    gated = [r for r in results if r.n == TARGET_N]
    if not gated:
        return {"n": TARGET_N, "evaluated": False, "met": None}
    r = gated[0]
    return {
        "n": TARGET_N,
        "evaluated": True,
        "cli_over_lastgood_min": CLI_TARGET,
        "lastgood_over_bare_max": BARE_TARGET,
        "cli_target_met": r.cli_target_met,
        "bare_target_met": r.bare_target_met,
        "met": r.cli_target_met and r.bare_target_met,
    }


def render_text(results: Sequence[SizeResult], parallel: int) -> str:
    header = ("N", "lastgood s", "aws-cli loop s", "bare boto3 s", "cli/lastgood", "lastgood/bare",
              f"cli/lg>={CLI_TARGET:g}", f"lg/bare<={BARE_TARGET:g}")  # fmt: skip
    rows = [
        (
            str(r.n),
            f"{r.lastgood_seconds:.2f}",
            f"{r.cli_seconds:.2f}" + ("*" if r.cli_extrapolated else ""),
            f"{r.bare_seconds:.2f}",
            f"{r.cli_over_lastgood:.1f}x",
            f"{r.lastgood_over_bare:.2f}x",
            "yes" if r.cli_target_met else "NO",
            "yes" if r.bare_target_met else "NO",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in (header, *rows)]
    lines.insert(1, "  ".join("-" * width for width in widths))
    notes = [
        f"whole-process wall-clock seconds, one run each; --parallel {parallel} for lastgood and bare boto3; "
        f"{os.cpu_count()} CPUs shared with the moto server"
    ]
    notes += [
        f"* N={r.n}: aws-cli loop extrapolated from {r.cli_calls_timed} calls" for r in results if r.cli_extrapolated
    ]
    notes += [
        f"N={r.n}: lastgood's own reported rollback time {r.lastgood_engine_seconds:.2f}s of "
        f"{r.lastgood_seconds:.2f}s whole-process"
        for r in results
    ]
    verdict = targets_verdict(results)
    if verdict["evaluated"]:
        notes.append(
            f"targets at N={TARGET_N} (cli/lastgood >= {CLI_TARGET:g}, lastgood/bare <= {BARE_TARGET:g}): "
            + ("MET" if verdict["met"] else "MISSED")
        )
    else:
        notes.append(f"targets apply at N={TARGET_N}, which was not run")
    return "\n".join([*lines, "", *notes])


def render_json(results: Sequence[SizeResult], parallel: int, cli_sample: int | None) -> str:
    return json.dumps(
        {
            "parallel": parallel,
            "cli_sample": cli_sample,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "results": [r.to_dict() for r in results],
            "targets": targets_verdict(results),
        },
        indent=2,
    )


# ------------------------------------------------------------------------------------------------------ main


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from None
    if not sizes or any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError("sizes must be positive integers")
    return sizes


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=parse_sizes, default=[50, 200], help="comma-separated N (default: 50,200)")
    parser.add_argument("--parallel", type=positive, default=16, help="K for lastgood and bare boto3 (default: 16)")
    parser.add_argument(
        "--cli-sample",
        type=positive,
        default=None,
        metavar="M",
        help="time only the first M aws-cli calls and extrapolate to N (default: run all N)",
    )
    parser.add_argument("--output", "-o", choices=("text", "json"), default="text")
    parser.add_argument(
        "--fail-on-miss", action="store_true", help=f"exit 1 when the targets at N={TARGET_N} are missed"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    tools = find_tools()
    results: list[SizeResult] = []
    with tempfile.TemporaryDirectory(prefix="lastgood-bench-") as tmp:
        root = Path(tmp)
        env = bench_environment(root)
        os.environ.clear()
        os.environ.update(env)  # this process's own boto3 clients (fixture, checks) use the same fake identity
        with moto_server(tools.python, env, root) as url:
            for n in args.sizes:
                results.append(bench_size(n, args.parallel, args.cli_sample, tools, url, root, env))
    if args.output == "json":
        print(render_json(results, args.parallel, args.cli_sample))
    else:
        print(render_text(results, args.parallel))
    if args.fail_on_miss and targets_verdict(results)["met"] is False:
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"bench failed: {error}", file=sys.stderr)
        sys.exit(2)
