"""sql-migrations: a database schema's migration revision (alembic, or numbered SQL files run by lastgood).

Rolling back runs the down migrations from the current revision to the recorded one in ONE transaction (PostgreSQL
and SQLite have transactional DDL), then checks row counts, foreign keys and custom SQL inside that same
transaction: a failed check rolls everything back, so the schema is left exactly as it was. The URL's password
never reaches the ledger or a message.
"""

from __future__ import annotations

import ast
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from pydantic import Field, model_validator

from lastgood.config.models import Component, Strict
from lastgood.errors import BadInput, LastgoodError, StepFailed
from lastgood.kinds.base import ApplyResult, Change, IamScope, IamStatement, Kind, KindContext, State

# SQLAlchemy and sql_files (which needs it) are imported where a database is opened: loading a file that names
# this kind (`lastgood validate`) reads only the settings model.
if TYPE_CHECKING:
    from sqlalchemy import Connection

    from lastgood.kinds.sql_files import SqlMigration

__all__ = ["SqlMigrations", "SqlMigrationsSpec"]

Scalar = str | int | float | bool | None
_TRANSACTIONAL_DDL = {"postgresql", "sqlite"}


class SqlCheck(Strict):
    query: str = Field(description="SQL returning one value (first column of the first row).")
    expect: Scalar = Field(description="The value the query must return after the rollback.")


class SqlChecks(Strict):
    tables: list[str] = Field(
        default_factory=list,
        description="Tables (or schema.table) whose row counts are taken before the rollback and compared after.",
    )
    count_tolerance: float = Field(
        default=0.0, ge=0.0, description="Allowed relative change of a row count: 0.05 lets it move by 5%."
    )
    foreign_keys: bool = Field(
        default=True, description="Check that every foreign key still holds (PostgreSQL, SQLite)."
    )
    sql: list[SqlCheck] = Field(default_factory=list, description="Custom queries and the values they must return.")


class SqlMigrationsSpec(Component):
    kind: Literal["sql-migrations"] = "sql-migrations"
    path_fields: ClassVar[tuple[str, ...]] = ("alembic_ini", "script_location", "directory")
    url: str = Field(
        description="SQLAlchemy URL of the database; write the password as ${VAR} so it comes from the environment."
        " It is only ever stored and shown with the password masked."
    )
    tool: Literal["alembic", "sql-files"] = Field(description="Who wrote the migrations.")
    alembic_ini: str | None = Field(default=None, description="alembic: path of alembic.ini (its URL is ignored).")
    script_location: str | None = Field(
        default=None, description="alembic: the migrations directory (instead of, or overriding, alembic.ini's)."
    )
    directory: str | None = Field(
        default=None, description="sql-files: directory of 0001_name.up.sql / 0001_name.down.sql files."
    )
    irreversible: list[str] = Field(
        default_factory=list,
        description="Migration ids whose undoing loses data (alembic revision, or 3 / 0003 / 0003_name): a rollback"
        " through one is destructive.",
    )
    incompatible: list[str] = Field(
        default_factory=list,
        description="Migration ids that are not backward compatible: the previous release's code cannot run on the"
        " schema they make, so code cannot be rolled back without the schema.",
    )
    checks: SqlChecks = Field(default_factory=SqlChecks, description="What must hold after the rollback.")

    @model_validator(mode="after")
    def _tool_settings(self) -> SqlMigrationsSpec:
        if self.tool == "alembic" and not (self.alembic_ini or self.script_location):
            raise ValueError("tool alembic needs alembic_ini or script_location")
        if self.tool == "sql-files" and not self.directory:
            raise ValueError("tool sql-files needs directory")
        return self


@dataclass(frozen=True)
class MigrationStep:
    id: str
    direction: Literal["down", "up"]
    problem: str | None = None
    """Why this migration cannot be undone (no down file, an empty or raising downgrade)."""
    aliases: tuple[str, ...] = ()
    number: int | None = None
    """sql-files: the file number."""

    def known_as(self, label: str) -> bool:
        return label.strip() in {self.id, *self.aliases}


class Migrator(Protocol):
    def current(self, connection: Connection) -> str | None: ...
    def steps(self, current: str | None, target: str | None) -> list[MigrationStep]: ...
    def run(self, connection: Connection, current: str | None, target: str | None) -> None: ...


