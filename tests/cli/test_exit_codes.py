"""The README's exit-code table, walked command by command: each documented outcome exits with its code.

0 ok, 1 failed or judged bad, 2 bad input, 3 refused or not run, 4 the guard was blind, 5 the guard's watch was
inconclusive, 75 AWS did not answer (try again), 130 interrupted. The fake kind stands in for AWS where a
command's outcome does not depend on it; the guard's sources are real (lastgood's HTTP probe against a local
server, a Prometheus URL with nothing listening); the unreachable-endpoint case is boto3 against a closed port.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lastgood.cli.app import COMMANDS, main
from lastgood.config.loader import load_runbook
from lastgood.domain.actor import Actor
from lastgood.errors import ExitCode
from lastgood.kinds.fake import FakeWorld, installed
from lastgood.runtime.lease import acquire
from lastgood.service.session import open_environment
from lastgood.testing.endpoint import FAKE_CREDENTIALS, free_port

README = Path(__file__).resolve().parents[2] / "README.md"

RUNBOOK = """
app: shop
state: sqlite:///state.db
environments:
  prod: {}
  vault: {protected: true}
components:
  - {name: gateway, kind: fake, kill_switch: true}
  - {name: api, kind: fake}
"""


class Endpoint(BaseHTTPRequestHandler):
    status = 200  # what every request gets; the tests change it

    def do_GET(self) -> None:
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Stand:
    dir: Path
    world: FakeWorld
    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch

    @property
    def file(self) -> Path:
        return self.dir / "lastgood.yaml"

    def run(self, *args: str, stdin: str = "") -> tuple[int, str, str]:
        self.monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(list(args))
        out, err = self.capsys.readouterr()
        return code, out, " ".join(err.split())

    def code(self, *args: str, stdin: str = "") -> int:
        return self.run(*args, stdin=stdin)[0]

    def json(self, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
        code, out, _err = self.run(*args, "-o", "json")
        return code, json.loads(out)

    def append(self, text: str) -> None:
        self.file.write_text(self.file.read_text() + text)

    def two_releases(self) -> None:
        assert self.code("release", "record", "prod", "--version", "v1") == 0
        self.world.set("api", "v2")
        assert self.code("release", "record", "prod", "--version", "v2") == 0

    def rollback_id(self) -> str:
        with sqlite3.connect(self.dir / "state.db") as db:
            return str(db.execute("select id from rollbacks order by created_at desc").fetchone()[0])


@pytest.fixture
def stand(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Stand]:
    monkeypatch.delenv("LASTGOOD_STATE", raising=False)
    monkeypatch.setenv("LASTGOOD_USER", "tester")
    monkeypatch.setenv("LASTGOOD_FILE", str(tmp_path / "lastgood.yaml"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lastgood.yaml").write_text(RUNBOOK)
    with installed(FakeWorld({"gateway": "rate=100", "api": "v1"})) as world:
        yield Stand(tmp_path, world, capsys, monkeypatch)


@pytest.fixture
def endpoint() -> Iterator[type[Endpoint]]:
    handler = type("Handler", (Endpoint,), {"status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}/"  # type: ignore[attr-defined]
    yield handler
    server.shutdown()


# --- the table --------------------------------------------------------------------------------------------------


def readme_codes() -> dict[int, str]:
    """The README's exit-code table: | code | meaning |."""
    section = README.read_text().split("### Exit codes", 1)[1].split("\n#", 1)[0]
    return {int(m[1]): m[2] for m in re.finditer(r"^\| \*\*(\d+)\*\* \| (.+?) \|$", section, re.M)}


def test_the_readme_table_is_the_code_table() -> None:
    assert sorted(readme_codes()) == sorted(int(code) for code in ExitCode)


# --- validate, schema, usage ------------------------------------------------------------------------------------


def test_validate_schema_and_usage(stand: Stand) -> None:
    assert stand.code("validate") == ExitCode.OK
    assert stand.code("schema") == ExitCode.OK
    assert stand.code("plan", "prod", "--no-such-flag") == ExitCode.BAD_INPUT
    assert stand.code("show") == ExitCode.BAD_INPUT  # a missing argument
    stand.append("triggers: [{name: x}]\n")
    code, _out, err = stand.run("validate")
    assert code == ExitCode.BAD_INPUT and "triggers[0]" in err


