"""Delivery that can never hold up or fail a rollback.

Each notifier gets its own queue and worker thread (a lane), so a slow or dead channel delays no other and
never the caller: `send` only enqueues. A lane tries a message 1 + retries times with exponential backoff; the
last error is handed to `record_failure(notifier_name, message, error)`, which the engine writes to the ledger.
Everything that leaves (messages, errors, log lines) passes through `lastgood.redact.redact` first.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from lastgood.notify.base import Message, Notifier, NotifyError
from lastgood.redact import redact

log = logging.getLogger("lastgood.notify")

RecordFailure = Callable[[str, Message, str], None]
MakeMessage = Callable[[], Message | None]


class Dispatch(Protocol):
    """What the engine holds: a Dispatcher, or a NopDispatcher when nothing is configured."""

    def send(self, message: Message) -> None: ...
    def start_updates(self, key: str, make_message: MakeMessage, every: float) -> None: ...
    def stop_updates(self, key: str) -> None: ...
    def flush(self, timeout: float = 10.0) -> bool: ...
    def close(self, timeout: float = 10.0) -> bool: ...


def describe(error: Exception) -> str:
    text = str(error) if isinstance(error, NotifyError) else f"{type(error).__name__}: {error}"
    return redact(text)


class _Lane:
    """One notifier's queue and worker thread."""

    def __init__(self, notifier: Notifier, owner: Dispatcher) -> None:
        self.notifier = notifier
        self.owner = owner
        self.queue: queue.Queue[Message | None] = queue.Queue()
        self.current: Message | None = None
        self.abandoned = False
        self.thread = threading.Thread(target=self._run, name=f"lastgood-notify {notifier.name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (message := self.queue.get()) is not None:
            self.current = message
            try:
                self._deliver(message)
            except Exception as failure:  # a bug here must not kill the lane
                log.error("notification via %s: %s", self.notifier.name, describe(failure))
            finally:
                self.current = None
                self.owner._done()

    def _deliver(self, message: Message) -> None:
        safe = message.redacted()
        attempts = 1 + self.owner.retries
        error = ""
        for attempt in range(attempts):
            if self.abandoned:
                return
            if attempt:
                self.owner._sleep(self.owner.backoff_for(attempt))
            try:
                self.notifier.send(safe)
                return
            except Exception as failure:
                error = describe(failure)
                log.warning(
                    "notification %s via %s failed (attempt %d of %d): %s",
                    safe.event,
                    self.notifier.name,
                    attempt + 1,
                    attempts,
                    error,
                )
        if not self.abandoned:
            self.owner._record(self.notifier.name, safe, f"{error} (gave up after {attempts} attempts)")

    def abandon(self, reason: str) -> None:
        """Stop waiting for this lane: what it still holds is recorded as not delivered, and it records no more."""
        self.abandoned = True
        left = [self.current] if self.current is not None else []
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                left.append(item)
                self.owner._done()
        self.queue.put(None)  # the worker exits when it comes back
        for message in left:
            self.owner._record(self.notifier.name, message.redacted(), reason)


class _Updater:
    """Sends make_message() every `every` seconds until stopped; nothing is enqueued once stop() returned."""

    def __init__(self, owner: Dispatcher, key: str, make_message: MakeMessage, every: float) -> None:
        self.owner = owner
        self.key = key
        self.make_message = make_message
        self.every = every
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=f"lastgood-updates {key}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                message = self.make_message()
            except Exception as failure:
                log.warning("status update %s: could not build the message: %s", self.key, describe(failure))
                continue
            with self._lock:
                if message is not None and not self.stopped.is_set():
                    self.owner.send(message)

    def stop(self) -> None:
        with self._lock:
            self.stopped.set()


class Dispatcher:
    """Sends every message to every notifier, off the caller's thread, retrying; never raises, never blocks.

    `record_failure(notifier_name, message, error)` is called (one call at a time, from a dispatcher thread) for a
    message a notifier could not deliver after 1 + retries attempts, or still held when `close` gave up waiting.
    `sleep` is used between attempts (backoff, 2*backoff, 4*backoff, ... at most max_backoff seconds).
    """

    def __init__(
        self,
        notifiers: Sequence[Notifier],
        record_failure: RecordFailure,
        retries: int,
        backoff: float = 0.5,
        *,
        max_backoff: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.retries = max(0, retries)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self._clock = clock
        self._record_failure = record_failure
        self._record_lock = threading.Lock()
        self._lock = threading.Lock()
        self._pending = 0
        self._idle = threading.Condition(self._lock)
        self._closed = False
        self._updaters: dict[str, _Updater] = {}
        self._lanes = [_Lane(notifier, self) for notifier in notifiers]

    @property
    def names(self) -> list[str]:
        return [lane.notifier.name for lane in self._lanes]

    def backoff_for(self, attempt: int) -> float:
        return float(min(self.backoff * 2 ** (attempt - 1), self.max_backoff))

    def send(self, message: Message) -> None:
        """Queue the message for every notifier and return at once. Never raises."""
        try:
            with self._lock:
                if self._closed:
                    log.warning("notification %s dropped: the dispatcher is closed", message.event)
                    return
                lanes = [lane for lane in self._lanes if message.addressed(lane.notifier.name)]
                self._pending += len(lanes)
            for lane in lanes:
                lane.queue.put(message)
        except Exception as failure:  # pragma: no cover - queue.put on an unbounded queue does not fail
            log.error("notification %s not queued: %s", message.event, describe(failure))

    def start_updates(self, key: str, make_message: MakeMessage, every: float) -> None:
        """Every `every` seconds, send make_message() (skipped when it returns None) until stop_updates(key).

        Starting a key that runs replaces it. make_message runs on the updater's thread.
        """
        if every <= 0:
            raise ValueError(f"status updates need a positive interval, got {every}")
        with self._lock:
            if self._closed:
                return
            previous = self._updaters.pop(key, None)
            self._updaters[key] = _Updater(self, key, make_message, every)
        if previous is not None:
            previous.stop()

    def stop_updates(self, key: str) -> None:
        """No update for `key` is queued after this returns. Unknown keys are ignored."""
        with self._lock:
            updater = self._updaters.pop(key, None)
        if updater is not None:
            updater.stop()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued message was delivered or recorded as failed; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float = 10.0) -> bool:
        """Stop the updates, deliver what is queued (retries included) for up to `timeout` seconds, then stop.

        What is still undelivered then is recorded as failed. True if everything was delivered or recorded.
        """
        with self._lock:
            if self._closed:
                return True
            self._closed = True
            updaters = list(self._updaters.values())
            self._updaters.clear()
        for updater in updaters:
            updater.stop()
        deadline = self._clock() + timeout
        for lane in self._lanes:
            lane.queue.put(None)
        finished = True
        for lane in self._lanes:
            lane.thread.join(max(0.0, deadline - self._clock()))
            if lane.thread.is_alive():
                finished = False
                lane.abandon(
                    f"{lane.notifier.name}: not delivered: still sending when lastgood stopped waiting ({timeout:g}s)"
                )
        return finished

    def _done(self) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def _record(self, name: str, message: Message, error: str) -> None:
        with self._record_lock:
            try:
                self._record_failure(name, message, redact(error))
            except Exception as failure:
                log.error(
                    "could not record the failed notification %s via %s: %s", message.event, name, describe(failure)
                )


class NopDispatcher:
    """The same methods, doing nothing (no channels, or notifications turned off)."""

    def send(self, message: Message) -> None:
        return None

    def start_updates(self, key: str, make_message: MakeMessage, every: float) -> None:
        return None

    def stop_updates(self, key: str) -> None:
        return None

    def flush(self, timeout: float = 10.0) -> bool:
        return True

    def close(self, timeout: float = 10.0) -> bool:
        return True
