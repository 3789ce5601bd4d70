"""Channel key -> notifier class. Adding a notifier is one module and one line in _MODULES.

A notifier class names its key in `notifications.channels` (`key`), owns its settings model (`settings`, a
`ChannelSettings` whose `secret_fields` are masked) and builds itself (`build`); registering it here also
registers it with the file's validation (config/plugins.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from lastgood.aws.clients import AwsClients
from lastgood.config import plugins
from lastgood.config.notifications import Channel, Notifications
from lastgood.lazy_registry import LazyRegistry

if TYPE_CHECKING:
    from lastgood.notify.base import Notifier

_MODULES = {
    "slack": "lastgood.notify.slack:SlackNotifier",
    "sns": "lastgood.notify.sns:SnsNotifier",
    "email": "lastgood.notify.email:EmailNotifier",
    "webhook": "lastgood.notify.webhook:WebhookNotifier",
}
"""Each channel's key and where its notifier is; a module is imported when a channel first names it."""


class NotifierClass(Protocol):
    key: str
    settings: type[plugins.ChannelSettings]

    @classmethod
    def build(cls, settings: plugins.ChannelSettings, aws: AwsClients, name: str) -> Notifier: ...


NOTIFIERS: LazyRegistry[NotifierClass] = LazyRegistry(_MODULES)


def register(notifier: NotifierClass) -> None:
    NOTIFIERS[notifier.key] = notifier
    plugins.register_channel(notifier)


def unregister(key: str) -> None:
    NOTIFIERS.pop(key, None)
    plugins.CHANNELS.pop(key, None)


def build_notifier(channel: Channel, aws: AwsClients, name: str) -> Notifier:
    """e.g. `channels[0].slack`: the name says where the channel is in the file."""
    return NOTIFIERS[channel.type].build(channel.settings, aws, f"{name}.{channel.type}")


def build_notifiers(settings: Notifications, aws: AwsClients) -> list[Notifier]:
    return [
        build_notifier(channel, aws, channel.name or f"channels[{index}]")
        for index, channel in enumerate(settings.channels)
    ]


plugins.list_channels(_MODULES)
