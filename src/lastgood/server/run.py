"""Running the server process: load the apps, build the app, serve with uvicorn until Ctrl-C or SIGTERM."""

from __future__ import annotations

import fcntl
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import uvicorn
from sqlalchemy.engine import make_url

from lastgood.errors import BadInput, Refused
from lastgood.server import slack
from lastgood.server.app import create_app
from lastgood.server.apps import Apps
from lastgood.server.settings import ServerSettings
from lastgood.server.state import ServerState


def build_state(settings: ServerSettings) -> ServerState:
    """Bad runbook files, a state URL that cannot be opened and a second replica on SQLite fail here, before
    anything listens."""
    apps = Apps.load(settings.runbooks, settings.state)
    ledger = apps.ledger  # open (and migrate) the server's ledger now: a bad URL fails at start
    if ledger.engine.dialect.name == "sqlite":
        if settings.role != "all":
            raise BadInput(
                f"--role {settings.role} runs one part of a server beside others on one database, and SQLite serves "
                "one replica: use --role all, or a PostgreSQL state (--state postgresql+psycopg://...)"
            )
        _one_replica(ledger.url)
    slack.prepare(settings, apps)
    return ServerState(settings=settings, apps=apps)


_replica_locks: dict[Path, object] = {}  # the open lock files, held for the life of the process


def _one_replica(url: str) -> None:
    """Refuse a second server on the same SQLite file: its jobs and guard would race the first one's."""
    database = make_url(url).database
    if not database or database == ":memory:":
        return
    lock_path = Path(database).resolve().with_name(Path(database).name + ".server-lock")
    if lock_path in _replica_locks:
        return  # this process serves it already (a second app object, in tests)
    handle = lock_path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise Refused(
            f"another lastgood server ({holder}) serves the SQLite state {database}; SQLite serves one replica. "
            "Stop that one, or run several on a PostgreSQL state (--state postgresql+psycopg://...)"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}")
    handle.flush()
    _replica_locks[lock_path] = handle


class _Server(uvicorn.Server):
    """Ctrl-C / SIGTERM tell the background work and the live pages at once (uvicorn would first wait for open
    connections, and a dashboard's event stream stays open): rollbacks start no new step and end interrupted,
    resumable; event streams close."""

    def __init__(self, config: uvicorn.Config, state: ServerState) -> None:
        super().__init__(config)
        self.lastgood = state

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.lastgood.stopping.set()
        super().handle_exit(sig, frame)

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            # uvicorn re-raises the signal once it has shut down (the process then dies of it); a server that
            # stopped cleanly because it was asked to exits 0 instead.
            self._captured_signals.clear()


def serve(settings: ServerSettings) -> None:
    state = build_state(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = uvicorn.Config(
        create_app(state),
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=25,
    )
    _Server(config, state).run()
