"""The CLI over service/: mark-bad asks before condemning the live release, `status` names who holds the
environment, and the emergency stop is refused while another operation holds it. Fake kind, SQLite ledger."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lastgood.cli.app import main
from lastgood.config.loader import load_runbook
from lastgood.domain.actor import Actor
from lastgood.kinds.fake import FakeWorld, installed
from lastgood.runtime.lease import Lease, acquire
from lastgood.service.session import open_environment

RUNBOOK = """
app: shop
state: sqlite:///state.db
environments: {prod: {}}
components:
  - {name: gateway, kind: fake, kill_switch: true}
  - {name: api, kind: fake}
"""


@dataclass
class Stand:
    file: Path
    world: FakeWorld
    capsys: pytest.CaptureFixture[str]

    def run(self, *args: str) -> tuple[int, str, str]:
        code = main([*args, "-f", str(self.file)])
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
        code, out, _err = self.run(*args, "-o", "json")
        return code, json.loads(out)

    def hold(self, operation: str, subject: str, who: str = "alice") -> Lease:
        """Claim prod as another process would (a rollback or deployment running elsewhere)."""
        runbook = load_runbook(self.file)
        ctx = open_environment(runbook, "prod", Actor(name=who, via="cli"))
        return acquire(ctx, operation, subject)


@pytest.fixture
def stand(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Stand]:
    monkeypatch.delenv("LASTGOOD_STATE", raising=False)
    monkeypatch.setenv("LASTGOOD_USER", "tester")
    (tmp_path / "lastgood.yaml").write_text(RUNBOOK)
    with installed(FakeWorld({"gateway": "rate=100", "api": "v1"})) as world:
        yield Stand(tmp_path / "lastgood.yaml", world, capsys)


def record_two(stand: Stand) -> None:
    assert stand.run("release", "record", "prod", "--version", "v1")[0] == 0
    stand.world.set("api", "v2")
    assert stand.run("release", "record", "prod", "--version", "v2")[0] == 0


def bad_labels(stand: Stand) -> list[str]:
    return [r["label"] for r in stand.json("release", "list", "prod")[1]["releases"] if r["bad"]]


def test_marking_the_live_release_bad_asks_first(stand: Stand, monkeypatch: pytest.MonkeyPatch) -> None:
    record_two(stand)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # closed: nobody to say yes
    code, _out, err = stand.run("release", "mark-bad", "prod", "v2")
    assert code == 3
    assert "v2 is the live release of prod; mark it bad anyway? type 'yes'" in " ".join(err.split())
    assert "nothing was changed" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    assert stand.run("release", "mark-bad", "prod", "v2")[0] == 3
    assert bad_labels(stand) == []

    monkeypatch.setattr("sys.stdin", io.StringIO("yes\n"))
    code, out, _err = stand.run("release", "mark-bad", "prod", "v2", "--reason", "errors")
    assert code == 0 and "v2: marked bad" in out
    assert bad_labels(stand) == ["v2"]


def test_yes_marks_the_live_release_and_older_ones_need_no_prompt(
    stand: Stand, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_two(stand)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, marked = stand.json("release", "mark-bad", "prod", "v1")  # not live: no question
    assert code == 0 and marked == {
        "env": "prod",
        "label": "v1",
        "bad": True,
        "reason": "marked bad by hand",
        "was_live": False,
        "notes": [],
    }
    code, marked = stand.json("release", "mark-bad", "prod", "v2", "--yes")
    assert code == 0 and marked["was_live"] is True
    code, listing = stand.json("release", "list", "prod")
    assert [(r["label"], r["live"], r["bad"]) for r in listing["releases"]] == [("v2", True, True), ("v1", False, True)]


@pytest.mark.slow  # about a second: moto resources or a server in a thread
def test_release_list_pages(stand: Stand) -> None:
    record_two(stand)
    stand.world.set("api", "v3")
    assert stand.run("release", "record", "prod", "--version", "v3")[0] == 0
    code, page = stand.json("release", "list", "prod", "--limit", "1", "--offset", "1")
    assert code == 0
    assert [r["label"] for r in page["releases"]] == ["v2"]
    assert (page["total"], page["limit"], page["offset"]) == (3, 1, 1)
    code, out, _err = stand.run("release", "list", "prod", "--limit", "2")
    assert "releases 1-2 of 3" in out


def test_status_names_the_holder(stand: Stand) -> None:
    code, status = stand.json("status", "prod")
    assert code == 0
    assert status["live"] is None and status["holder"] is None and status["last_rollback"] is None
    record_two(stand)
    lease = stand.hold("rollback", "rb-elsewhere")
    try:
        code, status = stand.json("status", "prod")
        assert code == 0
        assert status["live"]["label"] == "v2"
        holder = status["holder"]
        assert (holder["operation"], holder["id"], holder["actor"], holder["via"]) == (
            "rollback",
            "rb-elsewhere",
            "alice",
            "cli",
        )
        assert holder["lease_expires_in_seconds"] > 0
        code, out, _err = stand.run("status", "prod")
        assert code == 0 and "rollback rb-elsewhere of alice" in out
        # Recording is allowed while held, with a note about what is running.
        stand.world.set("api", "v3")
        code, recorded = stand.json("release", "record", "prod", "--version", "v3")
        assert code == 0 and "rollback rb-elsewhere of alice is running in prod" in recorded["notes"][0]
    finally:
        lease.release()
    assert stand.json("status", "prod")[1]["holder"] is None


def test_stop_is_refused_while_the_environment_is_held(stand: Stand) -> None:
    lease = stand.hold("deploy", "dep-123", who="bob")
    try:
        code, _out, err = stand.run("stop", "prod", "--yes")
        assert code == 3
        assert "held by deploy dep-123 of bob" in " ".join(err.split())
        assert stand.world.get("gateway") == "rate=100"  # nothing was changed
    finally:
        lease.release()

    code, stopped = stand.json("stop", "prod", "--yes")
    assert code == 0 and stopped["done"] == ["gateway"] and stand.world.get("gateway") == "stopped"
    code, status = stand.json("status", "prod")
    assert status["active_stop"]["id"] == stopped["id"] and status["active_stop"]["components"] == ["gateway"]
    assert status["holder"] is None  # the stop let go when it was done

    lease = stand.hold("rollback", "rb-2", who="carol")
    try:
        code, _out, err = stand.run("stop", "prod", "--release")
        assert code == 3 and "rollback rb-2 of carol" in " ".join(err.split())
        assert stand.world.get("gateway") == "stopped"
    finally:
        lease.release()
    code, released = stand.json("stop", "prod", "--release")
    assert code == 0 and released["status"] == "released" and stand.world.get("gateway") == "rate=100"
    assert stand.json("status", "prod")[1]["active_stop"] is None
