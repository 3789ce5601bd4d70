"""The canary judges' rows on SQLite and PostgreSQL: a save over a stale version writes nothing, so two
processes judging the same canary never both feed a period; a judge saved by one process is continued by the
next one, with the alpha it has left."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from lastgood.judge.canary import CanaryInterval, CanaryJudge
from lastgood.ledger import judges
from lastgood.ledger.db import Ledger, open_ledger

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    opened = open_ledger(ledger_url)
    yield opened
    opened.close()


def save(ledger: Ledger, state: dict[str, object], expected: int, minute: int = 1) -> bool:
    with ledger.session() as session:
        start = NOW + timedelta(minutes=minute)
        return judges.save(session, "shop/prod/api/2->1", "shop", "prod", state, start, expected, NOW)


def test_a_save_over_a_stale_version_changes_nothing(ledger: Ledger) -> None:
    assert save(ledger, {"n": 1}, expected=0)
    assert not save(ledger, {"n": "other first save"}, expected=0)
    assert save(ledger, {"n": 2}, expected=1, minute=2)
    assert not save(ledger, {"n": "stale"}, expected=1, minute=3)
    with ledger.session() as session:
        stored = judges.load(session, "shop/prod/api/2->1")
    assert stored is not None
    assert (stored.state, stored.version, stored.next_start) == ({"n": 2}, 2, NOW + timedelta(minutes=2))


@pytest.mark.slow
def test_racing_first_saves_let_exactly_one_in(ledger: Ledger) -> None:
    results: list[bool] = []
    barrier = threading.Barrier(4)

    def one(n: int) -> None:
        barrier.wait()
        results.append(save(ledger, {"n": n}, expected=0))

    threads = [threading.Thread(target=one, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, False, True]


@pytest.mark.slow
def test_a_judge_round_trips_through_the_ledger_exactly(ledger: Ledger) -> None:
    judge = CanaryJudge()
    for _ in range(6):
        judge.observe(CanaryInterval(200.0, 1800.0, 3.0, 9.0, {"p50": 100.0}, {"p50": 900.0}))
    assert save(ledger, judge.to_state(), expected=0)
    with ledger.session() as session:
        stored = judges.load(session, "shop/prod/api/2->1")
    assert stored is not None
    again = CanaryJudge()
    assert again.restore(stored.state)
    assert again.verdict().to_dict() == judge.verdict().to_dict()
    nxt = CanaryInterval(200.0, 1800.0, 4.0, 9.0, {"p50": 100.0}, {"p50": 900.0})
    assert again.observe(nxt).to_dict() == judge.observe(nxt).to_dict()
