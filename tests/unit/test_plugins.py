"""A new metric source or notifier is one module and one registry call: the ones below are defined here, nowhere
else, and the file's validation, its error messages, the JSON schema, the guard's sources and the notifiers all
pick them up."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from lastgood.aws.clients import AwsClients
from lastgood.config.durations import Condition
from lastgood.config.loader import parse_runbook
from lastgood.config.models import AwsSettings, Strict
from lastgood.config.plugins import ChannelSettings
from lastgood.config.schema import runbook_schema
from lastgood.errors import ConfigError
from lastgood.judge.threshold import ThresholdJudge
from lastgood.notify import registry as notify_registry
from lastgood.notify.base import Message
from lastgood.sources import registry as source_registry
from lastgood.sources.base import MetricSource, Series, SeriesRequest

# -- the "module" of a new source ------------------------------------------------------------------------------


class ConstantQuery(Strict):
    value: float


class ConstantSource:
    """`constant:` every period has the same value."""

    name = "constant"
    settings: ClassVar[Any] = ConstantQuery
    per_settings: ClassVar[Any] = None
    per_shape: ClassVar[str] = ""

    @classmethod
    def build(cls, aws: AwsClients, queries: list[BaseModel]) -> MetricSource:
        return cls()

    @classmethod
    def check_period(cls, period: float) -> None:
        if period % 10:
            raise ValueError("constant periods are multiples of 10s")

    @classmethod
    def check_trigger(cls, query: Any, per: Any, when: Condition, period: float) -> None:
        if when.kind == "baseline":
            raise ValueError("a constant has no baseline")

    def fetch(self, requests: list[SeriesRequest], start: datetime, end: datetime) -> dict[str, Series]:
        out = {}
        for request in requests:
            assert isinstance(request.query, ConstantQuery)
            stamps = int((end - start).total_seconds() // request.period)
            points = {start + timedelta(seconds=i * request.period): request.query.value for i in range(stamps)}
            out[request.id] = Series(request.id, points)
        return out


# -- the "module" of a new notifier ----------------------------------------------------------------------------


class PagerSettings(ChannelSettings):
    secret_fields: ClassVar[tuple[str, ...]] = ("token",)

    service: str
    token: str


class PagerNotifier:
    key: ClassVar[str] = "pager"
    settings: ClassVar[type[ChannelSettings]] = PagerSettings
    sent: ClassVar[list[tuple[str, str, str]]] = []

    @classmethod
    def build(cls, settings: ChannelSettings, aws: AwsClients, name: str) -> PagerNotifier:
        assert isinstance(settings, PagerSettings)
        return cls(settings, name)

    def __init__(self, settings: PagerSettings, name: str) -> None:
        self.name = name
        self._settings = settings

    def send(self, message: Message) -> None:
        self.sent.append((self.name, self._settings.service, message.subject()))


@pytest.fixture
def registered() -> Iterator[None]:
    source_registry.register(ConstantSource)  # the one line a new source adds
    notify_registry.register(PagerNotifier)  # the one line a new notifier adds
    yield
    source_registry.unregister("constant")
    notify_registry.unregister("pager")


FILE = """
app: shop
environments: {prod: {}}
components: []
triggers:
  - {name: hot, constant: {value: 7}, when: "> 5", period: 10s, for: 30s, action: rollback}
notifications:
  channels:
    - pager: {service: payments, token: pager-token-123}
    - slack: {webhook_url: "http://127.0.0.1:9/hook"}
"""


def test_a_registered_source_and_notifier_validate_and_are_used(registered: None) -> None:
    runbook = parse_runbook(FILE)
    [trigger] = runbook.triggers_for("prod")
    assert (trigger.source_type, trigger.query) == ("constant", ConstantQuery(value=7))

    aws = AwsClients(AwsSettings(region="us-east-1"))
    sources = source_registry.sources_for([trigger], aws)
    assert isinstance(sources["constant"], ConstantSource)
    end = datetime(2026, 1, 1, tzinfo=UTC)
    requests = ThresholdJudge().requests(trigger)
    series = sources["constant"].fetch(requests, end - timedelta(seconds=trigger.for_), end)
    assert ThresholdJudge().judge(trigger, series, end).state == "firing"

    notifiers = notify_registry.build_notifiers(runbook.notifications, aws)
    assert [n.name for n in notifiers] == ["channels[0].pager", "channels[1].slack"]
    message = Message("rollback-started", "shop", "prod", "rb-1", "errors", "all", "roll back", "5m", "running")
    notifiers[0].send(message)
    assert PagerNotifier.sent[-1][:2] == ("channels[0].pager", "payments")
    assert runbook.notifications.channels[0].settings.secrets() == ["pager-token-123"]  # its secret field


@pytest.mark.parametrize(
    ("trigger", "problem"),
    [
        ("{name: t, constant: {valu: 7}, when: '> 5', period: 10s}", "triggers[0].constant.valu: unknown key 'valu'"),
        ("{name: t, constant: {value: 7}, when: '> 5', period: 15s}", "triggers[0].period: constant periods are"),
        ("{name: t, constant: {value: 7}, when: '> 2x baseline', period: 10s}", "triggers[0]: a constant has no"),
        ("{name: t, constant: {value: 7}, per: {value: 1}, when: '> 5'}", "'per' does not apply to a constant"),
        (
            "{name: t, when: '> 5'}",
            "one source: cloudwatch, prometheus, probe, logs_insights, log_events, codedeploy_hooks or constant "
            "(found: none)",
        ),
    ],
)
def test_a_registered_source_reports_mistakes_with_paths(registered: None, trigger: str, problem: str) -> None:
    text = f"app: a\nenvironments: {{prod: {{}}}}\ncomponents: []\ntriggers: [{trigger}]\n"
    with pytest.raises(ConfigError) as caught:
        parse_runbook(text)
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_a_registered_channel_reports_mistakes_and_is_in_the_schema(registered: None) -> None:
    text = "app: a\nenvironments: {prod: {}}\ncomponents: []\nnotifications: {channels: [{pager: {servic: x}}]}\n"
    with pytest.raises(ConfigError) as caught:
        parse_runbook(text)
    assert "notifications.channels[0].pager.servic: unknown key 'servic' (did you mean 'service'?)" in (
        caught.value.problems
    )
    defs = runbook_schema()["$defs"]
    assert defs["Trigger"]["properties"]["constant"] == {"$ref": "#/$defs/ConstantQuery"}
    assert defs["Channel"]["properties"]["pager"] == {"$ref": "#/$defs/PagerSettings"}


def test_unregistered_keys_are_unknown_again() -> None:
    with pytest.raises(ConfigError, match="unknown key 'constant'"):
        parse_runbook("app: a\nenvironments: {prod: {}}\ncomponents: []\ntriggers: [{name: t, constant: {value: 1}}]\n")
