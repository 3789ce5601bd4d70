"""ssm-parameter: parameters (or every parameter under a path) restored to a recorded version's value.

Values are stored as hashes only; restoring reads the old value from the parameter's own history.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from lastgood.aws.errors import map_aws_errors
from lastgood.config.models import Component
from lastgood.errors import ResourceNotFound, StepFailed
from lastgood.kinds.base import (
    PREFETCHED,
    ApplyResult,
    Change,
    IamScope,
    IamStatement,
    Kind,
    KindContext,
    Prefetched,
    ReadinessCheck,
    State,
    prefetched,
    value_hash,
)

GET_PARAMETERS_MAX = 10  # names per GetParameters call
HISTORY_KEPT = 100  # SSM drops a parameter's oldest version when the 101st is written
RISK_MARGIN = 10


class SsmParameterSpec(Component):
    kind: Literal["ssm-parameter"] = "ssm-parameter"
    parameters: list[str] = Field(
        min_length=1, description="Parameter names; a trailing slash means every parameter under the path."
    )


def _selector(name: str, recorded: dict[str, Any] | None) -> str | None:
    return f"{name}:{recorded['version']}" if recorded is not None else None


def _entry(parameter: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": int(parameter["Version"]),
        "hash": value_hash(parameter["Value"]),
        "type": parameter["Type"],
    }


class SsmParameter(Kind[SsmParameterSpec]):
    name = "ssm-parameter"
    spec_model = SsmParameterSpec
    estimate_seconds = 1.0

    def read(self, spec: SsmParameterSpec, ctx: KindContext) -> State:
        ssm = ctx.aws.client("ssm")
        found: dict[str, dict[str, Any]] = {}
        for entry in spec.parameters:
            if entry.endswith("/"):
                path = entry.rstrip("/") or "/"
                with map_aws_errors(f"ssm:GetParametersByPath {path}"):
                    pages = ssm.get_paginator("get_parameters_by_path").paginate(
                        Path=path, Recursive=True, WithDecryption=True
                    )
                    for page in pages:
                        for parameter in page["Parameters"]:
                            found[parameter["Name"]] = _entry(parameter)
            else:
                with map_aws_errors(f"ssm:GetParameter {entry}"):
                    try:
                        parameter = ssm.get_parameter(Name=entry, WithDecryption=True)["Parameter"]
                    except ssm.exceptions.ParameterNotFound:
                        continue
                found[parameter["Name"]] = _entry(parameter)
        return {"parameters": dict(sorted(found.items()))}

    def differences(self, spec: SsmParameterSpec, current: State, target: State) -> list[str]:
        now = current["parameters"]
        out = []
        for name, recorded in target["parameters"].items():
            if name not in now:
                out.append(f"{name}: deleted since the release (version {recorded['version']})")
            elif now[name]["hash"] != recorded["hash"]:
                out.append(f"{name}: value of version {now[name]['version']} -> value of version {recorded['version']}")
        return out

    def plan(self, spec: SsmParameterSpec, current: State, target: State) -> Change | None:
        now, recorded = current["parameters"], target["parameters"]
        changed = [n for n, p in recorded.items() if n not in now or now[n]["hash"] != p["hash"]]
        if not changed:
            return None
        extra = sorted(set(now) - set(recorded))
        return Change(
            action=self.action_name(current, target),
            before=self.describe({"parameters": {n: now[n] for n in changed if n in now}}),
            after=self.describe({"parameters": {n: recorded[n] for n in changed}}),
            estimate_seconds=max(1.0, 0.5 * len(changed)),
            notes=tuple(f"{name} was created after the release; it is left as it is" for name in extra),
        )

    def read_for_rollback(self, spec: SsmParameterSpec, ctx: KindContext, target: State) -> State:
        """Named parameters: one GetParameters call per five, asking for each one's live version and its
        recorded version (`name:version`), so apply writes the recorded value back without reading again.
        Paths are read as usual (apply then reads the history of what changed)."""
        if any(entry.endswith("/") for entry in spec.parameters):
            return self.read(spec, ctx)
        recorded = target.get("parameters") or {}
        names = [n for name in spec.parameters for n in (name, _selector(name, recorded.get(name))) if n]
        found: dict[str, dict[str, Any]] = {}
        values: dict[str, dict[str, Any]] = {}
        ssm = ctx.aws.client("ssm")
        for start in range(0, len(names), GET_PARAMETERS_MAX):
            chunk = names[start : start + GET_PARAMETERS_MAX]
            with map_aws_errors(f"ssm:GetParameters {', '.join(chunk)}"):
                answer = ssm.get_parameters(Names=chunk, WithDecryption=True)
            for parameter in answer["Parameters"]:
                name, version = parameter["Name"], int(parameter["Version"])
                if name not in found or version > found[name]["version"]:  # the plain name answers the newest
                    found[name] = _entry(parameter)
                if name in recorded and version == int(recorded[name]["version"]):
                    values[name] = {"Value": parameter["Value"], "Type": parameter["Type"]}
        return {"parameters": dict(sorted(found.items())), PREFETCHED: Prefetched(values)}

    def apply(self, spec: SsmParameterSpec, ctx: KindContext, target: State) -> ApplyResult:
        current = ctx.known_state if ctx.known_state is not None else self.read(spec, ctx)
        values = prefetched(current)
        now_state = dict(current["parameters"])
        restored = []
        for name, recorded in target["parameters"].items():
            now = now_state.get(name)
            if now is not None and now["hash"] == recorded["hash"]:
                continue
            now_state[name] = self._restore(ctx, name, recorded, values.get(name))
            restored.append(f"{name} (value of version {recorded['version']})")
        observed = {"parameters": dict(sorted(now_state.items()))}
        if not restored:
            return ApplyResult("already at target", changed=False, observed=observed)
        return ApplyResult("restored " + ", ".join(restored), observed=observed)

    def _restore(
        self, ctx: KindContext, name: str, recorded: dict[str, Any], fetched: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Write the recorded version's value back; the state PutParameter's answer (the new version, holding
        the value sent) confirms. A SecureString's value is taken from the history, which names its KMS key."""
        ssm = ctx.aws.client("ssm")
        usable = fetched is not None and fetched["Type"] != "SecureString"
        old = fetched if usable and fetched else self._history_entry(ctx, name, int(recorded["version"]))
        if value_hash(old["Value"]) != recorded["hash"]:
            raise StepFailed(f"{name}: version {recorded['version']} in the history no longer matches the release")
        kwargs: dict[str, Any] = {"Name": name, "Value": old["Value"], "Type": old["Type"], "Overwrite": True}
        if old["Type"] == "SecureString" and old.get("KeyId"):
            kwargs["KeyId"] = old["KeyId"]
        with map_aws_errors(f"ssm:PutParameter {name}"):
            written = ssm.put_parameter(**kwargs)
        return {"version": int(written["Version"]), "hash": recorded["hash"], "type": old["Type"]}

    @staticmethod
    def _history_entry(ctx: KindContext, name: str, version: int) -> dict[str, Any]:
        ssm = ctx.aws.client("ssm")
        try:
            with map_aws_errors(f"ssm:GetParameterHistory {name}"):
                pages = ssm.get_paginator("get_parameter_history").paginate(Name=name, WithDecryption=True)
                for page in pages:
                    for entry in page["Parameters"]:
                        if int(entry["Version"]) == version:
                            return dict(entry)
        except ResourceNotFound as error:
            raise StepFailed(f"{name}: the parameter was deleted, so its history is gone ({error})") from error
        raise StepFailed(f"{name}: version {version} is no longer in the parameter's history (SSM keeps 100)")

    def action_name(self, current: State, target: State) -> str:
        return "put-parameter"

    def readiness(self, spec: SsmParameterSpec, ctx: KindContext, state: State) -> list[ReadinessCheck]:
        checks = [self._ready(ctx, name, recorded) for name, recorded in state["parameters"].items()]
        return checks or [ReadinessCheck("ok", "no parameters were recorded")]

    def _ready(self, ctx: KindContext, name: str, recorded: dict[str, Any]) -> ReadinessCheck:
        """Impossible when the recorded version left the history; at risk when fewer than RISK_MARGIN more
        writes would push it out (it has HISTORY_KEPT - RISK_MARGIN or more newer versions)."""
        version = int(recorded["version"])
        try:
            entry = self._history_entry(ctx, name, version)
        except StepFailed as error:
            return ReadinessCheck("impossible", str(error))
        if value_hash(entry["Value"]) != recorded["hash"]:
            return ReadinessCheck(
                "impossible", f"{name}: version {version} in the history no longer matches the release"
            )
        with map_aws_errors(f"ssm:GetParameter {name}"):
            newer = int(ctx.aws.client("ssm").get_parameter(Name=name)["Parameter"]["Version"]) - version
        if newer >= HISTORY_KEPT - RISK_MARGIN:
            return ReadinessCheck(
                "at-risk",
                f"{name}: {newer} versions written since version {version}; SSM keeps {HISTORY_KEPT}, "
                f"so {HISTORY_KEPT - newer} more writes drop it",
            )
        return ReadinessCheck("ok", f"{name}: version {version} is in the history ({newer} newer)")

    def describe(self, state: State) -> str:
        params = state["parameters"]
        if not params:
            return "no parameters"
        shown = ", ".join(f"{n.rsplit('/', 1)[-1]}@v{p['version']}" for n, p in list(params.items())[:3])
        more = f" +{len(params) - 3} more" if len(params) > 3 else ""
        return shown + more

    def iam_statements(self, spec: SsmParameterSpec, scope: IamScope) -> list[IamStatement]:
        prefix = f"arn:{scope.partition}:ssm:{scope.region}:{scope.account}:parameter"
        resources: list[str] = []
        for entry in spec.parameters:
            name = entry.lstrip("/")
            resources += (
                [f"{prefix}/{name.rstrip('/')}", f"{prefix}/{name}*"] if entry.endswith("/") else [f"{prefix}/{name}"]
            )
        return [
            IamStatement(
                actions=(
                    "ssm:GetParameter",
                    "ssm:GetParameters",
                    "ssm:GetParametersByPath",
                    "ssm:GetParameterHistory",
                    "ssm:PutParameter",
                ),
                resources=tuple(resources),
                purpose="read parameters and their history, write back a recorded value",
            ),
            IamStatement(
                actions=("kms:Decrypt", "kms:Encrypt"),
                resources=(f"arn:{scope.partition}:kms:{scope.region}:{scope.account}:key/*",),
                purpose="SecureString parameters only; narrow to the parameters' key",
            ),
        ]
