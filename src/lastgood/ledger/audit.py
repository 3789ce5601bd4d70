"""The audit chain over the ledger's events: append-only, each entry's hash covers the entry before it.

An edited entry no longer matches its hash; a deleted one breaks the next entry's link; deleting the newest
entries no longer matches the head row. `verify` names the first entry that does not hold.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import sha256
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lastgood.errors import BadInput
from lastgood.ledger.tables import ChainHeadRow, EventRow

GENESIS = "0" * 64


def _at(value: Any) -> str:
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, str):  # rows read without the ORM's type
        if len(value) == 32 and value[10] == "T" and value.endswith("+00:00"):  # already canonical (PostgreSQL)
            return value
        if len(value) == 26 and value[10] == " ":  # SQLite's UTC "YYYY-MM-DD HH:MM:SS.ffffff"
            return f"{value[:10]}T{value[11:]}+00:00"
        return _at(datetime.fromisoformat(value))
    return str(value)


_ENCODE = c_make_encoder(None, str, encode_basestring_ascii, None, ":", ",", True, False, True)
"""The C encoder behind json.dumps(sort_keys=True, separators=(",", ":"), default=str), made once: json.dumps
builds one per call, which was a third of verify's time (test_audit checks that the two agree)."""
_DECODE: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def canonical_json(value: Any) -> str:
    return "".join(_ENCODE(value, 0))


def _data(value: Any) -> Any:
    """An entry's data as read: a dict, or JSON text (the text as stored, read without the ORM's type)."""
    if not isinstance(value, str):
        return value or {}
    if value == "{}":
        return {}
    try:
        parsed, end = _DECODE(value, 0)
    except StopIteration:
        end = -1
    return parsed if end == len(value) else json.loads(value)


def entry_hash(previous: str, entry: Mapping[str, Any]) -> str:
    fields = (entry["at"], entry["app"], entry["env"], entry.get("rollback_id"), entry["type"], entry["message"])
    return _hash(previous, *fields, entry.get("data"), entry.get("actor"))


def _hash(
    previous: str, at: Any, app: str, env: str, rollback_id: str | None, type_: str, message: str, data: Any, actor: Any
) -> str:
    fields = [previous, _at(at), app, env, rollback_id, type_, message, _data(data), actor or ""]
    return sha256("".join(_ENCODE(fields, 0)).encode()).hexdigest()


def _fields(row: EventRow) -> dict[str, Any]:
    return {
        "at": row.at,
        "app": row.app,
        "env": row.env,
        "rollback_id": row.rollback_id,
        "type": row.type,
        "message": row.message,
        "data": row.data,
        "actor": row.actor,
    }


def append(session: Session, row: EventRow) -> None:
    """Chain and add an event (see `append_all`)."""
    append_all(session, [row])


def append_all(session: Session, rows: list[EventRow]) -> None:
    """Chain and add events in their order, reading the head once. The head row is locked (PostgreSQL) or the
    transaction is the only writer (SQLite begins every transaction IMMEDIATE), so two writers never chain onto
    the same entry."""
    if not rows:
        return
    head = session.scalar(select(ChainHeadRow).where(ChainHeadRow.id == 1).with_for_update())
    if head is None:
        head = ChainHeadRow(id=1, last_event_id=0, hash=GENESIS)
        session.add(head)
    previous = head.hash
    for row in rows:
        row.prev_hash = previous
        row.hash = previous = entry_hash(previous, _fields(row))
    session.add_all(rows)  # inserted in this order, so ids follow the chain
    session.flush()
    head.hash, head.last_event_id = previous, rows[-1].id


CHUNK = 1000
"""Entries read per query by `verify`: memory stays the same however long the log grows."""


@dataclass(frozen=True)
class Checkpoint:
    """A verified entry: its id and hash. Verifying from it checks that entry and everything after it."""

    event_id: int
    hash: str

    def __str__(self) -> str:
        return f"{self.event_id}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        event_id, _, digest = text.strip().partition(":")
        if not event_id.isdigit() or len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise BadInput(
                f"checkpoint {text!r}: expected EVENT_ID:SHA256 as `audit verify` prints it, e.g. 1200:3f5a...e1"
            )
        return cls(int(event_id), digest)


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    entries: int
    problem: str | None = None
    event_id: int | None = None
    checkpoint: Checkpoint | None = None  # the newest entry verified, to resume from next time


