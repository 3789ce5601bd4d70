"""feature-flag: flag values in AWS AppConfig (the deployed configuration version) or a plain HTTP/JSON flag service.

AppConfig rolls back by redeploying the recorded configuration version; an HTTP service by writing the recorded
values back, percentage rollouts optionally in steps with a pause between (the runbooks' "gradual disable").
With kill_switch, `lastgood stop` turns the listed flags off and `--release` puts back what they were.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from lastgood.aws.errors import map_aws_errors
from lastgood.config.durations import Duration, format_duration
from lastgood.config.models import Component, Strict
from lastgood.errors import ResourceNotFound, StepFailed
from lastgood.kinds.base import ApplyResult, Change, IamScope, IamStatement, Kind, KindContext, ReadinessCheck, State

ALL_AT_ONCE = "AppConfig.AllAtOnce"
_UNDONE = {"ROLLING_BACK", "ROLLED_BACK", "REVERTED"}
_UNDER_WAY = {"DEPLOYING", "VALIDATING"}
_MISSING = object()
_DEFAULT_STEPS: list[int | float] = [75, 50, 25, 0]


class AppConfigFlags(Strict):
    application: str = Field(description="AppConfig application name or id.")
    environment: str = Field(description="Environment name or id.")
    profile: str = Field(description="Configuration profile name or id (feature flags, or freeform JSON).")
    strategy: str = Field(
        default=ALL_AT_ONCE,
        description="Deployment strategy id (or predefined name) used to redeploy the recorded version.",
    )


class HttpFlags(Strict):
    url: str = Field(description="GET returns a JSON object {flag: value}; PATCH (or PUT) of such an object sets them.")
    headers: dict[str, str] = Field(default_factory=dict, description="Sent with every request (e.g. Authorization).")
    method: Literal["PATCH", "PUT"] = Field(
        default="PATCH", description="PATCH sends the changed flags; PUT sends every flag, changed ones replaced."
    )
    timeout: Duration = Field(default=10.0, description="Per request.")

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value


class Gradual(Strict):
    steps: list[int | float] = Field(
        default_factory=lambda: list(_DEFAULT_STEPS),
        description="Percentages a rollout flag passes on its way down.",
    )
    pause: Duration = Field(default=30.0, description="Wait between two steps.")

    @field_validator("steps")
    @classmethod
    def _percentages(cls, value: list[int | float]) -> list[int | float]:
        if any(not 0 <= step <= 100 for step in value):
            raise ValueError("steps are percentages between 0 and 100")
        return sorted(value, reverse=True)


class FeatureFlagSpec(Component):
    kind: Literal["feature-flag"] = "feature-flag"
    appconfig: AppConfigFlags | None = Field(default=None, description="Flags in AWS AppConfig.")
    http: HttpFlags | None = Field(default=None, description="Flags in an HTTP/JSON flag service.")
    flags: list[str] | None = Field(
        default=None, description="Only these flags (default: all). AppConfig still redeploys a whole version."
    )
    kill_switch: bool = Field(default=False, description="`lastgood stop` turns these flags off (false / 0).")
    gradual: Gradual | None = Field(
        default=None, description="http: lower percentage flags in steps (AppConfig: use appconfig.strategy)."
    )

    @model_validator(mode="after")
    def _one_backend(self) -> FeatureFlagSpec:
        if (self.appconfig is None) == (self.http is None):
            raise ValueError("give exactly one of appconfig or http")
        if self.appconfig is not None and self.gradual is not None:
            raise ValueError(
                "gradual is for http flags; for AppConfig pick a gradual deployment strategy in appconfig.strategy"
                " (e.g. AppConfig.Linear50PercentEvery30Seconds)"
            )
        return self


class FlagServiceUnavailable(StepFailed):
    """The flag service did not answer or answered 5xx: worth retrying."""

    retryable = True


def off_value(name: str, value: Any) -> Any:
    """A flag turned off: false, 0, or an AppConfig-style {"enabled": false, ...}."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return 0
    if isinstance(value, dict) and "enabled" in value:
        return {**value, "enabled": False}
    raise StepFailed(f"flag {name} is {value!r}: a kill switch turns off only booleans, percentages and enabled")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def gradual_rounds(current: dict[str, Any], changes: dict[str, Any], gradual: Gradual | None) -> list[dict[str, Any]]:
    """The writes of a rollback: one, or (gradual) percentage flags stepped down one step per round, the other
    flags set in the first round."""
    if gradual is None:
        return [changes]
    lowering = {
        name: [s for s in gradual.steps if wanted < s < current[name]] + [wanted]
        for name, wanted in changes.items()
        if _is_number(wanted) and _is_number(current.get(name)) and current[name] > wanted
    }
    rounds = [{n: v for n, v in changes.items() if n not in lowering}]
    for i in range(max((len(path) for path in lowering.values()), default=0)):
        if i:
            rounds.append({})
        rounds[-1].update({name: path[i] for name, path in lowering.items() if i < len(path)})
    return rounds


