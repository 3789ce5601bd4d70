"""Pydantic models of lastgood.yaml. Names here are the file's contract."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, Union, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import InitErrorDetails

from lastgood.config import plugins
from lastgood.config.comms import Checklists, PostAction
from lastgood.config.durations import ConditionField, Duration, parse_condition, parse_duration
from lastgood.config.interpolate import substitute_env
from lastgood.config.manual import ManualTrigger
from lastgood.config.notifications import Notifications
from lastgood.config.policy import Policy
from lastgood.config.schedules import Schedule
from lastgood.config.strict import Strict as Strict
from lastgood.config.urls import check_endpoint_url, check_region, check_state_url
from lastgood.config.validation import Validation


class AwsSettings(Strict):
    region: str | None = Field(default=None, description="AWS region [default: AWS_REGION, the profile's].")
    profile: str | None = Field(
        default=None, min_length=1, max_length=256, description="AWS profile [default: AWS_PROFILE]."
    )
    endpoint_url: str | None = Field(default=None, description="AWS endpoint [default: AWS_ENDPOINT_URL].")
    rate_limits: dict[str, float] = Field(
        default_factory=dict,
        description=(
            "Requests a second per AWS API, sent at most: `service` (the boto3 client's name, e.g. lambda) or "
            "`service:Operation` (e.g. lambda:GetFunction); 0 turns pacing off for it. Overrides the defaults "
            "from AWS's published quotas (README, Pacing)."
        ),
    )

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        return None if value is None else check_region(value)

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return None if value is None else check_endpoint_url(value)

    @field_validator("rate_limits")
    @classmethod
    def _rates(cls, value: dict[str, float]) -> dict[str, float]:
        for key, rate in value.items():
            service, _, operation = key.partition(":")
            if not service or (":" in key and not operation) or " " in key:
                raise ValueError(f"{key!r}: a key is `service` or `service:Operation`, e.g. lambda or ssm:PutParameter")
            if rate < 0:
                raise ValueError(f"{key}: {rate} requests a second; a rate is positive, or 0 for no pacing")
        return value


DEFAULT_WATCH = 1800.0  # the CLI guard's default --for: 30m


class GuardSettings(Strict):
    """How long the team service guards an environment after each release it records."""

    watch: Duration = Field(
        default=DEFAULT_WATCH,
        description="How long after a release is recorded the server's guard watches it (default 30m).",
    )

    @field_validator("watch")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("the watch window must be positive, e.g. 30m")
        return value


class Environment(Strict):
    aws: AwsSettings = Field(default_factory=AwsSettings, description="Where this environment's resources are.")
    guard: GuardSettings | None = Field(
        default=None, description="This environment's guard window [default: the file's top-level guard]."
    )
    protected: bool = Field(default=False, description="A rollback needs the typed confirm_phrase (or --yes).")
    confirm_phrase: str | None = Field(
        default=None,
        description="The phrase a person types to confirm a rollback of a protected environment.",
    )
    rto: Duration | None = Field(
        default=None, description="Recovery-time objective; a plan whose estimate exceeds it says so."
    )
    validation: Validation | None = Field(
        default=None,
        alias="validate",
        description="Checks after a rollback restored every component [default: the file's top-level validate].",
    )

    def phrase(self, env_name: str) -> str:
        return self.confirm_phrase or f"rollback-{env_name}"


class Component(Strict):
    """Fields every component has; each kind adds its own (see lastgood.kinds)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)

    # Keys holding file system paths: relative ones are resolved against the runbook file's folder.
    path_fields: ClassVar[tuple[str, ...]] = ()

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    kind: str
    depends_on: list[str] = Field(default_factory=list)
    description: str | None = None
    rto: Duration | None = Field(
        default=None, description="Recovery-time objective of this component [default: policy.targets.rto[kind]]."
    )
    redeploy_after: list[str] = Field(
        default_factory=list,
        description="Components whose rollback this one must pick up: when the plan changes any of them, a "
        "redeploy step of this component runs after them (the kind's own redeploy, or `redeploy_command`).",
    )
    redeploy_command: str | None = Field(
        default=None,
        description="Shell command that redeploys this component, instead of its kind's own redeploy action "
        "($LASTGOOD_ENV, $LASTGOOD_APP, $LASTGOOD_STEP are set; at most 10 minutes).",
    )


