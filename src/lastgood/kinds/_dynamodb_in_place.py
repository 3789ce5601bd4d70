"""dynamodb-table with `in_place: true`: the recorded backup restored under the table's own name (destructive).

iRacing's runbook restores ir_auth this way (`restore-table-from-backup --target-table-name ir_auth`). Each step
is read back before it is taken, so a retry or a resume goes on where the last attempt stopped:

1. apply: an on-demand backup of the table as it is now, named from the step (`lastgood-<table>-before-<id>`, so
   a retry finds it by name instead of taking a second one); its ARN is the step's output (ledger, report);
2. verify: once that backup is AVAILABLE, DeleteTable; once the table is gone, RestoreTableFromBackup of the
   recorded backup under the same name; once ACTIVE, the lineage tags, point-in-time recovery and the checks.
   A table whose RestoreSummary names the recorded backup is that restore under way: it is never deleted.

The table is unavailable from the delete until the restore is ACTIVE. A backup keeps no tags, TTL, streams,
auto scaling or alarms: the plan says so.
"""

from __future__ import annotations

from typing import Any

from lastgood.aws.errors import map_aws_errors
from lastgood.errors import ResourceNotFound, StepFailed
from lastgood.kinds import _restore
from lastgood.kinds.base import KindContext, State

BACKUP_NAME_LENGTH = 255


def safety_backup_name(table: str, token: str) -> str:
    suffix = f"-before-{_restore.short_token(token)}"
    return f"lastgood-{table}"[: BACKUP_NAME_LENGTH - len(suffix)] + suffix


def find_backup(ctx: KindContext, table: str, name: str) -> dict[str, Any] | None:
    """The user backup of `table` called `name` (its summary), if one exists."""
    client, kwargs = ctx.aws.client("dynamodb"), {"TableName": table, "BackupType": "USER"}
    with map_aws_errors(f"dynamodb:ListBackups {table}"):
        while True:
            page = client.list_backups(**kwargs)
            for summary in page.get("BackupSummaries") or []:
                if summary.get("BackupName") == name:
                    return dict(summary)
            if not page.get("LastEvaluatedBackupArn"):
                return None
            kwargs["ExclusiveStartBackupArn"] = page["LastEvaluatedBackupArn"]


def take_safety_backup(ctx: KindContext, table: str) -> str | None:
    """The backup of the table as it is, before it is replaced (None: the table is gone already)."""
    name = safety_backup_name(table, ctx.token)
    found = find_backup(ctx, table, name)
    if found is not None:
        return str(found["BackupArn"])
    try:
        with map_aws_errors(f"dynamodb:CreateBackup {table} -> {name}"):
            details = ctx.aws.client("dynamodb").create_backup(TableName=table, BackupName=name)["BackupDetails"]
    except ResourceNotFound:
        return None
    ctx.progress(f"backed up table {table} as it was before the restore: {details['BackupArn']}")
    return str(details["BackupArn"])


def backup_source_key(ctx: KindContext, backup_arn: str | None) -> str | None:
    """The KMS key ARN of the table a backup was taken from (None: DynamoDB's own key, or unknown)."""
    if not backup_arn:
        return None
    with map_aws_errors(f"dynamodb:DescribeBackup {backup_arn}"):
        described = ctx.aws.client("dynamodb").describe_backup(BackupArn=backup_arn)["BackupDescription"]
    sse = (described.get("SourceTableFeatureDetails") or {}).get("SSEDescription") or {}
    if sse.get("SSEType") == "KMS" and sse.get("KMSMasterKeyArn"):
        return str(sse["KMSMasterKeyArn"])
    return None


def is_the_restore(described: dict[str, Any], target: State) -> bool:
    return bool(target.get("backup_arn")) and (described.get("RestoreSummary") or {}).get(
        "SourceBackupArn"
    ) == target.get("backup_arn")


def replace_table(ctx: KindContext, table: str, described: dict[str, Any]) -> str:
    """One step towards the restore: wait for the safety backup, delete the table, or wait for the delete."""
    name = safety_backup_name(table, ctx.token)
    backup = find_backup(ctx, table, name)
    if backup is None:
        take_safety_backup(ctx, table)
        return f"backing up table {table} before it is replaced"
    if backup.get("BackupStatus") != "AVAILABLE":
        return f"backup {name} is {backup.get('BackupStatus')}; the table is deleted once it is AVAILABLE"
    status = str(described["TableStatus"])
    if status == "DELETING":
        return f"table {table} is being deleted"
    if status != "ACTIVE":
        return f"table {table} is {status}; it is deleted once ACTIVE"
    try:
        with map_aws_errors(f"dynamodb:DeleteTable {table}"):
            ctx.aws.client("dynamodb").delete_table(TableName=table)
    except ResourceNotFound:
        return f"table {table} is gone"
    ctx.progress(f"deleted table {table} (backed up as {backup['BackupArn']})")
    return f"table {table} is being deleted"


def start_restore(ctx: KindContext, table: str, target: State, sse: dict[str, Any]) -> str:
    backup = target.get("backup_arn")
    if not backup:
        raise StepFailed(f"no backup of {table} was recorded with this release: it cannot be restored in place")
    try:
        with _restore.creating_copy(), map_aws_errors(f"dynamodb:RestoreTableFromBackup {backup} -> {table}"):
            ctx.aws.client("dynamodb").restore_table_from_backup(TargetTableName=table, BackupArn=backup, **sse)
    except _restore.CopyExists:
        return f"table {table} exists again; waiting for it"
    ctx.progress(f"restoring the recorded backup into table {table}")
    return f"restoring the recorded backup into table {table}"