# --- releases, status, plan, show -------------------------------------------------------------------------------


def test_releases(stand: Stand) -> None:
    assert stand.code("release", "record", "prod", "--version", "v1") == ExitCode.OK
    assert stand.code("release", "record", "prod", "--version", "v1") == ExitCode.BAD_INPUT  # immutable
    assert stand.code("release", "record", "nope", "--version", "v1") == ExitCode.BAD_INPUT  # unknown environment
    assert stand.code("release", "list", "prod") == ExitCode.OK
    assert stand.code("status", "prod") == ExitCode.OK
    assert stand.code("release", "mark-bad", "prod", "v9", "--reason", "x") == ExitCode.BAD_INPUT
    code, _out, err = stand.run("release", "mark-bad", "prod", "v1", "--reason", "x")  # the live one: asks
    assert code == ExitCode.REFUSED and "nothing was changed" in err
    assert stand.code("release", "mark-bad", "prod", "v1", "--reason", "x", "--yes") == ExitCode.OK


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_plan_and_show(stand: Stand) -> None:
    assert stand.code("release", "record", "prod", "--version", "v1") == 0
    code, _out, err = stand.run("plan", "prod")
    assert code == ExitCode.REFUSED and "nothing to roll back to" in err
    stand.world.set("api", "v2")
    assert stand.code("release", "record", "prod", "--version", "v2") == 0
    assert stand.code("plan", "prod") == ExitCode.OK
    assert stand.code("plan", "prod", "--to", "v7") == ExitCode.BAD_INPUT
    assert stand.code("plan", "prod", "--detailed-exitcode") == ExitCode.CHANGES_PENDING
    assert stand.code("show", "rb-0000000000") == ExitCode.BAD_INPUT
    assert stand.code("rollback", "prod", "--yes") == ExitCode.OK
    assert stand.code("show", stand.rollback_id()) == ExitCode.OK


# --- rollback, resume ------------------------------------------------------------------------------------------


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_rollback_outcomes(stand: Stand) -> None:
    stand.two_releases()
    code, _out, err = stand.run("rollback", "prod")  # nobody to say yes
    assert code == ExitCode.REFUSED and "nothing was changed" in err
    assert stand.code("rollback", "prod", "--only", "nope", "--yes") == ExitCode.BAD_INPUT
    runbook = load_runbook(stand.file)
    lease = acquire(open_environment(runbook, "prod", Actor(name="alice", via="cli")), "rollback", "rb-elsewhere")
    try:
        code, _out, err = stand.run("rollback", "prod", "--yes")
        assert code == ExitCode.REFUSED and "held by rollback rb-elsewhere of alice" in err
    finally:
        lease.release()
    stand.world.fail_next("api", permanent=True, message="access denied")
    assert stand.code("rollback", "prod", "--yes") == ExitCode.FAILED
    assert stand.code("rollback", "prod", "--yes") == ExitCode.OK  # supersedes the failed one
    assert stand.world.get("api") == "v1"


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_resume_outcomes(stand: Stand) -> None:
    stand.two_releases()
    stand.world.fail_next("api", permanent=True, message="access denied")
    assert stand.code("rollback", "prod", "--yes") == ExitCode.FAILED
    failed = stand.rollback_id()
    assert stand.code("resume", failed) == ExitCode.OK
    code, _out, err = stand.run("resume", failed)  # finished: not run
    assert code == ExitCode.REFUSED and f"rollback {failed} has already succeeded; nothing to resume" in err
    code, data = stand.json("resume", failed)
    assert code == ExitCode.REFUSED and data["error"] == "Refused"
    assert stand.code("resume", "rb-0000000000") == ExitCode.BAD_INPUT


