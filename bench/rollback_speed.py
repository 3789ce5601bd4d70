"""How fast does lastgood roll N components back, next to a bare boto3 script, the physical bound, and the
runbooks' aws-cli loop? And how many AWS requests does each component cost?

Scenarios (default: 200 aliases, 1,000 aliases, and a mixed one of 200 aliases, 100 SSM parameters and 100
secrets) run on a local moto server in its own process (it does not share a GIL with the clients timed). Each
scenario records release r1 (every component good), moves everything to its bad state and records r2, then
runs `--pairs` paired rounds; in each round every component is put back on its bad state (and the bad state
recorded anew) before each of:

1. lastgood, whole process:  `lastgood rollback bench --yes --parallel K -o json`, interpreter start-up included
2. bare boto3, whole process: one Python process, one client per service, K threads sending only the writes
                              (UpdateAlias; PutParameter with the good value; UpdateSecretVersionStage), knowing
                              everything in advance
3. lastgood in-process:       `service.rollbacks.request_rollback` in this process (hold, plan, create, run,
                              finish), its requests counted on the wire (botocore `before-send`, per kind)
4. the critical-path bound:   ceil(components / K) rounds of one component's calls (alias: GetAlias +
                              UpdateAlias; parameter: GetParameters + PutParameter; secret: DescribeSecret +
                              UpdateSecretVersionStage + DescribeSecret), each call's latency measured one at a
                              time on the idle endpoint just before (median of a sample)
5. bare boto3 in-process:     a reference judged by no goal: the bare writes sent from this process by K threads,
                              which shows how far from the bound boto3 itself lands while moto shares the cores
6. the throughput bound:      a reference judged by no goal (the critical-path bound above keeps its verdict):
                              lastgood's requests (counted in 3) at the rate the endpoint answered the bare writes
                              in 5, = lastgood's calls x bare in-process seconds / bare writes; `in-proc/tput` is
                              lastgood in-process over it (1.0: lastgood's requests cost what boto3's own do)

and checks afterwards that every component is good again. At 200 aliases, the aws-cli loop (one
`aws lambda update-alias` process per function, `--cli-sample` of them, extrapolated) is timed once.

Targets (issue 13): whole process lastgood / bare <= 1.5 at 200 aliases and <= 2 at 1,000; in-process engine /
bound <= 3 at 200 and 1,000 aliases; calls per component alias <= 2, parameter <= 2, secret <= 3; aws-cli loop
/ lastgood >= 20 at 200 aliases. Ratios are per pair; the verdict uses the median.

    .venv/bin/python bench/rollback_speed.py                                  # the defaults (prints as it goes)
    .venv/bin/python bench/rollback_speed.py --aliases 200 --mixed none --pairs 3 -o json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from lastgood.aws.clients import AwsClients
from lastgood.config.loader import load_runbook
from lastgood.config.models import AwsSettings
from lastgood.domain.actor import Actor
from lastgood.service.rollbacks import RollbackRequest, request_rollback
from lastgood.service.session import forget_ledgers, open_environment
from lastgood.testing import shop
from lastgood.testing.calls import CallCounter
from lastgood.testing.endpoint import FAKE_CREDENTIALS, free_port

REGION = "us-east-1"
ENV = "bench"
ALIAS = "live"
WHOLE_TARGETS = {200: 1.5, 1000: 2.0}  # aliases -> lastgood / bare boto3, whole processes, at most
ENGINE_TARGET = 3.0  # in-process engine / critical-path bound, at most, at 200 and 1,000 aliases
CALL_TARGETS = {"lambda-alias": 2, "ssm-parameter": 2, "secret": 3}  # requests per component, plan included
CLI_TARGET = 20.0  # aws-cli loop / lastgood, at least, at 200 aliases
CLI_N = 200
SERVICES = {"lambda-alias": "lambda", "ssm-parameter": "ssm", "secret": "secretsmanager"}
LATENCY_SAMPLE = 8
SETUP_BATCH = 50  # components created per batch: moto under load answers 500 to floods of creations
SETUP_WORKERS = 8
SETUP_ATTEMPTS = 5

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
    "PYTHONDONTWRITEBYTECODE",  # a user's lastgood starts from compiled modules, as boto3 does from pip's
)

BARE_SCRIPT = '''\
"""The bare parallel way: one client per service, K threads, each write known in advance."""
import json
import sys
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config

endpoint, region, workers, ops_file = sys.argv[1:5]
with open(ops_file) as handle:
    ops = json.load(handle)
config = Config(max_pool_connections=int(workers))
clients = {
    service: boto3.client(service, region_name=region, endpoint_url=endpoint, config=config)
    for service in {op[0] for op in ops}
}


def send(op):
    service, method, kwargs = op
    getattr(clients[service], method)(**kwargs)


with ThreadPoolExecutor(max_workers=int(workers)) as pool:
    list(pool.map(send, ops))
print(len(ops))
'''

T = TypeVar("T")


class BenchError(RuntimeError):
    """The benchmark could not run, or a method did not leave the components where it should have."""


@dataclass(frozen=True)
class Scenario:
    aliases: int
    parameters: int = 0
    secrets: int = 0

    @property
    def size(self) -> int:
        return self.aliases + self.parameters + self.secrets

    @property
    def mixed(self) -> bool:
        return bool(self.parameters or self.secrets)

    @property
    def name(self) -> str:
        if not self.mixed:
            return f"{self.aliases} aliases"
        return f"mixed {self.aliases}a+{self.parameters}p+{self.secrets}s"

    def counts(self) -> dict[str, int]:
        every = {"lambda-alias": self.aliases, "ssm-parameter": self.parameters, "secret": self.secrets}
        return {kind: n for kind, n in every.items() if n}


@dataclass
class Pair:
    lastgood: float
    lastgood_engine: float  # the rollback's own reported seconds (executor), inside the whole process
    bare: float
    in_process: float
    bound: float
    calls: dict[str, dict[str, int]]  # kind -> operation -> requests, the in-process run
    bare_in_process: float  # the bare writes from this process: how close to the bound this machine lets boto3 get
    in_process_cpu: float = 0.0  # CPU seconds this process spent in the in-process rollback (all its threads)
    bare_in_process_cpu: float = 0.0
    bare_calls: int = 0  # the writes the bare in-process run sent

    @property
    def lastgood_calls(self) -> int:
        return sum(n for ops in self.calls.values() for n in ops.values())

    @property
    def throughput_bound(self) -> float:
        """lastgood's requests at the rate this endpoint answered the bare in-process writes (a reference, no goal)."""
        return self.lastgood_calls * self.bare_in_process / self.bare_calls if self.bare_calls else math.nan

    @property
    def throughput_ratio(self) -> float:
        return self.in_process / self.throughput_bound

    @property
    def whole_ratio(self) -> float:
        return self.lastgood / self.bare

    @property
    def engine_ratio(self) -> float:
        return self.in_process / self.bound

    @property
    def bare_bound_ratio(self) -> float:
        return self.bare_in_process / self.bound

    @property
    def over_bare_ratio(self) -> float:
        return self.in_process / self.bare_in_process


