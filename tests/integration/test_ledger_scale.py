"""The ledger at scale: reads that do not grow with it, on SQLite and PostgreSQL.

`release list` pages 20 by default; the duplicate-label check is one lookup by label; `audit verify` reads the
chain in pages of a fixed size and its memory does not grow with the log; it resumes from a checkpoint and still
finds an entry changed or deleted after it.
"""

from __future__ import annotations

import gc
import json
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, event, insert, text

from lastgood.cli.app import main
from lastgood.errors import BadInput
from lastgood.ledger import audit, store
from lastgood.ledger.db import Ledger, open_ledger
from lastgood.ledger.tables import ChainHeadRow, EventRow, ReleaseRow
from lastgood.service import releases

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    opened = open_ledger(ledger_url)
    yield opened
    opened.close()


def seed_events(ledger: Ledger, n: int, first: int = 1) -> None:
    """`n` chained events after those there are, in bulk (the chain as `audit.append` would have made it)."""
    with ledger.session() as session:
        head = session.get(ChainHeadRow, 1)
        previous = head.hash if head is not None else audit.GENESIS
    rows = []
    for i in range(first, first + n):
        entry: dict[str, Any] = {
            "id": i,
            "app": "shop",
            "env": "prod",
            "rollback_id": None,
            "at": T0 + timedelta(seconds=i),
            "type": "step-succeeded",
            "message": f"step {i} done: " + "x" * 200,
            "data": {"i": i, "note": "y" * 100},
            "actor": "alice",
        }
        entry["prev_hash"], entry["hash"] = previous, audit.entry_hash(previous, entry)
        previous = entry["hash"]
        rows.append(entry)
    with ledger.engine.begin() as connection:
        for start in range(0, len(rows), 5000):
            connection.execute(insert(EventRow), rows[start : start + 5000])
        connection.execute(delete(ChainHeadRow))
        connection.execute(insert(ChainHeadRow), [{"id": 1, "last_event_id": first + n - 1, "hash": previous}])


def seed_releases(ledger: Ledger, n: int) -> None:
    rows = [
        {
            "id": i,
            "app": "shop",
            "env": "prod",
            "label": f"v{i}",
            "recorded_at": T0,
            "recorded_by": "bench",
            "bad": False,
        }
        for i in range(1, n + 1)
    ]
    with ledger.engine.begin() as connection:
        connection.execute(insert(ReleaseRow), rows)


