"""Drill schedules (issue 15, item 6): `drills: {prod: daily}` in the file, `lastgood drill --due` from the last
drill in the ledger (exit 10 when one is due), and the server's jobs that run a due drill once however many
replicas find it due. Fake kind, real SQLite ledger, a real HTTP probe against a local failing endpoint."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lastgood.cli.app import main
from lastgood.config.loader import parse_runbook
from lastgood.config.schedules import due_at, is_due
from lastgood.errors import ConfigError, ExitCode
from lastgood.kinds.fake import FakeWorld, installed
from lastgood.ledger.tables import DrillRow
from lastgood.server.apps import Apps
from lastgood.server.drilling import drill_schedule_job, scheduled_drill_job
from lastgood.server.guarding import GuardScheduler
from lastgood.service.drill import DrillClaimed, run_drill
from lastgood.sources.cloudwatch import CloudWatchSource

T0 = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)


# --- the schedule itself ----------------------------------------------------------------------------------------


def test_named_schedules_are_intervals_since_the_last_drill_and_cron_is_cron() -> None:
    assert due_at("daily", T0) == T0 + timedelta(days=1)
    assert due_at("weekly", T0) == T0 + timedelta(days=7)
    assert due_at("monthly", T0) == T0 + timedelta(days=30)
    assert due_at("monthly", None) is None and is_due("monthly", None, T0)  # never drilled: due
    assert not is_due("monthly", T0, T0 + timedelta(days=29, hours=23))
    assert is_due("monthly", T0, T0 + timedelta(days=30))
    assert due_at("0 3 1 * *", T0) == datetime(2026, 4, 1, 3, 0, tzinfo=UTC)  # 03:00 on the 1st of each month
    assert not is_due("0 3 1 * *", T0, datetime(2026, 4, 1, 2, 59, tzinfo=UTC))


def test_a_bad_schedule_or_an_unknown_environment_is_named() -> None:
    base = "app: shop\nenvironments: {staging: {}}\ncomponents: []\n"
    with pytest.raises(ConfigError) as raised:
        parse_runbook(base + "drills: {staging: fortnightly}\n")
    assert raised.value.problems == [
        "drills.staging: 'fortnightly' is not a schedule: daily, weekly, monthly or a cron expression ('0 3 1 * *')"
    ]
    with pytest.raises(ConfigError) as raised:
        parse_runbook(base + "drills: {stagin: weekly}\n")
    assert raised.value.problems == ["drills.stagin: no environment 'stagin' (did you mean 'staging'?)"]
    assert parse_runbook(base + "drills: {staging: '*/30 2 * * 1-5'}\n").drills == {"staging": "*/30 2 * * 1-5"}


# --- lastgood drill --due, and the server's jobs ----------------------------------------------------------------


class Failing(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def failing_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def runbook(url: str) -> str:
    return f"""
app: shop
state: sqlite:///state.db
environments: {{prod: {{}}, vault: {{protected: true}}}}
components: [{{name: api, kind: fake}}]
triggers:
  - {{name: api-errors, probe: {{url: '{url}', rate: 20, timeout: 1s}}, when: '> 5', for: 2s, period: 1s,
     action: rollback, severity: critical, environments: [prod]}}
policy:
  drills: {{guard_for: 20s}}