@dataclass
class ScenarioResult:
    scenario: Scenario
    parallel: int
    pairs: list[Pair] = field(default_factory=list)
    latency_ms: dict[str, float] = field(default_factory=dict)  # kind -> one component's calls, one at a time
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)  # the load average when the scenario finished
    cli_seconds: float | None = None
    cli_calls_timed: int = 0

    def figure(self, get: Callable[[Pair], float]) -> tuple[float, float, float]:
        values = [get(p) for p in self.pairs]
        return min(values), statistics.median(values), max(values)

    def calls_per_component(self) -> dict[str, float]:
        counts = self.scenario.counts()
        worst: dict[str, float] = {}
        for pair in self.pairs:
            for kind, ops in pair.calls.items():
                worst[kind] = max(worst.get(kind, 0.0), sum(ops.values()) / counts[kind])
        return worst

    def verdicts(self) -> list[tuple[str, str, bool]]:
        """(goal, figure, met) for every goal this scenario is judged on."""
        out: list[tuple[str, str, bool]] = []
        s = self.scenario
        if not s.mixed and s.aliases in WHOLE_TARGETS:
            median = self.figure(lambda p: p.whole_ratio)[1]
            limit = WHOLE_TARGETS[s.aliases]
            out.append((f"whole process <= {limit:g}x bare boto3 ({s.name})", f"{median:.2f}x", median <= limit))
            engine = self.figure(lambda p: p.engine_ratio)[1]
            out.append(
                (f"in-process <= {ENGINE_TARGET:g}x bound ({s.name})", f"{engine:.2f}x", engine <= ENGINE_TARGET)
            )
        for kind, per in self.calls_per_component().items():
            limit = CALL_TARGETS[kind]
            out.append((f"calls per {kind} <= {limit} ({s.name})", f"{per:g}", per <= limit))
        if self.cli_seconds is not None:
            ratio = self.cli_seconds / statistics.median(p.lastgood for p in self.pairs)
            out.append((f"aws-cli loop >= {CLI_TARGET:g}x lastgood ({s.name})", f"{ratio:.1f}x", ratio >= CLI_TARGET))
        return out

    def to_dict(self) -> dict[str, Any]:
        def mmm(get: Callable[[Pair], float]) -> dict[str, float]:
            low, mid, high = self.figure(get)
            return {"min": round(low, 3), "median": round(mid, 3), "max": round(high, 3)}

        return {
            "scenario": self.scenario.name,
            "components": self.scenario.counts(),
            "parallel": self.parallel,
            "pairs": len(self.pairs),
            "lastgood_seconds": mmm(lambda p: p.lastgood),
            "lastgood_reported_seconds": mmm(lambda p: p.lastgood_engine),
            "bare_seconds": mmm(lambda p: p.bare),
            "whole_ratio": mmm(lambda p: p.whole_ratio),
            "in_process_seconds": mmm(lambda p: p.in_process),
            "bound_seconds": mmm(lambda p: p.bound),
            "engine_ratio": mmm(lambda p: p.engine_ratio),
            "bare_in_process_seconds": mmm(lambda p: p.bare_in_process),
            "bare_in_process_over_bound": mmm(lambda p: p.bare_bound_ratio),
            "in_process_over_bare_in_process": mmm(lambda p: p.over_bare_ratio),
            "throughput_bound_seconds": mmm(lambda p: p.throughput_bound),
            "in_process_over_throughput_bound": mmm(lambda p: p.throughput_ratio),
            "in_process_cpu_seconds": mmm(lambda p: p.in_process_cpu),
            "bare_in_process_cpu_seconds": mmm(lambda p: p.bare_in_process_cpu),
            "load_average": [round(x, 2) for x in self.load],
            "latency_ms": {k: round(v, 2) for k, v in self.latency_ms.items()},
            "calls_per_component": self.calls_per_component(),
            "calls": self.pairs[-1].calls if self.pairs else {},
            "cli_seconds": None if self.cli_seconds is None else round(self.cli_seconds, 3),
            "cli_calls_timed": self.cli_calls_timed,
            "verdicts": [{"goal": g, "figure": f, "met": m} for g, f, m in self.verdicts()],
        }


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


