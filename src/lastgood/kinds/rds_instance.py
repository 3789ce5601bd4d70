"""rds-instance: an RDS DB instance's data as it was at a release, restored into a NEW instance.

Recorded: the instance behind the pointer's endpoint, that endpoint, the recorded time, the latest restorable time,
the backup retention, the lineage tags and (with `snapshot_on_record: true`, taken by `record()`) a manual
snapshot. Rolling back restores into `<instance>-restored-<id>` (RestoreDBInstanceToPointInTime, or
RestoreDBInstanceFromDBSnapshot with `restore_from: snapshot`) with the source's class (or `instance_class`),
subnet group, security groups, parameter and option groups, port, Multi-AZ and deletion protection, waits until
it is `available`, then points the pointer at its endpoint. The original is never modified or deleted.

Lineage decides "already there" (see lastgood.kinds._restore): the copy carries tags naming its source and
recorded time, so a plan after a successful rollback is empty although the pointer names the copy, and a pointer
that still names the original is not at the release (the original holds the writes made since).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from lastgood.aws.errors import map_aws_errors
from lastgood.kinds import _restore
from lastgood.kinds._rds import AVAILABLE, RdsRestoreKind, RdsRestoreSpec, describe_or_none
from lastgood.kinds.base import IamScope, IamStatement, KindContext, State


class RdsInstanceSpec(RdsRestoreSpec):
    kind: Literal["rds-instance"] = "rds-instance"
    instance: str = Field(description="DB instance identifier; restored copies are named <instance>-restored-<id>.")

    @model_validator(mode="after")
    def _key_needs_a_snapshot(self) -> RdsInstanceSpec:
        if self.encryption.kms_key is not None and self.restore_from != "snapshot":
            raise ValueError(
                "encryption.kms_key needs restore_from: snapshot: RestoreDBInstanceToPointInTime takes no KMS key "
                "(the copy keeps the source's); a snapshot is copied with the new key and restored from"
            )
        return self


def instance_settings(spec: RdsRestoreSpec, source: dict[str, Any]) -> dict[str, Any]:
    """What a restored instance must share with its source for the application to reach it."""
    out: dict[str, Any] = {
        "DBInstanceClass": spec.instance_class or source["DBInstanceClass"],
        "MultiAZ": bool(source.get("MultiAZ")),
        "DeletionProtection": bool(source.get("DeletionProtection")),
        "CopyTagsToSnapshot": bool(source.get("CopyTagsToSnapshot")),
    }
    subnet_group = (source.get("DBSubnetGroup") or {}).get("DBSubnetGroupName")
    if subnet_group:
        out["DBSubnetGroupName"] = subnet_group
    security_groups = [g["VpcSecurityGroupId"] for g in source.get("VpcSecurityGroups") or []]
    if security_groups:
        out["VpcSecurityGroupIds"] = security_groups
    parameter_groups = source.get("DBParameterGroups") or []
    if parameter_groups:
        out["DBParameterGroupName"] = parameter_groups[0]["DBParameterGroupName"]
    options = [
        o["OptionGroupName"]
        for o in source.get("OptionGroupMemberships") or []
        if not str(o.get("OptionGroupName", "default:")).startswith("default:")
    ]
    if options:
        out["OptionGroupName"] = options[0]
    if source.get("PubliclyAccessible") is not None:
        out["PubliclyAccessible"] = bool(source["PubliclyAccessible"])
    port = (source.get("Endpoint") or {}).get("Port") or source.get("DbInstancePort")
    if port:
        out["Port"] = int(port)
    return out


class RdsInstance(RdsRestoreKind[RdsInstanceSpec]):
    name = "rds-instance"
    spec_model = RdsInstanceSpec
    key = "instance"
    noun = "instance"

    def base_id(self, spec: RdsInstanceSpec) -> str:
        return spec.instance

    def identifier(self, described: dict[str, Any]) -> str:
        return str(described["DBInstanceIdentifier"])

    def status_of(self, described: dict[str, Any]) -> str:
        return str(described["DBInstanceStatus"])

    def describe_resource(self, ctx: KindContext, identifier: str) -> dict[str, Any] | None:
        return describe_instance(ctx, identifier)

    def resolve(self, ctx: KindContext, host: str) -> tuple[dict[str, Any], bool] | None:
        # An instance endpoint starts with the instance's identifier; look that up before listing them all.
        guess = self.describe_resource(ctx, host.split(".")[0])
        if guess is not None and self.endpoint_of(guess, False) == host:
            return guess, False
        with map_aws_errors("rds:DescribeDBInstances"):
            for page in ctx.aws.client("rds").get_paginator("describe_db_instances").paginate():
                for described in page["DBInstances"]:
                    if self.endpoint_of(described, False) == host:
                        return dict(described), False
        return None

    def endpoint_of(self, described: dict[str, Any], reader: bool) -> str | None:
        address = (described.get("Endpoint") or {}).get("Address")
        return str(address).lower() if address else None

    def create_snapshot(self, ctx: KindContext, identifier: str, name: str, recorded_at: str) -> str:
        if self.snapshot_status(ctx, name) is None:
            with map_aws_errors(f"rds:CreateDBSnapshot {identifier} -> {name}"):
                ctx.aws.client("rds").create_db_snapshot(
                    DBSnapshotIdentifier=name,
                    DBInstanceIdentifier=identifier,
                    Tags=[{"Key": "lastgood:recorded-at", "Value": recorded_at}],
                )
        return name

    def snapshot_status(self, ctx: KindContext, name: str) -> dict[str, Any] | None:
        found = describe_or_none(
            f"rds:DescribeDBSnapshots {name}", ctx.aws.client("rds").describe_db_snapshots, DBSnapshotIdentifier=name
        )
        return dict(found["DBSnapshots"][0]) if found and found["DBSnapshots"] else None

    def restore_to_time(
        self,
        spec: RdsInstanceSpec,
        ctx: KindContext,
        source: dict[str, Any],
        copy: str,
        at: datetime,
        tags: list[Any],
    ) -> None:
        with map_aws_errors(f"rds:RestoreDBInstanceToPointInTime {source['DBInstanceIdentifier']} -> {copy}"):
            ctx.aws.client("rds").restore_db_instance_to_point_in_time(
                SourceDBInstanceIdentifier=source["DBInstanceIdentifier"],
                TargetDBInstanceIdentifier=copy,
                RestoreTime=at,
                Tags=tags,
                **instance_settings(spec, source),
            )

    def restore_snapshot(
        self,
        spec: RdsInstanceSpec,
        ctx: KindContext,
        snapshot: dict[str, Any],
        source: dict[str, Any] | None,
        copy: str,
        tags: list[Any],
    ) -> None:
        settings = instance_settings(spec, source) if source is not None else {}
        if spec.instance_class:
            settings["DBInstanceClass"] = spec.instance_class
        name = snapshot["DBSnapshotIdentifier"]
        with map_aws_errors(f"rds:RestoreDBInstanceFromDBSnapshot {name} -> {copy}"):
            ctx.aws.client("rds").restore_db_instance_from_db_snapshot(
                DBInstanceIdentifier=copy, DBSnapshotIdentifier=name, Tags=tags, **settings
            )

    def prepare_snapshot(
        self, spec: RdsInstanceSpec, ctx: KindContext, snapshot: dict[str, Any]
    ) -> tuple[dict[str, Any], str]:
        """With encryption.kms_key: a copy of the recorded snapshot made with that key (CopyDBSnapshot, named from
        the snapshot and the key, so a retry finds it), restored from once available."""
        key = spec.encryption.kms_key
        if not key:
            return snapshot, ""
        source = snapshot["DBSnapshotIdentifier"]
        name = f"{source[: 255 - 20]}-rekeyed-{_restore.short_token(key)}"
        copy = self.snapshot_status(ctx, name)
        if copy is None:
            with map_aws_errors(f"rds:CopyDBSnapshot {source} -> {name} (KmsKeyId {key})"):
                ctx.aws.client("rds").copy_db_snapshot(
                    SourceDBSnapshotIdentifier=source, TargetDBSnapshotIdentifier=name, KmsKeyId=key, CopyTags=True
                )
            ctx.progress(f"copying snapshot {source} with KMS key {key} into {name}")
            return snapshot, f"copying snapshot {source} with KMS key {key}"
        if copy.get("Status") != AVAILABLE:
            return snapshot, f"waiting for snapshot {name} ({copy.get('Status')})"
        return copy, ""

    def still_to_do(self, spec: RdsInstanceSpec, ctx: KindContext, target: State, copy: dict[str, Any]) -> list[str]:
        return []

    def resource_iam(self, spec: RdsInstanceSpec, scope: IamScope) -> list[IamStatement]:
        prefix = f"arn:{scope.partition}:rds:{scope.region}:{scope.account}"
        original, copies = f"{prefix}:db:{spec.instance.lower()}", f"{prefix}:db:{self.copy_pattern(spec)}"
        snapshots = f"{prefix}:snapshot:lastgood-{spec.instance.lower()}-*"
        return [
            IamStatement(
                actions=("rds:DescribeDBInstances", "rds:DescribeDBSnapshots"),
                resources=(f"{prefix}:db:*", f"{prefix}:snapshot:*"),
                purpose="find the instance behind the pointer's endpoint; watch the restore (read only)",
            ),
            IamStatement(
                actions=("rds:CreateDBSnapshot", "rds:AddTagsToResource"),
                resources=(original, copies, snapshots),
                purpose="the snapshot taken when a release is recorded (snapshot_on_record)",
            ),
            IamStatement(
                actions=("rds:RestoreDBInstanceToPointInTime",),
                resources=(original, copies),
                purpose="restore the recorded instance (only read) into a new copy",
            ),
            IamStatement(
                actions=("rds:CopyDBSnapshot", "rds:AddTagsToResource"),
                resources=(snapshots,),
                purpose="encryption.kms_key: copy the recorded snapshot with the new key",
            ),
            IamStatement(
                actions=("rds:RestoreDBInstanceFromDBSnapshot", "rds:AddTagsToResource"),
                resources=(snapshots, copies),
                purpose="restore the recorded snapshot into a new copy, tagged with its lineage",
            ),
        ]


def describe_instance(ctx: KindContext, identifier: str) -> dict[str, Any] | None:
    found = describe_or_none(
        f"rds:DescribeDBInstances {identifier}",
        ctx.aws.client("rds").describe_db_instances,
        DBInstanceIdentifier=identifier,
    )
    return dict(found["DBInstances"][0]) if found and found["DBInstances"] else None
