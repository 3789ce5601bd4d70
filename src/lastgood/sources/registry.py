"""One metric source per source type a trigger can name (`cloudwatch:`, `prometheus:`, `probe:`).

The file's validation admits only these types, so an unknown one here is a bug: it raises, never falls back.
"""

from __future__ import annotations

from collections.abc import Mapping

from lastgood.aws.clients import AwsClients
from lastgood.config.models import SOURCE_TYPES, ProbeQuery, Trigger
from lastgood.sources.base import MetricSource
from lastgood.sources.cloudwatch import CloudWatchSource
from lastgood.sources.http_probe import ProbeSource
from lastgood.sources.prometheus import PrometheusSource


def build_source(source_type: str, aws: AwsClients, triggers: list[Trigger]) -> MetricSource:
    """The source for one type; a probe source starts calling its endpoints at once."""
    if source_type == "cloudwatch":
        return CloudWatchSource(aws)
    if source_type == "prometheus":
        return PrometheusSource()
    if source_type == "probe":
        source = ProbeSource()
        source.start([t.probe for t in triggers if isinstance(t.probe, ProbeQuery)])
        return source
    raise ValueError(f"unknown metric source type {source_type!r} (known: {', '.join(SOURCE_TYPES)})")


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


def close_sources(sources: Mapping[str, MetricSource]) -> None:
    for source in sources.values():
        close = getattr(source, "close", None)
        if callable(close):
            close()
