"""Telling people: Slack, SNS, email and a signed webhook behind one small interface.

`Notifier.send(message)` delivers one `Message` or raises; `Dispatcher` calls every notifier off the caller's
thread, retries, records what finally failed, and sends periodic updates. Nothing here can block or fail a
rollback.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lastgood.notify.base import Message, NopNotifier, Notifier, NotifyError
    from lastgood.notify.dispatch import Dispatch, Dispatcher, NopDispatcher
    from lastgood.notify.messages import message_for, message_from_rollback
    from lastgood.notify.registry import build_notifiers

# Imported when first asked for: validating a file's channels imports the one notifier module it names, not the
# dispatcher's threads and queues (issue 13, goal 1).
_WHERE = {
    "Message": "base",
    "NopNotifier": "base",
    "Notifier": "base",
    "NotifyError": "base",
    "Dispatch": "dispatch",
    "Dispatcher": "dispatch",
    "NopDispatcher": "dispatch",
    "message_for": "messages",
    "message_from_rollback": "messages",
    "build_notifiers": "registry",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)


__all__ = [
    "Dispatch",
    "Dispatcher",
    "Message",
    "NopDispatcher",
    "NopNotifier",
    "Notifier",
    "NotifyError",
    "build_notifiers",
    "message_for",
    "message_from_rollback",
]