class SqlFilesMigrator:
    def __init__(self, directory: str) -> None:
        self.directory = directory

    def current(self, connection: Connection) -> str | None:
        from lastgood.kinds.sql_files import current_version

        version = current_version(connection)
        return None if version is None else str(version)

    def steps(self, current: str | None, target: str | None) -> list[MigrationStep]:
        from lastgood.kinds.sql_files import discover

        migrations, now, wanted = discover(self.directory), _version(current), _version(target)
        if wanted < now:
            versions = sorted({v for v in migrations if wanted < v <= now} | {now}, reverse=True)
            return [self._down_step(v, migrations.get(v)) for v in versions]
        if wanted not in migrations:
            raise StepFailed(f"no migration numbered {wanted} in {self.directory}")
        return [self._up_step(migrations[v]) for v in sorted(migrations) if now < v <= wanted]

    def _down_step(self, version: int, found: SqlMigration | None) -> MigrationStep:
        aliases = (str(version), f"{version:04d}")
        if found is None:
            return MigrationStep(
                str(version), "down", f"no file numbered {version} in {self.directory}", aliases, version
            )
        problem = None if found.down else f"no down file {found.id}.down.sql"
        return MigrationStep(found.id, "down", problem, aliases, version)

    @staticmethod
    def _up_step(found: SqlMigration) -> MigrationStep:
        problem = None if found.up else f"no up file {found.id}.up.sql"
        return MigrationStep(found.id, "up", problem, (str(found.version), f"{found.version:04d}"), found.version)

    def run(self, connection: Connection, current: str | None, target: str | None) -> None:
        from lastgood.kinds.sql_files import discover, ensure_version_table, run_down, run_up

        migrations = discover(self.directory)
        if _version(target) > _version(current):
            ensure_version_table(connection)
        for step in self.steps(current, target):
            found = migrations.get(step.number) if step.number is not None else None
            if found is None:
                raise StepFailed(f"migration {step.id}: {step.problem}")
            (run_down if step.direction == "down" else run_up)(connection, found)


def _version(revision: str | None) -> int:
    return int(revision) if revision else 0


# alembic's `op` and `context` are module-level proxies: two migrations at once in one process would share them.
_ALEMBIC = threading.Lock()


class AlembicMigrator:
    """Runs the revisions' own upgrade()/downgrade() on lastgood's connection, without the project's env.py
    (which would open and commit its own transaction): the default version table alembic_version is used."""

    def __init__(self, spec: SqlMigrationsSpec) -> None:
        from alembic.config import Config
        from alembic.script import ScriptDirectory
        from alembic.util import CommandError

        self.config = Config(spec.alembic_ini) if spec.alembic_ini else Config()
        if spec.alembic_ini and not Path(spec.alembic_ini).is_file():
            raise BadInput(f"alembic_ini: no file {spec.alembic_ini}")
        if spec.script_location:
            self.config.set_main_option("script_location", spec.script_location)
        try:
            self.script = ScriptDirectory.from_config(self.config)
        except CommandError as error:
            raise BadInput(f"alembic: {error}") from None

    def current(self, connection: Connection) -> str | None:
        from alembic.runtime.migration import MigrationContext

        heads = MigrationContext.configure(connection).get_current_heads()
        return ",".join(sorted(heads)) or None

    def steps(self, current: str | None, target: str | None) -> list[MigrationStep]:
        from alembic.util import CommandError

        for revision in (current, target):
            if revision and "," in revision:
                raise StepFailed(f"alembic revision {revision} has several heads; merge them before rolling back")
        try:
            if self._is_ancestor(target, current):
                scripts = list(self.script.iterate_revisions(current or "base", target or "base"))
                return [MigrationStep(s.revision, "down", _downgrade_problem(Path(s.path))) for s in scripts]
            if self._is_ancestor(current, target):
                scripts = list(self.script.iterate_revisions(target or "base", current or "base"))
                return [MigrationStep(s.revision, "up") for s in reversed(scripts)]
        except CommandError as error:
            raise StepFailed(f"alembic: {error} (is the checked-out code the one that made this revision?)") from None
        raise StepFailed(f"alembic revisions {current} and {target} are on different branches")

    def _is_ancestor(self, older: str | None, newer: str | None) -> bool:
        if older is None:
            return True
        if newer is None:
            return False
        return older in {s.revision for s in self.script.walk_revisions("base", newer)}

    def run(self, connection: Connection, current: str | None, target: str | None) -> None:
        from alembic.runtime.environment import EnvironmentContext

        up = self._is_ancestor(current, target) and current != target
        destination = target or "base"

        def revisions(revision: Any, _context: Any) -> Any:
            if up:
                return self.script._upgrade_revs(destination, revision)
            return self.script._downgrade_revs(destination, revision)

        with _ALEMBIC, EnvironmentContext(self.config, self.script, fn=revisions, destination_rev=destination) as env:
            env.configure(connection=connection, transactional_ddl=True)
            env.run_migrations()