drills: {{prod: daily, vault: weekly}}
"""


@pytest.fixture
def stand(tmp_path: Path, failing_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, FakeWorld]]:
    monkeypatch.delenv("LASTGOOD_STATE", raising=False)
    monkeypatch.setenv("LASTGOOD_USER", "tester")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    file = tmp_path / "lastgood.yaml"
    file.write_text(runbook(failing_url))
    monkeypatch.setenv("LASTGOOD_FILE", str(file))
    monkeypatch.chdir(tmp_path)
    with installed(FakeWorld({"api": "v1"})) as world:
        assert main(["release", "record", "prod", "--version", "v1"]) == 0
        world.set("api", "v2")
        assert main(["release", "record", "prod", "--version", "v2"]) == 0
        assert main(["rollback", "prod", "--yes"]) == 0  # v2 is bad now: the drill re-deploys it
        yield file, world


def due(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, dict[str, Any]]]:
    capsys.readouterr()
    code = main(["drill", "--due", "-o", "json"])
    return code, {d["env"]: d for d in json.loads(capsys.readouterr().out)}


class RecordingJobs:
    def __init__(self) -> None:
        self.submitted: list[tuple[str, str | None, dict[str, Any]]] = []

    def submit(self, name: str, key: str | None = None, **args: Any) -> object:
        self.submitted.append((name, key, args))
        return object()


@pytest.mark.slow  # two drills, each guarding a probe for a few seconds
def test_due_drills_are_listed_and_run_once_across_replicas(
    stand: tuple[Path, FakeWorld], capsys: pytest.CaptureFixture[str]
) -> None:
    file, world = stand
    code, found = due(capsys)
    assert code == ExitCode.DRILLS_DUE == 10
    assert found["prod"]["due"] and found["prod"]["last_drill_at"] is None and found["prod"]["schedule"] == "daily"
    assert found["vault"]["note"].startswith("protected")

    # Two replicas' schedulers find the same due drill: the same claim, and the protected one is not submitted.
    replicas = [SimpleNamespace(apps=Apps.load([file]), jobs=RecordingJobs()) for _ in range(2)]
    claims = [drill_schedule_job(r) for r in replicas]  # type: ignore[arg-type]
    assert claims[0] == claims[1] == [found["prod"]["claim"]]
    assert replicas[0].jobs.submitted == [
        ("scheduled-drill", found["prod"]["claim"], {"app": "shop", "env": "prod", "claim": found["prod"]["claim"]})
    ]

    # Both run their job: the first drills, the second finds the drill claimed and does nothing.
    claim = found["prod"]["claim"]
    first = scheduled_drill_job(replicas[0], app="shop", env="prod", claim=claim)  # type: ignore[arg-type]
    assert first is not None and first["id"] == claim and first["status"] == "passed", first
    assert scheduled_drill_job(replicas[1], app="shop", env="prod", claim=claim) is None  # type: ignore[arg-type]
    ledger = replicas[0].apps.ledger
    with ledger.session() as session:
        rows = session.query(DrillRow).filter_by(app="shop", env="prod").all()
        assert [(r.id, r.status) for r in rows] == [(claim, "passed")]
    assert world.get("api") == "v1"

    code, found = due(capsys)
    assert code == ExitCode.DRILLS_DUE  # vault (weekly, never drilled) is still due: the code says so
    assert not found["prod"]["due"] and found["prod"]["last_drill_at"] is not None
    assert found["prod"]["claim"] != claim  # the next due time is another claim

    # A replica that passed the check before the first inserted its row meets the primary key: DrillClaimed.
    ctx = replicas[1].apps.env_context("shop", "prod", "lastgood-server")
    with pytest.raises(DrillClaimed):
        run_drill(ctx, CloudWatchSource(ctx.aws), drill_id=claim)
    with ledger.session() as session:
        assert session.query(DrillRow).filter_by(app="shop").count() == 1


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_drill_without_env_or_due_is_bad_input(
    stand: tuple[Path, FakeWorld], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["drill"]) == ExitCode.BAD_INPUT
    assert "--due" in capsys.readouterr().err


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_the_servers_scheduler_submits_the_drill_schedule_job(stand: tuple[Path, FakeWorld]) -> None:
    file, _world = stand
    state = SimpleNamespace(apps=Apps.load([file]), jobs=RecordingJobs(), stopping=threading.Event())
    scheduler = GuardScheduler(state)  # type: ignore[arg-type]
    scheduler.tick()
    scheduler.tick()  # within the minute: not again
    assert [(name, key) for name, key, _args in state.jobs.submitted if name == "drill-schedule"] == [
        ("drill-schedule", "drill-schedule")
    ]
