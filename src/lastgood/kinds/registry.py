"""Kind name -> implementation. Adding a kind is one module and one line in `_MODULES`.

A kind's module is imported the first time the kind is looked up: `lastgood validate` of a file with Lambda
aliases and parameters builds those two kinds' models, not every kind's (issue 13, goal 1).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from lastgood.config.messages import did_you_mean
from lastgood.errors import BadInput
from lastgood.kinds.base import Kind, WeightedKind
from lastgood.kinds.redeploy import Redeployable
from lastgood.lazy_registry import LazyRegistry

_MODULES = {
    "lambda-alias": "lastgood.kinds.lambda_alias:LambdaAlias",
    "ssm-parameter": "lastgood.kinds.ssm_parameter:SsmParameter",
    "secret": "lastgood.kinds.secret:Secret",
    "amplify-branch": "lastgood.kinds.amplify_branch:AmplifyBranch",
    "apigateway-stage": "lastgood.kinds.apigateway_stage:ApigatewayStage",
    "stepfunctions-alias": "lastgood.kinds.stepfunctions_alias:StepfunctionsAlias",
    "ecs-service": "lastgood.kinds.ecs_service:EcsService",
    "dynamodb-table": "lastgood.kinds.dynamodb_table:DynamoDbTable",
    "rds-instance": "lastgood.kinds.rds_instance:RdsInstance",
    "aurora-cluster": "lastgood.kinds.aurora_cluster:AuroraCluster",
    "s3-prefix": "lastgood.kinds.s3_prefix:S3Prefix",
    "elbv2-listener": "lastgood.kinds.elbv2_listener:Elbv2Listener",
    "route53-weighted": "lastgood.kinds.route53_weighted:Route53Weighted",
    "cloudformation-stack": "lastgood.kinds.cloudformation_stack:CloudFormationStack",
    "codedeploy": "lastgood.kinds.codedeploy:CodeDeploy",
    "sql-migrations": "lastgood.kinds.sql_migrations:SqlMigrations",
    "feature-flag": "lastgood.kinds.feature_flag:FeatureFlag",
    "command": "lastgood.kinds.command:Command",
    "amplify-env": "lastgood.kinds.amplify_env:AmplifyEnv",
    "lambda-env": "lastgood.kinds.lambda_env:LambdaEnv",
    "security-group": "lastgood.kinds.security_group:SecurityGroup",
}
"""Each kind's name and where its class is, in the order the kinds are listed (and offered) everywhere."""


KINDS: MutableMapping[str, Kind[Any]] = LazyRegistry(_MODULES, make=lambda kind_class: kind_class())


def register(kind: Kind[Any]) -> None:
    KINDS[kind.name] = kind


def get_kind(name: str) -> Kind[Any]:
    if name not in KINDS:
        raise BadInput(f"unknown kind {name!r}{did_you_mean(name, KINDS)}")
    return KINDS[name]


def redeploys(name: str) -> bool:
    """Whether the kind has a redeploy action of its own (`redeploy_after` without `redeploy_command`)."""
    return isinstance(KINDS[name], Redeployable)


def weighted_kinds() -> tuple[str, ...]:
    """The kinds that split traffic between versions by weight: the ones `lastgood deploy` shifts."""
    return tuple(name for name, kind in KINDS.items() if isinstance(kind, WeightedKind))


def as_weighted(kind: Kind[Any]) -> WeightedKind[Any] | None:
    return kind if isinstance(kind, WeightedKind) else None