def _downgrade_problem(path: Path) -> str | None:
    """A downgrade() that does nothing, raises, or is missing cannot undo its migration."""
    tree = ast.parse(path.read_text())
    function = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "downgrade"), None)
    if function is None:
        return "it has no downgrade()"
    body = [n for n in function.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    if all(isinstance(n, ast.Pass) for n in body):
        return "its downgrade() does nothing"
    if all(isinstance(n, ast.Raise) for n in body):
        return "its downgrade() only raises"
    return None


def migrator_for(spec: SqlMigrationsSpec) -> Migrator:
    if spec.tool == "alembic":
        return AlembicMigrator(spec)
    assert spec.directory is not None  # the spec's validator
    return SqlFilesMigrator(spec.directory)


@dataclass
class CheckReport:
    counts_before: dict[str, int]
    counts_after: dict[str, int | None] = field(default_factory=dict)
    foreign_keys: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self, checks: SqlChecks) -> str:
        parts = [f"{t} {self.counts_before[t]} -> {self.counts_after.get(t)} rows" for t in self.counts_before]
        if checks.foreign_keys:
            parts.append(f"{self.foreign_keys} foreign keys hold")
        if checks.sql:
            parts.append(f"{len(checks.sql)} SQL checks")
        return ", ".join(parts) or "no checks configured"


def _table(name: str) -> Any:
    from sqlalchemy import table

    schema, _, bare = name.rpartition(".")
    return table(bare, schema=schema or None)


def _has_table(connection: Connection, name: str) -> bool:
    from sqlalchemy import inspect as sa_inspect

    schema, _, bare = name.rpartition(".")
    return sa_inspect(connection).has_table(bare, schema=schema or None)


def count_rows(connection: Connection, tables: list[str]) -> dict[str, int]:
    from sqlalchemy import func, select

    counts = {}
    for name in tables:
        if not _has_table(connection, name):
            raise StepFailed(f"checks.tables: there is no table {name}")
        counts[name] = int(connection.execute(select(func.count()).select_from(_table(name))).scalar_one())
    return counts


def run_checks(connection: Connection, checks: SqlChecks, before: dict[str, int]) -> CheckReport:
    report = CheckReport(counts_before=before)
    for name, count in before.items():
        after = count_rows(connection, [name])[name] if _has_table(connection, name) else None
        report.counts_after[name] = after
        if after is None:
            report.problems.append(f"table {name} no longer exists (it had {count} rows)")
        elif abs(after - count) > checks.count_tolerance * count:
            report.problems.append(
                f"{name}: {count} rows before, {after} after (tolerance {checks.count_tolerance:.0%})"
            )
    if checks.foreign_keys:
        report.foreign_keys, problems = _foreign_key_problems(connection)
        report.problems += problems
    for check in checks.sql:
        report.problems += _sql_check_problems(connection, check)
    return report


_PG_FOREIGN_KEYS = """
SELECT c.conname, c.conrelid::regclass::text, c.confrelid::regclass::text,
  ARRAY(SELECT quote_ident(a.attname) FROM unnest(c.conkey) WITH ORDINALITY AS k(n, i)
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i),
  ARRAY(SELECT quote_ident(a.attname) FROM unnest(c.confkey) WITH ORDINALITY AS k(n, i)
        JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i)
FROM pg_constraint c JOIN pg_namespace s ON s.oid = c.connamespace
WHERE c.contype = 'f' AND s.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 2, 1
"""


def _foreign_key_problems(connection: Connection) -> tuple[int, list[str]]:
    """Every foreign key checked by looking for orphaned rows, NOT VALID ones and disabled triggers included."""
    if connection.dialect.name == "postgresql":
        return _pg_foreign_key_problems(connection)
    if connection.dialect.name == "sqlite":
        return _sqlite_foreign_key_problems(connection)
    return 0, []


