"""sql-migrations on SQLite and a real PostgreSQL: sql-files and alembic round trips, checks that fail and leave
the schema untouched, destructive plans, idempotent re-apply, and a password that never leaves the URL."""

from __future__ import annotations

import json
from pathlib import Path
from textwrap import dedent, indent

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from lastgood.aws.clients import AwsClients
from lastgood.errors import BadInput, StepFailed
from lastgood.kinds.base import KindContext
from lastgood.kinds.sql_files import VERSION_TABLE, apply_up
from lastgood.kinds.sql_migrations import SqlMigrations, SqlMigrationsSpec

KIND = SqlMigrations()
CTX = KindContext(app="shop", env="prod", aws=AwsClients())

CUSTOMERS = "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
ORDERS = (
    "CREATE TABLE orders (id INTEGER PRIMARY KEY,"
    " customer_id INTEGER NOT NULL CONSTRAINT orders_customer_fk REFERENCES customers (id), note TEXT DEFAULT '50%');"
)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database: a SQLite file, or a new database on the test PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'app.db'}"
    return str(request.getfixturevalue("pg_database_url"))


def sql(url: str, *statements: str) -> list[tuple[object, ...]]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            rows: list[tuple[object, ...]] = []
            for statement in statements:
                result = connection.execute(text(statement))
                rows = [tuple(r) for r in result] if result.returns_rows else []
            return rows
    finally:
        engine.dispose()


def columns(url: str, table: str) -> list[str]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return [c["name"] for c in inspect(connection).get_columns(table)]
    finally:
        engine.dispose()


