"""Pydantic models of lastgood.yaml. Names here are the file's contract."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from lastgood.config.durations import ConditionField, Duration, parse_condition, parse_duration
from lastgood.config.interpolate import substitute_env
from lastgood.config.notifications import Notifications
from lastgood.config.policy import Policy
from lastgood.config.strict import Strict as Strict


class AwsSettings(Strict):
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None


class Environment(Strict):
    aws: AwsSettings = Field(default_factory=AwsSettings)
    protected: bool = False
    confirm_phrase: str | None = Field(
        default=None,
        description="The phrase a person types to confirm a rollback of a protected environment.",
    )
    rto: Duration | None = Field(
        default=None, description="Recovery-time objective; a plan whose estimate exceeds it says so."
    )

    def phrase(self, env_name: str) -> str:
        return self.confirm_phrase or f"rollback-{env_name}"


class Component(Strict):
    """Fields every component has; each kind adds its own (see lastgood.kinds)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    # Keys holding file system paths: relative ones are resolved against the runbook file's folder.
    path_fields: ClassVar[tuple[str, ...]] = ()

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    kind: str
    depends_on: list[str] = Field(default_factory=list)
    description: str | None = None


# CloudWatch accepts 1, 5, 10, 30 or any multiple of 60 seconds.
_HIGH_RESOLUTION_PERIODS = {1.0, 5.0, 10.0, 30.0}


def _check_period(value: float, cloudwatch: bool) -> float:
    if cloudwatch:
        if value not in _HIGH_RESOLUTION_PERIODS and (value < 60 or value % 60):
            raise ValueError("CloudWatch periods are 1s, 5s, 10s, 30s or a multiple of 60s")
    elif value <= 0:
        raise ValueError("the period must be positive")
    return value


class MetricQuery(Strict):
    namespace: str
    metric: str
    stat: str = "Sum"
    dimensions: dict[str, str] = Field(default_factory=dict)


class MetricMath(Strict):
    """CloudWatch metric math: `expression` over the `metrics`, named by id (e.g. `m1 / m2 * 100`)."""

    expression: str
    metrics: dict[str, MetricQuery] = Field(description="The metrics the expression names, by id (m1, m2, ...).")

    @field_validator("metrics")
    @classmethod
    def _ids(cls, value: dict[str, MetricQuery]) -> dict[str, MetricQuery]:
        if not value:
            raise ValueError("metric math needs at least one metric")
        bad = [key for key in value if not re.fullmatch(r"[a-z][a-zA-Z0-9_]*", key)]
        if bad:
            raise ValueError(f"metric ids must start with a lowercase letter, then letters, digits or _: {bad}")
        return value


class PrometheusQuery(Strict):
    url: str | None = Field(
        default=None, description="The Prometheus server, e.g. http://prometheus:9090 (under `per`: the trigger's)."
    )
    query: str = Field(description="PromQL; one series per step (aggregate with sum(...) etc.).")


class ProbeQuery(Strict):
    """lastgood calls `url` itself, `rate` times a second, and measures the answers."""

    url: str
    rate: float = Field(default=1.0, gt=0, description="Requests per second ('5', '5/s' or '30/m').")
    timeout: Duration = 5.0
    expect_status: list[int] = Field(default_factory=lambda: [200], description="Statuses that count as success.")
    measure: Literal["error-rate", "p50", "p90", "p99"] = Field(
        default="error-rate",
        description="error-rate: % of calls failing (timeouts and unexpected statuses); pNN: latency in ms.",
    )

    @field_validator("rate", mode="before")
    @classmethod
    def _rate(cls, value: Any) -> Any:
        if isinstance(value, str) and "/" in value:
            number, _, unit = value.partition("/")
            per = {"s": 1.0, "m": 60.0}.get(unit.strip().lower())
            if per is None:
                raise ValueError(f"expected a rate such as '5/s' or '30/m', got {value!r}")
            return float(number) / per
        return value

    @field_validator("expect_status", mode="before")
    @classmethod
    def _status_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, int | str) else value


SourceType = Literal["cloudwatch", "prometheus", "probe"]
SOURCE_TYPES: tuple[SourceType, ...] = ("cloudwatch", "prometheus", "probe")