# --- approvals, reports, reviews, KPIs, audit, IAM --------------------------------------------------------------


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_approvals_reports_and_reviews(stand: Stand) -> None:
    for args in (("approve", "rb-0000000000"), ("deny", "rb-0000000000", "--reason", "no")):
        assert stand.code(*args) == ExitCode.BAD_INPUT
    assert stand.code("approval-token", "rb-0000000000", "--user", "bob") == ExitCode.BAD_INPUT  # no approval_key
    stand.two_releases()
    assert stand.code("rollback", "prod", "--yes") == 0
    done = stand.rollback_id()
    code, _out, err = stand.run("approve", done)
    assert code == ExitCode.REFUSED, err
    assert stand.code("report", done, "--out", str(stand.dir / "reports")) == ExitCode.OK
    assert stand.code("report", "rb-0000000000") == ExitCode.BAD_INPUT
    assert stand.code("rollback-review", done, "--unnecessary") == ExitCode.OK
    assert stand.code("rollback-review", done) == ExitCode.BAD_INPUT  # say which
    assert stand.code("kpis") == ExitCode.OK
    assert stand.code("kpis", "--since", "soon") == ExitCode.BAD_INPUT
    assert stand.code("check", done, "test-api-endpoints", "--note", "curl ok") == ExitCode.OK
    assert stand.code("check", done, "no-such-item") == ExitCode.BAD_INPUT
    assert stand.code("check", "rb-0000000000", "test-api-endpoints") == ExitCode.BAD_INPUT
    assert stand.code("audit", "log") == ExitCode.OK
    assert stand.code("audit", "verify") == ExitCode.OK
    with sqlite3.connect(stand.dir / "state.db") as db:
        db.execute("update events set message = 'edited' where id = (select min(id) from events)")
    assert stand.code("audit", "verify") == ExitCode.FAILED
    assert stand.code("iam-policy") == ExitCode.OK


# --- stop -------------------------------------------------------------------------------------------------------


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_stop_says_there_is_nothing_to_stop_before_asking(stand: Stand) -> None:
    code, _out, err = stand.run("stop", "prod")  # no --yes, stdin closed
    assert code == ExitCode.REFUSED and "type 'yes'" in err
    assert stand.code("stop", "prod", "--yes") == ExitCode.OK
    code, _out, err = stand.run("stop", "prod", stdin="yes\n")
    assert code == ExitCode.REFUSED and "already stopped" in err and "type" not in err  # said before asking
    assert stand.code("stop", "prod", "--release") == ExitCode.OK
    code, _out, err = stand.run("stop", "prod", "--release")
    assert code == ExitCode.REFUSED and "no active emergency stop" in err
    stand.file.write_text(RUNBOOK.replace(", kill_switch: true", ""))
    code, _out, err = stand.run("stop", "prod", stdin="yes\n")
    assert code == ExitCode.BAD_INPUT and "nothing in prod can be stopped" in err and "type" not in err


# --- readiness --------------------------------------------------------------------------------------------------


def test_readiness_exits_0_when_every_row_is_ok(stand: Stand) -> None:
    code, _out, err = stand.run("readiness", "prod")
    assert code == ExitCode.REFUSED, err  # nothing recorded, nothing checked
    assert stand.code("release", "record", "prod", "--version", "v1") == 0
    code, data = stand.json("readiness", "prod")
    checks = [c["status"] for r in data["releases"] for comp in r["components"] for c in comp["checks"]]
    assert code == ExitCode.OK and checks and set(checks) == {"ok"}  # was 1: no previous release (a note)
    assert data["notes"] and "no release older than the live one" in data["notes"][0]


# --- drill, deploy, promote, abort ------------------------------------------------------------------------------


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_drill_asks_and_takes_yes(stand: Stand) -> None:
    code, _out, err = stand.run("drill", "prod")
    assert code == ExitCode.BAD_INPUT and "needs the guard" in err  # said before asking
    stand.append("triggers: [{name: t, prometheus: {url: 'http://127.0.0.1:9', query: x}, when: '> 1'}]\n")
    code, _out, err = stand.run("drill", "prod")
    assert code == ExitCode.REFUSED and "Drill in prod" in err and "pass --yes" in err
    assert stand.json("release", "list", "prod")[1]["releases"] == []  # nothing was changed
    code, _out, err = stand.run("drill", "vault", "--yes")
    assert code == ExitCode.REFUSED and "protected" in err
    assert stand.code("drill", "--due") == ExitCode.OK  # no schedules in the file: nothing is due
    stand.append("drills: {prod: monthly}\n")
    assert stand.code("drill", "--due") == ExitCode.DRILLS_DUE  # never drilled
    assert stand.code("drill") == ExitCode.BAD_INPUT  # neither ENV nor --due