# CloudWatch accepts 1, 5, 10, 30 or any multiple of 60 seconds.
_HIGH_RESOLUTION_PERIODS = {1.0, 5.0, 10.0, 30.0}


def _check_period(value: float, cloudwatch: bool) -> float:
    if cloudwatch:
        cloudwatch_period(value)
    else:
        positive_period(value)
    return value


def positive_period(value: float) -> None:
    if value <= 0:
        raise ValueError("the period must be positive")


class MetricQuery(Strict):
    namespace: str = Field(description="The metric's namespace, e.g. AWS/Lambda.")
    metric: str = Field(description="The metric's name, e.g. Errors.")
    stat: str = Field(default="Sum", description="A statistic (Sum, Average, Maximum, p99, ...).")
    dimensions: dict[str, str] = Field(default_factory=dict, description="Dimension name -> value; {env} works.")


def cloudwatch_period(value: float) -> None:
    if value not in _HIGH_RESOLUTION_PERIODS and (value < 60 or value % 60):
        raise ValueError("CloudWatch periods are 1s, 5s, 10s, 30s or a multiple of 60s")


def _count_window(data: dict[str, Any]) -> dict[str, Any]:
    """`when: "> 5 per 5m"` sets the period (and `for`, unless given) to the window."""
    if "when" not in data:
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


def _per_shape(key: str, raw: Any, found: Mapping[str, plugins.SourcePlugin]) -> list[InitErrorDetails]:
    """`per` written for another source (a CloudWatch metric under a Prometheus trigger) says what it must be."""
    for other in found.values():
        fits = other.per_settings is not None and not plugins.validate_value(other.per_settings, raw, ())[1]
        if other.name != key and fits:
            return [plugins.value_error((), f"'per' must be {found[key].per_shape} for a {key} trigger")]
    return []


def _dump_settings(value: Any, info: SerializationInfo) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode=info.mode, by_alias=bool(info.by_alias), exclude_none=info.exclude_none)
    return value


