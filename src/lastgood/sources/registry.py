"""Source name -> implementation. Adding a metric source is one module and one line in _MODULES.

A source class names its key in a trigger (`name`), owns its settings model (`settings`, and `per_settings` for
`per:`), checks what it cannot judge (`check_period`, `check_trigger`) and builds itself (`build`); registering
it here also registers it with the file's validation (config/plugins.py). Validation admits only registered
sources, so an unknown one here is a bug: it raises, never falls back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from lastgood.aws.clients import AwsClients
from lastgood.config import plugins
from lastgood.config.durations import Condition
from lastgood.config.models import Trigger
from lastgood.lazy_registry import LazyRegistry

if TYPE_CHECKING:
    from lastgood.sources.base import MetricSource

_MODULES = {
    "cloudwatch": "lastgood.sources.cloudwatch:CloudWatchSource",
    "prometheus": "lastgood.sources.prometheus:PrometheusSource",
    "probe": "lastgood.sources.http_probe:ProbeSource",
    "logs_insights": "lastgood.sources.logs_insights:LogsInsightsSource",
    "log_events": "lastgood.sources.log_events:LogEventsSource",
    "codedeploy_hooks": "lastgood.sources.codedeploy_hooks:CodeDeployHooksSource",
}
"""Each source's key in a trigger and where its class is; a module is imported when a trigger first names it."""


class SourceClass(Protocol):
    """What a registered source class provides (config/plugins.SourcePlugin, plus `build`)."""

    name: str
    settings: Any
    per_settings: Any
    per_shape: str

    @classmethod
    def check_trigger(cls, query: Any, per: Any, when: Condition, period: float) -> None: ...

    @classmethod
    def check_period(cls, period: float) -> None: ...

    @classmethod
    def build(cls, aws: AwsClients, queries: list[BaseModel]) -> MetricSource: ...


SOURCES: LazyRegistry[SourceClass] = LazyRegistry(_MODULES)


def register(source: SourceClass) -> None:
    SOURCES[source.name] = source
    plugins.register_source(source)


def unregister(name: str) -> None:
    SOURCES.pop(name, None)
    plugins.SOURCES.pop(name, None)


def build_source(source_type: str, aws: AwsClients, triggers: list[Trigger]) -> MetricSource:
    """The source for one type (a probe source starts calling its endpoints at once)."""
    if source_type not in SOURCES:
        raise ValueError(f"unknown metric source type {source_type!r} (known: {', '.join(SOURCES)})")
    return SOURCES[source_type].build(aws, [t.query for t in triggers])


def sources_for(
    triggers: list[Trigger], aws: AwsClients, given: Mapping[str, MetricSource] | None = None
) -> dict[str, MetricSource]:
    """A source for each type the triggers name: the given one for that type, else a new one."""
    out: dict[str, MetricSource] = {}
    for source_type in dict.fromkeys(t.source_type for t in triggers):
        if given is not None and source_type in given:
            out[source_type] = given[source_type]
        else:
            out[source_type] = build_source(source_type, aws, [t for t in triggers if t.source_type == source_type])
    return out


def iam_actions(source_type: str) -> tuple[str, ...]:
    """The AWS actions a source calls (`iam_actions` on its class; none for a source outside AWS)."""
    return tuple(getattr(SOURCES.get(source_type), "iam_actions", ()))


def close_sources(sources: Mapping[str, MetricSource]) -> None:
    for source in sources.values():
        close = getattr(source, "close", None)
        if callable(close):
            close()


plugins.list_sources(_MODULES)