@contextmanager
def statements(ledger: Ledger) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(ledger.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(ledger.engine, "before_cursor_execute", record)


def verify(ledger: Ledger, since: audit.Checkpoint | None = None, chunk: int = audit.CHUNK) -> audit.ChainReport:
    with ledger.session() as session:
        return audit.verify(session, since, chunk)


# --- release list, duplicate labels ------------------------------------------------------------------------------


@pytest.mark.slow  # about a second: moto resources or a server in a thread
def test_release_list_shows_the_newest_20_by_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "lastgood.yaml"
    file.write_text("app: shop\nstate: sqlite:///state.db\nenvironments: {prod: {}}\ncomponents: []\n")
    ledger = open_ledger(f"sqlite:///{tmp_path / 'state.db'}")
    seed_releases(ledger, 25)
    assert main(["release", "list", "prod", "-f", str(file), "-o", "json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [r["label"] for r in listing["releases"]] == [f"v{i}" for i in range(25, 5, -1)]
    assert (listing["total"], listing["limit"]) == (25, 20)
    assert main(["release", "list", "prod", "-f", str(file)]) == 0
    assert "releases 1-20 of 25" in capsys.readouterr().out
    assert main(["release", "list", "prod", "--limit", "30", "-f", str(file), "-o", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["releases"]) == 25


def test_release_list_counts_no_further_than_its_bound(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "lastgood.yaml"
    file.write_text("app: shop\nstate: sqlite:///state.db\nenvironments: {prod: {}}\ncomponents: []\n")
    ledger = open_ledger(f"sqlite:///{tmp_path / 'state.db'}")
    seed_releases(ledger, 40)
    monkeypatch.setattr(releases, "TOTAL_COUNTED", 30)
    args = ["release", "list", "prod", "-f", str(file), "-o", "json"]
    assert main(args) == 0
    listing = json.loads(capsys.readouterr().out)
    assert (len(listing["releases"]), listing["total"], listing["total_exact"]) == (20, 30, False)
    assert main(["release", "list", "prod", "-f", str(file)]) == 0
    assert "releases 1-20 of more than 30" in capsys.readouterr().out
    assert main([*args, "--offset", "25"]) == 0  # the page's end (45) is past the bound: counted to it, exactly
    listing = json.loads(capsys.readouterr().out)
    assert (len(listing["releases"]), listing["total"], listing["total_exact"]) == (15, 40, True)
    monkeypatch.setattr(releases, "TOTAL_COUNTED", 40)  # exactly as many as there are: exact
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 40
    with ledger.session() as session:
        assert store.count_releases(session, "shop", "prod", at_most=7) == 7
        assert store.count_releases(session, "shop", "prod") == 40


def test_a_duplicate_label_is_found_by_one_lookup_of_that_label(ledger: Ledger) -> None:
    seed_releases(ledger, 50)
    with statements(ledger) as seen, ledger.session() as session, pytest.raises(BadInput, match="already exists"):
        store.record_release(session, "shop", "prod", "v7", {}, "alice", T0)
    on_releases = [s for s in seen if "FROM releases" in s]
    assert len(on_releases) == 1 and "releases.label =" in on_releases[0] and "LIMIT" in on_releases[0]
    with ledger.session() as session:
        assert store.release_exists(session, "shop", "prod", "v50")
        assert not store.release_exists(session, "shop", "prod", "v51")
        assert not store.release_exists(session, "shop", "staging", "v1")


# --- audit verify: pages, memory ---------------------------------------------------------------------------------


def test_verify_reads_the_chain_in_pages_of_a_fixed_size(ledger: Ledger) -> None:
    seed_events(ledger, 35)
    assert verify(ledger, chunk=10).entries == 35
    with ledger.session() as session:  # verify's pages come from the driver's cursor, unseen by the engine's events
        pages = [[row[0] for row in page] for page in audit._chunks(session, 1, None, 10)]
        assert [len(page) for page in pages] == [10, 10, 10, 5]
        assert [i for page in pages for i in page] == list(range(1, 36))
        assert [len(page) for page in audit._chunks(session, 12, 30, 10)] == [10, 9]


def peak_mib(ledger: Ledger) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        assert verify(ledger, chunk=500).ok
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_verify_memory_does_not_grow_with_the_log(tmp_path: Path) -> None:
    ledger = open_ledger(f"sqlite:///{tmp_path / 'big.db'}")
    seed_events(ledger, 2_000)
    small = peak_mib(ledger)
    seed_events(ledger, 18_000, first=2_001)
    large = peak_mib(ledger)
    # Ten times the entries (each ~0.7 KB): loading them all would add ~12 MiB; pages of 500 add nothing.
    assert large < small * 1.5 + 0.5, (small, large)


# --- audit verify: checkpoints -----------------------------------------------------------------------------------


def tamper(ledger: Ledger, sql: str) -> None:
    with ledger.engine.begin() as connection:
        connection.execute(text(sql))


def test_verify_resumes_from_a_checkpoint_and_names_its_next_one(ledger: Ledger) -> None:
    seed_events(ledger, 10)
    first = verify(ledger)
    assert first.ok and first.checkpoint is not None and first.checkpoint.event_id == 10
    seed_events(ledger, 5, first=11)
    resumed = verify(ledger, first.checkpoint, chunk=2)
    assert resumed.ok and resumed.entries == 5
    assert resumed.checkpoint is not None and resumed.checkpoint.event_id == 15
    again = verify(ledger, resumed.checkpoint)
    assert again.ok and again.entries == 0 and again.checkpoint == resumed.checkpoint


def test_a_change_after_the_checkpoint_is_found(ledger: Ledger) -> None:
    seed_events(ledger, 10)
    checkpoint = verify(ledger).checkpoint
    assert checkpoint is not None
    seed_events(ledger, 5, first=11)
    tamper(ledger, "UPDATE events SET message = 'nothing happened' WHERE id = 13")
    report = verify(ledger, checkpoint)
    assert not report.ok and report.event_id == 13 and "edited" in (report.problem or "")


def test_a_deletion_after_the_checkpoint_is_found(ledger: Ledger) -> None:
    seed_events(ledger, 15)
    checkpoint = audit.Checkpoint(10, verify_hash(ledger, 10))
    tamper(ledger, "DELETE FROM events WHERE id = 12")
    report = verify(ledger, checkpoint)
    assert not report.ok and report.event_id == 13 and "deleted" in (report.problem or "")
    tamper(ledger, "DELETE FROM events WHERE id >= 13")
    report = verify(ledger, checkpoint)
    assert not report.ok and "newest entries after event 11" in (report.problem or "")


def test_the_checkpoints_own_entry_must_still_hold(ledger: Ledger) -> None:
    seed_events(ledger, 12)
    checkpoint = audit.Checkpoint(10, verify_hash(ledger, 10))
    tamper(ledger, "UPDATE events SET actor = 'mallory' WHERE id = 10")  # its stored hash left as it was
    report = verify(ledger, checkpoint)
    assert not report.ok and report.event_id == 10 and "checkpoint" in (report.problem or "")
    assert not verify(ledger, audit.Checkpoint(10, "f" * 64)).ok


def verify_hash(ledger: Ledger, event_id: int) -> str:
    with ledger.engine.connect() as connection:
        return str(connection.execute(text(f"SELECT hash FROM events WHERE id = {event_id}")).scalar_one())


def test_cli_checkpoint_file_and_from(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "lastgood.yaml"
    file.write_text("app: shop\nstate: sqlite:///state.db\nenvironments: {prod: {}}\ncomponents: []\n")
    ledger = open_ledger(f"sqlite:///{tmp_path / 'state.db'}")
    seed_events(ledger, 8)
    kept = tmp_path / "audit.checkpoint"
    args = ["audit", "verify", "-f", str(file)]
    assert main([*args, "--checkpoint-file", str(kept)]) == 0
    assert "8 entries, chain intact" in capsys.readouterr().out
    assert kept.read_text().startswith("8:")
    seed_events(ledger, 3, first=9)
    assert main([*args, "--checkpoint-file", str(kept), "-o", "json"]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert resumed["ok"] and resumed["entries"] == 3 and resumed["since"].startswith("8:")
    assert kept.read_text().startswith("11:")
    tamper(ledger, "UPDATE events SET message = 'x' WHERE id = 10")
    assert main([*args, "--from", resumed["since"]]) == 1
    assert "event 10" in capsys.readouterr().out
    assert kept.read_text().startswith("11:")  # a failed run keeps the old checkpoint
    assert main([*args, "--from", "not-a-checkpoint"]) == 2
    assert "EVENT_ID:SHA256" in capsys.readouterr().err