_PG_AT = """to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""  # isoformat's, exactly
_PAGES = {
    # Plain SQL on the driver's own cursor, on purpose: tuples as they come, `at` and `data` as text (the
    # canonical time on PostgreSQL; SQLite's stored text, which `_at` rewrites): the ORM's types and rows cost
    # more than the hashing. Keyset pages: each starts after the last id seen, so none costs more than the first.
    "sqlite": "SELECT id, at, app, env, rollback_id, type, message, data, actor, prev_hash, hash FROM events "
    "WHERE id > :after AND id <= :last ORDER BY id LIMIT :size",
    "postgresql": f"SELECT id, {_PG_AT}, app, env, rollback_id, type, message, data::text, actor, prev_hash, hash "
    "FROM events WHERE id > %(after)s AND id <= %(last)s ORDER BY id LIMIT %(size)s",
}


def _chunks(session: Session, first_id: int, last_id: int | None, size: int) -> Iterator[Sequence[Sequence[Any]]]:
    """The entries from `first_id` to `last_id`, in id order, `size` at a time. On PostgreSQL the next page is
    fetched on a thread while the caller hashes this one: the server's time per page then overlaps the hashing
    instead of adding to it (an SQLite query runs in this process and would only contend for the GIL)."""
    connection = session.connection()
    page = _PAGES[connection.dialect.name]
    cursor = connection.connection.cursor()
    last = last_id if last_id is not None else 2**62

    def fetch(after: int) -> Sequence[Sequence[Any]]:
        cursor.execute(page, {"after": after, "last": last, "size": size})
        return cursor.fetchall()

    ahead = ThreadPoolExecutor(1, "audit-page") if connection.dialect.name == "postgresql" else None
    pending: Future[Sequence[Sequence[Any]]] | None = None
    try:
        rows = fetch(first_id - 1)
        while True:
            more = len(rows) == size  # a short page is the last: no query for an empty one
            if more and ahead is not None:
                pending = ahead.submit(fetch, rows[-1][0])
            if rows:
                yield rows
            if not more:
                return
            rows = pending.result() if pending is not None else fetch(rows[-1][0])
            pending = None
    finally:
        if pending is not None:  # the caller stopped early: the page in flight must finish before the cursor closes
            pending.exception()
        if ahead is not None:
            ahead.shutdown()
        cursor.close()


def _first_break(rows: Sequence[Sequence[Any]], previous: str | None) -> tuple[int, str] | None:
    """The first entry of `rows` that does not hold, given the hash of the entry before them (None: take the
    first entry's word for it), with what is wrong; None when all hold. One tight loop: it is verify's cost."""
    for index, (event_id, at, app, env, rollback_id, type_, message, data, actor, prev_hash, digest) in enumerate(rows):
        if previous is not None and prev_hash != previous:
            return index, f"event {event_id}: the entry before it was deleted or changed"
        if _hash(prev_hash, at, app, env, rollback_id, type_, message, data, actor) != digest:
            return index, f"event {event_id} ({type_}) was edited after it was written"
        previous = digest
    return None


def _matches(session: Session, checkpoint: Checkpoint) -> bool:
    """The checkpoint's entry is still there, with the checkpoint's hash, and its content still hashes to it."""
    rows = next(_chunks(session, checkpoint.event_id, checkpoint.event_id, 1), [])
    return len(rows) == 1 and rows[0][10] == checkpoint.hash and _first_break(rows, None) is None


def verify(session: Session, since: Checkpoint | None = None, chunk: int = CHUNK) -> ChainReport:
    """Check every entry's hash and link, `chunk` entries per query, or those after a checkpoint: the
    checkpoint's own entry must still hold its hash, so any entry changed after it is found. Entries appended
    while this runs are left to the next run: the head is read first and the entries up to it are checked."""
    head = session.get(ChainHeadRow, 1)
    last_id = head.last_event_id if head is not None else None
    previous, first_id, newest = GENESIS, 1, None
    if since is not None:
        if not _matches(session, since):
            problem = f"event {since.event_id} no longer matches the checkpoint: it was deleted or changed"
            return ChainReport(False, 0, problem, since.event_id)
        previous, first_id, newest = since.hash, since.event_id + 1, since
    count = 0
    for rows in _chunks(session, first_id, last_id, chunk):
        broken = _first_break(rows, previous)
        if broken is not None:
            index, problem = broken
            return ChainReport(False, count + index + 1, problem, rows[index][0])
        count += len(rows)
        previous, newest = rows[-1][10], Checkpoint(rows[-1][0], rows[-1][10])
    if head is not None and head.hash != previous:
        after = newest.event_id if newest else 0
        return ChainReport(False, count, f"the newest entries after event {after} were deleted", None, newest)
    return ChainReport(True, count, checkpoint=newest)
