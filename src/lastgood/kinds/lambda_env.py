"""lambda-env: a Lambda function's environment variables, recorded and restored.

What makes the function read them, as the file says: without `alias`, $LATEST is updated (callers invoking the
function unqualified read it at their next cold start); with `alias`, a version is published from the updated
$LATEST and the alias moved to it, since a published version's variables never change. The same two writes
serve the `lambda_env` pointer of the restore kinds (kinds/pointers.py: the PropIE table swap).
Values: see kinds/_env_vars.py.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from lastgood.aws.errors import map_aws_errors
from lastgood.errors import StepFailed
from lastgood.kinds import _env_vars as env
from lastgood.kinds.base import ApplyResult, Change, IamScope, IamStatement, Kind, KindContext, State

UPDATE_TIMEOUT_SECONDS = 60.0
UPDATE_POLL_SECONDS = 1.0


class LambdaEnvSpec(env.EnvVariablesSpec):
    kind: Literal["lambda-env"] = "lambda-env"
    function: str = Field(description="Function name or ARN; {env} is substituted.")
    alias: str | None = Field(
        default=None,
        description="Publish a version with the restored variables and move this alias to it; omitted: "
        "only $LATEST is updated.",
    )


def configuration(function: str, ctx: KindContext, qualifier: str | None = None) -> dict[str, Any]:
    kwargs = {"FunctionName": function} | ({"Qualifier": qualifier} if qualifier else {})
    with map_aws_errors(f"lambda:GetFunctionConfiguration {function}{':' + qualifier if qualifier else ''}"):
        return dict(ctx.aws.client("lambda").get_function_configuration(**kwargs))


def variables_of(config: dict[str, Any]) -> dict[str, str]:
    return dict((config.get("Environment") or {}).get("Variables") or {})


def alias_version(function: str, alias: str, ctx: KindContext) -> str:
    with map_aws_errors(f"lambda:GetAlias {function}:{alias}"):
        return str(ctx.aws.client("lambda").get_alias(FunctionName=function, Name=alias)["FunctionVersion"])


def update_variables(function: str, ctx: KindContext, wanted: dict[str, str], revision: str | None) -> dict[str, Any]:
    """Write $LATEST's whole environment (refused if someone changed the function since `revision` was read),
    then wait until Lambda has applied it: a publish before that fails."""
    kwargs: dict[str, Any] = {"FunctionName": function, "Environment": {"Variables": wanted}}
    if revision:
        kwargs["RevisionId"] = revision
    with map_aws_errors(f"lambda:UpdateFunctionConfiguration {function}"):
        answer = dict(ctx.aws.client("lambda").update_function_configuration(**kwargs))
    return _wait_updated(function, ctx, answer)


def _wait_updated(function: str, ctx: KindContext, config: dict[str, Any]) -> dict[str, Any]:
    deadline = ctx.now().timestamp() + UPDATE_TIMEOUT_SECONDS
    while config.get("LastUpdateStatus") == "InProgress":
        if ctx.now().timestamp() >= deadline:
            raise StepFailed(f"{function}: the configuration update did not finish in {UPDATE_TIMEOUT_SECONDS:g} s")
        ctx.sleep(UPDATE_POLL_SECONDS)
        config = configuration(function, ctx)
    if config.get("LastUpdateStatus") == "Failed":
        raise StepFailed(f"{function}: the configuration update failed: {config.get('LastUpdateStatusReason')}")
    return config


def publish_to_alias(function: str, alias: str, ctx: KindContext, revision: str | None) -> dict[str, Any]:
    """Publish $LATEST as it is (`revision`) and move the alias to that version. Lambda answers a publish of an
    unchanged $LATEST with the version already published from it, so a repeat makes no second version."""
    client = ctx.aws.client("lambda")
    kwargs: dict[str, Any] = {"FunctionName": function, "Description": f"lastgood {ctx.token}"[:256]}
    if revision:
        kwargs["RevisionId"] = revision
    with map_aws_errors(f"lambda:PublishVersion {function}"):
        published = dict(client.publish_version(**kwargs))
    with map_aws_errors(f"lambda:UpdateAlias {function}:{alias}"):
        client.update_alias(FunctionName=function, Name=alias, FunctionVersion=str(published["Version"]))
    ctx.progress(f"{function}: version {published['Version']} published, alias {alias} moved to it")
    return published


class LambdaEnv(Kind[LambdaEnvSpec]):
    name = "lambda-env"
    spec_model = LambdaEnvSpec
    estimate_seconds = 3.0

    def _live(self, spec: LambdaEnvSpec, ctx: KindContext) -> dict[str, str]:
        """What invocations read: the alias's version, or $LATEST."""
        qualifier = alias_version(spec.function, spec.alias, ctx) if spec.alias else None
        return variables_of(configuration(spec.function, ctx, qualifier))

    def read(self, spec: LambdaEnvSpec, ctx: KindContext) -> State:
        return {"variables": env.entries(spec, self._live(spec, ctx))}

    def record(self, spec: LambdaEnvSpec, ctx: KindContext) -> State:
        live = self._live(spec, ctx)
        return {"variables": env.keep_in_vault(spec, ctx, live, env.entries(spec, live))}

    def differences(self, spec: LambdaEnvSpec, current: State, target: State) -> list[str]:
        return env.differences(current, target)

    def plan(self, spec: LambdaEnvSpec, current: State, target: State) -> Change | None:
        change = super().plan(spec, current, target)
        if change is None:
            return None
        how = f"publishes a version and moves alias {spec.alias} to it" if spec.alias else "updates $LATEST only"
        notes = (*self.differences(spec, current, target), how)
        return Change(change.action, change.before, change.after, change.estimate_seconds, notes=notes)

    def apply(self, spec: LambdaEnvSpec, ctx: KindContext, target: State) -> ApplyResult:
        latest = configuration(spec.function, ctx)
        live = variables_of(latest)
        if self.differences(spec, {"variables": env.entries(spec, live)}, target):
            wanted = env.wanted_variables(spec, ctx, live, target)
            latest = update_variables(spec.function, ctx, wanted, latest.get("RevisionId"))
        elif spec.alias is None or not self.differences(spec, self.read(spec, ctx), target):
            return ApplyResult("already at target", changed=False)
        if spec.alias is None:
            observed = {"variables": env.entries(spec, variables_of(latest))}
            return ApplyResult(f"$LATEST: restored {env.describe(target)}", observed=observed)
        published = publish_to_alias(spec.function, spec.alias, ctx, latest.get("RevisionId"))
        observed = {"variables": env.entries(spec, variables_of(published))}
        detail = f"restored {env.describe(target)}; alias {spec.alias} -> version {published['Version']}"
        return ApplyResult(detail, observed=observed, extra={"version": str(published["Version"])})

    def warnings(self, spec: LambdaEnvSpec, state: State) -> list[str]:
        return env.secret_warnings(spec, state)

    def action_name(self, current: State, target: State) -> str:
        return "update-variables"

    def describe(self, state: State) -> str:
        return env.describe(state)

    def iam_statements(self, spec: LambdaEnvSpec, scope: IamScope) -> list[IamStatement]:
        return [*lambda_env_iam(spec.function, spec.alias, scope), *env.vault_iam(spec, scope)]


def lambda_env_iam(function: str, alias: str | None, scope: IamScope) -> list[IamStatement]:
    arn = (
        function
        if function.startswith("arn:")
        else f"arn:{scope.partition}:lambda:{scope.region}:{scope.account}:function:{function}"
    )
    statements = [
        IamStatement(
            actions=("lambda:GetFunctionConfiguration", "lambda:UpdateFunctionConfiguration"),
            resources=(arn, f"{arn}:*") if alias else (arn,),
            purpose="read and write back the environment variables (with an alias: read its version's too)",
        )
    ]
    if alias:
        statements.append(
            IamStatement(
                actions=("lambda:GetAlias", "lambda:PublishVersion", "lambda:UpdateAlias"),
                resources=(arn, f"{arn}:{alias}"),
                purpose=f"publish a version with them and move alias {alias} to it",
            )
        )
    return statements
