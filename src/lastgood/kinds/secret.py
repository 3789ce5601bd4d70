"""secret: which Secrets Manager version holds AWSCURRENT. The value is never read."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from lastgood.aws.errors import map_aws_errors
from lastgood.config.models import Component
from lastgood.errors import StepFailed
from lastgood.kinds.base import (
    PREFETCHED,
    ApplyResult,
    IamScope,
    IamStatement,
    Kind,
    KindContext,
    Prefetched,
    ReadinessCheck,
    State,
    prefetched,
)


class SecretSpec(Component):
    kind: Literal["secret"] = "secret"
    secret: str = Field(description="Secret name or ARN; {env} is substituted.")


class Secret(Kind[SecretSpec]):
    name = "secret"
    spec_model = SecretSpec
    estimate_seconds = 1.0

    def _stages(self, spec: SecretSpec, ctx: KindContext) -> dict[str, list[str]]:
        with map_aws_errors(f"secretsmanager:DescribeSecret {spec.secret}"):
            described = ctx.aws.client("secretsmanager").describe_secret(SecretId=spec.secret)
        return dict(described.get("VersionIdsToStages") or {})

    def read(self, spec: SecretSpec, ctx: KindContext) -> State:
        return {"version_id": _current(self._stages(spec, ctx))}

    def read_for_rollback(self, spec: SecretSpec, ctx: KindContext, target: State) -> State:
        """The same DescribeSecret, keeping the versions it lists (with their labels) for apply."""
        stages = self._stages(spec, ctx)
        return {"version_id": _current(stages), PREFETCHED: Prefetched({"stages": stages})}

    def differences(self, spec: SecretSpec, current: State, target: State) -> list[str]:
        if current["version_id"] == target["version_id"]:
            return []
        return [f"AWSCURRENT {_short(current['version_id'])} -> {_short(target['version_id'])}"]

    def apply(self, spec: SecretSpec, ctx: KindContext, target: State) -> ApplyResult:
        """Moves AWSCURRENT; UpdateSecretVersionStage answers with no state, so the engine verifies by reading."""
        known = ctx.known_state
        stages = prefetched(known).get("stages") if known is not None else None
        if stages is None:
            stages = self._stages(spec, ctx)
        current = _current(stages)
        wanted = target["version_id"]
        if current == wanted:
            return ApplyResult("already at target", changed=False, observed={"version_id": current})
        # DescribeSecret lists the versions that have a label; only a deprecated one needs the full list.
        if wanted not in stages and wanted not in self._versions(spec, ctx):
            raise StepFailed(f"{spec.secret}: version {wanted} no longer exists, so AWSCURRENT cannot move back")
        kwargs = {"SecretId": spec.secret, "VersionStage": "AWSCURRENT", "MoveToVersionId": wanted}
        if current:
            kwargs["RemoveFromVersionId"] = current
        with map_aws_errors(f"secretsmanager:UpdateSecretVersionStage {spec.secret}"):
            ctx.aws.client("secretsmanager").update_secret_version_stage(**kwargs)
        return ApplyResult(f"AWSCURRENT moved to {_short(wanted)}")

    @staticmethod
    def _versions(spec: SecretSpec, ctx: KindContext) -> set[str]:
        return set(Secret._version_stages(spec, ctx))

    @staticmethod
    def _version_stages(spec: SecretSpec, ctx: KindContext) -> dict[str, list[str]]:
        """Every version id, deprecated ones included, with its staging labels."""
        client = ctx.aws.client("secretsmanager")
        known: dict[str, list[str]] = {}
        kwargs: dict[str, Any] = {"SecretId": spec.secret, "IncludeDeprecated": True}
        with map_aws_errors(f"secretsmanager:ListSecretVersionIds {spec.secret}"):
            while True:
                page = client.list_secret_version_ids(**kwargs)
                known.update({v["VersionId"]: list(v.get("VersionStages") or []) for v in page["Versions"]})
                if not page.get("NextToken"):
                    return known
                kwargs["NextToken"] = page["NextToken"]

    def readiness(self, spec: SecretSpec, ctx: KindContext, state: State) -> list[ReadinessCheck]:
        wanted = state["version_id"]
        if wanted is None:
            return [ReadinessCheck("impossible", f"{spec.secret}: no version held AWSCURRENT at the release")]
        stages = self._version_stages(spec, ctx)
        if wanted not in stages:
            return [ReadinessCheck("impossible", f"{spec.secret}: version {_short(wanted)} no longer exists")]
        if not stages[wanted]:
            # A version without a staging label is deprecated, and Secrets Manager removes those over time.
            return [
                ReadinessCheck("at-risk", f"{spec.secret}: version {_short(wanted)} has no staging label (deprecated)")
            ]
        return [ReadinessCheck("ok", f"{spec.secret}: version {_short(wanted)} exists ({', '.join(stages[wanted])})")]

    def action_name(self, current: State, target: State) -> str:
        return "move-stage"

    def describe(self, state: State) -> str:
        return f"AWSCURRENT {_short(state['version_id'])}"

    def iam_statements(self, spec: SecretSpec, scope: IamScope) -> list[IamStatement]:
        resource = (
            spec.secret
            if spec.secret.startswith("arn:")
            else f"arn:{scope.partition}:secretsmanager:{scope.region}:{scope.account}:secret:{spec.secret}-*"
        )
        return [
            IamStatement(
                actions=(
                    "secretsmanager:DescribeSecret",
                    "secretsmanager:ListSecretVersionIds",
                    "secretsmanager:UpdateSecretVersionStage",
                ),
                resources=(resource,),
                purpose="read version stages and move AWSCURRENT (never the value)",
            )
        ]


def _current(stages: dict[str, list[str]]) -> str | None:
    current = [v for v, labels in stages.items() if "AWSCURRENT" in labels]
    return current[0] if current else None


def _short(version_id: str | None) -> str:
    return (version_id or "none")[:8]
