"""Mutated runbooks and argument lists: never a traceback, never a hang, exit 0, 2 or 3 only (issue 14).

The CLI runs in-process through `lastgood.cli.app.main` (a subprocess per example would take seconds each), in a
worker thread with a deadline, so that a hang fails the test instead of stalling it. Commands that call AWS are
left out: the files' endpoints are unreachable, and the point here is what lastgood does with what it is given.
"""

from __future__ import annotations

import io
import random
import re
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lastgood.cli.app import main
from lastgood.testing import shop

EXAMPLES = Path(__file__).parents[2] / "examples"
SEEDS = [shop.runbook_text("http://127.0.0.1:9", "sqlite:///state.db") + shop.canary_text()] + [
    p.read_text() for p in sorted(EXAMPLES.glob("*.yaml"))
]
HOSTILE = [
    "9" * 5000,
    "1" + "0" * 400,
    "1e400",
    ".nan",
    "-1",
    "0",
    "",
    "~",
    "99999999999d",
    "-5m",
    "http://[::1",
    "http://exämple.com",
    "foo://bar",
    "mysql://u:p@h/db",
    "sqlite://host/x",
    "[" * 200 + "]" * 200,
    "&a [*a]",
    "!!python/object:os.system",
    "2026-02-30",
    "\x00",
    "\ud800",
    "${NOPE}",
    "${",
    "{env}{app}{version}",
    "> 5%%",
    "present",
    "a" * 3000,
]
ALLOWED = {0, 2, 3}
DEADLINE = 20.0  # seconds: far above any example (milliseconds), far below "hung"
timings: list[float] = []


def run_cli(args: list[str]) -> tuple[int, str]:
    """`lastgood ARGS` in-process: the exit code and everything printed; fails on a hang."""
    result: dict[str, object] = {}
    out = io.StringIO()

    def target() -> None:
        with redirect_stdout(out), redirect_stderr(out):
            try:
                result["code"] = main(args)
            except BaseException:  # what escapes main() is the finding
                result["escaped"] = traceback.format_exc()

    started = time.perf_counter()
    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(DEADLINE)
    timings.append(time.perf_counter() - started)
    assert not worker.is_alive(), f"lastgood {args[:4]} still running after {DEADLINE}s"
    assert "escaped" not in result, f"lastgood {args[:4]} raised:\n{result.get('escaped')}"
    text = out.getvalue()
    assert "Traceback" not in text, text[-2000:]
    return int(result["code"]), text  # type: ignore[call-overload]


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _paths(value, (*prefix, index))


def _replace(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(data, dict):
        return {**data, head: _replace(data[head], rest, value)}
    assert isinstance(data, list) and isinstance(head, int)
    return [*data[:head], _replace(data[head], rest, value), *data[head + 1 :]]


values = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(max_size=30),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.none(),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
)


UTF8 = ("utf-8", "surrogatepass")


def _dump(data: Any) -> str:
    return re.sub("\u27e8(\\w+)\u27e9", r"{\1}", yaml.safe_dump(data, allow_unicode=True))


@st.composite
def mutated_runbook(draw: st.DrawFn) -> bytes:
    text = draw(st.sampled_from(SEEDS))
    rng = random.Random(draw(st.integers(0, 2**32)))
    how = draw(st.sampled_from(["value", "delete", "text", "bytes"]))
    if how in ("value", "delete"):
        data = yaml.safe_load(re.sub(r"\{(\w+)\}", "\u27e8\\1\u27e9", text))  # {env} is not YAML in [..]
        path = rng.choice(list(_paths(data))[1:])
        if how == "delete":
            container = data
            for part in path[:-1]:
                container = container[part]
            del container[path[-1]]
            return _dump(data).encode()
        value = draw(values)
        if draw(st.booleans()) and isinstance(value, str):  # the hostile text as YAML source, not a string
            return _dump(_replace(data, path, "\x01MARK\x01")).replace("\x01MARK\x01", value).encode(*UTF8)
        return _dump(_replace(data, path, value)).encode(*UTF8)
    position = rng.randrange(len(text) + 1)
    if how == "text":
        insert = draw(st.sampled_from(HOSTILE)) if rng.random() < 0.5 else draw(st.text(max_size=20))
        cut = rng.randrange(0, 20)
        return (text[:position] + insert + text[position + cut :]).encode(*UTF8)
    noise = draw(st.binary(min_size=1, max_size=8))
    data_bytes = text.encode()
    return data_bytes[:position] + noise + data_bytes[position:]


FILE_COMMANDS = [["validate"], ["schema"], ["release", "list", "prod"], ["kpis"], ["audit", "verify"]]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module", autouse=True)
def _command_built_once() -> Iterator[None]:
    """A process runs main() once; typer rebuilds the click command at every call, a tenth of a second each."""
    build = typer.main.get_command
    built: dict[int, Any] = {}
    typer.main.get_command = lambda app: built.setdefault(id(app), build(app))  # type: ignore[assignment]
    yield
    typer.main.get_command = build


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LASTGOOD_USER", "fuzzer")
    monkeypatch.delenv("LASTGOOD_STATE", raising=False)
    monkeypatch.delenv("LASTGOOD_FILE", raising=False)


@pytest.mark.slow  # hundreds of CLI runs (hypothesis examples)
@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(content=mutated_runbook(), command=st.sampled_from(FILE_COMMANDS))
def test_mutated_runbooks(workdir: Path, content: bytes, command: list[str]) -> None:
    file = workdir / "lastgood.yaml"
    file.write_bytes(content)
    code, text = run_cli([*command, "--file", str(file)])
    assert code in ALLOWED, text[-2000:]


ARGS = [
    "validate",
    "plan",
    "rollback",
    "show",
    "release",
    "list",
    "record",
    "kpis",
    "audit",
    "status",
    "guard",
    "deploy",
    "approve",
    "deny",
    "rollback-review",
    "readiness",
    "report",
    "iam",
    "stop",
    "drill",
    "resume",
    "prod",
    "staging",
    "nope",
    "--since",
    "--parallel",
    "--output",
    "-o",
    "json",
    "text",
    "--to",
    "--only",
    "--for",
    "--yes",
    "--file",
    "--wait",
    "--version",
    "--help",
    "-h",
    "--unnecessary",
    "--note",
    "rb-1a2b3c4d5e",
]
NO_AWS = {"validate", "schema", "show", "kpis", "audit", "rollback-review", "release", "--help", "-h", "--version"}


@st.composite
def argument_list(draw: st.DrawFn) -> list[str]:
    words = draw(st.lists(st.one_of(st.sampled_from(ARGS), st.sampled_from(HOSTILE), st.text(max_size=12)), max_size=6))
    first = draw(st.sampled_from(sorted(NO_AWS)))
    if first == "release":
        words = ["list", *words]
    return [first, *words]


@pytest.mark.slow  # hundreds of CLI runs (hypothesis examples)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(args=argument_list())
def test_argument_lists(workdir: Path, args: list[str]) -> None:
    file = workdir / "args.yaml"
    if not file.exists():
        file.write_text(SEEDS[0])
    code, text = run_cli([*args, "--file", str(file)] if "--file" not in args else args)
    assert code in ALLOWED, f"{args}: {text[-2000:]}"


def test_report_timings() -> None:
    """Not a check: prints how many examples ran and how long they took (the issue asks for the figures)."""
    if timings:
        print(f"\nfuzz: {len(timings)} CLI runs, {sum(timings):.1f}s in all, slowest {max(timings):.3f}s")
