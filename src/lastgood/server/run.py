"""Running the server process: load the apps, build the app, serve with uvicorn until Ctrl-C or SIGTERM."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import uvicorn

from lastgood.server import slack
from lastgood.server.app import create_app
from lastgood.server.apps import Apps
from lastgood.server.settings import ServerSettings
from lastgood.server.state import ServerState


def build_state(settings: ServerSettings) -> ServerState:
    """Bad runbook files and a state URL that cannot be opened fail here, before anything listens."""
    apps = Apps.load(settings.runbooks, settings.state)
    apps.ledger  # noqa: B018 - open (and migrate) the server's ledger now: a bad URL fails at start
    slack.prepare(settings, apps)
    return ServerState(settings=settings, apps=apps)


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
