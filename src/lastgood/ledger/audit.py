"""The audit chain over the ledger's events: append-only, each entry's hash covers the entry before it.

An edited entry no longer matches its hash; a deleted one breaks the next entry's link; deleting the newest
entries no longer matches the head row. `verify` names the first entry that does not hold.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lastgood.ledger.tables import ChainHeadRow, EventRow

GENESIS = "0" * 64


def _at(value: Any) -> str:
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, str):  # SQLite rows read without the ORM's type
        return _at(datetime.fromisoformat(value))
    return str(value)


def entry_hash(previous: str, entry: Mapping[str, Any]) -> str:
    data = entry.get("data") or {}
    if isinstance(data, str):
        data = json.loads(data)
    canonical = json.dumps(
        [
            previous,
            _at(entry["at"]),
            entry["app"],
            entry["env"],
            entry.get("rollback_id"),
            entry["type"],
            entry["message"],
            data,
            entry.get("actor") or "",
        ],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


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


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    entries: int
    problem: str | None = None
    event_id: int | None = None


def verify(session: Session) -> ChainReport:
    previous, count = GENESIS, 0
    for row in session.scalars(select(EventRow).order_by(EventRow.id)):
        count += 1
        if row.prev_hash != previous:
            return ChainReport(False, count, f"event {row.id}: the entry before it was deleted or changed", row.id)
        if entry_hash(previous, _fields(row)) != row.hash:
            return ChainReport(False, count, f"event {row.id} ({row.type}) was edited after it was written", row.id)
        previous = row.hash
    head = session.get(ChainHeadRow, 1)
    if head is not None and head.hash != previous:
        return ChainReport(False, count, f"the newest entries after event {head.last_event_id} were deleted", None)
    return ChainReport(True, count)