class Trigger(Strict):
    """A rollback or alert trigger. Its source is one key named by a registered source (`cloudwatch:`,
    `prometheus:`, `probe:`, see config/plugins.py), validated against that source's settings, as is `per`."""

    name: str = Field(description="The trigger's name, unique in the file.")
    description: str | None = Field(
        default=None, max_length=2000, description="What it stands for, e.g. the runbook's own words."
    )
    when: ConditionField = Field(
        description="`>`, `>=`, `<`, `<=` and a number, optionally `%`; `> 5x baseline`; `> 5 per 5m`; `present`."
    )
    for_: Duration = Field(default=60.0, alias="for", description="How long it must hold: a whole number of periods.")
    within: Duration | None = Field(
        default=None, description="M of N: 'for' worth of breaching periods among the last 'within' (e.g. 3m of 5m)."
    )
    baseline: Duration | None = Field(
        default=None,
        description="With 'when: > Nx baseline': the window before the live release's recording time [1h].",
    )
    period: Duration = Field(default=60.0, description="The interval each value covers.")
    severity: Literal["critical", "high", "medium", "low"] = Field(
        default="high", description="For the policy's decision and approvals matrices."
    )
    action: Literal["rollback", "alert"] = Field(
        default="alert", description="rollback: the guard rolls the release back; alert: it reports, once per episode."
    )
    environments: list[str] | None = Field(
        default=None, description="The environments this trigger watches [default: all]."
    )
    missing_data: Literal["ignore", "breaching"] = Field(
        default="ignore",
        description="Whether a period with no data counts as breaching (default: it does not).",
    )

    _source: str = PrivateAttr(default="")
    _query: Any = PrivateAttr(default=None)
    _per: Any = PrivateAttr(default=None)

    @classmethod
    def plugged_fields(cls) -> dict[str, Any]:
        """The keys registered sources add (and `per`), with their settings: for hints and the JSON schema."""
        found = plugins.sources()
        pers = [p.per_settings for p in found.values() if p.per_settings is not None]
        per = pers[0] if len(pers) == 1 else Union[tuple(pers)] if pers else None  # noqa: UP007
        return {**{name: p.settings for name, p in found.items()}, **({"per": per} if per is not None else {})}

    @model_validator(mode="wrap")
    @classmethod
    def _plugged(cls, data: Any, handler: ModelWrapValidatorHandler[Trigger]) -> Trigger:
        if not isinstance(data, dict):
            return handler(data)
        data = _count_window(data)
        found = plugins.sources()
        given, query, rest, errors = plugins.validate_plugged(data, found, lambda p: p.settings)
        key = given[0] if len(given) == 1 else ""
        raw_per = rest.pop("per", None)
        per = None
        if raw_per is not None and key:
            per_settings = found[key].per_settings
            if per_settings is None:
                errors.append(plugins.value_error((), f"'per' does not apply to a {key} trigger"))
            else:
                per, per_errors = plugins.validate_value(per_settings, raw_per, ("per",))
                errors += (_per_shape(key, raw_per, found) or per_errors) if per_errors else []
        try:
            trigger = handler(rest)
        except ValidationError as error:
            plugins.raise_errors(cls.__name__, [*plugins.details(error), *errors])
            raise
        if not key:
            names, found_names = plugins.one_of(list(found)), ", ".join(given) or "none"
            errors.append(
                plugins.value_error((), f"a trigger names exactly one source: {names} (found: {found_names})")
            )
        plugins.raise_errors(cls.__name__, errors)
        trigger._source, trigger._query, trigger._per = key, query, per
        plugins.raise_errors(cls.__name__, trigger._check_source(found[key]))
        return trigger

    def _check_source(self, source: plugins.SourcePlugin) -> list[InitErrorDetails]:
        try:
            source.check_period(self.period)
        except ValueError as error:
            return [plugins.value_error(("period",), str(error))]
        try:
            source.check_trigger(self.query, self.per, self.when, self.period)
            self._check_windows()
        except ValueError as error:
            return [plugins.value_error((), str(error))]
        return []

    def _check_windows(self) -> None:
        when = self.when
        if when.window is not None and self.per is not None:
            raise ValueError(f"'when: {when}' is a count; it takes no 'per'")
        if when.kind == "present" and self.per is not None:
            raise ValueError("'when: present' takes no 'per'")
        if when.kind != "baseline" and self.baseline is not None:
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

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> dict[str, Any]:
        """The file's shape: the source's key (and `per`) beside the common keys."""
        data: dict[str, Any] = handler(self)
        data[self._source] = _dump_settings(self._query, info)
        if self._per is not None:
            data["per"] = _dump_settings(self._per, info)
        return data

    @property
    def source_type(self) -> str:
        """The registered source this trigger names (its key in the file)."""
        return self._source

    @property
    def query(self) -> BaseModel:
        """The one source query this trigger names, as that source's settings model."""
        return cast(BaseModel, self._query)

    @property
    def per(self) -> BaseModel | None:
        """Divide by this metric (a rate); with a '%' condition the ratio is x100."""
        return cast(BaseModel | None, self._per)

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


MissingRule = Literal["zero", "skip", "breaching"]


class CanaryMissing(Strict):
    """What a period without a datapoint of a metric means, per metric (see docs/JUDGE.md)."""

    requests: MissingRule = Field(
        default="zero",
        description="No requests datapoint of a version: zero (it served none: when the other version's requests "
        "have a datapoint, else after `settle` periods), skip (the period is not judged), or breaching (the judge "
        "is blind until data return).",
    )
    errors: MissingRule = Field(
        default="zero",
        description="No errors datapoint while the version's requests have one: zero (CloudWatch publishes no "
        "datapoint for a minute whose Sum is 0), skip, or breaching.",
    )
    latency: MissingRule = Field(
        default="skip", description="No latency datapoint: skip (judge errors only that period) or breaching."
    )


