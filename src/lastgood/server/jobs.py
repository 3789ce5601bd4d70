"""Background work as plain jobs: a name, JSON arguments, a function that is safe to run again.

`InProcessJobs` runs them on threads of this process (the embedded SQLite default, one replica). Each job
function takes the server's state and keyword arguments that are JSON values, so a job queue can carry them
to another machine. A job with a `key` already running is not started twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from lastgood.errors import LastgoodError

if TYPE_CHECKING:
    from lastgood.server.state import ServerState

log = logging.getLogger("lastgood.server.jobs")

JobFunction = Callable[..., Any]
F = TypeVar("F", bound=JobFunction)


class NoBackgroundWork(LastgoodError):
    """503: this server was started without background work, so nothing that runs long can start here."""

    def __init__(self) -> None:
        super().__init__("this server runs no background work (started with background off): nothing was started")


JOBS: dict[str, JobFunction] = {}


def job(name: str) -> Callable[[F], F]:
    """Register a job function under `name`."""

    def register(fn: F) -> F:
        JOBS[name] = fn
        return fn

    return register


class Jobs(Protocol):
    def submit(self, name: str, key: str | None = None, **args: Any) -> Future[Any] | None: ...
    def running(self) -> list[str]: ...
    def shutdown(self, wait: bool = True) -> None: ...


class InProcessJobs:
    """Jobs on a thread pool of this process; `key` keeps one job per subject (a rollback, an environment)."""

    def __init__(self, state: ServerState, workers: int = 8) -> None:
        self.state = state
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lastgood-job")
        self._keys: dict[str, Future[Any]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, name: str, key: str | None = None, **args: Any) -> Future[Any] | None:
        """Start job `name`; None when a job with the same key is still running (or the runner is closed)."""
        fn = JOBS[name]
        with self._lock:
            if self._closed or (key is not None and key in self._keys and not self._keys[key].done()):
                return None
            future = self._pool.submit(self._run, name, fn, args)
            if key is not None:
                self._keys[key] = future
            return future

    def _run(self, name: str, fn: JobFunction, args: dict[str, Any]) -> Any:
        try:
            return fn(self.state, **args)
        except Exception:
            log.exception("job %s failed", name)
            raise

    def running(self) -> list[str]:
        with self._lock:
            return sorted(key for key, future in self._keys.items() if not future.done())

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=wait, cancel_futures=True)
