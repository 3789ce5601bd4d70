"""Schema safety: code is rolled back before its schema, never alone over an incompatible schema, and a schema
that cannot go back without losing data is named, with "freeze" offered. Code is the fake kind; the schema is a
real SQLite database migrated with numbered SQL files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from lastgood.cli.app import main
from lastgood.kinds.fake import FakeWorld, installed
from lastgood.kinds.sql_files import apply_up


@pytest.fixture
def world() -> Iterator[FakeWorld]:
    with installed(FakeWorld({"api": "v1"})) as w:
        yield w


def project(tmp_path: Path, with_down: bool = True, incompatible: str = "[]") -> Path:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "0001_orders.up.sql").write_text("CREATE TABLE orders (id INTEGER PRIMARY KEY, total INTEGER);")
    (migrations / "0001_orders.down.sql").write_text("DROP TABLE orders;")
    (migrations / "0002_currency.up.sql").write_text(
        "ALTER TABLE orders ADD COLUMN currency TEXT NOT NULL DEFAULT 'EUR';"
    )
    if with_down:
        (migrations / "0002_currency.down.sql").write_text("ALTER TABLE orders DROP COLUMN currency;")
    runbook = tmp_path / "lastgood.yaml"
    runbook.write_text(
        f"""
app: shop
state: sqlite:///state.db
environments: {{prod: {{}}}}
components:
  - {{name: api, kind: fake}}
  - name: schema
    kind: sql-migrations
    url: sqlite:///{tmp_path / "app.db"}
    tool: sql-files
    directory: migrations
    incompatible: {incompatible}
"""
    )
    return runbook


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    code = main([*args, "-o", "json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def two_releases(tmp_path: Path, world: FakeWorld, capsys: pytest.CaptureFixture[str], runbook: Path) -> None:
    apply_up(f"sqlite:///{tmp_path / 'app.db'}", tmp_path / "migrations", to=1)
    assert cli(capsys, "release", "record", "prod", "--version", "r1", "-f", str(runbook))[0] == 0
    apply_up(f"sqlite:///{tmp_path / 'app.db'}", tmp_path / "migrations")
    world.set("api", "v2")
    assert cli(capsys, "release", "record", "prod", "--version", "r2", "-f", str(runbook))[0] == 0


def test_application_first_then_schema(tmp_path: Path, world: FakeWorld, capsys) -> None:  # type: ignore[no-untyped-def]
    runbook = project(tmp_path)
    two_releases(tmp_path, world, capsys, runbook)
    code, plan = cli(capsys, "plan", "prod", "-f", str(runbook))
    steps = {s["component"]: s for s in plan["steps"]}
    assert steps["schema"]["waits_for"] == ["api"] and steps["api"]["waits_for"] == []
    assert plan["blocked"] is None and not plan["destructive_steps"]
    code, result = cli(capsys, "rollback", "prod", "--yes", "-f", str(runbook))
    assert code == 0 and result["status"] == "succeeded"
    assert world.get("api") == "v1"


def test_code_alone_over_an_incompatible_schema_is_blocked(tmp_path: Path, world: FakeWorld, capsys) -> None:  # type: ignore[no-untyped-def]
    runbook = project(tmp_path, incompatible="['0002']")
    two_releases(tmp_path, world, capsys, runbook)
    code, plan = cli(capsys, "plan", "prod", "--only", "api", "-f", str(runbook))
    assert code == 0 and "code cannot be rolled back alone" in plan["blocked"]
    code, error = cli(capsys, "rollback", "prod", "--only", "api", "--yes", "-f", str(runbook))
    assert code == 3 and "freeze" in error["message"]
    assert world.get("api") == "v2"  # nothing changed
    code, plan = cli(capsys, "plan", "prod", "--only", "api,schema", "-f", str(runbook))
    assert plan["blocked"] is None


def test_lossy_schema_offers_freeze_and_needs_explicit_consent(
    tmp_path: Path, world: FakeWorld, capsys, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    runbook = project(tmp_path, with_down=False)
    two_releases(tmp_path, world, capsys, runbook)
    code, plan = cli(capsys, "plan", "prod", "-f", str(runbook))
    assert plan["destructive_steps"] == ["schema"]
    assert any("freeze" in note for note in plan["notes"])
    # A missing down migration also makes the schema incompatible: code alone is blocked.
    code, plan = cli(capsys, "plan", "prod", "--only", "api", "-f", str(runbook))
    assert plan["blocked"]
    code, error = cli(capsys, "rollback", "prod", "--yes", "-f", str(runbook))
    assert code == 3 and "--allow-destructive" in error["message"]
    assert world.get("api") == "v2"
