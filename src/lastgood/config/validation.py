"""The `validate:` block: what must hold after a rollback's components are restored and verified.

Every runbook ends with checks (`curl -f $API/health`, a smoke test, "metrics back to normal", `aws logs tail
--filter-pattern ERROR`). A check names exactly one type key: `http:`, `command:`, `metric:` or `logs:`; the
checks run in lastgood.checks. The block sits at the top of the file (every environment) or in an environment
(which replaces the top-level one); `{env}` and `{app}` work as elsewhere.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator, model_validator

from lastgood.config.durations import Duration
from lastgood.config.messages import did_you_mean
from lastgood.config.strict import Strict

if TYPE_CHECKING:
    from lastgood.config.models import Runbook

CHECK_TYPES = ("http", "command", "metric", "logs")


class HttpCheck(Strict):
    """An HTTP request that must answer with an expected status (and body, and latency)."""

    url: str = Field(description="The URL to request, e.g. https://api.example.com/health.")
    method: str = Field(default="GET", description="The HTTP method.")
    status: list[int] = Field(default_factory=lambda: [200], description="Statuses that pass [200].")
    body: str | None = Field(default=None, description="A regular expression the body must match.")
    latency: Duration | None = Field(default=None, description="The answer must arrive within this, e.g. 3s.")
    headers: dict[str, str] = Field(default_factory=dict, description="Request headers; secrets from ${VAR}.")
    timeout: Duration = Field(default=10.0, description="Per request.")
    retries: int = Field(default=0, ge=0, le=100, description="Attempts after the first before the check fails.")
    within: Duration | None = Field(
        default=None, description="Keep retrying until this long after the first attempt (instead of `retries`)."
    )
    interval: Duration = Field(default=5.0, description="Between attempts.")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value

    @field_validator("status", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, int) else value

    @field_validator("status")
    @classmethod
    def _statuses(cls, value: list[int]) -> list[int]:
        if not value or any(not 100 <= s <= 599 for s in value):
            raise ValueError("statuses are HTTP codes between 100 and 599, e.g. 200 or [200, 204]")
        return value

    @field_validator("body")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"{value!r} is not a regular expression: {error}") from None
        return value


class CommandCheck(Strict):
    """A command (a smoke test, `pytest tests/integration/...`) that must exit with the expected code."""

    argv: list[str] | None = Field(default=None, min_length=1, description="The program and its arguments.")
    shell: str | None = Field(default=None, min_length=1, description="A shell command line (instead of argv).")
    exit_code: int = Field(default=0, description="The exit code that passes [0].")
    timeout: Duration = Field(default=300.0, description="Then its process group is killed and the check fails.")
    cwd: str | None = Field(default=None, description="Working directory [the runbook file's folder].")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment variables.")
    retries: int = Field(default=0, ge=0, le=100, description="Runs after the first before the check fails.")
    interval: Duration = Field(default=5.0, description="Between runs.")

    @model_validator(mode="after")
    def _one(self) -> CommandCheck:
        if (self.argv is None) == (self.shell is None):
            raise ValueError("a command check names exactly one of argv or shell")
        return self


class MetricCheck(Strict):
    """ "Metrics back to normal": a trigger of the file must stay quiet (no breaching period) for a while."""

    trigger: str = Field(description="The name of a trigger in the file's `triggers:`.")
    quiet_for: Duration = Field(
        default=300.0, description="How long after the restore every period must be judged and not breaching."
    )

    @field_validator("quiet_for")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("quiet_for must be positive, e.g. 10m")
        return value


class LogCheck(Strict):
    """No more than `max_matches` log events matching `pattern` in CloudWatch Logs in the last `within`."""

    log_groups: list[str] = Field(min_length=1, description="CloudWatch Logs log group names; {env} works.")
    pattern: str = Field(min_length=1, description="A CloudWatch Logs filter pattern, e.g. ERROR or ?ERROR ?Timeout.")
    max_matches: int = Field(default=0, ge=0, description="Matching events allowed [0].")
    within: Duration = Field(default=300.0, description="The window, ending when the check runs.")
    wait: Duration = Field(
        default=0.0, description="How long after the restore to wait before counting (the window then ends there)."
    )


class Check(Strict):
    """One check: its name and exactly one of http, command, metric, logs."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="The check's name, unique in its block.")
    description: str | None = Field(
        default=None, max_length=2000, description="What it stands for, e.g. the runbook's own words."
    )
    http: HttpCheck | None = Field(default=None, description="An HTTP request (status, body, latency).")
    command: CommandCheck | None = Field(default=None, description="A command's exit code.")
    metric: MetricCheck | None = Field(default=None, description="A trigger that must stay quiet.")
    logs: LogCheck | None = Field(default=None, description="At most N matches of a pattern in log groups.")

    @model_validator(mode="after")
    def _one_type(self) -> Check:
        given = [name for name in CHECK_TYPES if getattr(self, name) is not None]
        if len(given) != 1:
            found = ", ".join(given) or "none"
            raise ValueError(f"a check names exactly one of http, command, metric or logs (found: {found})")
        return self

    @property
    def type(self) -> str:
        return next(name for name in CHECK_TYPES if getattr(self, name) is not None)

    @property
    def settings(self) -> HttpCheck | CommandCheck | MetricCheck | LogCheck:
        value = getattr(self, self.type)
        assert isinstance(value, HttpCheck | CommandCheck | MetricCheck | LogCheck)
        return value


class Validation(Strict):
    """The checks run after a rollback restored every component; all must pass, else `restored-unhealthy`."""

    checks: list[Check] = Field(default_factory=list, description="Run in order; each one's result is recorded.")

    @model_validator(mode="after")
    def _unique(self) -> Validation:
        names = [c.name for c in self.checks]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"check names must be unique: {', '.join(twice)}")
        return self


def cross_check(runbook: Runbook) -> list[str]:
    """A metric check names a trigger of the file; an escalation step names channels the file has."""
    trigger_names = sorted(t.name for t in runbook.triggers)
    blocks = [("validate", runbook.validation)] + [
        (f"environments.{name}.validate", env.validation)
        for name, env in runbook.environments.items()
        if env.validation is not None
    ]
    problems = []
    for where, block in blocks:
        for index, check in enumerate(block.checks):
            if check.metric is not None and check.metric.trigger not in trigger_names:
                hint = did_you_mean(check.metric.trigger, trigger_names)
                known = hint if hint else f" (the file's triggers: {', '.join(trigger_names) or 'none'})"
                problems.append(f"{where}.checks[{index}].metric.trigger: no trigger {check.metric.trigger!r}{known}")
    channels = runbook.notifications.channels
    addresses = {c.name for c in channels if c.name} | {c.type for c in channels}
    for index, step in enumerate(runbook.policy.escalation):
        for channel_index, name in enumerate(step.channels):
            if name not in addresses:
                known = ", ".join(sorted(addresses)) or "none"
                problems.append(
                    f"policy.escalation[{index}].channels[{channel_index}]: no notification channel {name!r} "
                    f"(named or typed: {known})"
                )
    return problems