def parallel_map(fn: Callable[[Any], T], items: Sequence[Any], workers: int) -> list[T]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def failed(what: str, done: subprocess.CompletedProcess[str]) -> BenchError:
    return BenchError(f"{what} exited {done.returncode}\nstdout: {done.stdout[-2000:]}\nstderr: {done.stderr[-2000:]}")


def timed_run(args: Sequence[str], cwd: Path, env: dict[str, str], what: str) -> tuple[float, str]:
    """Wall-clock seconds of one whole process, start-up included; its stdout. Fails loudly on a non-zero exit."""
    started = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise failed(what, done)
    return seconds, done.stdout


def compile_lastgood(tools: Tools, env: dict[str, str]) -> None:
    """Byte-compile lastgood's modules once, as pip does for the packages it installs (boto3 included): an
    editable install under PYTHONDONTWRITEBYTECODE would otherwise compile every module in every process."""
    import lastgood

    package = str(Path(lastgood.__file__).parent)
    subprocess.run([tools.python, "-m", "compileall", "-q", package], env=env, check=True, capture_output=True)


def with_retries(make: Callable[[Any], T], undo: Callable[[Any], Any], item: Any) -> T:
    """`make(item)`, undone and made again after a failure (backing off), up to SETUP_ATTEMPTS times."""
    from botocore.exceptions import BotoCoreError, ClientError

    for attempt in range(1, SETUP_ATTEMPTS + 1):
        try:
            return make(item)
        except (BotoCoreError, ClientError, BenchError) as error:
            if attempt == SETUP_ATTEMPTS:
                raise BenchError(f"setup: {item!r} failed {attempt} times, last: {error}") from error
            log(f"  setup: {item!r} failed ({error}); undoing and retrying")
            with suppress(BotoCoreError, ClientError):  # nothing to undo, or still refused: the next attempt says
                undo(item)
            time.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable")


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