class Trigger(Strict):
    name: str
    cloudwatch: MetricQuery | MetricMath | None = Field(
        default=None, description="A CloudWatch metric, or metric math: {expression, metrics: {m1: ..., m2: ...}}."
    )
    prometheus: PrometheusQuery | None = Field(default=None, description="A PromQL query over query_range.")
    probe: ProbeQuery | None = Field(default=None, description="lastgood calls an endpoint and measures it.")
    per: MetricQuery | PrometheusQuery | None = Field(
        default=None, description="Divide by this metric (a rate); with a '%' condition the ratio is x100."
    )
    when: ConditionField
    for_: Duration = Field(default=60.0, alias="for")
    within: Duration | None = Field(
        default=None, description="M of N: 'for' worth of breaching periods among the last 'within' (e.g. 3m of 5m)."
    )
    baseline: Duration | None = Field(
        default=None,
        description="With 'when: > Nx baseline': the window before the live release's recording time [1h].",
    )
    period: Duration = 60.0
    severity: Literal["critical", "high", "medium", "low"] = "high"
    action: Literal["rollback", "alert"] = "alert"
    environments: list[str] | None = Field(
        default=None, description="The environments this trigger watches [default: all]."
    )
    missing_data: Literal["ignore", "breaching"] = Field(
        default="ignore",
        description="Whether a period with no data counts as breaching (default: it does not).",
    )

    @model_validator(mode="before")
    @classmethod
    def _count_window(cls, data: Any) -> Any:
        """`when: "> 5 per 5m"` sets the period (and `for`, unless given) to the window."""
        if not isinstance(data, dict) or "when" not in data:
            return data
        try:
            condition = parse_condition(data["when"])
        except ValueError:
            return data  # the field reports it
        if condition.window is not None:
            data = dict(data)
            if "period" in data and parse_duration(data["period"]) != condition.window:
                raise ValueError(f"'when: {condition}' sets the period; remove 'period' or make it match")
            data["period"] = condition.window
            if "for" not in data and "for_" not in data:
                data["for"] = condition.window
        return data

    @field_validator("period")
    @classmethod
    def _cloudwatch_period(cls, value: float, info: ValidationInfo) -> float:
        cloudwatch = info.data.get("cloudwatch") is not None
        return _check_period(value, cloudwatch or not any(info.data.get(k) for k in ("prometheus", "probe")))

    @model_validator(mode="after")
    def _window_covers_period(self) -> Trigger:
        given = [name for name in SOURCE_TYPES if getattr(self, name) is not None]
        if len(given) != 1:
            found = ", ".join(given) or "none"
            raise ValueError(f"a trigger names exactly one source: cloudwatch, prometheus or probe (found: {found})")
        if self.prometheus is not None and not self.prometheus.url:
            raise ValueError("prometheus needs 'url'")
        if self.per is not None:
            expected = {"cloudwatch": MetricQuery, "prometheus": PrometheusQuery}.get(self.source_type)
            if expected is None or not isinstance(self.per, expected):
                shape = {"cloudwatch": "a CloudWatch metric", "prometheus": "{query: ...}"}.get(self.source_type)
                raise ValueError(
                    f"'per' must be {shape} for a {self.source_type} trigger"
                    if shape
                    else f"'per' does not apply to a {self.source_type} trigger"
                )
        when = self.when
        if when.window is not None:
            if self.per is not None:
                raise ValueError(f"'when: {when}' is a count; it takes no 'per'")
            if self.probe is not None:
                raise ValueError(f"'when: {when}' counts CloudWatch or Prometheus values, not probe measures")
            stats = (
                [self.cloudwatch.stat]
                if isinstance(self.cloudwatch, MetricQuery)
                else [m.stat for m in self.cloudwatch.metrics.values()]
                if isinstance(self.cloudwatch, MetricMath)
                else []
            )
            if any(stat != "Sum" for stat in stats):
                raise ValueError(f"'when: {when}' counts with the Sum statistic; remove 'stat'")
        if when.kind == "present" and self.per is not None:
            raise ValueError("'when: present' takes no 'per'")
        if when.kind == "baseline":
            if self.probe is not None:
                raise ValueError("a probe has no history before the guard starts: it cannot use a baseline")
        elif self.baseline is not None:
            raise ValueError("'baseline' needs a condition such as '> 5x baseline'")
        if self.for_ < self.period:
            raise ValueError(f"'for' ({self.for_:g}s) is shorter than 'period' ({self.period:g}s)")
        if self.for_ % self.period:
            raise ValueError(f"'for' ({self.for_:g}s) must be a whole number of periods ({self.period:g}s)")
        if self.within is not None:
            if self.within < self.for_:
                raise ValueError(f"'within' ({self.within:g}s) is shorter than 'for' ({self.for_:g}s)")
            if self.within % self.period:
                raise ValueError(f"'within' ({self.within:g}s) must be a whole number of periods ({self.period:g}s)")
        if self.baseline_window % self.period or self.baseline_window < self.period:
            raise ValueError(f"'baseline' ({self.baseline_window:g}s) must be a whole number of periods")
        return self

    @property
    def source_type(self) -> SourceType:
        return "prometheus" if self.prometheus is not None else "probe" if self.probe is not None else "cloudwatch"

    @property
    def query(self) -> MetricQuery | MetricMath | PrometheusQuery | ProbeQuery:
        """The one source query this trigger names."""
        query = self.cloudwatch or self.prometheus or self.probe
        assert query is not None  # the validator requires exactly one
        return query

    @property
    def periods_required(self) -> int:
        """Breaching periods needed to fire: consecutive ones, or (with 'within') among the last periods_window."""
        return int(self.for_ // self.period)

    @property
    def periods_window(self) -> int:
        """How many recent periods are judged: 'within' (M of N), else 'for'."""
        return int((self.within or self.for_) // self.period)

    @property
    def baseline_window(self) -> float:
        return self.baseline if self.baseline is not None else 3600.0


LatencyLabel = Literal["p50", "p90", "p99"]
DEFAULT_LATENCY: tuple[LatencyLabel, ...] = ("p50", "p90", "p99")
# Replaced when a deployment is judged, not when the file is loaded: the version judged (the canary's or the
# baseline's), the component's name, and what its kind adds (`WeightedKind.placeholders`): lambda-alias
# {function} {alias}; stepfunctions-alias {version_arn} {state_machine_arn} {alias_arn}; elbv2-listener
# {target_group} {load_balancer}; route53-weighted {record_name} {hosted_zone_id}.
JUDGING_PLACEHOLDERS = (
    "{version}",
    "{component}",
    "{function}",
    "{alias}",
    "{version_arn}",
    "{state_machine_arn}",
    "{alias_arn}",
    "{target_group}",
    "{load_balancer}",
    "{record_name}",
    "{hosted_zone_id}",
)


# The placeholders that differ between the two versions judged (one of them names the version in a query).
PER_VERSION_PLACEHOLDERS = ("{version}", "{version_arn}", "{target_group}")


def _names_version(text: str, what: str) -> None:
    if not any(p in text for p in PER_VERSION_PLACEHOLDERS):
        raise ValueError(
            f"{what} a {{version}} placeholder (or {{version_arn}}, {{target_group}}): the metric is fetched once "
            "for each version"
        )


class CanaryCloudWatch(Strict):
    """Per-version CloudWatch metrics; Lambda publishes them for an alias with FunctionName, Resource
    (function:alias) and ExecutedVersion."""

    requests: MetricQuery = Field(description="Requests per version (Sum), e.g. AWS/Lambda Invocations.")
    errors: MetricQuery = Field(description="Errors per version (Sum), e.g. AWS/Lambda Errors.")
    latency: MetricQuery | None = Field(
        default=None,
        description="A latency metric per version (e.g. AWS/Lambda Duration); its stat is ignored: lastgood asks "
        "for percentiles of the baseline, then the percentile rank PR(:threshold) of each version.",
    )

    @field_validator("requests", "errors", "latency")
    @classmethod
    def _per_version(cls, value: MetricQuery | None, info: ValidationInfo) -> MetricQuery | None:
        if value is None:
            return value
        if info.field_name != "latency" and value.stat != "Sum":
            raise ValueError(f"counts use the Sum statistic, not {value.stat!r}; remove 'stat'")
        _names_version(" ".join(value.dimensions.values()), "its dimensions need")
        return value


class CanaryPrometheus(Strict):
    """Per-version PromQL queries, one series each per period (`increase(...[period])`)."""

    url: str = Field(description="The Prometheus server, e.g. http://prometheus:9090.")
    requests: str = Field(description="Requests of one version in one period, e.g. sum(increase(...[1m])).")
    errors: str = Field(description="Errors of one version in one period; add 'or vector(0)' when none is none.")
    latency_buckets: str | None = Field(
        default=None,
        description="Histogram bucket increments of one version in one period, one series per 'le': "
        "sum by (le) (increase(..._bucket{...}[1m])).",
    )

    @field_validator("requests", "errors", "latency_buckets")
    @classmethod
    def _per_version(cls, value: str | None) -> str | None:
        if value is not None:
            _names_version(value, "the query needs")
        return value


class Canary(Strict):
    """The canary judge: the new version against the old one, both live behind the alias, every period."""

    cloudwatch: CanaryCloudWatch | None = None
    prometheus: CanaryPrometheus | None = None
    alpha: float = Field(
        default=0.05, gt=0, lt=1, description="The chance of a false rollback per deployment, split across metrics."
    )
    severity: Literal["critical", "high", "medium", "low"] = Field(
        default="high", description="The severity of a rollback the judge starts (the policy's matrices use it)."
    )
    tolerated_ratio: float = Field(
        default=1.0, gt=0, description="R0: the canary may be this many times worse before it counts as bad."
    )
    period: Duration = Field(default=60.0, description="The judging interval.")
    warmup: Duration = Field(default=120.0, description="Discarded at the start of the judgement (whole periods).")
    latency: list[LatencyLabel] | None = Field(
        default=None,
        description="Latency thresholds taken from the baseline's previous period; [] judges errors only "
        "[default: p50, p90, p99 when a latency metric is given].",
    )

    @field_validator("period")
    @classmethod
    def _period(cls, value: float, info: ValidationInfo) -> float:
        return _check_period(value, cloudwatch=info.data.get("cloudwatch") is not None)

    @field_validator("warmup")
    @classmethod
    def _warmup(cls, value: float, info: ValidationInfo) -> float:
        period = info.data.get("period")
        if value < 0 or (period and value % period):
            raise ValueError(f"{value:g}s is not a whole number of periods ({period:g}s)")
        return value

    @field_validator("latency")
    @classmethod
    def _latency(cls, value: list[LatencyLabel] | None, info: ValidationInfo) -> list[LatencyLabel] | None:
        cloudwatch, prometheus = info.data.get("cloudwatch"), info.data.get("prometheus")
        if value and cloudwatch is not None and cloudwatch.latency is None:
            raise ValueError("judging latency needs the per-version metric cloudwatch.latency (or latency: [])")
        if value and prometheus is not None and prometheus.latency_buckets is None:
            raise ValueError("judging latency needs the per-version query prometheus.latency_buckets (or latency: [])")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> Canary:
        given = [name for name in ("cloudwatch", "prometheus") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"name exactly one source: cloudwatch or prometheus (found: {', '.join(given) or 'none'})")
        return self

    @property
    def has_latency_metric(self) -> bool:
        if self.cloudwatch is not None:
            return self.cloudwatch.latency is not None
        return self.prometheus is not None and self.prometheus.latency_buckets is not None

    @property
    def latency_thresholds(self) -> tuple[LatencyLabel, ...]:
        if self.latency is not None:
            return tuple(self.latency)
        return DEFAULT_LATENCY if self.has_latency_metric else ()

    @property
    def warmup_intervals(self) -> int:
        return int(self.warmup // self.period)

    @property
    def source_type(self) -> SourceType:
        return "cloudwatch" if self.cloudwatch is not None else "prometheus"


class Runbook(Strict):
    app: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    state: str | None = Field(default=None, description="SQLAlchemy URL of the ledger; LASTGOOD_STATE overrides.")
    environments: dict[str, Environment]
    components: list[Any] = Field(description="Components; each kind documents its own keys.")
    triggers: list[Trigger] = Field(default_factory=list)
    policy: Policy = Field(default_factory=Policy, description="Decisions, approvals, people, targets, drills.")
    notifications: Notifications = Field(default_factory=Notifications, description="Slack, SNS, email, webhooks.")
    canary: Canary | None = Field(
        default=None, description="Judge `lastgood deploy`'s canary against the baseline version, per version."
    )

    _base_dir: Path | None = PrivateAttr(default=None)

    def environment(self, name: str) -> Environment:
        from lastgood.errors import BadInput

        if name not in self.environments:
            known = ", ".join(sorted(self.environments)) or "none"
            raise BadInput(f"unknown environment {name!r} (the file defines: {known})")
        return self.environments[name]

    def components_for(self, env: str) -> list[Component]:
        """Components with {env} and {app} substituted for one environment."""
        self.environment(env)
        return [
            self._resolve_paths(type(c).model_validate(substitute_env(c.model_dump(by_alias=True), env, self.app)))
            for c in self.components
        ]

    def _resolve_paths(self, spec: Component) -> Component:
        updates = {}
        for name in spec.path_fields:
            value = getattr(spec, name)
            if isinstance(value, str) and value and not Path(value).is_absolute():
                updates[name] = str(self.base_dir / value)
        return spec.model_copy(update=updates) if updates else spec

    def triggers_for(self, env: str) -> list[Trigger]:
        self.environment(env)
        return [
            Trigger.model_validate(substitute_env(t.model_dump(by_alias=True), env, self.app))
            for t in self.triggers
            if t.environments is None or env in t.environments
        ]

    def canary_for(self, env: str) -> Canary | None:
        """The canary block with {env} and {app} substituted; {version}, {component}, ... stay for judging."""
        self.environment(env)
        if self.canary is None:
            return None
        return Canary.model_validate(substitute_env(self.canary.model_dump(by_alias=True), env, self.app))

    @property
    def base_dir(self) -> Path:
        return self._base_dir or Path.cwd()
