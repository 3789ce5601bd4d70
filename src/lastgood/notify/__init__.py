"""Telling people: Slack, SNS, email and a signed webhook behind one small interface.

`Notifier.send(message)` delivers one `Message` or raises; `Dispatcher` calls every notifier off the caller's
thread, retries, records what finally failed, and sends periodic updates. Nothing here can block or fail a
rollback.
"""

from lastgood.notify.base import Message, NopNotifier, Notifier, NotifyError
from lastgood.notify.dispatch import Dispatch, Dispatcher, NopDispatcher
from lastgood.notify.messages import message_for, message_from_rollback
from lastgood.notify.registry import build_notifiers

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
