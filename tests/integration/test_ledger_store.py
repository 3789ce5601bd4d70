"""The ledger on a real database, SQLite and PostgreSQL alike: schema, releases, rollbacks, steps, events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from lastgood.domain.states import (
    ROLLBACK_TRANSITIONS,
    STEP_TRANSITIONS,
    IllegalTransition,
    RollbackStatus,
    StepStatus,
    transition,
)
from lastgood.errors import BadInput, UnknownRelease, UnknownRollback
from lastgood.kinds.base import State, state_hash
from lastgood.ledger import db, store
from lastgood.ledger.db import Ledger, open_ledger
from lastgood.ledger.tables import Base, ReleaseComponentRow, ReleaseRow, RollbackRow, StepRow

APP, ENV = "shop", "prod"
T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
TABLES = {
    "alembic_version",
    "environments",
    "releases",
    "release_components",
    "rollbacks",
    "steps",
    "holds",
    "canary_judges",
    "guard_periods",
    "guard_watches",
    "events",
    "escalations",
    "emergency_stops",
    "audit_head",
    "approvals",
    "drills",
    "deployments",
    "users",
    "api_tokens",
    "web_sessions",
}

NESTED: State = {
    "version": "7",
    "weights": {"8": 0.1, "9": 0.05},
    "routing": {"primary": {"version": "7", "tags": ["a", "b"], "meta": {"deep": {"deeper": [1, 2, {"x": None}]}}}},
    "count": 3,
    "ratio": 1.0,
    "big": 2**53 + 1,
    "enabled": True,
    "disabled": False,
    "nothing": None,
    "empty": {},
    "list": [],
    "text": 'ünïcödé ✓ "quoted" \\ back\nslash',
}


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    opened = open_ledger(ledger_url)
    yield opened
    opened.close()


def states(version: str, **extra: Any) -> dict[str, tuple[str, State]]:
    return {
        "api": ("lambda-alias", {"version": version, "weights": {}, **extra}),
        "api-config": ("ssm-parameter", {"parameters": {"/shop/prod/api/x": {"type": "String", "hash": version}}}),
    }


def record(ledger: Ledger, label: str, at: datetime = T0, env: str = ENV, **extra: Any) -> int:
    with ledger.session() as session:
        return store.record_release(session, APP, env, label, states(label, **extra), "tester", at).id


def labels(ledger: Ledger, env: str = ENV) -> list[str]:
    with ledger.session() as session:
        return [r.label for r in store.list_releases(session, APP, env)]


def live_label(ledger: Ledger, env: str = ENV) -> str | None:
    with ledger.session() as session:
        live = store.live_release(session, APP, env)
        return live.label if live else None


def target_label(ledger: Ledger) -> str | None:
    with ledger.session() as session:
        target = store.rollback_target(session, APP, ENV)
        return target.label if target else None


def mark_bad(ledger: Ledger, label: str, reason: str = "errors", at: datetime = T0) -> None:
    with ledger.session() as session:
        store.mark_bad(session, store.get_release(session, APP, ENV, label), reason, at)


def new_rollback(ledger: Ledger, components: tuple[str, ...] = ("api", "worker"), at: datetime = T0) -> str:
    """A planned rollback from the live release to the rollback target, one pending step per component."""
    rollback_id = store.new_rollback_id()
    with ledger.session() as session:
        live = store.live_release(session, APP, ENV)
        target = store.rollback_target(session, APP, ENV)
        assert live is not None and target is not None
        rollback = RollbackRow(
            id=rollback_id,
            app=APP,
            env=ENV,
            from_release_id=live.id,
            to_release_id=target.id,
            status=RollbackStatus.PLANNED,
            partial=False,
            reason="test",
            requested_by="tester",
            created_at=at,
        )
        for position, component in enumerate(components):
            rollback.steps.append(
                StepRow(
                    position=position,
                    component=component,
                    kind="lambda-alias",
                    action="update",
                    before="2",
                    after="1",
                    target={"version": "1", "weights": {}},
                    waits_for=list(components[:position]),
                    status=StepStatus.PENDING,
                )
            )
        session.add(rollback)
    return rollback_id


def step_status(ledger: Ledger, rollback_id: str, component: str) -> str:
    with ledger.session() as session:
        return store.get_step(session, rollback_id, component).status


def rollback_status(ledger: Ledger, rollback_id: str) -> str:
    with ledger.session() as session:
        return store.get_rollback(session, rollback_id).status


def is_utc(value: datetime | None) -> bool:
    return value is not None and value.tzinfo is not None and value.utcoffset() == timedelta(0)


# --- schema -------------------------------------------------------------------------------------------------------


def test_migrations_create_the_schema_and_a_second_open_is_a_no_op(ledger_url: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    first = open_ledger(ledger_url)
    head = ScriptDirectory.from_config(db._alembic_config(ledger_url)).get_current_head()
    try:
        assert set(inspect(first.engine).get_table_names()) == TABLES
        with first.engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_revision() == head
        record(first, "v1")
    finally:
        first.close()

    def no_upgrade(*args: object, **kwargs: object) -> None:
        raise AssertionError("open_ledger ran a migration on a ledger already at head")

    import alembic.command

    monkeypatch.setattr(alembic.command, "upgrade", no_upgrade)
    second = open_ledger(ledger_url)
    try:
        with second.engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_revision() == head
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        assert versions == [head]
        assert labels(second) == ["v1"]
    finally:
        second.close()


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_migration_head_matches_the_models(ledger: Ledger) -> None:
    with ledger.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
        differences = compare_metadata(context, Base.metadata)
        # The comparison does see this database: against no models at all, every table is a difference.
        assert {d[1].name for d in compare_metadata(context, MetaData()) if d[0] == "remove_table"} == TABLES - {
            "alembic_version"
        }
    assert differences == [], "migrations and tables.py disagree; add a migration:\n" + "\n".join(map(str, differences))


def test_the_migrations_have_a_single_head() -> None:
    config: Config = db._alembic_config("sqlite://")
    script = ScriptDirectory.from_config(config)
    assert len(script.get_heads()) == 1, f"the migrations must have a single head, not {script.get_heads()}"


# --- releases -----------------------------------------------------------------------------------------------------


def test_record_release_stores_states_that_round_trip_exactly(ledger: Ledger) -> None:
    with ledger.session() as session:
        release = store.record_release(
            session, APP, ENV, "v1", {"api": ("lambda-alias", NESTED), "db": ("secret", {"hash": "abc"})}, "ann", T0
        )
        release_id = release.id

    # A fresh ledger (new engine, no identity map): what comes back is what the database holds.
    reopened = Ledger(ledger.url)
    try:
        with reopened.session() as session:
            stored = store.get_release(session, APP, ENV, "v1")
            assert stored.id == release_id
            assert stored.recorded_by == "ann" and stored.bad is False and stored.bad_reason is None
            components = {c.component: c for c in stored.components}
            assert [c.component for c in stored.components] == ["api", "db"]
            api = components["api"]
            assert api.kind == "lambda-alias"
            assert api.state == NESTED
            # == treats 1 == 1.0 and True == 1; the JSON text tells the types apart.
            assert json.dumps(api.state, sort_keys=True) == json.dumps(NESTED, sort_keys=True)
            assert isinstance(api.state["count"], int) and isinstance(api.state["ratio"], float)
            assert api.state["routing"]["primary"]["meta"]["deep"]["deeper"][2] == {"x": None}
            assert api.state_hash == state_hash(NESTED) == state_hash(api.state)
            assert components["db"].state == {"hash": "abc"}
            rows = session.scalars(select(ReleaseComponentRow).filter_by(release_id=release_id)).all()
            assert len(rows) == 2
    finally:
        reopened.close()


def test_a_recorded_release_becomes_live(ledger: Ledger) -> None:
    assert live_label(ledger) is None
    record(ledger, "v1")
    assert live_label(ledger) == "v1"
    record(ledger, "v2")
    assert live_label(ledger) == "v2"
    # Each environment has its own live pointer.
    record(ledger, "s1", env="staging")
    assert live_label(ledger) == "v2" and live_label(ledger, "staging") == "s1"
    with ledger.session() as session:
        events = store.events_since(session, APP, ENV)
        assert [e.type for e in events] == ["release-recorded", "release-recorded"]
        assert "v2 recorded (2 components)" in events[1].message


def test_releases_are_immutable(ledger: Ledger) -> None:
    record(ledger, "v1", extra="first")
    record(ledger, "v2")
    with pytest.raises(BadInput, match="already exists"), ledger.session() as session:
        store.record_release(session, APP, ENV, "v1", states("other"), "mallory", T0 + timedelta(hours=1))
    # Nothing of the refused attempt was kept, and the original is untouched.
    assert labels(ledger) == ["v2", "v1"]
    assert live_label(ledger) == "v2"
    with ledger.session() as session:
        v1 = store.get_release(session, APP, ENV, "v1")
        assert v1.recorded_by == "tester"
        assert v1.components[0].state == {"version": "v1", "weights": {}, "extra": "first"}
    # The database itself refuses a duplicate label, whoever writes it.
    with pytest.raises(IntegrityError), ledger.session() as session:
        session.add(ReleaseRow(app=APP, env=ENV, label="v1", recorded_at=T0, recorded_by="x", bad=False))
        session.flush()
    # The same label in another environment is another release.
    record(ledger, "v1", env="staging")
    assert labels(ledger, "staging") == ["v1"]


def test_list_releases_is_newest_first(ledger: Ledger) -> None:
    assert labels(ledger) == []
    # Recorded order decides, not the label or the timestamp.
    for i, label in enumerate(["b", "a", "d", "c"]):
        record(ledger, label, at=T0 - timedelta(minutes=i))
    record(ledger, "other", env="staging")
    assert labels(ledger) == ["c", "d", "a", "b"]


def test_rollback_target_is_the_newest_good_release_older_than_the_live_one(ledger: Ledger) -> None:
    assert target_label(ledger) is None  # nothing recorded
    record(ledger, "v1")
    assert target_label(ledger) is None  # nothing older than the live one
    record(ledger, "v2")
    record(ledger, "v3")
    assert target_label(ledger) == "v2"
    mark_bad(ledger, "v2")
    assert target_label(ledger) == "v1"
    # Releases newer than the live one are never the target.
    with ledger.session() as session:
        store.set_live(session, APP, ENV, store.get_release(session, APP, ENV, "v2").id)
    assert target_label(ledger) == "v1"
    mark_bad(ledger, "v1")
    assert target_label(ledger) is None
    # Other environments do not count.
    record(ledger, "s1", env="staging")
    assert target_label(ledger) is None


def test_mark_bad(ledger: Ledger) -> None:
    record(ledger, "v1")
    record(ledger, "v2")
    at = T0 + timedelta(minutes=5)
    mark_bad(ledger, "v2", "error rate 12% > 5%", at)
    with ledger.session() as session:
        v2 = store.get_release(session, APP, ENV, "v2")
        v1 = store.get_release(session, APP, ENV, "v1")
        assert v2.bad is True and v2.bad_reason == "error rate 12% > 5%" and v2.marked_bad_at == at
        assert v1.bad is False and v1.bad_reason is None and v1.marked_bad_at is None
        # Marking bad does not move the live pointer.
        live = store.live_release(session, APP, ENV)
        assert live is not None and live.label == "v2"
        last = store.events_since(session, APP, ENV)[-1]
        assert last.type == "release-marked-bad" and last.message == "release v2: error rate 12% > 5%"


def test_unknown_release_names_the_known_ones(ledger: Ledger) -> None:
    none_yet = r"no release 'v1' in shop/prod \(none recorded yet\)"
    with pytest.raises(UnknownRelease, match=none_yet), ledger.session() as session:
        store.get_release(session, APP, ENV, "v1")
    record(ledger, "v1.0")
    record(ledger, "v2.0")
    with pytest.raises(UnknownRelease, match=r"did you mean 'v2\.0'\?"), ledger.session() as session:
        store.get_release(session, APP, ENV, "v2.O")
    with pytest.raises(UnknownRelease, match=r"\(known: v2\.0, v1\.0\)"), ledger.session() as session:
        store.get_release(session, APP, ENV, "zzz")
    assert issubclass(UnknownRelease, BadInput)


def test_unknown_rollback_hints_at_recent_ones(ledger: Ledger) -> None:
    with pytest.raises(UnknownRollback, match=r"^no rollback 'rb-nope'$"), ledger.session() as session:
        store.get_rollback(session, "rb-nope")
    record(ledger, "v1")
    record(ledger, "v2")
    rollback_id = new_rollback(ledger)
    typo = rollback_id[:-1] + ("0" if rollback_id[-1] != "0" else "1")
    with pytest.raises(UnknownRollback, match=f"did you mean '{rollback_id}'"), ledger.session() as session:
        store.get_rollback(session, typo)
    with pytest.raises(UnknownRollback, match=f"recent: {rollback_id}"), ledger.session() as session:
        store.get_rollback(session, "something-else-entirely")
    with pytest.raises(UnknownRollback, match="has no step for 'nope'"), ledger.session() as session:
        store.get_step(session, rollback_id, "nope")


# --- rollbacks, steps, events -------------------------------------------------------------------------------------


def test_rollbacks_and_steps_are_stored_in_order(ledger: Ledger) -> None:
    record(ledger, "v1")
    record(ledger, "v2")
    first = new_rollback(ledger, at=T0)
    second = new_rollback(ledger, ("api", "worker", "api-config"), at=T0 + timedelta(minutes=1))
    record(ledger, "v3", env="staging")
    with ledger.session() as session:
        assert [r.id for r in store.list_rollbacks(session, APP, ENV)] == [second, first]
        assert [r.id for r in store.list_rollbacks(session, APP, ENV, limit=1)] == [second]
        assert store.list_rollbacks(session, APP, "staging") == []
        rollback = store.get_rollback(session, second)
        assert [s.component for s in rollback.steps] == ["api", "worker", "api-config"]
        assert [s.position for s in rollback.steps] == [0, 1, 2]
        assert rollback.steps[2].waits_for == ["api", "worker"]
        assert rollback.steps[0].target == {"version": "1", "weights": {}}
        assert rollback.status == RollbackStatus.PLANNED
        assert all(s.status == StepStatus.PENDING and s.attempts == 0 for s in rollback.steps)
    # One step per component per rollback.
    with pytest.raises(IntegrityError), ledger.session() as session:
        session.add(
            StepRow(
                rollback_id=first,
                position=9,
                component="api",
                kind="k",
                action="a",
                before="",
                after="",
                target={},
                waits_for=[],
                status=StepStatus.PENDING,
            )
        )
        session.flush()


def test_events_are_ordered_as_written(ledger: Ledger) -> None:
    record(ledger, "v1")
    record(ledger, "v2")
    rollback_id = new_rollback(ledger)
    # Timestamps out of order and equal: the order events were written in still wins.
    stamps = [T0 + timedelta(seconds=s) for s in (5, 1, 1, 3, 0)]
    with ledger.session() as session:
        for i, at in enumerate(stamps):
            store.add_event(session, APP, ENV, f"e{i}", f"event {i}", at, rollback_id, {"i": i, "n": {"k": [i]}})
    with ledger.session() as session:
        store_events = store.events_of(session, rollback_id)
        assert [e.type for e in store_events] == ["e0", "e1", "e2", "e3", "e4"]
        assert [e.at for e in store_events] == stamps
        assert store_events[3].data == {"i": 3, "n": {"k": [3]}}
        everything = store.events_since(session, APP, ENV)
        assert [e.type for e in everything] == ["release-recorded", "release-recorded", "e0", "e1", "e2", "e3", "e4"]
        assert [e.id for e in everything] == sorted(e.id for e in everything)
        after = store.events_since(session, APP, ENV, after_id=store_events[1].id)
        assert [e.type for e in after] == ["e2", "e3", "e4"]
        assert store.events_since(session, APP, "staging") == []
        assert store.events_of(session, "rb-other") == []


def test_datetimes_come_back_timezone_aware_utc(ledger: Ledger) -> None:
    # Written in UTC+05:30: read back as the same instant, in UTC, to the microsecond.
    kolkata = timezone(timedelta(hours=5, minutes=30))
    at = datetime(2026, 3, 1, 17, 30, 0, 654321, tzinfo=kolkata)
    record(ledger, "v1", at=at)
    record(ledger, "v2", at=at)
    mark_bad(ledger, "v2", at=at + timedelta(seconds=1))
    rollback_id = new_rollback(ledger, at=at)
    with ledger.session() as session:
        step = store.get_step(session, rollback_id, "api")
        transition(step, StepStatus.RUNNING, STEP_TRANSITIONS)
        step.started_at = at

    def check(reader: Ledger) -> None:
        with reader.session() as session:
            v1 = store.get_release(session, APP, ENV, "v1")
            v2 = store.get_release(session, APP, ENV, "v2")
            rollback = store.get_rollback(session, rollback_id)
            step = store.get_step(session, rollback_id, "api")
            event = store.events_since(session, APP, ENV)[0]
            values = [v1.recorded_at, v2.marked_bad_at, rollback.created_at, step.started_at, event.at]
            for value in values:
                assert is_utc(value), f"{value!r} is not timezone-aware UTC"
                assert value is not None and value.tzinfo is UTC
            assert v1.recorded_at == at and v1.recorded_at == datetime(2026, 3, 1, 12, 0, 0, 654321, tzinfo=UTC)
            assert v1.recorded_at.microsecond == 654321
            assert v2.marked_bad_at == at + timedelta(seconds=1)
            assert step.finished_at is None

    fresh = Ledger(ledger.url)
    try:
        check(fresh)
    finally:
        fresh.close()
    if ledger.engine.dialect.name == "postgresql":
        # A server or session in another time zone must not leak into what the ledger returns.
        url = make_url(ledger.url).update_query_dict({"options": "-c TimeZone=America/Sao_Paulo"})
        elsewhere = Ledger(url.render_as_string(hide_password=False))
        try:
            with elsewhere.engine.connect() as connection:
                assert connection.execute(text("SHOW TimeZone")).scalar() == "America/Sao_Paulo"
            check(elsewhere)
        finally:
            elsewhere.close()


def test_step_and_rollback_states_follow_the_transition_rules(ledger: Ledger) -> None:
    record(ledger, "v1")
    record(ledger, "v2")
    rollback_id = new_rollback(ledger, ("api", "worker", "db"))

    def move_step(component: str, to: str) -> None:
        with ledger.session() as session:
            transition(store.get_step(session, rollback_id, component), to, STEP_TRANSITIONS)

    def move_rollback(to: str) -> None:
        with ledger.session() as session:
            transition(store.get_rollback(session, rollback_id), to, ROLLBACK_TRANSITIONS)

    # Every status the rules know is a status a step or rollback may be stored with.
    assert set(STEP_TRANSITIONS) == set(StepStatus)
    assert set(ROLLBACK_TRANSITIONS) == set(RollbackStatus)

    # A pending step can only start.
    for illegal in (StepStatus.SUCCEEDED, StepStatus.UNCHANGED, StepStatus.FAILED, StepStatus.PENDING):
        with pytest.raises(IllegalTransition, match=f"pending -> {illegal}"):
            move_step("api", illegal)
    assert step_status(ledger, rollback_id, "api") == StepStatus.PENDING  # the refused change was not kept

    with pytest.raises(IllegalTransition, match="planned -> succeeded"):
        move_rollback(RollbackStatus.SUCCEEDED)
    move_rollback(RollbackStatus.RUNNING)
    assert rollback_status(ledger, rollback_id) == RollbackStatus.RUNNING

    move_step("api", StepStatus.RUNNING)
    move_step("api", StepStatus.RUNNING)  # found running again after a crash: rerun
    move_step("api", StepStatus.SUCCEEDED)
    move_step("worker", StepStatus.RUNNING)
    move_step("worker", StepStatus.UNCHANGED)
    move_step("db", StepStatus.RUNNING)
    move_step("db", StepStatus.FAILED)
    assert step_status(ledger, rollback_id, "api") == StepStatus.SUCCEEDED
    assert step_status(ledger, rollback_id, "worker") == StepStatus.UNCHANGED
    assert step_status(ledger, rollback_id, "db") == StepStatus.FAILED

    # Done steps are final.
    for component in ("api", "worker"):
        for to in StepStatus:
            with pytest.raises(IllegalTransition):
                move_step(component, to)
    # A failed step can only be retried.
    for to in (StepStatus.SUCCEEDED, StepStatus.UNCHANGED, StepStatus.PENDING, StepStatus.FAILED):
        with pytest.raises(IllegalTransition):
            move_step("db", to)

    move_rollback(RollbackStatus.FAILED)
    with pytest.raises(IllegalTransition, match="failed -> succeeded"):
        move_rollback(RollbackStatus.SUCCEEDED)
    # Resume: the rollback and its failed step run again.
    move_rollback(RollbackStatus.RUNNING)
    move_step("db", StepStatus.RUNNING)
    move_step("db", StepStatus.SUCCEEDED)
    move_rollback(RollbackStatus.SUCCEEDED)
    for to in RollbackStatus:
        with pytest.raises(IllegalTransition):
            move_rollback(to)

    with ledger.session() as session:
        rollback = store.get_rollback(session, rollback_id)
        assert rollback.status == RollbackStatus.SUCCEEDED
        assert [s.status for s in rollback.steps] == [StepStatus.SUCCEEDED, StepStatus.UNCHANGED, StepStatus.SUCCEEDED]


def test_head_revision_constant_matches_the_migrations() -> None:
    from alembic.script import ScriptDirectory

    from lastgood.ledger.db import HEAD_REVISION, MIGRATIONS, _alembic_config

    script = ScriptDirectory.from_config(_alembic_config("sqlite://"))
    assert script.get_current_head() == HEAD_REVISION, f"update HEAD_REVISION in {MIGRATIONS.parent / 'db.py'}"