class HttpBackend:
    def __init__(self, spec: FeatureFlagSpec) -> None:
        assert spec.http is not None
        self.http, self.only = spec.http, spec.flags

    def all_flags(self) -> dict[str, Any]:
        found = self._request("GET")
        if not isinstance(found, dict):
            raise StepFailed(f"GET {self.http.url}: expected a JSON object of flags, got {type(found).__name__}")
        return found

    def read(self) -> State:
        found = self.all_flags()
        names = self.only if self.only is not None else sorted(found)
        return {"backend": "http", "flags": {n: found[n] for n in names if n in found}}

    def write(self, values: dict[str, Any], current: dict[str, Any]) -> None:
        self._request(self.http.method, values if self.http.method == "PATCH" else {**current, **values})

    def _request(self, method: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json", **self.http.headers}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.http.url, data=data, method=method, headers=headers)
        what = f"{method} {self.http.url}"
        try:
            with urllib.request.urlopen(request, timeout=self.http.timeout) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:300]
            failure = FlagServiceUnavailable if error.code >= 500 or error.code == 429 else StepFailed
            raise failure(f"{what}: HTTP {error.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            raise FlagServiceUnavailable(f"{what}: {getattr(error, 'reason', error)}") from None
        try:
            return json.loads(text) if text.strip() else None
        except json.JSONDecodeError:
            raise StepFailed(f"{what}: the answer is not JSON: {text[:200]!r}") from None


@dataclass(frozen=True)
class AppConfigIds:
    application: str
    environment: str
    profile: str
    profile_name: str
    hosted: bool


class AppConfigBackend:
    def __init__(self, spec: FeatureFlagSpec, ctx: KindContext) -> None:
        assert spec.appconfig is not None
        self.cfg, self.only = spec.appconfig, spec.flags
        self.client = ctx.aws.client("appconfig")
        self._ids: AppConfigIds | None = None

    @property
    def ids(self) -> AppConfigIds:
        if self._ids is None:
            app = self._find("list_applications", {}, self.cfg.application, "application")
            env = self._find("list_environments", {"ApplicationId": app["Id"]}, self.cfg.environment, "environment")
            profile = self._find(
                "list_configuration_profiles", {"ApplicationId": app["Id"]}, self.cfg.profile, "configuration profile"
            )
            hosted = profile.get("LocationUri") == "hosted"
            self._ids = AppConfigIds(app["Id"], env["Id"], profile["Id"], profile["Name"], hosted)
        return self._ids

    def _find(self, operation: str, kwargs: dict[str, str], wanted: str, what: str) -> dict[str, Any]:
        with map_aws_errors(f"appconfig:{operation}"):
            for page in self.client.get_paginator(operation).paginate(**kwargs):
                for item in page["Items"]:
                    if wanted in (item["Id"], item["Name"]):
                        return dict(item)
        raise StepFailed(f"AppConfig has no {what} named {wanted!r}")

    def deployments(self) -> list[dict[str, Any]]:
        """This profile's deployments to the environment, newest first."""
        ids, found = self.ids, []
        with map_aws_errors(f"appconfig:ListDeployments {self.cfg.application}/{self.cfg.environment}"):
            pages = self.client.get_paginator("list_deployments").paginate(
                ApplicationId=ids.application, EnvironmentId=ids.environment
            )
            for page in pages:
                for item in page["Items"]:
                    mine = item.get("ConfigurationProfileId", ids.profile) == ids.profile
                    if mine and item.get("ConfigurationName", ids.profile_name) == ids.profile_name:
                        found.append(dict(item))
        return found

    def live(self) -> dict[str, Any] | None:
        """The deployment whose configuration clients get: the newest one AppConfig did not undo."""
        return next((d for d in self.deployments() if d["State"] not in _UNDONE), None)

    def content(self, version: str) -> Any:
        if not self.ids.hosted:
            return None
        with map_aws_errors(f"appconfig:GetHostedConfigurationVersion {self.cfg.profile} {version}"):
            found = self.client.get_hosted_configuration_version(
                ApplicationId=self.ids.application, ConfigurationProfileId=self.ids.profile, VersionNumber=int(version)
            )
        body = found["Content"]
        raw = body.read() if hasattr(body, "read") else body
        try:
            return json.loads(raw or b"null")
        except json.JSONDecodeError:
            return None

    def flag_values(self, content: Any) -> dict[str, Any] | None:
        if not isinstance(content, dict):
            return None
        values = content["values"] if isinstance(content.get("values"), dict) else content
        names = self.only if self.only is not None else sorted(values)
        return {n: values[n] for n in names if n in values}

    def read(self) -> State:
        live = self.live()
        version = str(live["ConfigurationVersion"]) if live else None
        flags = self.flag_values(self.content(version)) if version else None
        return {"backend": "appconfig", "version": version, "flags": flags}

    def deploy(self, version: str, strategy: str, description: str, token: str) -> dict[str, Any]:
        ids = self.ids
        with map_aws_errors(f"appconfig:StartDeployment {self.cfg.profile} version {version}"):
            try:
                return dict(
                    self.client.start_deployment(
                        ApplicationId=ids.application,
                        EnvironmentId=ids.environment,
                        DeploymentStrategyId=strategy,
                        ConfigurationProfileId=ids.profile,
                        ConfigurationVersion=version,
                        Description=description,
                        Tags={"lastgood:step": token},
                    )
                )
            except self.client.exceptions.ConflictException as error:
                raise StepFailed(
                    f"AppConfig {self.cfg.application}/{self.cfg.environment} has a deployment under way"
                    f" ({error.response['Error'].get('Message', '')}); wait for it or stop it"
                    " (aws appconfig stop-deployment), then resume"
                ) from None

    def publish(self, content: Any, description: str) -> str:
        with map_aws_errors(f"appconfig:CreateHostedConfigurationVersion {self.cfg.profile}"):
            created = self.client.create_hosted_configuration_version(
                ApplicationId=self.ids.application,
                ConfigurationProfileId=self.ids.profile,
                Content=json.dumps(content).encode(),
                ContentType="application/json",
                Description=description,
            )
        return str(created["VersionNumber"])


class FeatureFlag(Kind[FeatureFlagSpec]):
    name = "feature-flag"
    spec_model = FeatureFlagSpec
    estimate_seconds = 2.0
    # An AppConfig deployment follows its strategy (AllAtOnce: at once; linear ones: minutes); its bake time is
    # not waited for, since clients already have the configuration then.
    verify_timeout_seconds = 1800.0
    verify_interval_seconds = 5.0

    def read(self, spec: FeatureFlagSpec, ctx: KindContext) -> State:
        if spec.http is not None:
            return HttpBackend(spec).read()
        return AppConfigBackend(spec, ctx).read()

    def differences(self, spec: FeatureFlagSpec, current: State, target: State) -> list[str]:
        if current.get("backend") != target.get("backend"):
            return [f"recorded in {target.get('backend')}, now in {current.get('backend')}"]
        if target["backend"] == "appconfig":
            if current.get("version") == target.get("version"):
                return []
            return [f"configuration version {current.get('version')} -> {target.get('version')}"]
        now = current.get("flags") or {}
        out = []
        for flag, wanted in (target.get("flags") or {}).items():
            value = now.get(flag, _MISSING)
            if value is _MISSING:
                out.append(f"{flag}: missing -> {json.dumps(wanted)}")
            elif value != wanted:
                out.append(f"{flag}: {json.dumps(value)} -> {json.dumps(wanted)}")
        return out

    def plan(self, spec: FeatureFlagSpec, current: State, target: State) -> Change | None:
        if not self.differences(spec, current, target):
            return None
        notes: list[str] = []
        estimate = self.estimate_seconds
        if spec.appconfig is not None:
            notes.append(f"redeploys configuration version {target.get('version')} with {spec.appconfig.strategy}")
            if spec.appconfig.strategy != ALL_AT_ONCE:
                estimate = 600.0
                notes.append("the strategy spreads the deployment over time; the step waits for it")
        else:
            rounds = gradual_rounds(current.get("flags") or {}, _changes(current, target), spec.gradual)
            if spec.gradual is not None and len(rounds) > 1:
                estimate += spec.gradual.pause * (len(rounds) - 1)
                notes.append(_gradual_note(rounds, spec.gradual))
            new = sorted(set(current.get("flags") or {}) - set(target.get("flags") or {}))
            if new:
                notes.append(f"flags added since the release are left as they are: {', '.join(new)}")
        return Change(
            action=self.action_name(current, target),
            before=self.describe(current),
            after=self.describe(target),
            estimate_seconds=estimate,
            notes=tuple(notes),
            slow=estimate >= 60,
        )

    def action_name(self, current: State, target: State) -> str:
        return "redeploy" if target.get("backend") == "appconfig" else "set-flags"

    def apply(self, spec: FeatureFlagSpec, ctx: KindContext, target: State) -> ApplyResult:
        if spec.http is not None:
            return self._apply_http(spec, ctx, target)
        return self._apply_appconfig(spec, ctx, target)

    def _apply_http(self, spec: FeatureFlagSpec, ctx: KindContext, target: State) -> ApplyResult:
        backend = HttpBackend(spec)
        current = backend.all_flags()
        changes = _changes({"flags": current}, target)
        if not changes:
            return ApplyResult("flags already at the recorded values", changed=False)
        rounds = gradual_rounds(current, changes, spec.gradual)
        for i, values in enumerate(rounds):
            if i and spec.gradual is not None:
                ctx.sleep(spec.gradual.pause)
            backend.write(values, current)
            current.update(values)
            ctx.progress(f"step {i + 1}/{len(rounds)}: " + _flags_text(values))
        return ApplyResult("set " + _flags_text(changes), extra={"rounds": rounds})

    def _apply_appconfig(self, spec: FeatureFlagSpec, ctx: KindContext, target: State) -> ApplyResult:
        assert spec.appconfig is not None
        backend, version = AppConfigBackend(spec, ctx), target.get("version")
        if version is None:
            raise StepFailed("nothing was deployed when the release was recorded: there is no version to go back to")
        newest = next(iter(backend.deployments()), None)
        if newest and str(newest["ConfigurationVersion"]) == version and newest["State"] not in _UNDONE:
            if newest["State"] in {"COMPLETE", "BAKING"}:
                return ApplyResult(f"configuration version {version} already deployed", changed=False)
            return ApplyResult(f"deployment {newest['DeploymentNumber']} of version {version} already under way")
        started = backend.deploy(
            version, spec.appconfig.strategy, f"lastgood rollback to version {version} ({ctx.token})", ctx.token
        )
        number = started.get("DeploymentNumber")
        return ApplyResult(
            f"deployment {number} of configuration version {version} started ({spec.appconfig.strategy})",
            extra={"deployment": number},
        )

    def verify(self, spec: FeatureFlagSpec, ctx: KindContext, target: State) -> list[str]:
        if spec.http is not None:
            return super().verify(spec, ctx, target)
        newest = next(iter(AppConfigBackend(spec, ctx).deployments()), None)
        version = target.get("version")
        if newest is None or str(newest["ConfigurationVersion"]) != version:
            live = newest["ConfigurationVersion"] if newest else "nothing"
            return [f"deployed: {live}, not configuration version {version}"]
        number, state = newest["DeploymentNumber"], newest["State"]
        if state in _UNDONE:
            raise StepFailed(f"deployment {number} of version {version} is {state}: AppConfig undid it (an alarm?)")
        if state in _UNDER_WAY:
            message = f"deployment {number} is {state} ({newest.get('PercentageComplete', 0):g}%)"
            ctx.progress(message)
            return [message]
        return []

    def describe(self, state: State) -> str:
        flags = state.get("flags")
        if state.get("backend") == "appconfig":
            return f"configuration version {state.get('version')}" + (f" ({_flags_text(flags)})" if flags else "")
        return _flags_text(flags or {}) or "no flags"

    def warnings(self, spec: FeatureFlagSpec, state: State) -> list[str]:
        out = []
        if spec.flags and state.get("flags") is not None:
            missing = [f for f in spec.flags if f not in state["flags"]]
            if missing:
                out.append(f"flags not found: {', '.join(missing)}")
        if state.get("backend") == "appconfig" and state.get("version") is None:
            out.append("nothing is deployed to this AppConfig environment yet")
        return out

    def readiness(self, spec: FeatureFlagSpec, ctx: KindContext, state: State) -> list[ReadinessCheck]:
        if spec.http is not None:
            return [ReadinessCheck("ok", "HTTP flags: the recorded values are written back; nothing has to be kept")]
        version = state.get("version")
        if version is None:
            return [ReadinessCheck("impossible", "nothing was deployed when the release was recorded")]
        backend = AppConfigBackend(spec, ctx)
        if not backend.ids.hosted:
            return [ReadinessCheck("ok", f"configuration version {version} is stored outside AppConfig: not checked")]
        try:
            backend.content(version)
        except ResourceNotFound:
            return [ReadinessCheck("impossible", f"configuration version {version} no longer exists")]
        return [ReadinessCheck("ok", f"configuration version {version} exists")]

    # The emergency stop: listed flags (default: all) turned off, their values saved to be put back.

    def takes_part_in_stop(self, spec: FeatureFlagSpec) -> bool:
        return spec.kill_switch

    def stop(self, spec: FeatureFlagSpec, ctx: KindContext) -> State:
        if spec.http is not None:
            backend = HttpBackend(spec)
            current = backend.all_flags()
            saved = backend.read()["flags"]
            off = {n: off_value(n, v) for n, v in saved.items()}
            off = {n: v for n, v in off.items() if v != saved[n]}
            if off:
                backend.write(off, current)
            return {"backend": "http", "flags": saved}
        return self._stop_appconfig(spec, ctx)

    def _stop_appconfig(self, spec: FeatureFlagSpec, ctx: KindContext) -> State:
        backend = AppConfigBackend(spec, ctx)
        saved = backend.read()
        if saved["version"] is None or saved["flags"] is None:
            raise StepFailed("the kill switch needs a hosted JSON configuration deployed to the environment")
        content = backend.content(saved["version"])
        values = content["values"] if isinstance(content.get("values"), dict) else content
        changed = False
        for name, value in saved["flags"].items():
            values[name] = off_value(name, value)
            changed = changed or values[name] != value
        if changed:
            version = backend.publish(content, f"lastgood emergency stop ({ctx.token})")
            backend.deploy(version, ALL_AT_ONCE, f"lastgood emergency stop ({ctx.token})", ctx.token)
        return saved

    def release_stop(self, spec: FeatureFlagSpec, ctx: KindContext, saved: State) -> ApplyResult:
        if spec.http is not None:
            return self._apply_http(spec.model_copy(update={"gradual": None}), ctx, saved)
        return self._apply_appconfig(spec, ctx, saved)

    def iam_statements(self, spec: FeatureFlagSpec, scope: IamScope) -> list[IamStatement]:
        if spec.appconfig is None:
            return []
        base = f"arn:{scope.partition}:appconfig:{scope.region}:{scope.account}"
        app = f"{base}:application/*"
        statements = [
            IamStatement(("appconfig:ListApplications",), ("*",), "find the application by name"),
            IamStatement(
                (
                    "appconfig:ListEnvironments",
                    "appconfig:ListConfigurationProfiles",
                    "appconfig:ListDeployments",
                    "appconfig:GetHostedConfigurationVersion",
                    "appconfig:StartDeployment",
                ),
                (
                    app,
                    f"{app}/environment/*",
                    f"{app}/configurationprofile/*",
                    f"{app}/configurationprofile/*/hostedconfigurationversion/*",
                    f"{base}:deploymentstrategy/{spec.appconfig.strategy}",
                    f"{base}:deploymentstrategy/{ALL_AT_ONCE}",
                ),
                "read what is deployed and redeploy the recorded version (names are resolved at run time,"
                " so ids are wildcards)",
            ),
        ]
        if spec.kill_switch:
            statements.append(
                IamStatement(
                    ("appconfig:CreateHostedConfigurationVersion",),
                    (f"{app}/configurationprofile/*",),
                    "the emergency stop publishes a version with the kill-switch flags off",
                )
            )
        return statements


def _changes(current: State, target: State) -> dict[str, Any]:
    now = current.get("flags") or {}
    return {n: v for n, v in (target.get("flags") or {}).items() if now.get(n, _MISSING) != v}


def _flags_text(flags: dict[str, Any], limit: int = 160) -> str:
    text = ", ".join(f"{n}={json.dumps(v)}" for n, v in sorted(flags.items()))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _gradual_note(rounds: list[dict[str, Any]], gradual: Gradual) -> str:
    path = " -> ".join(_flags_text(r) for r in rounds)
    return f"gradual: {path}, {format_duration(gradual.pause)} apart"