def write_migrations(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(exist_ok=True)
    for name, body in files.items():
        (directory / name).write_text(body)
    return directory


def shop_files(tmp_path: Path, **extra: str) -> Path:
    return write_migrations(
        tmp_path / "migrations",
        {
            "0001_customers.up.sql": CUSTOMERS,
            "0001_customers.down.sql": "DROP TABLE customers;",
            "0002_orders.up.sql": ORDERS + "\nCREATE INDEX orders_customer ON orders (customer_id);",
            "0002_orders.down.sql": "DROP TABLE orders;",
            "0003_email.up.sql": "ALTER TABLE customers ADD COLUMN email TEXT;",
            "0003_email.down.sql": "ALTER TABLE customers DROP COLUMN email;",
            **extra,
        },
    )


def seed(url: str) -> None:
    sql(url, "INSERT INTO customers (id, name) VALUES (1, 'ann'), (2, 'bob')")
    sql(url, "INSERT INTO orders (id, customer_id) VALUES (10, 1), (11, 2), (12, 2)")


def files_spec(url: str, directory: Path, **kwargs: object) -> SqlMigrationsSpec:
    return SqlMigrationsSpec.model_validate(
        {"name": "schema", "url": url, "tool": "sql-files", "directory": str(directory), **kwargs}
    )


@pytest.mark.slow
def test_sql_files_round_trip_in_one_transaction(db_url: str, tmp_path: Path) -> None:
    directory = shop_files(tmp_path)
    assert apply_up(db_url, directory, to=2) == ["0001_customers", "0002_orders"]
    seed(db_url)
    spec = files_spec(db_url, directory, checks={"tables": ["customers", "orders"]})
    recorded = KIND.read(spec, CTX)
    assert recorded["revision"] == "2" and recorded["tool"] == "sql-files"

    assert apply_up(db_url, directory) == ["0003_email"]
    current = KIND.read(spec, CTX)
    change = KIND.plan(spec, current, recorded)
    assert change is not None and change.action == "migrate-down" and not change.destructive
    assert change.before == "sql-files revision 3" and change.after == "sql-files revision 2"
    assert "down 1 migration(s) in one transaction: 0003_email" in change.notes
    progress: list[str] = []
    ctx = KindContext(app="shop", env="prod", aws=CTX.aws, progress=progress.append)

    result = KIND.apply(spec, ctx, recorded)
    assert result.changed and "checks passed" in result.detail
    assert result.extra["counts_before"] == {"customers": 2, "orders": 3} == result.extra["counts_after"]
    assert result.extra["migrations"] == ["0003_email"] and progress
    assert KIND.verify(spec, CTX, recorded) == []
    assert "email" not in columns(db_url, "customers")
    assert sql(db_url, f"SELECT version, name FROM {VERSION_TABLE} ORDER BY version") == [
        (1, "customers"),
        (2, "orders"),
    ]
    again = KIND.apply(spec, CTX, recorded)
    assert not again.changed and again.detail == "already at revision 2"
    assert KIND.plan(spec, KIND.read(spec, CTX), recorded) is None


@pytest.mark.slow
def test_several_down_files_and_data_run_to_the_recorded_version(db_url: str, tmp_path: Path) -> None:
    directory = shop_files(tmp_path)
    apply_up(db_url, directory, to=1)
    spec = files_spec(db_url, directory, checks={"tables": ["customers"]})
    recorded = KIND.read(spec, CTX)
    apply_up(db_url, directory)
    seed(db_url)
    change = KIND.plan(spec, KIND.read(spec, CTX), recorded)
    assert change is not None and "down 2 migration(s) in one transaction: 0003_email, 0002_orders" in change.notes
    KIND.apply(spec, CTX, recorded)
    assert KIND.read(spec, CTX)["revision"] == "1"
    assert "orders" not in inspect(create_engine(db_url, poolclass=NullPool)).get_table_names()


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_failed_row_count_check_leaves_the_schema_untouched(db_url: str, tmp_path: Path) -> None:
    lossy = "DELETE FROM orders WHERE id > 10;\nALTER TABLE customers DROP COLUMN email;"
    directory = shop_files(tmp_path, **{"0003_email.down.sql": lossy})
    apply_up(db_url, directory, to=2)
    seed(db_url)
    spec = files_spec(db_url, directory, checks={"tables": ["orders"], "count_tolerance": 0.1})
    recorded = KIND.read(spec, CTX)
    apply_up(db_url, directory)

    with pytest.raises(StepFailed, match=r"orders: 3 rows before, 1 after \(tolerance 10%\)") as failed:
        KIND.apply(spec, CTX, recorded)
    assert "rolled back and the schema is still at 3" in str(failed.value)
    assert KIND.read(spec, CTX)["revision"] == "3"
    assert "email" in columns(db_url, "customers")  # the DDL was undone with the rest
    assert sql(db_url, "SELECT count(*) FROM orders") == [(3,)]


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_failed_sql_check_and_a_tolerance_that_allows_the_change(db_url: str, tmp_path: Path) -> None:
    directory = shop_files(tmp_path, **{"0003_email.down.sql": "DELETE FROM orders WHERE id = 12;"})
    apply_up(db_url, directory, to=2)
    seed(db_url)
    checks = {
        "tables": ["orders"],
        "count_tolerance": 0.5,
        "foreign_keys": False,
        "sql": [{"query": "SELECT count(*) FROM customers", "expect": 2}, {"query": "SELECT 'x'", "expect": "y"}],
    }
    spec = files_spec(db_url, directory, checks=checks)
    recorded = KIND.read(spec, CTX)
    apply_up(db_url, directory)
    with pytest.raises(StepFailed, match="check \"SELECT 'x'\" returned 'x', expected 'y'"):
        KIND.apply(spec, CTX, recorded)
    assert KIND.read(spec, CTX)["revision"] == "3"

    checks["sql"] = [{"query": "SELECT count(*) FROM customers", "expect": 2}]
    spec = files_spec(db_url, directory, checks=checks)
    result = KIND.apply(spec, CTX, recorded)
    assert result.extra["counts_after"] == {"orders": 2}  # 3 -> 2 is within 50%


def test_orphaned_rows_fail_the_foreign_key_check(db_url: str, tmp_path: Path) -> None:
    if db_url.startswith("sqlite"):  # SQLite does not enforce foreign keys unless asked: the orphan goes in
        orphan = "INSERT INTO orders (id, customer_id) VALUES (99, 404);"
    else:  # PostgreSQL does: a down migration must go around the constraint, as a NOT VALID one lets it
        orphan = (
            "ALTER TABLE orders DROP CONSTRAINT orders_customer_fk;"
            " INSERT INTO orders (id, customer_id) VALUES (99, 404);"
            " ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id)"
            " REFERENCES customers (id) NOT VALID;"
        )
    directory = shop_files(tmp_path, **{"0003_email.down.sql": orphan})
    apply_up(db_url, directory, to=2)
    seed(db_url)
    spec = files_spec(db_url, directory)
    recorded = KIND.read(spec, CTX)
    apply_up(db_url, directory)
    with pytest.raises(StepFailed, match="rows of orders point at no row of customers"):
        KIND.apply(spec, CTX, recorded)
    assert sql(db_url, "SELECT count(*) FROM orders") == [(3,)]


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_missing_down_file_makes_the_change_destructive_and_apply_refuses(db_url: str, tmp_path: Path) -> None:
    directory = shop_files(tmp_path)
    (directory / "0003_email.down.sql").unlink()
    apply_up(db_url, directory, to=2)
    spec = files_spec(db_url, directory)
    recorded = KIND.read(spec, CTX)
    apply_up(db_url, directory)
    change = KIND.plan(spec, KIND.read(spec, CTX), recorded)
    assert change is not None and change.destructive
    assert any("migration 0003_email cannot be undone without losing data" in n for n in change.notes)
    with pytest.raises(StepFailed, match=r"no down file \(0003_email.down.sql\)"):
        KIND.apply(spec, CTX, recorded)
    assert KIND.read(spec, CTX)["revision"] == "3"


def test_irreversible_migrations_are_destructive_but_run(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    directory = shop_files(tmp_path)
    apply_up(url, directory, to=1)
    spec = files_spec(url, directory, irreversible=["3"])
    recorded = KIND.read(spec, CTX)
    apply_up(url, directory)
    change = KIND.plan(spec, KIND.read(spec, CTX), recorded)
    assert change is not None and change.destructive
    notes = [n for n in change.notes if "cannot be undone" in n]
    assert notes == ["migration 0003_email cannot be undone without losing data (marked irreversible)"]
    assert KIND.apply(spec, CTX, recorded).changed
    assert KIND.read(spec, CTX)["revision"] == "1"


def test_rolling_forward_to_a_recorded_later_version(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    directory = shop_files(tmp_path)
    spec = files_spec(url, directory)
    assert KIND.read(spec, CTX)["revision"] is None
    assert KIND.warnings(spec, KIND.read(spec, CTX))
    target = {"tool": "sql-files", "database": url, "revision": "2"}
    change = KIND.plan(spec, KIND.read(spec, CTX), target)
    assert change is not None and change.action == "migrate-up"
    assert KIND.apply(spec, CTX, target).changed
    assert KIND.read(spec, CTX)["revision"] == "2"
    assert KIND.apply(spec, CTX, {**target, "revision": None}).changed  # back to nothing applied
    assert KIND.read(spec, CTX)["revision"] is None


def test_password_never_reaches_state_or_messages(pg_database_url: str, tmp_path: Path) -> None:
    # The test server trusts local connections, so any password connects; what matters is where it shows up.
    url = make_url(pg_database_url).set(password="s3cret-pw%").render_as_string(hide_password=False)
    directory = shop_files(tmp_path)
    apply_up(url, directory, to=2)
    spec = files_spec(url, directory, checks={"tables": ["nope"]})
    recorded = KIND.read(spec, CTX)
    assert "s3cret" not in json.dumps(recorded) and "***" in recorded["database"]
    apply_up(url, directory)
    with pytest.raises(StepFailed) as failed:
        KIND.apply(spec, CTX, recorded)
    assert "there is no table nope" in str(failed.value) and "s3cret" not in str(failed.value)
    broken = files_spec(url.replace("/lastgood_test_", "/missing_"), directory)
    with pytest.raises(StepFailed) as failed:
        KIND.read(broken, CTX)
    assert "s3cret" not in str(failed.value) and "***" in str(failed.value)
    with pytest.raises(BadInput) as bad:
        KIND.read(files_spec("::s3cret::", directory), CTX)
    assert "s3cret" not in str(bad.value)


def test_spec_needs_the_settings_of_its_tool(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tool sql-files needs directory"):
        SqlMigrationsSpec.model_validate({"name": "s", "url": "sqlite://", "tool": "sql-files"})
    with pytest.raises(ValueError, match="tool alembic needs alembic_ini or script_location"):
        SqlMigrationsSpec.model_validate({"name": "s", "url": "sqlite://", "tool": "alembic"})


REVISION = '''\
"""{doc}"""
from alembic import op
import sqlalchemy as sa

revision = {rev!r}
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
{up}


def downgrade() -> None:
    """Downgrade schema."""
{down_body}
'''


def alembic_project(tmp_path: Path, url: str, revisions: list[tuple[str, str, str]]) -> Config:
    """A team's alembic project (alembic init's env.py and ini), with revisions given as (id, upgrade, downgrade)."""
    config = Config(str(tmp_path / "alembic.ini"))
    command.init(config, str(tmp_path / "alembic"))
    config = Config(str(tmp_path / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    down = None
    for rev, up, down_body in revisions:
        body = REVISION.format(doc=rev, rev=rev, down=down, up=_body(up), down_body=_body(down_body))
        (tmp_path / "alembic" / "versions" / f"{rev}.py").write_text(body)
        down = rev
    return config


def _body(code: str) -> str:
    return indent(dedent(code).strip("\n"), "    ")


SHOP_REVISIONS = [
    (
        "a1",
        """
        op.create_table("customers", sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.Text))
        """,
        """
        op.drop_table("customers")
        """,
    ),
    (
        "b2",
        """
        op.create_table(
            "orders",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("customer_id", sa.Integer, sa.ForeignKey("customers.id"), nullable=False),
        )
        """,
        """
        op.drop_table("orders")
        """,
    ),
    (
        "c3",
        """
        op.create_table("audit", sa.Column("id", sa.Integer, primary_key=True))
        op.execute("INSERT INTO audit (id) VALUES (1)")
        """,
        """
        op.drop_table("audit")
        """,
    ),
]


def alembic_spec(url: str, config: Config, **kwargs: object) -> SqlMigrationsSpec:
    assert config.config_file_name is not None
    return SqlMigrationsSpec.model_validate(
        {"name": "schema", "url": url, "tool": "alembic", "alembic_ini": config.config_file_name, **kwargs}
    )


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_alembic_round_trip(db_url: str, tmp_path: Path) -> None:
    config = alembic_project(tmp_path, db_url, SHOP_REVISIONS)
    command.upgrade(config, "b2")  # the team's own way, through its env.py
    seed_customers = "INSERT INTO customers (id, name) VALUES (1, 'ann')"
    sql(db_url, seed_customers, "INSERT INTO orders (id, customer_id) VALUES (1, 1)")
    spec = alembic_spec(db_url, config, checks={"tables": ["customers", "orders"]})
    recorded = KIND.read(spec, CTX)
    assert recorded["revision"] == "b2" and recorded["tool"] == "alembic"

    command.upgrade(config, "head")
    change = KIND.plan(spec, KIND.read(spec, CTX), recorded)
    assert change is not None and change.action == "migrate-down" and not change.destructive
    assert change.before == "alembic revision c3" and change.after == "alembic revision b2"
    result = KIND.apply(spec, CTX, recorded)
    assert result.changed and result.extra["counts_after"] == {"customers": 1, "orders": 1}
    assert KIND.verify(spec, CTX, recorded) == []
    assert sql(db_url, "SELECT version_num FROM alembic_version") == [("b2",)]
    assert not KIND.apply(spec, CTX, recorded).changed

    forward = {**recorded, "revision": "c3"}  # and forward again, with the same machinery
    assert KIND.plan(spec, KIND.read(spec, CTX), forward).action == "migrate-up"  # type: ignore[union-attr]
    assert KIND.apply(spec, CTX, forward).changed
    command.downgrade(config, "b2")  # the team's tool agrees with what lastgood did
    assert KIND.read(spec, CTX)["revision"] == "b2"


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_alembic_failed_check_rolls_back_every_revision(db_url: str, tmp_path: Path) -> None:
    config = alembic_project(tmp_path, db_url, SHOP_REVISIONS)
    command.upgrade(config, "a1")
    spec = alembic_spec(db_url, config, checks={"sql": [{"query": "SELECT count(*) FROM customers", "expect": 5}]})
    recorded = KIND.read(spec, CTX)
    command.upgrade(config, "head")
    with pytest.raises(StepFailed, match="returned 0, expected 5"):
        KIND.apply(spec, CTX, recorded)
    assert KIND.read(spec, CTX)["revision"] == "c3"
    assert sql(db_url, "SELECT id FROM audit") == [(1,)]  # both dropped tables are back: nothing happened


def test_alembic_empty_downgrade_is_destructive(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    revisions = [*SHOP_REVISIONS[:2], ("c3", 'op.add_column("orders", sa.Column("note", sa.Text))', "pass")]
    config = alembic_project(tmp_path, url, revisions)
    command.upgrade(config, "a1")
    spec = alembic_spec(url, config, irreversible=["b2"])
    recorded = KIND.read(spec, CTX)
    command.upgrade(config, "head")
    change = KIND.plan(spec, KIND.read(spec, CTX), recorded)
    assert change is not None and change.destructive
    assert [n for n in change.notes if "cannot be undone" in n] == [
        "migration c3 cannot be undone without losing data (its downgrade() does nothing)",
        "migration b2 cannot be undone without losing data (marked irreversible)",
    ]


def test_alembic_unknown_revision_is_planned_as_destructive_and_fails(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    config = alembic_project(tmp_path, url, SHOP_REVISIONS)
    command.upgrade(config, "head")
    spec = alembic_spec(url, config)
    ghost = {"tool": "alembic", "database": url, "revision": "zz9"}
    change = KIND.plan(spec, KIND.read(spec, CTX), ghost)
    assert change is not None and change.destructive and "cannot work out" in change.notes[0]
    with pytest.raises(StepFailed, match="zz9"):
        KIND.apply(spec, CTX, ghost)
