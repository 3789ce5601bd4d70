"""What one server process holds: its settings, the apps, the background jobs, a stop signal."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request

from lastgood.server.apps import Apps
from lastgood.server.settings import ServerSettings
from lastgood.service.session import Ledger
from lastgood.service.watching import default_worker_name

if TYPE_CHECKING:
    from lastgood.server.guarding import GuardScheduler
    from lastgood.server.jobs import Jobs
    from lastgood.server.metrics import ServerMetrics


@dataclass
class ServerState:
    settings: ServerSettings
    apps: Apps
    jobs: Jobs | None = None
    stopping: threading.Event = field(default_factory=threading.Event)
    guard: GuardScheduler | None = None  # the always-on guard and recovery (server/guarding.py)
    metrics: ServerMetrics | None = None  # GET /metrics (server/metrics.py)
    worker_name: str = field(default_factory=default_worker_name)  # who claims guard periods, in the ledger

    @property
    def ledger(self) -> Ledger:
        return self.apps.ledger


def server_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.lastgood
    return state
