"""The least-privilege IAM policy a runbook file needs: every kind's statements, plus the guard's."""

from __future__ import annotations

from typing import Any

from lastgood.config.models import Runbook
from lastgood.kinds.base import IamScope, IamStatement
from lastgood.kinds.registry import get_kind
from lastgood.sources.registry import iam_actions


def policy_for(runbook: Runbook, envs: list[str], scope_for: dict[str, IamScope]) -> dict[str, Any]:
    statements: list[IamStatement] = []
    for env in envs:
        for spec in runbook.components_for(env):
            statements += get_kind(spec.kind).iam_statements(spec, scope_for[env])
    if runbook.triggers:
        statements.append(
            IamStatement(("cloudwatch:GetMetricData",), ("*",), "the guard reads trigger metrics (no resource scoping)")
        )
    for source_type in dict.fromkeys(t.source_type for t in runbook.triggers):
        if actions := iam_actions(source_type):
            statements.append(
                IamStatement(actions, ("*",), f"the guard reads its {source_type} triggers (no resource scoping)")
            )
    statements += _validation_statements(runbook, envs, scope_for)
    merged: dict[tuple[str, ...], list[str]] = {}
    for statement in statements:
        resources = merged.setdefault(tuple(sorted(statement.actions)), [])
        resources += [r for r in statement.resources if r not in resources]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": _sid(actions, index), "Effect": "Allow", "Action": list(actions), "Resource": resources}
            for index, (actions, resources) in enumerate(merged.items())
        ],
    }


def _validation_statements(runbook: Runbook, envs: list[str], scope_for: dict[str, IamScope]) -> list[IamStatement]:
    """A `logs:` check reads its log groups with FilterLogEvents."""
    out = []
    for env in envs:
        scope = scope_for[env]
        groups = [g for c in runbook.validation_for(env).checks if c.logs is not None for g in c.logs.log_groups]
        arns = tuple(f"arn:{scope.partition}:logs:{scope.region}:{scope.account}:log-group:{g}:*" for g in groups)
        if arns:
            out.append(IamStatement(("logs:FilterLogEvents",), arns, "validate: logs checks after a rollback"))
    return out


def _sid(actions: tuple[str, ...], index: int) -> str:
    service = actions[0].split(":", 1)[0].title().replace("-", "")
    return f"Lastgood{service}{index}"
