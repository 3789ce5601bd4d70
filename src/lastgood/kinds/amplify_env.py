"""amplify-env: an Amplify app's (or one branch's) environment variables, recorded and restored.

Amplify reads them when it builds, so a restore takes effect at the next build: give the amplify-branch
component `redeploy_after: [this component]` to rebuild once they are back. Values: see kinds/_env_vars.py.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from lastgood.aws.errors import map_aws_errors
from lastgood.kinds import _env_vars as env
from lastgood.kinds.base import ApplyResult, Change, IamScope, IamStatement, Kind, KindContext, State


class AmplifyEnvSpec(env.EnvVariablesSpec):
    kind: Literal["amplify-env"] = "amplify-env"
    app_id: str = Field(description="The Amplify app id, e.g. d1abc2def3; {env} is substituted.")
    branch: str | None = Field(default=None, description="A branch's own variables; omitted: the app's.")


class AmplifyEnv(Kind[AmplifyEnvSpec]):
    name = "amplify-env"
    spec_model = AmplifyEnvSpec
    estimate_seconds = 1.0

    def _live(self, spec: AmplifyEnvSpec, ctx: KindContext) -> dict[str, str]:
        client = ctx.aws.client("amplify")
        if spec.branch is None:
            with map_aws_errors(f"amplify:GetApp {spec.app_id}"):
                found = client.get_app(appId=spec.app_id)["app"]
        else:
            with map_aws_errors(f"amplify:GetBranch {spec.app_id}/{spec.branch}"):
                found = client.get_branch(appId=spec.app_id, branchName=spec.branch)["branch"]
        return dict(found.get("environmentVariables") or {})

    def read(self, spec: AmplifyEnvSpec, ctx: KindContext) -> State:
        return {"variables": env.entries(spec, self._live(spec, ctx))}

    def record(self, spec: AmplifyEnvSpec, ctx: KindContext) -> State:
        live = self._live(spec, ctx)
        return {"variables": env.keep_in_vault(spec, ctx, live, env.entries(spec, live))}

    def differences(self, spec: AmplifyEnvSpec, current: State, target: State) -> list[str]:
        return env.differences(current, target)

    def plan(self, spec: AmplifyEnvSpec, current: State, target: State) -> Change | None:
        change = super().plan(spec, current, target)
        if change is None:
            return None
        notes = (*self.differences(spec, current, target), "Amplify reads them at the next build (redeploy_after)")
        return Change(change.action, change.before, change.after, change.estimate_seconds, notes=notes)

    def apply(self, spec: AmplifyEnvSpec, ctx: KindContext, target: State) -> ApplyResult:
        live = self._live(spec, ctx)
        if not self.differences(spec, {"variables": env.entries(spec, live)}, target):
            return ApplyResult("already at target", changed=False)
        wanted = env.wanted_variables(spec, ctx, live, target)
        client = ctx.aws.client("amplify")
        if spec.branch is None:
            with map_aws_errors(f"amplify:UpdateApp {spec.app_id}"):
                answer: dict[str, Any] = client.update_app(appId=spec.app_id, environmentVariables=wanted)["app"]
        else:
            with map_aws_errors(f"amplify:UpdateBranch {spec.app_id}/{spec.branch}"):
                answer = client.update_branch(appId=spec.app_id, branchName=spec.branch, environmentVariables=wanted)[
                    "branch"
                ]
        observed = {"variables": env.entries(spec, dict(answer.get("environmentVariables") or {}))}
        return ApplyResult(f"restored {env.describe(target)}", observed=observed)

    def warnings(self, spec: AmplifyEnvSpec, state: State) -> list[str]:
        return env.secret_warnings(spec, state)

    def action_name(self, current: State, target: State) -> str:
        return "update-variables"

    def describe(self, state: State) -> str:
        return env.describe(state)

    def iam_statements(self, spec: AmplifyEnvSpec, scope: IamScope) -> list[IamStatement]:
        app = f"arn:{scope.partition}:amplify:{scope.region}:{scope.account}:apps/{spec.app_id}"
        if spec.branch is None:
            actions, resource = ("amplify:GetApp", "amplify:UpdateApp"), app
        else:
            actions, resource = ("amplify:GetBranch", "amplify:UpdateBranch"), f"{app}/branches/{spec.branch}"
        statement = IamStatement(actions, (resource,), "read and write back the environment variables")
        return [statement, *env.vault_iam(spec, scope)]
