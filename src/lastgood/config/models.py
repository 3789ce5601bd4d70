"""Pydantic models of lastgood.yaml. Names here are the file's contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, PrivateAttr, field_validator, model_validator

from lastgood.config.durations import ConditionField, Duration
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


class MetricQuery(Strict):
    namespace: str
    metric: str
    stat: str = "Sum"
    dimensions: dict[str, str] = Field(default_factory=dict)


class Trigger(Strict):
    name: str
    cloudwatch: MetricQuery
    per: MetricQuery | None = Field(
        default=None, description="Divide by this metric (a rate); with a '%' condition the ratio is x100."
    )
    when: ConditionField
    for_: Duration = Field(default=60.0, alias="for")
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

    @field_validator("period")
    @classmethod
    def _cloudwatch_period(cls, value: float) -> float:
        if value not in _HIGH_RESOLUTION_PERIODS and (value < 60 or value % 60):
            raise ValueError("CloudWatch periods are 1s, 5s, 10s, 30s or a multiple of 60s")
        return value

    @model_validator(mode="after")
    def _window_covers_period(self) -> Trigger:
        if self.for_ < self.period:
            raise ValueError(f"'for' ({self.for_:g}s) is shorter than 'period' ({self.period:g}s)")
        if self.for_ % self.period:
            raise ValueError(f"'for' ({self.for_:g}s) must be a whole number of periods ({self.period:g}s)")
        return self

    @property
    def periods_required(self) -> int:
        return int(self.for_ // self.period)


class Runbook(Strict):
    app: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    state: str | None = Field(default=None, description="SQLAlchemy URL of the ledger; LASTGOOD_STATE overrides.")
    environments: dict[str, Environment]
    components: list[Any] = Field(description="Components; each kind documents its own keys.")
    triggers: list[Trigger] = Field(default_factory=list)
    policy: Policy = Field(default_factory=Policy, description="Decisions, approvals, people, targets, drills.")
    notifications: Notifications = Field(default_factory=Notifications, description="Slack, SNS, email, webhooks.")

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

    @property
    def base_dir(self) -> Path:
        return self._base_dir or Path.cwd()
