"""A notifier that keeps what it was sent, for tests; it can fail its first N sends or be slowed down."""

from __future__ import annotations

import threading
import time

from lastgood.notify.base import Message, NotifyError


class RecordingNotifier:
    def __init__(self, name: str = "recording", fail_times: int = 0, delay: float = 0.0) -> None:
        self.name = name
        self.fail_times = fail_times
        self.delay = delay
        self.messages: list[Message] = []
        self.attempts = 0
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)

    def send(self, message: Message) -> None:
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            self.attempts += 1
            if self.attempts <= self.fail_times:
                raise NotifyError(f"{self.name}: injected failure {self.attempts} of {self.fail_times}")
            self.messages.append(message)
            self._arrived.notify_all()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Message]:
        """Block until at least `count` messages arrived (or the timeout); the messages so far."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.messages) >= count, timeout)
            return list(self.messages)
