"""lastgood's own runner for numbered SQL files: `0001_name.up.sql` / `0001_name.down.sql`.

Applied migrations are rows of `lastgood_schema_version(version, name, applied_at)`; the schema's revision is
the highest version there. Every function here runs on a connection the caller holds in a transaction, except
`apply_up`, which opens its own, so a batch of migrations lands whole or not at all.
"""

from __future__ import annotations

import importlib.util
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Engine,
    MetaData,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from lastgood.errors import BadInput, LastgoodError, StepFailed

VERSION_TABLE = "lastgood_schema_version"
_FILE = re.compile(r"^(\d+)_(.+)\.(up|down)\.sql$")

_metadata = MetaData()
versions_table = Table(
    VERSION_TABLE,
    _metadata,
    Column("version", BigInteger, primary_key=True, autoincrement=False),
    Column("name", Text, nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)


def parse_url(url: str) -> URL:
    """The URL, with a bare postgresql:// driven by psycopg 3 when psycopg2 is absent. Never echoes the text:
    it may hold a password."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise BadInput("url: not a SQLAlchemy database URL (e.g. postgresql+psycopg://user:${PW}@host/db)") from None
    if parsed.drivername in {"postgres", "postgresql"} and importlib.util.find_spec("psycopg2") is None:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def safe_url(url: str) -> str:
    """The URL as it may be shown and stored: the password masked."""
    try:
        return parse_url(url).render_as_string(hide_password=True)
    except BadInput:
        return "<unparsable url>"


def scrub(text: str, url: str) -> str:
    try:
        password = make_url(url).password
    except ArgumentError:
        return text.replace(url, "<url>")
    text = text.replace(url, safe_url(url))
    if password:
        for form in {str(password), quote(str(password), safe=""), quote_plus(str(password))}:
            text = text.replace(form, "***")
    return text


def open_engine(url: str) -> Engine:
    parsed = parse_url(url)
    engine = create_engine(parsed, poolclass=NullPool)
    if parsed.get_backend_name() == "sqlite":
        _transactional_ddl_on_sqlite(engine)
    return engine


def _transactional_ddl_on_sqlite(engine: Engine) -> None:
    """Python's sqlite3 opens no transaction before DDL, so CREATE/DROP would commit at once; take BEGIN over."""

    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN")


@contextmanager
def database_errors(engine: Engine, url: str, what: str) -> Iterator[None]:
    """Database errors as StepFailed, naming the database without its password."""
    dbapi_error: type[Exception] = getattr(engine.dialect.loaded_dbapi, "Error", SQLAlchemyError)
    try:
        yield
    except LastgoodError:
        raise
    except (SQLAlchemyError, dbapi_error) as error:
        lines = str(getattr(error, "orig", None) or error).strip().splitlines() or [""]
        detail = scrub(lines[0], url)
        raise StepFailed(f"{safe_url(url)}: {what}: {type(error).__name__}: {detail}") from None


@dataclass(frozen=True)
class SqlMigration:
    version: int
    name: str
    up: Path | None
    down: Path | None

    @property
    def id(self) -> str:
        return f"{self.version:04d}_{self.name}"

    def known_as(self, label: str) -> bool:
        """Whether a team's label ('3', '0003' or '0003_add_email') names this migration."""
        label = label.strip()
        return label == self.id or (label.isdigit() and int(label) == self.version)


def discover(directory: str | Path) -> dict[int, SqlMigration]:
    folder = Path(directory)
    if not folder.is_dir():
        raise BadInput(f"sql-files: no directory {folder}")
    files: dict[int, dict[str, Path]] = {}
    names: dict[int, str] = {}
    for path in sorted(folder.iterdir()):
        match = _FILE.match(path.name)
        if not match:
            continue
        version, name, direction = int(match.group(1)), match.group(2), match.group(3)
        if names.setdefault(version, name) != name:
            raise BadInput(f"sql-files: two migrations numbered {version} in {folder}: {names[version]}, {name}")
        files.setdefault(version, {})[direction] = path
    return {v: SqlMigration(v, names[v], f.get("up"), f.get("down")) for v, f in sorted(files.items())}


def current_version(connection: Connection) -> int | None:
    """The highest applied version; None when nothing was ever applied (no version table, or an empty one)."""
    if not sa_inspect(connection).has_table(VERSION_TABLE):
        return None
    found = connection.execute(select(func.max(versions_table.c.version))).scalar()
    return None if found is None else int(found)


def split_statements(sql: str) -> Iterator[str]:
    """Statements of a script, split where SQLite's own parser says one is complete (so ';' in strings and
    trigger bodies are safe). Drivers that take a whole script at once (psycopg) are not split."""
    buffer = ""
    for piece in sql.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \t\r\n;"):
                yield buffer.strip()
            buffer = ""
    if buffer.strip(" \t\r\n;"):
        yield buffer.strip().rstrip(";")


def execute_script(connection: Connection, sql: str) -> None:
    """Run a file's statements on the connection's own DBAPI cursor: no parameter parsing, so '%' is literal."""
    cursor = connection.connection.cursor()
    try:
        if connection.dialect.name == "postgresql":
            cursor.execute(sql)
        else:
            for statement in split_statements(sql):
                cursor.execute(statement)
    finally:
        cursor.close()


def run_down(connection: Connection, migration: SqlMigration) -> None:
    if migration.down is None:
        raise StepFailed(
            f"migration {migration.id} has no down file ({migration.id}.down.sql): it cannot be undone"
            " without losing data; write one, or roll back to a release that includes it"
        )
    execute_script(connection, migration.down.read_text())
    connection.execute(delete(versions_table).where(versions_table.c.version == migration.version))


def run_up(connection: Connection, migration: SqlMigration) -> None:
    if migration.up is None:
        raise StepFailed(f"migration {migration.id} has no up file ({migration.id}.up.sql)")
    execute_script(connection, migration.up.read_text())
    connection.execute(
        insert(versions_table).values(version=migration.version, name=migration.name, applied_at=datetime.now(UTC))
    )


def ensure_version_table(connection: Connection) -> None:
    _metadata.create_all(connection, tables=[versions_table], checkfirst=True)


def apply_up(url: str, directory: str | Path, to: int | None = None) -> list[str]:
    """Migrate a database up to `to` (default: the newest file) in one transaction; the ids applied."""
    migrations = discover(directory)
    engine = open_engine(url)
    try:
        with database_errors(engine, url, "migrating up"), engine.begin() as connection:
            ensure_version_table(connection)
            current = current_version(connection) or 0
            pending = [m for v, m in migrations.items() if v > current and (to is None or v <= to)]
            for migration in pending:
                run_up(connection, migration)
            return [m.id for m in pending]
    finally:
        engine.dispose()
