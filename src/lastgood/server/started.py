"""A request that starts background work waits here until the job says it has started, ended or failed.

In-process only: the job signals the waiter registered under a token the request chose (a job on another
machine would answer nothing, and the request times out with what it knows)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from lastgood.errors import LastgoodError

T = TypeVar("T")


class Started(Generic[T]):
    def __init__(self) -> None:
        self.event = threading.Event()
        self.value: T | None = None
        self.error: LastgoodError | None = None

    def wait(self, timeout: float) -> T | None:
        """The value the job signalled; its error raised; None when it said nothing within `timeout`."""
        if not self.event.wait(timeout):
            return None
        if self.error is not None:
            raise self.error
        return self.value


class Waiters(Generic[T]):
    def __init__(self) -> None:
        self._waiting: dict[str, Started[T]] = {}
        self._lock = threading.Lock()

    @contextmanager
    def waiting(self, token: str) -> Iterator[Started[T]]:
        started: Started[T] = Started()
        with self._lock:
            self._waiting[token] = started
        try:
            yield started
        finally:
            with self._lock:
                self._waiting.pop(token, None)

    def signal(self, token: str, value: T | None = None, error: LastgoodError | None = None) -> None:
        """The first signal counts; later ones (the job's end after its start) are dropped."""
        with self._lock:
            started = self._waiting.get(token)
        if started is not None and not started.event.is_set():
            started.value, started.error = value, error
            started.event.set()
