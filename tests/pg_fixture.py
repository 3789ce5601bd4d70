"""A real PostgreSQL server for the tests: LASTGOOD_TEST_PG_URL, or a throwaway cluster started here.

Loaded from tests/conftest.py (`pytest_plugins = ["pg_fixture"]`). Fixtures:

- `postgres_url` (session): a `postgresql+psycopg://` URL of a server where databases may be created.
- `pg_database_url` (function): a fresh, empty database on that server, dropped after the test.
- `ledger_url` (function, parametrised sqlite/postgresql): a fresh, empty ledger database on each backend.

PostgreSQL tests never skip: if no server can be had, they fail and say why.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

PG_URL_ENV = "LASTGOOD_TEST_PG_URL"
PG_BIN_ENV = "LASTGOOD_TEST_PG_BIN"
START_TIMEOUT = 60.0
HOW_TO_FIX = (
    f"Run dev/setup (installs PostgreSQL with apt), or set {PG_URL_ENV} to a server where this user may CREATE DATABASE"
    f" (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres), or {PG_BIN_ENV} to the directory holding initdb."
)


class PostgresUnavailable(Exception):
    pass


def _fail(message: str) -> NoReturn:
    pytest.fail(f"PostgreSQL is needed by this test and could not be had: {message}\n{HOW_TO_FIX}", pytrace=False)


def _psycopg_url(url: str) -> URL:
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername != "postgresql+psycopg":
        raise PostgresUnavailable(f"{PG_URL_ENV} must be a postgresql:// URL, got {parsed.drivername!r}")
    return parsed


def _render(url: URL) -> str:
    return url.render_as_string(hide_password=False)


def _pg_bin() -> Path:
    """The directory with initdb and pg_ctl: $LASTGOOD_TEST_PG_BIN, $PATH, or Debian's newest /usr/lib/postgresql."""
    configured = os.environ.get(PG_BIN_ENV)
    if configured:
        if not (Path(configured) / "initdb").exists():
            raise PostgresUnavailable(f"{PG_BIN_ENV}={configured}: no initdb there")
        return Path(configured)
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0,
    )
    if not found:
        raise PostgresUnavailable("initdb is neither on PATH nor in /usr/lib/postgresql/*/bin")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Cluster:
    """A throwaway cluster in a temp dir; as root, initdb and the server run as the `postgres` OS user."""

    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.as_root = os.geteuid() == 0
        if self.as_root and shutil.which("runuser") is None:
            raise PostgresUnavailable("running as root but `runuser` is missing (package util-linux)")
        self.root = Path(tempfile.mkdtemp(prefix="lastgood-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        self.started = False
        if self.as_root:
            try:
                shutil.chown(self.root, user="postgres", group="postgres")
            except LookupError:
                shutil.rmtree(self.root, ignore_errors=True)
                raise PostgresUnavailable(
                    "running as root and there is no `postgres` OS user to run the server as"
                ) from None

    def _run(self, *args: str, timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        # cwd: the postgres user may not be able to enter the current directory (e.g. /root).
        return subprocess.run(command, cwd=self.root, capture_output=True, text=True, timeout=timeout, check=False)

    def _check(self, result: subprocess.CompletedProcess[str], what: str) -> None:
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise PostgresUnavailable(
                f"{what} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}"
                + (f"\nserver log:\n{log}" if log else "")
            )

    def init(self) -> None:
        result = self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"
        )
        self._check(result, f"initdb in {self.data}")

    def start(self) -> str:
        last_error: PostgresUnavailable | None = None
        for _ in range(3):  # the free port may be taken between choosing and binding it
            self.port = _free_port()
            options = (
                f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            result = self._run(
                "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start"
            )
            try:
                self._check(result, f"pg_ctl start on port {self.port}")
            except PostgresUnavailable as error:
                last_error = error
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
                continue
            self.started = True
            url = URL.create("postgresql+psycopg", username="postgres", host="127.0.0.1", port=self.port)
            url = url.set(database="postgres")
            _wait_ready(_render(url))
            return _render(url)
        assert last_error is not None
        raise last_error

    def stop(self) -> None:
        try:
            if self.started:
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop", timeout=60)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _wait_ready(url: str, timeout: float = START_TIMEOUT) -> None:
    engine = create_engine(url, poolclass=NullPool)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                with engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
                return
            except Exception as error:
                if time.monotonic() > deadline:
                    raise PostgresUnavailable(f"no answer from {url} after {timeout:.0f}s: {error}") from None
                time.sleep(0.2)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A server URL ($LASTGOOD_TEST_PG_URL or a throwaway cluster); fails, never skips, when there is none."""
    configured = os.environ.get(PG_URL_ENV)
    if configured:
        yield _configured_server(configured)
        return
    cluster, url = _throwaway_cluster()
    try:
        yield url
    finally:
        cluster.stop()


def _configured_server(configured: str) -> str:
    try:
        url = _render(_psycopg_url(configured))
        _wait_ready(url, timeout=10)
        return url
    except PostgresUnavailable as error:
        problem = f"{PG_URL_ENV}: {error}"
    _fail(problem)


def _throwaway_cluster() -> tuple[_Cluster, str]:
    cluster: _Cluster | None = None
    try:
        cluster = _Cluster()
        cluster.init()
        return cluster, cluster.start()
    except (PostgresUnavailable, OSError, subprocess.TimeoutExpired) as error:
        if cluster is not None:
            cluster.stop()
        problem = f"cannot start a throwaway cluster: {error}"
    _fail(problem)


def _admin(postgres_url: str, statement: str) -> None:
    engine = create_engine(postgres_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()


@pytest.fixture
def pg_database_url(postgres_url: str) -> Iterator[str]:
    """A fresh, empty database on the test server, dropped (even with open connections) afterwards."""
    name = f"lastgood_test_{uuid.uuid4().hex[:12]}"
    _admin(postgres_url, f'CREATE DATABASE "{name}"')
    try:
        yield _render(make_url(postgres_url).set(database=name))
    finally:
        _admin(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty ledger database: a SQLite file under tmp_path, or a new database on the PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return str(request.getfixturevalue("pg_database_url"))
