"""Opening the ledger: an engine for the URL, migrations brought to head, sessions."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from lastgood.config.urls import check_state_url
from lastgood.errors import BadInput, LastgoodError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_URL = "sqlite:///.lastgood/state.db"
# The newest migration. Checked against the migrations folder by a test; kept here so that opening an
# up-to-date ledger does not import Alembic (a fifth of the CLI's start-up time).
HEAD_REVISION = "0012"
MIGRATION_LOCK = 7_351_001  # pg_advisory_xact_lock key held while migrating


def resolve_url(configured: str | None, base_dir: Path) -> str:
    """LASTGOOD_STATE, else the file's `state`, else the default; relative SQLite paths are the file's."""
    from_env = os.environ.get("LASTGOOD_STATE")
    url = from_env or configured or DEFAULT_URL
    try:
        parsed = check_state_url(url)
    except ValueError as error:
        raise BadInput(f"{'LASTGOOD_STATE' if from_env else 'state'}: {error}") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database)
        if not path.is_absolute():
            path = base_dir / path
        path.parent.mkdir(parents=True, exist_ok=True)
        url = parsed.set(database=str(path)).render_as_string(hide_password=False)
    return url


class Ledger:
    """A handle on one ledger database; thread-safe session factory."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer: the process's threads queue here rather than on SQLite's busy timeout.
        # PostgreSQL needs no such lock.
        self._write_lock: AbstractContextManager[object] = (
            threading.Lock() if url.startswith("sqlite") else nullcontext()
        )

    @contextmanager
    def session(self, actor: str = "") -> Iterator[Session]:
        """One transaction; committed on success. `actor` signs the events written in it."""
        with self._write_lock, self._sessions() as session, session.begin():
            session.info["actor"] = actor
            yield session

    def migrate(self) -> None:
        try:
            current = self.current_revision()
        except OperationalError as error:
            raise LastgoodError(f"cannot open the ledger at {_safe(self.url)}: {error.orig}") from None
        if current != HEAD_REVISION:
            from alembic import command

            config = _alembic_config(self.url)
            with self.engine.begin() as connection:
                if connection.dialect.name == "postgresql":  # replicas starting together migrate one at a time
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
                config.attributes["connection"] = connection
                command.upgrade(config, "head")  # from where the one before us left it: nothing, once at head

    def current_revision(self) -> str | None:
        with self.engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()

    def close(self) -> None:
        self.engine.dispose()


def open_ledger(url: str) -> Ledger:
    ledger = Ledger(url)
    ledger.migrate()
    return ledger


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
            # Let SQLAlchemy, not the driver, begin transactions, so that they can begin IMMEDIATE below.
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin_immediate(connection):  # type: ignore[no-untyped-def]
            # Take the write lock up front: two processes appending to the audit chain never fork it.
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True)


def _alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