def _pg_foreign_key_problems(connection: Connection) -> tuple[int, list[str]]:
    problems = []
    try:
        with connection.begin_nested():
            connection.exec_driver_sql("SET CONSTRAINTS ALL IMMEDIATE")  # deferred violations surface now
    except Exception as error:  # any failure here is a violated deferred constraint
        problems.append(f"a deferred constraint fails: {_first_line(error)}")
    keys = connection.exec_driver_sql(_PG_FOREIGN_KEYS).all()
    for name, child, parent, child_columns, parent_columns in keys:
        present = " AND ".join(f"ch.{c} IS NOT NULL" for c in child_columns)
        joined = " AND ".join(f"pa.{p} = ch.{c}" for c, p in zip(child_columns, parent_columns, strict=True))
        orphans = connection.exec_driver_sql(
            f"SELECT count(*) FROM {child} AS ch WHERE {present}"
            f" AND NOT EXISTS (SELECT 1 FROM {parent} AS pa WHERE {joined})"
        ).scalar_one()
        if orphans:
            problems.append(f"foreign key {name}: {orphans} rows of {child} point at no row of {parent}")
    return len(keys), problems


def _sqlite_foreign_key_problems(connection: Connection) -> tuple[int, list[str]]:
    from sqlalchemy import inspect as sa_inspect

    inspector = sa_inspect(connection)
    keys = sum(len(inspector.get_foreign_keys(t)) for t in inspector.get_table_names())
    orphans: dict[tuple[str, str], int] = {}
    for child, _rowid, parent, _fk in connection.exec_driver_sql("PRAGMA foreign_key_check").all():
        orphans[(child, parent)] = orphans.get((child, parent), 0) + 1
    return keys, [f"{n} rows of {c} point at no row of {p}" for (c, p), n in sorted(orphans.items())]


def _sql_check_problems(connection: Connection, check: SqlCheck) -> list[str]:
    try:
        with connection.begin_nested():
            cursor = connection.connection.cursor()
            try:
                cursor.execute(check.query)
                row = cursor.fetchone()
            finally:
                cursor.close()
    except Exception as error:  # a failing query is a failed check, told with the others
        return [f"check {check.query!r} failed: {_first_line(error)}"]
    actual = row[0] if row else None
    if _matches(actual, check.expect):
        return []
    return [f"check {check.query!r} returned {actual!r}, expected {check.expect!r}"]


def _matches(actual: Any, expect: Scalar) -> bool:
    if expect is None or actual is None:
        return actual is expect
    if isinstance(expect, bool):
        return bool(actual) == expect
    if isinstance(expect, int | float):
        try:
            return float(actual) == float(expect)
        except (TypeError, ValueError):
            return False
    return str(actual) == expect


def _first_line(error: Exception) -> str:
    return (str(getattr(error, "orig", None) or error).strip().splitlines() or [""])[0]


