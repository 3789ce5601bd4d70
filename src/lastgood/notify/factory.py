"""The file's `notifications.channels`, as notifiers. Each is named after its place in the file."""

from __future__ import annotations

from lastgood.aws.clients import AwsClients
from lastgood.config.notifications import Channel, Notifications
from lastgood.errors import ConfigError
from lastgood.notify.base import Notifier
from lastgood.notify.email import EmailNotifier
from lastgood.notify.slack import SlackNotifier
from lastgood.notify.sns import SnsNotifier
from lastgood.notify.webhook import WebhookNotifier


def build_notifier(channel: Channel, aws: AwsClients, name: str) -> Notifier:
    """One notifier per channel; the config model guarantees exactly one of the four is set."""
    if channel.slack is not None:
        return SlackNotifier(channel.slack, name=f"{name}.slack")
    if channel.sns is not None:
        return SnsNotifier(channel.sns, aws, name=f"{name}.sns")
    if channel.email is not None:
        return EmailNotifier(channel.email, name=f"{name}.email")
    if channel.webhook is not None:
        return WebhookNotifier(channel.webhook, name=f"{name}.webhook")
    raise ConfigError([f"notifications.{name}: a channel is exactly one of slack, sns, email, webhook"])


def build_notifiers(settings: Notifications, aws: AwsClients) -> list[Notifier]:
    """e.g. `channels[0].slack`, `channels[1].email`: the name says where the channel is in the file."""
    return [build_notifier(channel, aws, f"channels[{index}]") for index, channel in enumerate(settings.channels)]