@dataclass
class World:
    """The scenario's components on the endpoint: their names, and each secret's good and bad version ids."""

    scenario: Scenario
    aws: AwsClients
    workers: int
    functions: list[str] = field(default_factory=list)
    parameters: list[str] = field(default_factory=list)
    secrets: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (good id, bad id)

    def build(self) -> None:
        """Every component, created in batches of SETUP_BATCH by SETUP_WORKERS threads; a component whose creation
        fails (moto answers 500 now and then under load) is deleted and made again, SETUP_ATTEMPTS times."""
        s = self.scenario
        self.functions = [f"bench-fn{i:04d}" for i in range(s.aliases)]
        self.parameters = [f"/bench/param{i:04d}" for i in range(s.parameters)]
        role_arn = shop._role(self.aws)
        lam, ssm, secrets = (self.aws.client(x) for x in ("lambda", "ssm", "secretsmanager"))

        def function(name: str) -> None:
            shop.create_function(self.aws, name, role_arn)
            version = shop.publish_new_version(self.aws, name, "r2")
            if version != "2":
                raise BenchError(f"publishing a second version of {name} gave version {version}, expected 2")

        def secret(i: int) -> tuple[str, tuple[str, str]]:
            name = f"bench/secret{i:04d}"
            good = secrets.create_secret(Name=name, SecretString='{"password": "good"}')["VersionId"]
            bad = secrets.put_secret_value(SecretId=name, SecretString='{"password": "bad"}')["VersionId"]
            secrets.update_secret_version_stage(
                SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=good, RemoveFromVersionId=bad
            )
            return name, (good, bad)

        self.create("functions", self.functions, function, lambda n: lam.delete_function(FunctionName=n))
        self.create(
            "parameters",
            self.parameters,
            lambda n: ssm.put_parameter(Name=n, Value="good", Type="String", Overwrite=True),
            lambda n: None,
        )
        made = self.create(
            "secrets",
            list(range(s.secrets)),
            secret,
            lambda i: secrets.delete_secret(SecretId=f"bench/secret{i:04d}", ForceDeleteWithoutRecovery=True),
        )
        self.secrets = dict(made)

    def create(self, what: str, items: Sequence[Any], make: Callable[[Any], T], undo: Callable[[Any], Any]) -> list[T]:
        out: list[T] = []
        for start in range(0, len(items), SETUP_BATCH):
            batch = items[start : start + SETUP_BATCH]
            out += parallel_map(lambda item: with_retries(make, undo, item), batch, min(self.workers, SETUP_WORKERS))
            log(f"  {what}: {start + len(batch)} of {len(items)}")
        return out

    def runbook(self, url: str) -> dict[str, Any]:
        components: list[dict[str, Any]] = [
            {"name": name.removeprefix("bench-"), "kind": "lambda-alias", "function": name, "alias": ALIAS}
            for name in self.functions
        ]
        components += [
            {"name": name.rsplit("/", 1)[1], "kind": "ssm-parameter", "parameters": [name]} for name in self.parameters
        ]
        components += [{"name": name.rsplit("/", 1)[1], "kind": "secret", "secret": name} for name in self.secrets]
        return {
            "app": "bench",
            "environments": {ENV: {"aws": {"region": REGION, "endpoint_url": url}, "protected": False}},
            "components": components,
        }

    def make_bad(self) -> None:
        """From the good state (after a rollback) to the bad one; each write retried on a failure."""
        ssm, sm = self.aws.client("ssm"), self.aws.client("secretsmanager")

        def secret_bad(name: str) -> None:
            good, bad = self.secrets[name]
            stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
            if "AWSCURRENT" not in stages.get(bad, []):  # read first: a retried move would fail
                sm.update_secret_version_stage(
                    SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=bad, RemoveFromVersionId=good
                )

        ops: list[Callable[[], Any]] = [
            lambda n=n: shop.shift_alias(self.aws, n, "2", None, 0.0) for n in self.functions
        ]
        ops += [
            lambda n=n: ssm.put_parameter(Name=n, Value="bad", Type="String", Overwrite=True) for n in self.parameters
        ]
        ops += [lambda n=n: secret_bad(n) for n in self.secrets]
        parallel_map(lambda op: with_retries(lambda o: o(), lambda o: None, op), ops, self.workers)

    def bare_ops(self) -> list[tuple[str, str, dict[str, Any]]]:
        ops: list[tuple[str, str, dict[str, Any]]] = [
            ("lambda", "update_alias", {"FunctionName": n, "Name": ALIAS, "FunctionVersion": "1"})
            for n in self.functions
        ]
        ops += [
            ("ssm", "put_parameter", {"Name": n, "Value": "good", "Type": "String", "Overwrite": True})
            for n in self.parameters
        ]
        ops += [
            (
                "secretsmanager",
                "update_secret_version_stage",
                {"SecretId": n, "VersionStage": "AWSCURRENT", "MoveToVersionId": g, "RemoveFromVersionId": b},
            )
            for n, (g, b) in self.secrets.items()
        ]
        return ops

    def expect(self, good: bool, after: str) -> None:
        """Every component good (or bad), or BenchError naming the ones that are not."""
        lam, ssm, sm = (self.aws.client(s) for s in ("lambda", "ssm", "secretsmanager"))

        def alias(name: str) -> str | None:
            found = lam.get_alias(FunctionName=name, Name=ALIAS)
            weights = (found.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
            ok = found["FunctionVersion"] == ("1" if good else "2") and not weights
            return None if ok else f"{name} on {found['FunctionVersion']} {weights or ''}".rstrip()

        def parameter(name: str) -> str | None:
            value = ssm.get_parameter(Name=name)["Parameter"]["Value"]
            return None if value == ("good" if good else "bad") else f"{name} is {value}"

        def secret(name: str) -> str | None:
            stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
            current = [v for v, labels in stages.items() if "AWSCURRENT" in labels]
            wanted = self.secrets[name][0 if good else 1]
            return None if current == [wanted] else f"{name} AWSCURRENT on {current}"

        checks: list[Callable[[], str | None]] = [lambda n=n: alias(n) for n in self.functions]
        checks += [lambda n=n: parameter(n) for n in self.parameters]
        checks += [lambda n=n: secret(n) for n in self.secrets]
        wrong = [problem for problem in parallel_map(lambda c: c(), checks, self.workers) if problem]
        if wrong:
            shown = ", ".join(wrong[:10]) + (f" and {len(wrong) - 10} more" if len(wrong) > 10 else "")
            state = "good" if good else "bad"
            raise BenchError(f"after {after}: {len(wrong)} of {len(checks)} components are not {state}: {shown}")

    def latencies_ms(self) -> dict[str, float]:
        """One component's calls for each kind, sent one at a time (median over a sample), in milliseconds."""
        lam, ssm, sm = (self.aws.client(s) for s in ("lambda", "ssm", "secretsmanager"))

        def alias(name: str) -> None:
            version = lam.get_alias(FunctionName=name, Name=ALIAS)["FunctionVersion"]
            lam.update_alias(FunctionName=name, Name=ALIAS, FunctionVersion=version, RoutingConfig={})  # stays

        def parameter(name: str) -> None:
            found = ssm.get_parameters(Names=[name, f"{name}:1"], WithDecryption=True)["Parameters"]
            value = max(found, key=lambda p: int(p["Version"]))["Value"]
            ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)  # the value it has

        labelled: set[str] = set()

        def secret(name: str) -> None:
            sm.describe_secret(SecretId=name)
            bad = self.secrets[name][1]
            move = {"RemoveFromVersionId": bad} if name in labelled else {}  # a label of the bench's own
            sm.update_secret_version_stage(SecretId=name, VersionStage="BENCH", MoveToVersionId=bad, **move)
            labelled.add(name)
            sm.describe_secret(SecretId=name)

        kinds: dict[str, tuple[Callable[[str], None], list[str]]] = {
            "lambda-alias": (alias, self.functions),
            "ssm-parameter": (parameter, self.parameters),
            "secret": (secret, list(self.secrets)),
        }
        out = {}
        for kind, (calls, names) in kinds.items():
            if not names:
                continue
            sample = names[: LATENCY_SAMPLE + 1]
            calls(sample[0])  # warm the connection
            times = []
            for name in sample[1:] or sample:
                started = time.perf_counter()
                calls(name)
                times.append((time.perf_counter() - started) * 1000)
            out[kind] = statistics.median(times)
        return out