def test_deploy_promote_abort_refusals(stand: Stand) -> None:
    """Their 0/1/130 outcomes need a weighted kind on moto: tests/integration/test_deploy*.py."""
    assert stand.code("deploy", "prod") == ExitCode.BAD_INPUT  # no --component/--version
    code, _out, err = stand.run("deploy", "prod", "-c", "api", "--version", "v3")
    assert code == ExitCode.BAD_INPUT and "type" not in err  # not deployable: said before asking
    for command in ("promote", "abort"):
        code, _out, err = stand.run(command, "prod")
        assert code == ExitCode.REFUSED and "no deployment is running or paused" in err
    code, _out, err = stand.run("pause", "prod")
    assert code == ExitCode.BAD_INPUT and "no deployment 'prod'" in err


def test_watch_and_init_bad_input(stand: Stand) -> None:
    """`watch`'s and `init`'s other outcomes: tests/cli/test_follow_rollbacks.py, tests/cli/test_init_*.py."""
    code, _out, err = stand.run("watch", "rb-0000000000")
    assert code == ExitCode.BAD_INPUT and "no rollback 'rb-0000000000'" in err
    stand.monkeypatch.delenv("AWS_REGION", raising=False)
    stand.monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    code, _out, err = stand.run("init", "--from-stack", "nope", "--out", str(stand.dir / "x.yaml"))
    assert code == ExitCode.BAD_INPUT and "no AWS region" in err


# --- server tokens, demo ----------------------------------------------------------------------------------------


def test_server_tokens(stand: Stand) -> None:
    assert stand.code("server", "token", "create", "--user", "bob", "--role", "viewer") == ExitCode.OK
    assert stand.code("server", "token", "create", "--user", "bob", "--role", "boss") == ExitCode.BAD_INPUT
    assert stand.code("server", "token", "list") == ExitCode.OK
    assert stand.code("server", "token", "revoke", "no-such-token") == ExitCode.BAD_INPUT


# --- the guard --------------------------------------------------------------------------------------------------


def probe_trigger(url: str, for_: str = "2s") -> str:
    return (
        f"triggers:\n  - {{name: api-errors, probe: {{url: '{url}', rate: 20, timeout: 1s}}, when: '> 5',"
        f" for: {for_}, period: 1s, action: rollback, severity: critical}}\n"
    )


@pytest.mark.slow  # guards a probe for seconds
def test_guard_healthy_and_judged_bad(stand: Stand, endpoint: type[Endpoint]) -> None:
    stand.two_releases()
    stand.append(probe_trigger(endpoint.url))  # type: ignore[attr-defined]
    code, data = stand.json("guard", "prod", "--for", "4s")
    assert code == ExitCode.OK and data["status"] == "healthy", data["message"]
    assert data["triggers"][0]["sight"] == "seen"
    endpoint.status = 500
    code, data = stand.json("guard", "prod", "--for", "20s")
    assert code == ExitCode.FAILED and data["status"] == "rolled-back"
    assert stand.world.get("api") == "v1"
    code, _out, err = stand.run("guard", "prod", "--for", "20s")  # v1 is all there is: fires, nothing to roll back to
    assert code == ExitCode.REFUSED and "nothing to roll back to" in err + _out


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_guard_cut_short_is_inconclusive_and_warned_at_start(stand: Stand, endpoint: type[Endpoint]) -> None:
    stand.two_releases()
    stand.append(probe_trigger(endpoint.url, for_="3s"))  # type: ignore[attr-defined]
    code, out, err = stand.run("guard", "prod", "--for", "1s")
    out = " ".join(out.split())
    assert code == ExitCode.INCONCLUSIVE, out + err
    assert "warning: --for 1s is shorter than rollback trigger api-errors's window (3s)" in err
    assert out.startswith("inconclusive: ") and "the watch ended before its 3s window could complete" in out


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_guard_with_its_metrics_endpoint_down_is_blind(stand: Stand) -> None:
    stand.two_releases()
    stand.append(
        f"triggers: [{{name: api-errors, prometheus: {{url: 'http://127.0.0.1:{free_port()}', query: up}},"
        " when: '> 5', for: 1s, period: 1s, action: rollback}]\n"
    )
    code, data = stand.json("guard", "prod", "--for", "2s")
    assert code == ExitCode.BLIND and data["status"] == "blind"
    assert "api-errors: its source failed" in data["message"]
    assert data["triggers"][0]["sight"] == "blind" and data["triggers"][0]["blind_evaluations"] >= 2


