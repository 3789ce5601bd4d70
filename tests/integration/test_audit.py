"""The audit chain: every entry hash-linked to the one before; edits and deletions are found, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from lastgood.cli.app import main
from lastgood.ledger import audit, store
from lastgood.ledger.db import Ledger, open_ledger

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def write_events(ledger: Ledger, n: int = 5) -> None:
    for i in range(n):
        with ledger.session() as session:
            store.add_event(session, "shop", "prod", "step-succeeded", f"api: step {i}", T0, "rb-1", {"i": i}, "alice")


def report(ledger: Ledger) -> audit.ChainReport:
    with ledger.session() as session:
        return audit.verify(session)


@pytest.fixture
def ledger(ledger_url: str) -> Ledger:
    return open_ledger(ledger_url)


@pytest.mark.slow
def test_intact_chain_verifies(ledger: Ledger) -> None:
    write_events(ledger)
    result = report(ledger)
    assert result.ok and result.entries == 5


@pytest.mark.slow
def test_an_edited_entry_is_named(ledger: Ledger) -> None:
    write_events(ledger)
    with ledger.engine.begin() as connection:
        connection.execute(text("UPDATE events SET message = 'api: nothing happened' WHERE id = 3"))
    result = report(ledger)
    assert not result.ok and result.event_id == 3 and "edited" in (result.problem or "")


@pytest.mark.slow
def test_a_deleted_entry_is_found(ledger: Ledger) -> None:
    write_events(ledger)
    with ledger.engine.begin() as connection:
        connection.execute(text("DELETE FROM events WHERE id = 2"))
    result = report(ledger)
    assert not result.ok and result.event_id == 3 and "deleted" in (result.problem or "")


@pytest.mark.slow
def test_deleting_the_newest_entries_is_found(ledger: Ledger) -> None:
    write_events(ledger)
    with ledger.engine.begin() as connection:
        connection.execute(text("DELETE FROM events WHERE id >= 4"))
    result = report(ledger)
    assert not result.ok and "newest entries" in (result.problem or "")


@pytest.mark.slow
def test_actor_is_recorded_and_covered(ledger: Ledger) -> None:
    write_events(ledger, 2)
    with ledger.engine.begin() as connection:
        assert connection.execute(text("SELECT actor FROM events WHERE id = 1")).scalar() == "alice"
        connection.execute(text("UPDATE events SET actor = 'mallory' WHERE id = 1"))
    assert not report(ledger).ok


def test_events_from_before_the_chain_are_chained_by_the_migration(tmp_path: Path) -> None:
    from alembic import command

    from lastgood.ledger.db import _alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(_alembic_config(url), "0003")
    old = Ledger(url)
    with old.engine.begin() as connection:
        for i in range(3):
            connection.execute(
                text(
                    "INSERT INTO events (app, env, rollback_id, at, type, message, data) "
                    "VALUES ('shop', 'prod', NULL, :at, 'release-recorded', :message, '{}')"
                ),
                {"at": T0, "message": f"release v{i} recorded"},
            )
    old.close()
    ledger = open_ledger(url)  # migrates to head, chaining the old entries
    write_events(ledger, 1)
    result = report(ledger)
    assert result.ok and result.entries == 4


def test_cli_audit_verify_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "lastgood.yaml").write_text(
        "app: shop\nstate: sqlite:///state.db\nenvironments: {prod: {}}\ncomponents: []\n"
    )
    ledger = open_ledger(f"sqlite:///{tmp_path / 'state.db'}")
    write_events(ledger, 3)
    assert main(["audit", "verify", "-f", str(tmp_path / "lastgood.yaml")]) == 0
    assert "chain intact" in capsys.readouterr().out
    with ledger.engine.begin() as connection:
        connection.execute(text("UPDATE events SET data = '{\"i\": 99}' WHERE id = 2"))
    assert main(["audit", "verify", "-f", str(tmp_path / "lastgood.yaml")]) == 1
    assert "event 2" in capsys.readouterr().out


@pytest.mark.slow
def test_overrides_are_audited(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lastgood.kinds.fake import FakeWorld, installed

    (tmp_path / "lastgood.yaml").write_text(
        "app: shop\nstate: sqlite:///state.db\nenvironments: {prod: {protected: true}}\n"
        "components: [{name: api, kind: fake}]\n"
    )
    file = str(tmp_path / "lastgood.yaml")
    with installed(FakeWorld({"api": "v1"})) as world:
        assert main(["release", "record", "prod", "--version", "v1", "-f", file]) == 0
        world.set("api", "v2")
        assert main(["release", "record", "prod", "--version", "v2", "-f", file]) == 0
        assert main(["rollback", "prod", "--yes", "-f", file]) == 0
    ledger = open_ledger(f"sqlite:///{tmp_path / 'state.db'}")
    with ledger.session() as session:
        overrides = [e for e in store.events_since(session, "shop", "prod") if e.type == "override"]
    assert len(overrides) == 1 and "protected" in overrides[0].message


@pytest.mark.slow
@pytest.mark.parametrize("chunk", [1, 2, 4, 5])
def test_pages_read_ahead_find_an_edit_in_a_middle_page_and_stop_there(ledger: Ledger, chunk: int) -> None:
    """On PostgreSQL the next page is fetched while this one is hashed: small pages, an edit in the middle, and
    the verification stopping early must all come out as with one page at a time."""
    write_events(ledger)
    with ledger.session() as session:
        assert audit.verify(session, chunk=chunk).entries == 5
    with ledger.engine.begin() as connection:
        connection.execute(text("UPDATE events SET actor = 'mallory' WHERE id = 3"))
    with ledger.session() as session:
        result = audit.verify(session, chunk=chunk)
        assert not result.ok and result.event_id == 3 and result.entries == 3
        assert session.execute(text("SELECT count(*) FROM events")).scalar() == 5  # the session is still usable