# ----------------------------------------------------------------------------------------------- the methods


class Runner:
    def __init__(self, tools: Tools, url: str, workdir: Path, env: dict[str, str], world: World, parallel: int):
        self.tools, self.url, self.workdir, self.env, self.world, self.parallel = (
            tools,
            url,
            workdir,
            env,
            world,
            parallel,
        )
        self.releases = 0

    def record_bad(self) -> None:
        """Put every component on its bad state and record that as the live release."""
        self.world.make_bad()
        self.world.expect(False, "moving everything to the bad state")
        self.releases += 1
        label = f"r2-{self.releases}"
        args = [self.tools.lastgood, "release", "record", ENV, "--version", label, "-o", "json"]
        timed_run(args, self.workdir, self.env, f"record {label}")

    def lastgood(self) -> tuple[float, float]:
        self.record_bad()
        args = [self.tools.lastgood, "rollback", ENV, "--yes", "--parallel", str(self.parallel), "-o", "json"]
        seconds, out = timed_run(args, self.workdir, self.env, "lastgood rollback")
        try:
            result = json.loads(out)
        except json.JSONDecodeError:
            raise BenchError(f"lastgood rollback printed no JSON: {out[-2000:]}") from None
        n = self.world.scenario.size
        if result.get("status") != "succeeded" or len(result.get("done", [])) != n:
            raise BenchError(f"lastgood rollback did not roll back all {n} components: {json.dumps(result)[:2000]}")
        self.world.expect(True, "lastgood rollback")
        return seconds, float(result.get("seconds", 0.0))

    def bare(self) -> float:
        self.world.make_bad()
        script = self.workdir / "bare_parallel.py"
        script.write_text(BARE_SCRIPT)
        ops = self.world.bare_ops()
        ops_file = self.workdir / "ops.json"
        ops_file.write_text(json.dumps(ops))
        args = [self.tools.python, str(script), self.url, REGION, str(self.parallel), str(ops_file)]
        seconds, out = timed_run(args, self.workdir, self.env, "bare boto3 script")
        if out.strip() != str(len(ops)):
            raise BenchError(f"bare boto3 script sent {out.strip()!r} writes, expected {len(ops)}")
        self.world.expect(True, "the bare boto3 script")
        return seconds

    def bare_in_process(self) -> tuple[float, float, int]:
        """The bare writes sent from this process by K threads, one plain boto3 client per service (made before
        the clock starts): the reference for what boto3 itself gets on this machine, moto sharing its cores."""
        import boto3
        from botocore.config import Config

        self.world.make_bad()
        ops = self.world.bare_ops()
        config = Config(max_pool_connections=self.parallel)
        clients = {
            service: boto3.client(service, region_name=REGION, endpoint_url=self.url, config=config)  # type: ignore[call-overload]
            for service in {op[0] for op in ops}
        }

        def send(op: tuple[str, str, dict[str, Any]]) -> None:
            service, method, kwargs = op
            getattr(clients[service], method)(**kwargs)

        started, cpu = time.perf_counter(), time.process_time()
        parallel_map(send, ops, self.parallel)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        self.world.expect(True, "the bare boto3 writes in-process")
        return seconds, cpu, len(ops)

    def in_process(self) -> tuple[float, float, dict[str, dict[str, int]]]:
        self.record_bad()
        runbook = load_runbook(self.workdir / "lastgood.yaml")
        ctx = open_environment(runbook, ENV, Actor(name="bench", via="cli"), parallel=self.parallel)
        kinds = self.world.scenario.counts()
        counter = CallCounter(ctx.aws, [SERVICES[k] for k in kinds])
        started, cpu = time.perf_counter(), time.process_time()
        outcome = request_rollback(ctx, RollbackRequest(confirmed=True, reason="bench"))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        if outcome.status != "succeeded":
            raise BenchError(f"in-process rollback ended {outcome.status}: {outcome.message[:2000]}")
        self.world.expect(True, "the in-process rollback")
        return seconds, cpu, {kind: counter.of(SERVICES[kind]) for kind in kinds}

    def cli_loop(self, sample: int) -> tuple[float, int]:
        """The runbook way: one `aws lambda update-alias` after another; seconds for all N, extrapolated."""
        self.world.make_bad()
        names = self.world.functions[:sample]
        started = time.perf_counter()
        for name in names:
            args = [
                self.tools.aws, "lambda", "update-alias",
                "--function-name", name, "--name", ALIAS, "--function-version", "1",
                "--endpoint-url", self.url, "--region", REGION,
            ]  # fmt: skip
            done = subprocess.run(
                args, cwd=self.workdir, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            )
            if done.returncode != 0:
                raise BenchError(f"aws lambda update-alias {name} exited {done.returncode}: {done.stderr[-2000:]}")
        elapsed = time.perf_counter() - started
        return elapsed * len(self.world.functions) / len(names), len(names)