class Canary(Strict):
    """The canary judge: the new version against the old one, both live behind the alias, every period."""

    cloudwatch: CanaryCloudWatch | None = Field(default=None, description="Per-version CloudWatch metrics.")
    prometheus: CanaryPrometheus | None = Field(default=None, description="Per-version PromQL queries (or cloudwatch).")
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
    missing: CanaryMissing = Field(
        default_factory=CanaryMissing, description="What a missing datapoint means, per metric."
    )
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
    def source_type(self) -> str:
        return "cloudwatch" if self.cloudwatch is not None else "prometheus"


class Runbook(Strict):
    app: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="The application's name (letters, digits, -_.)."
    )
    state: str | None = Field(default=None, description="SQLAlchemy URL of the ledger; LASTGOOD_STATE overrides.")
    environments: dict[str, Environment] = Field(description="The environments by name; {env} is each one's name.")
    components: list[Any] = Field(description="Components; each kind documents its own keys.")
    triggers: list[Trigger] = Field(default_factory=list, description="What means 'this release is bad'.")
    policy: Policy = Field(default_factory=Policy, description="Decisions, approvals, people, targets, drills.")
    notifications: Notifications = Field(default_factory=Notifications, description="Slack, SNS, email, webhooks.")
    canary: Canary | None = Field(
        default=None, description="Judge `lastgood deploy`'s canary against the baseline version, per version."
    )
    guard: GuardSettings = Field(
        default_factory=GuardSettings, description="The server's guard after each release: its watch window."
    )
    checklists: Checklists | None = Field(
        default=None, description="Pre / during / post checklists [default: lastgood's built-in list]."
    )
    post_rollback: list[PostAction] = Field(
        default_factory=list, description="Post-rollback actions the report lists under their horizon."
    )
    drills: dict[str, Schedule] = Field(
        default_factory=dict,
        description="Drill schedule per environment: daily, weekly, monthly or a cron expression; "
        "`lastgood drill --due` lists the due ones, the server runs them.",
    )
    manual_triggers: list[ManualTrigger] = Field(
        default_factory=list,
        description="The reasons a person may name with `rollback --trigger` (user reports, data corruption, ...), "
        "each with its default severity [default: any name, at policy.default_severity].",
    )
    validation: Validation = Field(
        default_factory=Validation,
        alias="validate",
        description="Checks after every rollback restored its components (HTTP, command, metric, logs); a failing "
        "one ends the rollback restored-unhealthy.",
    )

    _base_dir: Path | None = PrivateAttr(default=None)
    _warnings: list[str] = PrivateAttr(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        """What loading found questionable but valid (e.g. a data restore the code does not wait for)."""
        return list(self._warnings)

    @field_validator("manual_triggers")
    @classmethod
    def _manual_names(cls, value: list[ManualTrigger]) -> list[ManualTrigger]:
        names = [t.name for t in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"manual trigger names must be unique: {', '.join(twice)}")
        return value

    @field_validator("state")
    @classmethod
    def _state(cls, value: str | None) -> str | None:
        if value is not None:
            check_state_url(value)
        return value

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

    def watch_for(self, env: str) -> float:
        """Seconds the server guards `env` after a release is recorded: the environment's, else the file's."""
        settings = self.environment(env).guard or self.guard
        return settings.watch

    def validation_for(self, env: str) -> Validation:
        """The environment's `validate:` (else the file's), with {env} and {app} substituted."""
        block = self.environment(env).validation or self.validation
        return Validation.model_validate(substitute_env(block.model_dump(by_alias=True), env, self.app))

    def canary_for(self, env: str) -> Canary | None:
        """The canary block with {env} and {app} substituted; {version}, {component}, ... stay for judging."""
        self.environment(env)
        if self.canary is None:
            return None
        return Canary.model_validate(substitute_env(self.canary.model_dump(by_alias=True), env, self.app))

    def rto_of(self, spec: Component) -> float | None:
        """The component's recovery-time objective: its own, else its kind's in policy.targets.rto."""
        return spec.rto if spec.rto is not None else self.policy.targets.rto.get(spec.kind)

    @property
    def base_dir(self) -> Path:
        return self._base_dir or Path.cwd()
