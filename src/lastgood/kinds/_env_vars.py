"""Environment variables as recorded state, shared by amplify-env and lambda-env.

Every variable is recorded by a hash of its value. A plain variable's value is recorded too, so it can be
written back. A secret variable (its name looks secret, see lastgood.redact, or it is listed under `secrets`)
never has its value in the ledger: with a `vault` (an SSM path), `record` keeps the value in a SecureString
parameter there and the ledger holds only that parameter's version; without one, a changed secret variable
cannot be restored and the release says so when it is recorded. Messages name variables, never values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator

from lastgood.aws.errors import map_aws_errors
from lastgood.config.models import Component
from lastgood.errors import ResourceNotFound, StepFailed
from lastgood.kinds.base import IamScope, IamStatement, KindContext, State, value_hash
from lastgood.redact import SECRET_NAME, register_secret

Variables = dict[str, str]


class EnvVariablesSpec(Component):
    """The fields amplify-env and lambda-env share."""

    variables: list[str] | None = Field(
        default=None, description="The variables recorded and restored; omitted: all of them (added ones removed)."
    )
    secrets: list[str] = Field(
        default_factory=list, description="Variables whose values are secret besides those whose names look secret."
    )
    vault: str | None = Field(
        default=None,
        description="SSM path where `record` keeps secret values as SecureString parameters ({env} works); "
        "without it a changed secret variable cannot be restored.",
    )

    @field_validator("variables")
    @classmethod
    def _some(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("list at least one variable, or leave `variables` out to restore all of them")
        return value

    @field_validator("vault")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError("the vault is an SSM path and starts with '/', e.g. /lastgood/prod")
        return value


def is_secret(spec: EnvVariablesSpec, name: str) -> bool:
    return name in spec.secrets or bool(SECRET_NAME.search(name))


def selected(spec: EnvVariablesSpec, live: Mapping[str, str]) -> Variables:
    names = live if spec.variables is None else [n for n in spec.variables if n in live]
    return {n: live[n] for n in names}


def entries(spec: EnvVariablesSpec, live: Mapping[str, str]) -> State:
    """The recorded form of the selected variables: a hash each, the value of plain ones."""
    out: State = {}
    for name, value in sorted(selected(spec, live).items()):
        if is_secret(spec, name):
            register_secret(value)
            out[name] = {"hash": value_hash(value)}
        else:
            out[name] = {"hash": value_hash(value), "value": value}
    return out


def vault_name(spec: EnvVariablesSpec, name: str) -> str:
    assert spec.vault is not None
    return f"{spec.vault.rstrip('/')}/{spec.name}/{name}"


def keep_in_vault(spec: EnvVariablesSpec, ctx: KindContext, live: Mapping[str, str], recorded: State) -> State:
    """At record time: each secret value into the vault (written only when it differs), its version recorded."""
    if spec.vault is None:
        return recorded
    ssm = ctx.aws.client("ssm")
    out = dict(recorded)
    for name, entry in recorded.items():
        if "value" in entry:
            continue
        parameter = vault_name(spec, name)
        version = _vault_version(ctx, parameter, entry["hash"])
        if version is None:
            with map_aws_errors(f"ssm:PutParameter {parameter}"):
                version = int(
                    ssm.put_parameter(Name=parameter, Value=live[name], Type="SecureString", Overwrite=True)["Version"]
                )
        out[name] = {**entry, "vault_version": version}
    return out


def _vault_version(ctx: KindContext, parameter: str, wanted: str) -> int | None:
    """The vault parameter's version when it already holds the value (a second record writes nothing)."""
    try:
        with map_aws_errors(f"ssm:GetParameter {parameter}"):
            found = ctx.aws.client("ssm").get_parameter(Name=parameter, WithDecryption=True)["Parameter"]
    except ResourceNotFound:
        return None
    register_secret(found["Value"])
    return int(found["Version"]) if value_hash(found["Value"]) == wanted else None


def secret_warnings(spec: EnvVariablesSpec, state: State) -> list[str]:
    lost = [n for n, e in state["variables"].items() if "value" not in e and "vault_version" not in e]
    if not lost:
        return []
    return [
        f"{', '.join(lost)}: secret, so the value is not recorded; without a `vault` a change to "
        f"{'it' if len(lost) == 1 else 'them'} cannot be rolled back"
    ]


def differences(current: State, target: State) -> list[str]:
    """By name only. Both states hold the selected variables only, so one in `current` alone was added since
    the release (with every variable selected, or a named one absent at the release): the rollback removes it."""
    now, then = current["variables"], target["variables"]
    out = [f"{n}: changed since the release" for n in then if n in now and now[n]["hash"] != then[n]["hash"]]
    out += [f"{n}: removed since the release" for n in then if n not in now]
    out += [f"{n}: added since the release (removed by the rollback)" for n in now if n not in then]
    return out


def wanted_variables(spec: EnvVariablesSpec, ctx: KindContext, live: Mapping[str, str], target: State) -> Variables:
    """The whole map to write: the recorded values of the selected variables, the other variables as they are
    (with every variable selected, those added since the release are left out)."""
    recorded = target["variables"]
    named = set(recorded) if spec.variables is None else set(spec.variables)
    out = {n: v for n, v in live.items() if spec.variables is not None and n not in named}
    for name in sorted(named & set(recorded)):  # a selected variable absent at the release is dropped
        out[name] = _recorded_value(spec, ctx, name, recorded[name], live.get(name))
    return dict(sorted(out.items()))


def _recorded_value(spec: EnvVariablesSpec, ctx: KindContext, name: str, entry: Any, live: str | None) -> str:
    if live is not None and value_hash(live) == entry["hash"]:
        return live
    if "value" in entry:
        return str(entry["value"])
    if "vault_version" not in entry:
        raise StepFailed(
            f"{name}: a secret whose value was not recorded (no `vault`), so it cannot be restored: set it by hand"
        )
    parameter = vault_name(spec, name)
    with map_aws_errors(f"ssm:GetParameter {parameter}:{entry['vault_version']}"):
        found = ctx.aws.client("ssm").get_parameter(Name=f"{parameter}:{entry['vault_version']}", WithDecryption=True)
    value = str(found["Parameter"]["Value"])
    register_secret(value)
    if value_hash(value) != entry["hash"]:
        raise StepFailed(f"{name}: the vault's version {entry['vault_version']} no longer matches the release")
    return value


def describe(state: State) -> str:
    names = list(state["variables"])
    if not names:
        return "no variables"
    shown = ", ".join(names[:4]) + (f" +{len(names) - 4} more" if len(names) > 4 else "")
    return f"{len(names)} variable{'s' * (len(names) != 1)} ({shown})"


def vault_iam(spec: EnvVariablesSpec, scope: IamScope) -> list[IamStatement]:
    if spec.vault is None:
        return []
    path = spec.vault.strip("/")
    return [
        IamStatement(
            actions=("ssm:GetParameter", "ssm:PutParameter"),
            resources=(f"arn:{scope.partition}:ssm:{scope.region}:{scope.account}:parameter/{path}/{spec.name}/*",),
            purpose="keep secret values in the vault at record time, read them back on a rollback",
        ),
        IamStatement(
            actions=("kms:Decrypt", "kms:Encrypt"),
            resources=(f"arn:{scope.partition}:kms:{scope.region}:{scope.account}:key/*",),
            purpose="the vault's SecureString key; narrow to it",
        ),
    ]