# ------------------------------------------------------------------------------------------------- one scenario


def bound_seconds(scenario: Scenario, latency_ms: dict[str, float], parallel: int) -> float:
    """ceil(components / K) rounds of the mean component's calls, sent one at a time."""
    counts = scenario.counts()
    mean_ms = sum(latency_ms[kind] * n for kind, n in counts.items()) / scenario.size
    return math.ceil(scenario.size / parallel) * mean_ms / 1000


def bench_scenario(
    scenario: Scenario,
    pairs: int,
    parallel: int,
    cli_sample: int,
    tools: Tools,
    url: str,
    root: Path,
    env: dict[str, str],
) -> ScenarioResult:
    reset_endpoint(url)
    forget_ledgers()
    workdir = root / scenario.name.replace(" ", "-").replace("+", "-")
    workdir.mkdir()
    aws = AwsClients(AwsSettings(region=REGION, endpoint_url=url), max_pool_connections=parallel + 4)
    world = World(scenario, aws, parallel)
    log(f"{scenario.name}: creating the components")
    world.build()
    (workdir / "lastgood.yaml").write_text(yaml.safe_dump(world.runbook(url), sort_keys=False))
    timed_run([tools.lastgood, "release", "record", ENV, "--version", "r1", "-o", "json"], workdir, env, "record r1")
    runner = Runner(tools, url, workdir, env, world, parallel)
    result = ScenarioResult(scenario, parallel)
    for i in range(pairs):
        log(f"{scenario.name}: pair {i + 1} of {pairs}")
        latency = world.latencies_ms()
        lastgood, reported = runner.lastgood()
        bare = runner.bare()
        in_process, cpu, calls = runner.in_process()
        bare_in_process, bare_cpu, bare_calls = runner.bare_in_process()
        bound = bound_seconds(scenario, latency, parallel)
        pair = Pair(lastgood, reported, bare, in_process, bound, calls, bare_in_process, cpu, bare_cpu, bare_calls)
        result.pairs.append(pair)
        log(
            f"{scenario.name}: pair {i + 1}: lastgood {lastgood:.2f}s (reported {reported:.2f}s), bare {bare:.2f}s, "
            f"in-process {in_process:.2f}s (CPU {cpu:.2f}s), bare in-process {bare_in_process:.2f}s "
            f"(CPU {bare_cpu:.2f}s), bound {bound:.3f}s; load {os.getloadavg()[0]:.1f}"
        )
        result.latency_ms = latency
    if not scenario.mixed and scenario.aliases == CLI_N and cli_sample:
        log(f"{scenario.name}: aws lambda update-alias loop ({cli_sample} calls, one after another)")
        result.cli_seconds, result.cli_calls_timed = runner.cli_loop(cli_sample)
    forget_ledgers()
    result.load = os.getloadavg()
    return result