class SqlMigrations(Kind[SqlMigrationsSpec]):
    runs_after_code = True
    name = "sql-migrations"
    spec_model = SqlMigrationsSpec
    estimate_seconds = 10.0
    verify_timeout_seconds = 30.0
    verify_interval_seconds = 2.0

    def read(self, spec: SqlMigrationsSpec, ctx: KindContext) -> State:
        from lastgood.kinds.sql_files import database_errors, open_engine, safe_url

        migrator = migrator_for(spec)
        engine = open_engine(spec.url)
        try:
            with database_errors(engine, spec.url, "reading the revision"), engine.connect() as connection:
                revision = migrator.current(connection)
        finally:
            engine.dispose()
        return {"tool": spec.tool, "database": safe_url(spec.url), "revision": revision}

    def differences(self, spec: SqlMigrationsSpec, current: State, target: State) -> list[str]:
        if current.get("revision") == target.get("revision"):
            return []
        return [f"revision {_rev(current)} -> {_rev(target)}"]

    def plan(self, spec: SqlMigrationsSpec, current: State, target: State) -> Change | None:
        if not self.differences(spec, current, target):
            return None
        before, after = current.get("revision"), target.get("revision")
        try:
            steps = migrator_for(spec).steps(before, after)
        except LastgoodError as error:
            return self._change(current, target, True, (f"cannot work out the migrations to run: {error}",), 0)
        notes = [_steps_note(steps)]
        breaks_older_code = False
        for step in steps:
            marked = step.direction == "down" and any(step.known_as(label) for label in spec.irreversible)
            if step.problem or marked:
                reason = step.problem or "marked irreversible"
                notes.append(f"migration {step.id} cannot be undone without losing data ({reason})")
            if step.direction == "down" and (step.problem or any(step.known_as(x) for x in spec.incompatible)):
                breaks_older_code = True
        destructive = len(notes) > 1
        from lastgood.kinds.sql_files import parse_url

        backend = parse_url(spec.url).get_backend_name()
        if backend not in _TRANSACTIONAL_DDL:
            notes.append(f"{backend} has no transactional DDL: a failed check cannot undo the schema change")
        notes.append("checks afterwards: " + _checks_note(spec.checks))
        change = replace(
            self._change(current, target, destructive, tuple(notes), len(steps)), breaks_older_code=breaks_older_code
        )
        return replace(change, action=f"migrate-{steps[0].direction}") if steps else change

    def _change(self, current: State, target: State, destructive: bool, notes: tuple[str, ...], n: int) -> Change:
        return Change(
            action=self.action_name(current, target),
            before=self.describe(current),
            after=self.describe(target),
            estimate_seconds=self.estimate_seconds + 2.0 * n,
            destructive=destructive,
            notes=notes,
        )

    def action_name(self, current: State, target: State) -> str:
        return "migrate"

    def apply(self, spec: SqlMigrationsSpec, ctx: KindContext, target: State) -> ApplyResult:
        from lastgood.kinds.sql_files import database_errors, open_engine, safe_url

        migrator, wanted = migrator_for(spec), target.get("revision")
        engine = open_engine(spec.url)
        undone = "rolled back, nothing changed" if engine.dialect.name in _TRANSACTIONAL_DDL else "partly applied"
        try:
            with database_errors(engine, spec.url, f"migrating to {wanted} ({undone})"), engine.begin() as connection:
                current = migrator.current(connection)
                if current == wanted:
                    return ApplyResult(f"already at revision {_rev(target)}", changed=False)
                steps = migrator.steps(current, wanted)
                ctx.progress(f"{_steps_note(steps)} ({current} -> {wanted})")
                before = count_rows(connection, spec.checks.tables)
                migrator.run(connection, current, wanted)
                report = run_checks(connection, spec.checks, before)
                if report.problems:
                    raise StepFailed(
                        f"{safe_url(spec.url)}: checks failed after migrating {current} -> {wanted}; the transaction"
                        f" was rolled back and the schema is still at {current}: " + "; ".join(report.problems)
                    )
        finally:
            engine.dispose()
        detail = f"{_steps_note(steps)} ({current} -> {wanted}); checks passed: {report.summary(spec.checks)}"
        extra = {
            "from": current,
            "to": wanted,
            "migrations": [s.id for s in steps],
            "counts_before": report.counts_before,
            "counts_after": report.counts_after,
        }
        return ApplyResult(detail, extra=extra)

    def describe(self, state: State) -> str:
        return f"{state.get('tool', 'schema')} revision {_rev(state)}"

    def warnings(self, spec: SqlMigrationsSpec, state: State) -> list[str]:
        from lastgood.kinds.sql_files import safe_url

        if state.get("revision") is None:
            return [f"{safe_url(spec.url)}: no migration is applied yet (revision none)"]
        return []

    def iam_statements(self, spec: SqlMigrationsSpec, scope: IamScope) -> list[IamStatement]:
        return []  # the database's own credentials, from the URL, are what it needs


def _rev(state: State) -> str:
    return str(state.get("revision") or "none")


def _steps_note(steps: list[MigrationStep]) -> str:
    if not steps:
        return "no migration to run; only the version record moves"
    direction = steps[0].direction
    return f"{direction} {len(steps)} migration(s) in one transaction: " + ", ".join(s.id for s in steps)


def _checks_note(checks: SqlChecks) -> str:
    parts = []
    if checks.tables:
        parts.append(f"row counts of {', '.join(checks.tables)} (tolerance {checks.count_tolerance:.0%})")
    if checks.foreign_keys:
        parts.append("every foreign key")
    if checks.sql:
        parts.append(f"{len(checks.sql)} SQL checks")
    return ", ".join(parts) or "none"
