"""aurora-cluster: an Aurora cluster's data as it was at a release, restored into a NEW cluster with a writer.

Recorded: the cluster behind the pointer's endpoint (writer or reader endpoint), that endpoint, the recorded time,
the latest restorable time, the backup retention, the lineage tags and (with `snapshot_on_record: true`, taken
by `record()`) a manual cluster snapshot. Rolling back restores into `<cluster>-restored-<id>`
(RestoreDBClusterToPointInTime as a full copy, or RestoreDBClusterFromSnapshot) with the source's subnet group,
security groups, cluster parameter group, port, deletion protection and Serverless v2 scaling; once the cluster
is `available` it adds the writer `<copy>-writer` (CreateDBInstance, the source writer's class or
`instance_class`), waits until that is `available`, then points the pointer at the copy's endpoint of the same
type (writer or reader). The original cluster is never modified or deleted.

Lineage decides "already there", as for rds-instance (see lastgood.kinds._restore).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from lastgood.aws.errors import map_aws_errors
from lastgood.errors import StepFailed
from lastgood.kinds import _restore
from lastgood.kinds._rds import AVAILABLE, RDS_ID_LENGTH, RdsRestoreKind, RdsRestoreSpec, describe_or_none
from lastgood.kinds.base import IamScope, IamStatement, KindContext, State
from lastgood.kinds.rds_instance import describe_instance

WRITER_SUFFIX = "-writer"


class AuroraClusterSpec(RdsRestoreSpec):
    kind: Literal["aurora-cluster"] = "aurora-cluster"
    cluster: str = Field(description="DB cluster identifier; restored copies are named <cluster>-restored-<id>.")


def cluster_settings(source: dict[str, Any]) -> dict[str, Any]:
    """What a restored cluster must share with its source for the application to reach it."""
    out: dict[str, Any] = {
        "DeletionProtection": bool(source.get("DeletionProtection")),
        "CopyTagsToSnapshot": bool(source.get("CopyTagsToSnapshot")),
    }
    if source.get("DBSubnetGroup"):
        out["DBSubnetGroupName"] = source["DBSubnetGroup"]
    security_groups = [g["VpcSecurityGroupId"] for g in source.get("VpcSecurityGroups") or []]
    if security_groups:
        out["VpcSecurityGroupIds"] = security_groups
    if source.get("DBClusterParameterGroup"):
        out["DBClusterParameterGroupName"] = source["DBClusterParameterGroup"]
    if source.get("Port"):
        out["Port"] = int(source["Port"])
    scaling = source.get("ServerlessV2ScalingConfiguration") or {}
    if scaling.get("MinCapacity") is not None and scaling.get("MaxCapacity") is not None:
        out["ServerlessV2ScalingConfiguration"] = {
            "MinCapacity": scaling["MinCapacity"],
            "MaxCapacity": scaling["MaxCapacity"],
        }
    return out


def _kms(spec: AuroraClusterSpec) -> dict[str, Any]:
    """The file's key for the restored cluster; without one the restore keeps the source's (or snapshot's)."""
    return {"KmsKeyId": spec.encryption.kms_key} if spec.encryption.kms_key else {}


class AuroraCluster(RdsRestoreKind[AuroraClusterSpec]):
    name = "aurora-cluster"
    spec_model = AuroraClusterSpec
    key = "cluster"
    noun = "cluster"
    id_length = RDS_ID_LENGTH - len(WRITER_SUFFIX)  # so that "<copy>-writer" is a valid identifier

    def base_id(self, spec: AuroraClusterSpec) -> str:
        return spec.cluster

    def identifier(self, described: dict[str, Any]) -> str:
        return str(described["DBClusterIdentifier"])

    def status_of(self, described: dict[str, Any]) -> str:
        return str(described["Status"])

    def describe_resource(self, ctx: KindContext, identifier: str) -> dict[str, Any] | None:
        found = describe_or_none(
            f"rds:DescribeDBClusters {identifier}",
            ctx.aws.client("rds").describe_db_clusters,
            DBClusterIdentifier=identifier,
        )
        return dict(found["DBClusters"][0]) if found and found["DBClusters"] else None

    def resolve(self, ctx: KindContext, host: str) -> tuple[dict[str, Any], bool] | None:
        # A cluster endpoint starts with the cluster's identifier; look that up before listing them all.
        guess = self.describe_resource(ctx, host.split(".")[0])
        if guess is not None and host in (self.endpoint_of(guess, False), self.endpoint_of(guess, True)):
            return guess, host == self.endpoint_of(guess, True)
        with map_aws_errors("rds:DescribeDBClusters"):
            for page in ctx.aws.client("rds").get_paginator("describe_db_clusters").paginate():
                for described in page["DBClusters"]:
                    if host in (self.endpoint_of(described, False), self.endpoint_of(described, True)):
                        return dict(described), host == self.endpoint_of(described, True)
        return None

    def endpoint_of(self, described: dict[str, Any], reader: bool) -> str | None:
        address = described.get("ReaderEndpoint" if reader else "Endpoint")
        return str(address).lower() if address else None

    def create_snapshot(self, ctx: KindContext, identifier: str, name: str, recorded_at: str) -> str:
        if self.snapshot_status(ctx, name) is None:
            with map_aws_errors(f"rds:CreateDBClusterSnapshot {identifier} -> {name}"):
                ctx.aws.client("rds").create_db_cluster_snapshot(
                    DBClusterSnapshotIdentifier=name,
                    DBClusterIdentifier=identifier,
                    Tags=[{"Key": "lastgood:recorded-at", "Value": recorded_at}],
                )
        return name

    def snapshot_status(self, ctx: KindContext, name: str) -> dict[str, Any] | None:
        found = describe_or_none(
            f"rds:DescribeDBClusterSnapshots {name}",
            ctx.aws.client("rds").describe_db_cluster_snapshots,
            DBClusterSnapshotIdentifier=name,
        )
        return dict(found["DBClusterSnapshots"][0]) if found and found["DBClusterSnapshots"] else None

    def restore_to_time(
        self,
        spec: AuroraClusterSpec,
        ctx: KindContext,
        source: dict[str, Any],
        copy: str,
        at: datetime,
        tags: list[Any],
    ) -> None:
        with map_aws_errors(f"rds:RestoreDBClusterToPointInTime {source['DBClusterIdentifier']} -> {copy}"):
            ctx.aws.client("rds").restore_db_cluster_to_point_in_time(
                DBClusterIdentifier=copy,
                SourceDBClusterIdentifier=source["DBClusterIdentifier"],
                RestoreToTime=at,
                RestoreType="full-copy",  # copy-on-write cannot take a restore time
                Tags=tags,
                **cluster_settings(source),
                **_kms(spec),
            )

    def restore_snapshot(
        self,
        spec: AuroraClusterSpec,
        ctx: KindContext,
        snapshot: dict[str, Any],
        source: dict[str, Any] | None,
        copy: str,
        tags: list[Any],
    ) -> None:
        name = snapshot["DBClusterSnapshotIdentifier"]
        with map_aws_errors(f"rds:RestoreDBClusterFromSnapshot {name} -> {copy}"):
            ctx.aws.client("rds").restore_db_cluster_from_snapshot(
                DBClusterIdentifier=copy,
                SnapshotIdentifier=name,
                Engine=snapshot["Engine"],
                EngineVersion=snapshot["EngineVersion"],
                Tags=tags,
                **(cluster_settings(source) if source is not None else {}),
                **_kms(spec),
            )

    def still_to_do(self, spec: AuroraClusterSpec, ctx: KindContext, target: State, copy: dict[str, Any]) -> list[str]:
        """A restored cluster has no instances: add the writer, then wait for it."""
        writer = copy["DBClusterIdentifier"] + WRITER_SUFFIX
        described = describe_instance(ctx, writer)
        if described is None:
            self._create_writer(spec, ctx, target, copy, writer)
            return [f"writer instance {writer} is being created"]
        status = str(described["DBInstanceStatus"])
        self._status.report(ctx, f"instance {writer}", status)
        return [] if status == AVAILABLE else [f"writer instance {writer} is {status}"]

    def _create_writer(
        self, spec: AuroraClusterSpec, ctx: KindContext, target: State, copy: dict[str, Any], writer: str
    ) -> None:
        model = self._source_writer(ctx, target["cluster"])
        instance_class = spec.instance_class or (model or {}).get("DBInstanceClass")
        if not instance_class:
            raise StepFailed(f"cluster {target['cluster']} has no writer to copy the class of: set instance_class")
        kwargs: dict[str, Any] = {
            "DBInstanceIdentifier": writer,
            "DBClusterIdentifier": copy["DBClusterIdentifier"],
            "Engine": copy["Engine"],
            "DBInstanceClass": instance_class,
            "Tags": _restore.tag_list(_restore.tag_dict(copy.get("TagList"))),  # the source's and the lineage
        }
        if model is not None:
            groups = model.get("DBParameterGroups") or []
            if groups:
                kwargs["DBParameterGroupName"] = groups[0]["DBParameterGroupName"]
            if model.get("PubliclyAccessible") is not None:
                kwargs["PubliclyAccessible"] = bool(model["PubliclyAccessible"])
        try:
            with (
                _restore.creating_copy(),
                map_aws_errors(f"rds:CreateDBInstance {writer} in {copy['DBClusterIdentifier']}"),
            ):
                ctx.aws.client("rds").create_db_instance(**kwargs)
        except _restore.CopyExists:
            return  # an earlier attempt created it; the next verify waits for it
        ctx.progress(f"creating writer instance {writer} ({instance_class})")

    def _source_writer(self, ctx: KindContext, cluster: str) -> dict[str, Any] | None:
        source = self.describe_resource(ctx, cluster)
        members = (source or {}).get("DBClusterMembers") or []
        writers = [m["DBInstanceIdentifier"] for m in members if m.get("IsClusterWriter")]
        return describe_instance(ctx, writers[0]) if writers else None

    def resource_iam(self, spec: AuroraClusterSpec, scope: IamScope) -> list[IamStatement]:
        prefix = f"arn:{scope.partition}:rds:{scope.region}:{scope.account}"
        original, copies = f"{prefix}:cluster:{spec.cluster.lower()}", f"{prefix}:cluster:{self.copy_pattern(spec)}"
        writers = f"{prefix}:db:{self.copy_pattern(spec)}"
        snapshots = f"{prefix}:cluster-snapshot:lastgood-{spec.cluster.lower()}-*"
        return [
            IamStatement(
                actions=("rds:DescribeDBClusters", "rds:DescribeDBInstances", "rds:DescribeDBClusterSnapshots"),
                resources=(f"{prefix}:cluster:*", f"{prefix}:db:*", f"{prefix}:cluster-snapshot:*"),
                purpose="find the cluster behind the pointer's endpoint; watch the restore (read only)",
            ),
            IamStatement(
                actions=("rds:CreateDBClusterSnapshot", "rds:AddTagsToResource"),
                resources=(original, copies, snapshots),
                purpose="the snapshot taken when a release is recorded (snapshot_on_record)",
            ),
            IamStatement(
                actions=("rds:RestoreDBClusterToPointInTime", "rds:AddTagsToResource"),
                resources=(original, copies),
                purpose="restore the recorded cluster (only read) into a new copy, tagged with its lineage",
            ),
            IamStatement(
                actions=("rds:RestoreDBClusterFromSnapshot", "rds:AddTagsToResource"),
                resources=(snapshots, copies),
                purpose="restore the recorded snapshot into a new copy",
            ),
            IamStatement(
                actions=("rds:CreateDBInstance", "rds:AddTagsToResource"),
                resources=(writers, copies),
                purpose="add the restored cluster's writer instance",
            ),
        ]