# ---------------------------------------------------------------------------------------------------- report


def render_text(results: Sequence[ScenarioResult], parallel: int, pairs: int) -> str:
    def mmm(r: ScenarioResult, get: Callable[[Pair], float], fmt: str = "{:.2f}") -> str:
        return "/".join(fmt.format(v) for v in r.figure(get))

    header = (
        "scenario",
        "lastgood s",
        "bare s",
        "lg/bare",
        "in-process s",
        "bound s",
        "in-proc/bound",
        "bare in-proc s",
        "bare-in/bound",
        "in-proc/bare-in",
        "tput bound s",
        "in-proc/tput",
        "calls/component",
    )
    rows = [
        (
            r.scenario.name,
            mmm(r, lambda p: p.lastgood),
            mmm(r, lambda p: p.bare),
            mmm(r, lambda p: p.whole_ratio),
            mmm(r, lambda p: p.in_process),
            mmm(r, lambda p: p.bound, "{:.3f}"),
            mmm(r, lambda p: p.engine_ratio),
            mmm(r, lambda p: p.bare_in_process),
            mmm(r, lambda p: p.bare_bound_ratio),
            mmm(r, lambda p: p.over_bare_ratio),
            mmm(r, lambda p: p.throughput_bound),
            mmm(r, lambda p: p.throughput_ratio),
            " ".join(f"{kind}={per:g}" for kind, per in r.calls_per_component().items()),
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in (header, *rows)]
    lines.insert(1, "  ".join("-" * width for width in widths))
    notes = [
        f"min/median/max over {pairs} paired runs; whole-process wall-clock seconds (start-up included) for lastgood "
        f"and bare boto3; --parallel {parallel}; {os.cpu_count()} CPUs shared with the moto server",
        "bare in-proc: the bare boto3 writes sent from the bench's own process (K threads), the reference for how "
        "close to the bound boto3 itself gets while moto shares the cores; in-proc/bare-in: lastgood over it",
        "tput bound (a reference, judged by no goal; the issue's bound and its verdict stay): lastgood's requests at "
        "the rate the endpoint answered the bare in-process writes (its calls x bare in-proc s / bare writes); "
        "in-proc/tput: lastgood in-process over it",
    ]
    for r in results:
        latency = ", ".join(f"{kind} {ms:.1f} ms" for kind, ms in r.latency_ms.items())
        notes.append(f"{r.scenario.name}: one component's calls one at a time: {latency}")
        notes.append(
            f"{r.scenario.name}: lastgood's own reported rollback seconds {mmm(r, lambda p: p.lastgood_engine)}; "
            "requests: " + "; ".join(f"{k} {ops}" for k, ops in (r.pairs[-1].calls.items() if r.pairs else []))
        )
        notes.append(
            f"{r.scenario.name}: CPU seconds of the bench's process, in-process: lastgood "
            f"{mmm(r, lambda p: p.in_process_cpu)}, bare boto3 {mmm(r, lambda p: p.bare_in_process_cpu)}; "
            "load average at the end " + "/".join(f"{x:.2f}" for x in r.load)
        )
        if r.cli_seconds is not None:
            notes.append(
                f"{r.scenario.name}: aws-cli loop {r.cli_seconds:.1f}s (extrapolated from {r.cli_calls_timed} calls)"
            )
    verdicts = [v for r in results for v in r.verdicts()]
    goal_width = max((len(g) for g, _, _ in verdicts), default=0)
    notes.append("")
    notes += [f"{goal.ljust(goal_width)}  {figure:>8}  {'met' if met else 'MISSED'}" for goal, figure, met in verdicts]
    return "\n".join([*lines, "", *notes])


def render_json(results: Sequence[ScenarioResult], parallel: int, pairs: int) -> str:
    verdicts = [v for r in results for v in r.verdicts()]
    return json.dumps(
        {
            "parallel": parallel,
            "pairs": pairs,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "results": [r.to_dict() for r in results],
            "all_met": all(met for _, _, met in verdicts),
        },
        indent=2,
    )


# ------------------------------------------------------------------------------------------------------ main


def parse_sizes(text: str) -> list[int]:
    if text.strip().lower() == "none":
        return []
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from None
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError("sizes must be positive integers")
    return sizes


def parse_mixed(text: str) -> list[Scenario]:
    """`A:P:S[,A:P:S...]` aliases, parameters, secrets; `none` for no mixed scenario."""
    if text.strip().lower() == "none":
        return []
    out = []
    for part in text.split(","):
        try:
            aliases, parameters, secrets = (int(x) for x in part.split(":"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"--mixed: {part!r} is not ALIASES:PARAMETERS:SECRETS") from None
        if min(aliases, parameters, secrets) < 0 or aliases + parameters + secrets < 1:
            raise argparse.ArgumentTypeError(f"--mixed: {part!r} needs non-negative counts, at least one component")
        out.append(Scenario(aliases, parameters, secrets))
    return out


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--aliases", type=parse_sizes, default=[200, 1000], help="alias-only scenarios, comma-separated N (200,1000)"
    )
    parser.add_argument(
        "--mixed", type=parse_mixed, default=[Scenario(200, 100, 100)], help="ALIASES:PARAMETERS:SECRETS (200:100:100)"
    )
    parser.add_argument("--pairs", type=positive, default=3, help="paired runs per scenario (default: 3)")
    parser.add_argument("--parallel", type=positive, default=16, help="K for lastgood and bare boto3 (default: 16)")
    parser.add_argument(
        "--cli-sample", type=int, default=20, metavar="M", help="aws-cli calls timed at 200 aliases (0: skip)"
    )
    parser.add_argument("--output", "-o", choices=("text", "json"), default="text")
    parser.add_argument("--fail-on-miss", action="store_true", help="exit 1 when a goal is missed")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    tools = find_tools()
    scenarios = [Scenario(n) for n in args.aliases] + list(args.mixed)
    if not scenarios:
        raise BenchError("nothing to run: --aliases none and --mixed none")
    results: list[ScenarioResult] = []
    with tempfile.TemporaryDirectory(prefix="lastgood-bench-") as tmp:
        root = Path(tmp)
        env = bench_environment(root)
        os.environ.clear()
        os.environ.update(env)  # this process's own boto3 clients (fixture, checks, in-process) use the same identity
        compile_lastgood(tools, env)
        with moto_server(tools.python, env, root) as url:
            for scenario in scenarios:
                result = bench_scenario(scenario, args.pairs, args.parallel, args.cli_sample, tools, url, root, env)
                results.append(result)
                block = render_text([result], args.parallel, args.pairs)  # as soon as it is known
                print(block, file=sys.stdout if args.output == "text" else sys.stderr, end="\n\n", flush=True)
    if args.output == "json":
        print(render_json(results, args.parallel, args.pairs))
    elif len(results) > 1:
        print("all scenarios:\n" + render_text(results, args.parallel, args.pairs))
    missed = [goal for r in results for goal, _, met in r.verdicts() if not met]
    return 1 if args.fail_on_miss and missed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"bench failed: {error}", file=sys.stderr)
        sys.exit(2)
