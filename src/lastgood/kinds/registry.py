"""Kind name -> implementation. Adding a kind is one module and one line here."""

from __future__ import annotations

from typing import Any

from lastgood.config.messages import did_you_mean
from lastgood.errors import BadInput
from lastgood.kinds.amplify_branch import AmplifyBranch
from lastgood.kinds.amplify_env import AmplifyEnv
from lastgood.kinds.apigateway_stage import ApigatewayStage
from lastgood.kinds.aurora_cluster import AuroraCluster
from lastgood.kinds.base import Kind, WeightedKind
from lastgood.kinds.cloudformation_stack import CloudFormationStack
from lastgood.kinds.codedeploy import CodeDeploy
from lastgood.kinds.command import Command
from lastgood.kinds.dynamodb_table import DynamoDbTable
from lastgood.kinds.ecs_service import EcsService
from lastgood.kinds.elbv2_listener import Elbv2Listener
from lastgood.kinds.feature_flag import FeatureFlag
from lastgood.kinds.lambda_alias import LambdaAlias
from lastgood.kinds.lambda_env import LambdaEnv
from lastgood.kinds.rds_instance import RdsInstance
from lastgood.kinds.redeploy import Redeployable
from lastgood.kinds.route53_weighted import Route53Weighted
from lastgood.kinds.s3_prefix import S3Prefix
from lastgood.kinds.secret import Secret
from lastgood.kinds.security_group import SecurityGroup
from lastgood.kinds.sql_migrations import SqlMigrations
from lastgood.kinds.ssm_parameter import SsmParameter
from lastgood.kinds.stepfunctions_alias import StepfunctionsAlias

KINDS: dict[str, Kind[Any]] = {}


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


for _kind in (
    LambdaAlias(),
    SsmParameter(),
    Secret(),
    AmplifyBranch(),
    ApigatewayStage(),
    StepfunctionsAlias(),
    EcsService(),
    DynamoDbTable(),
    RdsInstance(),
    AuroraCluster(),
    S3Prefix(),
    Elbv2Listener(),
    Route53Weighted(),
    CloudFormationStack(),
    CodeDeploy(),
    SqlMigrations(),
    FeatureFlag(),
    Command(),
    AmplifyEnv(),
    LambdaEnv(),
    SecurityGroup(),
):
    register(_kind)
