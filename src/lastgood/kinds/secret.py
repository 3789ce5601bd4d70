"""secret: which Secrets Manager version holds AWSCURRENT. The value is never read.

Automatic rotation is paused while AWSCURRENT moves back (a rotation in between would move it on again) and
resumed after, even when the move fails: CancelRotateSecret, the move, then RotateSecret with the rotation
function and rules the secret had (the ones DescribeSecret still reports, else those recorded with the
release) and RotateImmediately=false, so the restored version stays current until the next scheduled rotation.
A tag (`lastgood:rotation-paused`, the step's short token) marks the pause on the secret itself, so a retry or a
resume after a crash between the pause and the resume still resumes it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from pydantic import Field

from lastgood.aws.errors import map_aws_errors
from lastgood.config.models import Component
from lastgood.errors import LastgoodError, StepFailed
from lastgood.kinds import _restore
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
)


class SecretSpec(Component):
    kind: Literal["secret"] = "secret"
    secret: str = Field(description="Secret name or ARN; {env} is substituted.")
    pause_rotation: bool = Field(
        default=True,
        description="Pause automatic rotation (CancelRotateSecret) while AWSCURRENT moves back; resume it after.",
    )


PAUSE_TAG = "lastgood:rotation-paused"
_RULE_KEYS = ("AutomaticallyAfterDays", "Duration", "ScheduleExpression")


class Secret(Kind[SecretSpec]):
    name = "secret"
    spec_model = SecretSpec
    estimate_seconds = 1.0

    @staticmethod
    def _describe(spec: SecretSpec, ctx: KindContext) -> dict[str, Any]:
        with map_aws_errors(f"secretsmanager:DescribeSecret {spec.secret}"):
            return dict(ctx.aws.client("secretsmanager").describe_secret(SecretId=spec.secret))

    def read(self, spec: SecretSpec, ctx: KindContext) -> State:
        described = self._describe(spec, ctx)
        return {"version_id": _current(described), "rotation": _rotation(described, enabled_only=True)}

    def read_for_rollback(self, spec: SecretSpec, ctx: KindContext, target: State) -> State:
        """The same DescribeSecret, kept (versions, labels, rotation, tags) for apply's first attempt."""
        described = self._describe(spec, ctx)
        state = {"version_id": _current(described), "rotation": _rotation(described, enabled_only=True)}
        return {**state, PREFETCHED: Prefetched({"described": described})}

    def differences(self, spec: SecretSpec, current: State, target: State) -> list[str]:
        if current["version_id"] == target["version_id"]:
            return []
        return [f"AWSCURRENT {_short(current['version_id'])} -> {_short(target['version_id'])}"]

    def apply(self, spec: SecretSpec, ctx: KindContext, target: State) -> ApplyResult:
        described = prefetched(ctx.known_state).get("described") or self._describe(spec, ctx)
        current, wanted = _current(described), target["version_id"]
        paused_earlier = PAUSE_TAG in _restore.tag_dict(described.get("Tags"))
        if current == wanted and not paused_earlier:
            return ApplyResult("already at target", changed=False)
        pause = spec.pause_rotation and (bool(described.get("RotationEnabled")) or paused_earlier)
        rotation = _rotation(described, enabled_only=False) or target.get("rotation")
        if pause and not paused_earlier:
            self._pause(spec, ctx)
        try:
            detail = self._move(spec, ctx, current, wanted, set(described.get("VersionIdsToStages") or {}))
        except LastgoodError as error:
            if pause:
                self._resume_after_failure(spec, ctx, rotation, error)
            raise
        if pause:
            detail += "; " + self._resume(spec, ctx, rotation)
        return ApplyResult(detail)

    def _move(self, spec: SecretSpec, ctx: KindContext, current: str | None, wanted: str, labelled: set[str]) -> str:
        if current == wanted:
            return f"AWSCURRENT already on {_short(wanted)}"
        # DescribeSecret lists the versions that have a label; only a deprecated one needs the full list.
        if wanted not in labelled and wanted not in self._versions(spec, ctx):
            raise StepFailed(f"{spec.secret}: version {wanted} no longer exists, so AWSCURRENT cannot move back")
        kwargs = {"SecretId": spec.secret, "VersionStage": "AWSCURRENT", "MoveToVersionId": wanted}
        if current:
            kwargs["RemoveFromVersionId"] = current
        with map_aws_errors(f"secretsmanager:UpdateSecretVersionStage {spec.secret}"):
            ctx.aws.client("secretsmanager").update_secret_version_stage(**kwargs)
        return f"AWSCURRENT moved to {_short(wanted)}"

    # Rotation: paused before the move, resumed after it

    @staticmethod
    def _pause(spec: SecretSpec, ctx: KindContext) -> None:
        client = ctx.aws.client("secretsmanager")
        # The tag first: a crash right after the cancel must still leave the mark that says "resume me".
        with map_aws_errors(f"secretsmanager:TagResource {spec.secret}"):
            client.tag_resource(
                SecretId=spec.secret, Tags=[{"Key": PAUSE_TAG, "Value": _restore.short_token(ctx.token)}]
            )
        with map_aws_errors(f"secretsmanager:CancelRotateSecret {spec.secret}"):
            client.cancel_rotate_secret(SecretId=spec.secret)
        ctx.progress(f"automatic rotation of {spec.secret} paused")

    @staticmethod
    def _resume(spec: SecretSpec, ctx: KindContext, rotation: dict[str, Any] | None) -> str:
        client = ctx.aws.client("secretsmanager")
        if rotation is None:
            done = "rotation was paused, but no rotation function is known: turn it back on by hand"
        else:
            kwargs: dict[str, Any] = {"SecretId": spec.secret, "RotateImmediately": False}
            if rotation.get("lambda_arn"):
                kwargs["RotationLambdaARN"] = rotation["lambda_arn"]
            if rotation.get("rules"):
                kwargs["RotationRules"] = rotation["rules"]
            with map_aws_errors(f"secretsmanager:RotateSecret {spec.secret} (resume, not immediately)"):
                client.rotate_secret(**kwargs)
            done = f"automatic rotation resumed ({_describe_rules(rotation)})"
        with map_aws_errors(f"secretsmanager:UntagResource {spec.secret}"):
            client.untag_resource(SecretId=spec.secret, TagKeys=[PAUSE_TAG])
        ctx.progress(f"{spec.secret}: {done}")
        return done

    def _resume_after_failure(
        self, spec: SecretSpec, ctx: KindContext, rotation: dict[str, Any] | None, cause: LastgoodError
    ) -> None:
        """The move failed after the pause: resume anyway; the move's error is the one reported."""
        try:
            self._resume(spec, ctx, rotation)
        except LastgoodError as error:
            ctx.progress(f"{spec.secret}: rotation stays paused ({error}); the move failed first: {cause}")

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

    def plan(self, spec: SecretSpec, current: State, target: State) -> Change | None:
        change = super().plan(spec, current, target)
        rotation = current.get("rotation")
        if change is None or not spec.pause_rotation or rotation is None:
            return change
        note = (
            f"automatic rotation ({_describe_rules(rotation)}) is paused (CancelRotateSecret) during the move and "
            "resumed after it (RotateSecret, not immediately), also when the move fails"
        )
        return replace(change, notes=(*change.notes, note))

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
            ),
            *(self._rotation_iam(resource, scope) if spec.pause_rotation else []),
        ]

    @staticmethod
    def _rotation_iam(resource: str, scope: IamScope) -> list[IamStatement]:
        return [
            IamStatement(
                actions=(
                    "secretsmanager:CancelRotateSecret",
                    "secretsmanager:RotateSecret",
                    "secretsmanager:TagResource",
                    "secretsmanager:UntagResource",
                ),
                resources=(resource,),
                purpose="pause automatic rotation during the move and resume it after",
            ),
            IamStatement(
                actions=("lambda:InvokeFunction",),
                # The rotation function is the secret's, known only at run time: this account and region's.
                resources=(f"arn:{scope.partition}:lambda:{scope.region}:{scope.account}:function:*",),
                purpose="RotateSecret needs it on the rotation function; narrow to that function",
            ),
        ]


def _current(described: dict[str, Any]) -> str | None:
    stages = described.get("VersionIdsToStages") or {}
    current = [v for v, labels in stages.items() if "AWSCURRENT" in labels]
    return current[0] if current else None


def _rotation(described: dict[str, Any], enabled_only: bool) -> dict[str, Any] | None:
    """The rotation function and rules DescribeSecret reports (enabled_only: None when rotation is off)."""
    if enabled_only and not described.get("RotationEnabled"):
        return None
    lambda_arn = described.get("RotationLambdaARN")
    rules = {k: v for k, v in (described.get("RotationRules") or {}).items() if k in _RULE_KEYS and v}
    if not lambda_arn and not rules:
        return None
    return {"lambda_arn": lambda_arn or None, "rules": rules}


def _describe_rules(rotation: dict[str, Any]) -> str:
    rules = rotation.get("rules") or {}
    if rules.get("ScheduleExpression"):
        return f"schedule {rules['ScheduleExpression']}"
    if rules.get("AutomaticallyAfterDays"):
        return f"every {rules['AutomaticallyAfterDays']} days"
    return "no schedule recorded"


def _short(version_id: str | None) -> str:
    return (version_id or "none")[:8]
