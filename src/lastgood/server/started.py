"""A request that starts background work waits here until the job says it has started, ended or failed.

The job signals the waiter registered under a token the request chose. In one process that is a thread event.
With several replicas the job may run on another machine: a `relay` (server/queue.py: PostgreSQL NOTIFY) then
carries each signal, as JSON, to every replica, and `deliver` hands it to the waiter there. A request that hears
nothing in time answers with what it knows.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from lastgood import errors
from lastgood.errors import LastgoodError

T = TypeVar("T", bound=BaseModel)

MAX_MESSAGE = 7000  # bytes: PostgreSQL's NOTIFY payload limit is 8000
Relay = Callable[[str], None]

_registry: dict[str, Waiters[Any]] = {}
_relays: list[Relay] = []


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
    def __init__(self, name: str, model: type[T]) -> None:
        self.name, self.model = name, model
        self._waiting: dict[str, Started[T]] = {}
        self._lock = threading.Lock()
        _registry[name] = self

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
        """Tell the waiter here, and every replica through the relays. The first signal counts; later ones (the
        job's end after its start) are dropped."""
        self.deliver(token, value, error)
        if _relays:
            message = encode(self.name, token, value, error)
            for relay in list(_relays):
                relay(message)

    def deliver(self, token: str, value: T | None = None, error: LastgoodError | None = None) -> None:
        with self._lock:
            started = self._waiting.get(token)
        if started is not None and not started.event.is_set():
            started.value, started.error = value, error
            started.event.set()


def add_relay(relay: Relay) -> None:
    _relays.append(relay)


def remove_relay(relay: Relay) -> None:
    if relay in _relays:
        _relays.remove(relay)


def encode(name: str, token: str, value: BaseModel | None, error: LastgoodError | None) -> str:
    body: dict[str, Any] = {"waiters": name, "token": token}
    if value is not None:
        body["value"] = value.model_dump(mode="json")
    if error is not None:
        attrs = {k: v for k, v in vars(error).items() if _json_safe(v)}
        body["error"] = {"type": type(error).__name__, "message": str(error), "attrs": attrs}
    message = json.dumps(body, separators=(",", ":"))
    if len(message.encode()) > MAX_MESSAGE and "value" in body:  # a long plan: the waiter gets the short fields
        body["value"] = {k: v for k, v in body["value"].items() if len(json.dumps(v)) < 500}
        message = json.dumps(body, separators=(",", ":"))
    return message


def deliver(message: str) -> None:
    """A signal relayed from another replica (or this one: the first signal counts, so the echo is dropped)."""
    try:
        body = json.loads(message)
        waiters = _registry.get(body["waiters"])
        if waiters is None:
            return
        value = waiters.model.model_validate(body["value"]) if "value" in body else None
        error = _error(body["error"]) if "error" in body else None
    except (ValueError, KeyError, TypeError, ValidationError):
        return  # not ours, or cut short: the request answers with what it knows
    waiters.deliver(str(body["token"]), value, error)


def _error(body: dict[str, Any]) -> LastgoodError:
    cls = getattr(errors, str(body.get("type")), None)
    if not (isinstance(cls, type) and issubclass(cls, LastgoodError)):
        return LastgoodError(str(body.get("message")))
    error = cls.__new__(cls)
    Exception.__init__(error, str(body.get("message")))
    error.__dict__.update(body.get("attrs") or {})
    return error


def _json_safe(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True