# --- AWS that does not answer, Ctrl-C at a prompt ---------------------------------------------------------------


def test_an_unreachable_endpoint_is_not_bad_input_and_is_said_quickly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("LASTGOOD_STATE", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    file = tmp_path / "lastgood.yaml"
    file.write_text(
        "app: shop\nstate: sqlite:///state.db\n"
        f"environments: {{prod: {{aws: {{region: us-east-1, endpoint_url: 'http://127.0.0.1:{free_port()}'}}}}}}\n"
        "components: [{name: api, kind: lambda-alias, function: shop-api}]\n"
    )
    started = time.monotonic()
    code = main(["release", "record", "prod", "--version", "v1", "-f", str(file)])
    seconds = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == ExitCode.AWS_UNAVAILABLE, err
    assert "Could not connect to the endpoint URL" in err and "try again" in err
    assert seconds < 12, f"{seconds:.1f}s (was 18 s: botocore's 8 attempts with backoff)"


@pytest.mark.parametrize(("code", "status"), [("ThrottlingException", 400), ("InternalFailure", 500), ("x", 503)])
def test_throttling_and_5xx_after_retries_are_not_bad_input(code: str, status: int) -> None:
    from botocore.exceptions import ClientError

    from lastgood.aws.errors import translate

    answer = {"Error": {"Code": code, "Message": "slow down"}, "ResponseMetadata": {"HTTPStatusCode": status}}
    assert translate(ClientError(answer, "GetAlias"), "lambda:GetAlias").exit_code == ExitCode.AWS_UNAVAILABLE  # type: ignore[arg-type]


class ControlC(io.StringIO):
    def readline(self, size: int | None = -1) -> str:
        raise KeyboardInterrupt


@pytest.mark.parametrize(
    "args",
    [("rollback", "prod"), ("stop", "prod"), ("release", "mark-bad", "prod", "v2", "--reason", "x"), ("drill", "prod")],
)
def test_ctrl_c_at_a_prompt_says_interrupted_and_exits_130(stand: Stand, args: tuple[str, ...]) -> None:
    stand.two_releases()
    stand.append("triggers: [{name: t, prometheus: {url: 'http://127.0.0.1:9', query: x}, when: '> 1'}]\n")
    stand.monkeypatch.setattr("sys.stdin", ControlC())
    code = main(list(args))
    err = stand.capsys.readouterr().err
    assert code == ExitCode.INTERRUPTED
    assert "type '" in err and "interrupted at the prompt: nothing was changed" in err
    assert stand.world.get("api") == "v2" and stand.world.get("gateway") == "rate=100"


def test_ctrl_c_elsewhere_says_interrupted(stand: Stand, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("lastgood.cli.release_cmd.open_env", interrupted)  # Ctrl-C while it reads
    code, _out, err = stand.run("release", "list", "prod")
    assert code == ExitCode.INTERRUPTED and err.strip() == "interrupted"


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_restored_unhealthy_and_ack(stand: Stand) -> None:
    stand.append("validate: {checks: [{name: smoke, command: {shell: 'exit 1'}}]}\n")
    stand.two_releases()
    code, out, _err = stand.run("plan", "prod")
    assert code == ExitCode.OK and "then validate" in out and "smoke (command): `exit 1` exits 0" in out
    assert stand.json("plan", "prod")[1]["validation"] == [
        {"name": "smoke", "type": "command", "what": "`exit 1` exits 0 within 5m"}
    ]
    code, out, _err = stand.run("rollback", "prod", "--yes")
    assert code == ExitCode.RESTORED_UNHEALTHY and "restored-unhealthy" in out and "smoke (command)" in out
    assert stand.world.get("api") == "v1"  # restored; nothing rolled back again
    rollback_id = stand.rollback_id()
    assert stand.code("watch", rollback_id) == ExitCode.RESTORED_UNHEALTHY
    assert stand.code("report", rollback_id, "--out", str(stand.dir / "report")) == ExitCode.OK
    report = next((stand.dir / "report").glob("*.md")).read_text()
    assert "## Validation" in report and "| smoke | command | FAILED | exited 1, expected 0" in report
    assert stand.code("ack", "rb-0000000000") == ExitCode.BAD_INPUT
    assert stand.code("ack", rollback_id) == ExitCode.OK
    code, _out, err = stand.run("ack", rollback_id)
    assert code == ExitCode.REFUSED and "acknowledged already by tester" in err


# --- every command walked ---------------------------------------------------------------------------------------


def test_every_command_is_walked() -> None:
    """A new command gets its outcomes walked here (a test, named in WALKS), or this fails."""
    commands = set(COMMANDS)
    elsewhere = {"demo", "sandbox"}  # long-running: tests/integration/test_demo*.py check their exit codes
    assert commands - elsewhere - set(WALKS) == set()


@pytest.mark.slow  # a Python process, server or browser of its own
def test_a_real_ctrl_c_at_a_real_prompt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`lastgood rollback` as a process, waiting at its prompt on an open stdin: SIGINT says so and exits 130."""
    (tmp_path / "value").write_text("v1")
    (tmp_path / "lastgood.yaml").write_text(
        "app: shop\nstate: sqlite:///state.db\nenvironments: {prod: {}}\n"
        "components: [{name: app, kind: command, record: 'cat value', rollback: 'printf %s {value} > value'}]\n"
    )
    monkeypatch.delenv("LASTGOOD_STATE", raising=False)
    monkeypatch.setenv("LASTGOOD_USER", "tester")
    monkeypatch.chdir(tmp_path)  # the commands run here
    env = {**os.environ, "LASTGOOD_FILE": str(tmp_path / "lastgood.yaml")}
    for label in ("v1", "v2"):
        (tmp_path / "value").write_text(label)
        assert main(["release", "record", "prod", "--version", label, "-f", str(tmp_path / "lastgood.yaml")]) == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "lastgood", "rollback", "prod"],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    seen = ""
    deadline = time.monotonic() + 60
    while "to continue: " not in seen and time.monotonic() < deadline:
        seen += process.stderr.read(1)
    process.send_signal(signal.SIGINT)
    rest = process.communicate(timeout=30)[1]
    assert process.returncode == ExitCode.INTERRUPTED, seen + rest
    assert "interrupted at the prompt: nothing was changed" in rest
    assert (tmp_path / "value").read_text() == "v2"


WALKS = {  # each command, and the test above that walks its outcomes
    "validate": test_validate_schema_and_usage,
    "schema": test_validate_schema_and_usage,
    "release": test_releases,
    "status": test_releases,
    "plan": test_plan_and_show,
    "show": test_plan_and_show,
    "rollback": test_rollback_outcomes,
    "resume": test_resume_outcomes,
    "approve": test_approvals_reports_and_reviews,
    "deny": test_approvals_reports_and_reviews,
    "approval-token": test_approvals_reports_and_reviews,
    "report": test_approvals_reports_and_reviews,
    "rollback-review": test_approvals_reports_and_reviews,
    "kpis": test_approvals_reports_and_reviews,
    "audit": test_approvals_reports_and_reviews,
    "iam-policy": test_approvals_reports_and_reviews,
    "stop": test_stop_says_there_is_nothing_to_stop_before_asking,
    "readiness": test_readiness_exits_0_when_every_row_is_ok,
    "drill": test_drill_asks_and_takes_yes,
    "deploy": test_deploy_promote_abort_refusals,
    "promote": test_deploy_promote_abort_refusals,
    "abort": test_deploy_promote_abort_refusals,
    "pause": test_deploy_promote_abort_refusals,
    "watch": test_watch_and_init_bad_input,
    "init": test_watch_and_init_bad_input,
    "server": test_server_tokens,
    "guard": test_guard_healthy_and_judged_bad,
    "check": test_approvals_reports_and_reviews,
    "ack": test_restored_unhealthy_and_ack,
}
