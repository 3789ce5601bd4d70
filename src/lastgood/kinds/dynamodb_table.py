"""dynamodb-table: a table's data as it was at a release, restored into a NEW table the pointer is switched to.

What is recorded: the table the pointer names, its item count, whether point-in-time recovery is on, the
recorded time, and (with `backup: true`, taken by `record()`) an on-demand backup's ARN.

Rolling back restores the recorded table as of the recorded time (or from the backup) into a new table named
from the rollback step (`<table>-restored-<id>`; a retried step finds and reuses it), waits until it is ACTIVE,
tags it with its lineage, turns point-in-time recovery (and TTL, if the source had it) on, runs the data checks
and only then switches the pointer. The original table is never written, modified or deleted.

Lineage, not names, decides "already there": a release's data is (recorded table, recorded time). The current
state carries `restored_for`, read from the tags of the table the pointer names; the component is at the target
when `restored_for` equals the target's (table, recorded_at). So a second plan after a successful rollback is
empty although the pointer names `<table>-restored-<id>`, not the recorded table. Conversely, a pointer that
still names the recorded table is NOT at the target: that table holds the writes made since the release. A data
component in a runbook therefore always restores when rolled back, and the plan shows the data-loss window.

Encryption: a restore does not keep the source's key by itself (without SSESpecificationOverride DynamoDB uses
its own key), so the restore passes the source's KMS key when the source has one, or the file's
`encryption: {kms_key: ...}` (`aws-owned` for DynamoDB's own key); the checks compare the copy's SSEDescription
with what was asked before the pointer switches.

In place (`in_place: true`, iRacing's ir_auth): no pointer; the recorded backup is restored under the table's own
name after an on-demand backup of the current table and a DeleteTable. Destructive: the plan says so and the
rollback needs --allow-destructive. See lastgood.kinds._dynamodb_in_place.

Differences, apply and verify never scan the whole table except to count items (Scan Select=COUNT, paginated)
when the state is read for a record or a plan, and when a check compares counts.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, model_validator

from lastgood.aws.errors import map_aws_errors
from lastgood.config.durations import format_duration
from lastgood.config.models import Component, Strict
from lastgood.errors import AwsError, ResourceNotFound, StepFailed
from lastgood.kinds import _dynamodb_in_place as _in_place
from lastgood.kinds import _restore
from lastgood.kinds.base import ApplyResult, Change, IamScope, IamStatement, Kind, KindContext, ReadinessCheck, State
from lastgood.kinds.pointers import Pointer, describe_pointer, pointer_iam_statements, read_pointer, set_pointer


class ItemQuery(Strict):
    """A Query (with key_condition) or a Scan (filter only) whose item count must equal expect_count."""

    key_condition: str | None = Field(default=None, description="KeyConditionExpression: makes this a Query.")
    filter: str | None = Field(default=None, description="FilterExpression; alone, this is a Scan.")
    index: str | None = Field(default=None, description="Index to query or scan.")
    values: dict[str, Any] = Field(default_factory=dict, description="Expression values in plain JSON (':pk': 'x').")
    names: dict[str, str] = Field(default_factory=dict, description="Expression attribute names ('#s': 'status').")
    expect_count: int = Field(ge=0, description="How many items the restored copy must return.")

    @model_validator(mode="after")
    def _query_or_scan(self) -> ItemQuery:
        if not self.key_condition and not self.filter:
            raise ValueError("a query check needs key_condition (a Query) or filter (a Scan)")
        return self


class TableChecks(Strict):
    min_items: int | None = Field(default=None, ge=0, description="The restored copy has at least this many items.")
    count_tolerance: float | None = Field(
        default=0.05,
        ge=0,
        description="The copy's item count is within this fraction of the recorded count (null: no count check).",
    )
    sample_keys: list[dict[str, Any]] = Field(
        default_factory=list, description="Primary keys (plain JSON) that must exist in the restored copy."
    )
    queries: list[ItemQuery] = Field(default_factory=list, description="Queries/scans with an expected count.")


AWS_OWNED = "aws-owned"


class TableEncryption(Strict):
    kms_key: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "KMS key (id, ARN or alias/...) the restored copy is encrypted with, or `aws-owned` (DynamoDB's own "
            "key); unset: the source table's encryption."
        ),
    )


class DynamoDbTableSpec(Component):
    kind: Literal["dynamodb-table"] = "dynamodb-table"
    table: str = Field(description="The table's base name; restored copies are named <table>-restored-<id>.")
    pointer: Pointer | None = Field(
        default=None, description="Where the application reads which table to use (not with in_place)."
    )
    in_place: bool = Field(
        default=False,
        description=(
            "DESTRUCTIVE: restore the recorded backup under the table's own name (backup of the current table, "
            "delete, restore); needs restore_from: backup and --allow-destructive."
        ),
    )
    backup: bool = Field(default=False, description="Take an on-demand backup when a release is recorded.")
    restore_from: Literal["point-in-time", "backup"] = Field(
        default="point-in-time", description="Restore from point-in-time recovery or from the recorded backup."
    )
    checks: TableChecks = Field(default_factory=TableChecks, description="What the restored copy must pass.")
    encryption: TableEncryption = Field(
        default_factory=TableEncryption, description="Server-side encryption of the restored copy."
    )

    @model_validator(mode="after")
    def _backup_for_restore(self) -> DynamoDbTableSpec:
        if self.restore_from == "backup" and not self.backup:
            raise ValueError("restore_from: backup needs backup: true (a backup taken when a release is recorded)")
        if self.in_place and self.restore_from != "backup":
            raise ValueError(
                "in_place: true needs restore_from: backup (the recorded backup is restored under the table's name)"
            )
        if self.in_place and self.pointer is not None:
            raise ValueError("in_place: true restores under the table's own name: remove pointer")
        if not self.in_place and self.pointer is None:
            raise ValueError("a pointer is needed (where the app reads the table's name), or in_place: true")
        return self

    @property
    def switch(self) -> Pointer:
        """The pointer of a restore into a copy (the validator ensures there is one)."""
        assert self.pointer is not None
        return self.pointer


PITR_DAYS = 35  # the recovery period when the table sets none


def _attr(value: Any) -> dict[str, Any]:
    """Plain JSON (from the runbook file) to a DynamoDB attribute value; numbers go through Decimal."""
    if isinstance(value, float):
        value = Decimal(str(value))
    elif isinstance(value, list):
        return {"L": [_attr(v) for v in value]}
    elif isinstance(value, dict):
        return {"M": {k: _attr(v) for k, v in value.items()}}
    from boto3.dynamodb.types import TypeSerializer  # here: loading the file must not import boto3

    return dict(TypeSerializer().serialize(value))


class DynamoDbTable(Kind[DynamoDbTableSpec]):
    name = "dynamodb-table"
    spec_model = DynamoDbTableSpec
    estimate_seconds = 1200.0
    verify_timeout_seconds = 4 * 3600.0
    verify_interval_seconds = 15.0
    slow = True
    restores_data = True

    def __init__(self) -> None:
        self._status = _restore.StatusReporter()

    # Reading

    def read(self, spec: DynamoDbTableSpec, ctx: KindContext) -> State:
        return self._read(spec, ctx, count=True)

    def record(self, spec: DynamoDbTableSpec, ctx: KindContext) -> State:
        """read(), plus the on-demand backup `backup: true` asks for. Only for recording a release."""
        state = self.read(spec, ctx)
        if spec.backup and state["exists"]:
            state["backup_arn"] = self._create_backup(ctx, state["table"], state["recorded_at"])
        return state

    def _read(self, spec: DynamoDbTableSpec, ctx: KindContext, count: bool) -> State:
        table = spec.table if spec.in_place else read_pointer(spec.switch, ctx)
        state: State = {
            "table": table,
            "exists": False,
            "item_count": None,
            "pitr": False,
            "recorded_at": _restore.iso(ctx.now()),
            "backup_arn": None,
            "restored_for": None,
        }
        described = _describe(ctx, table)
        if described is None:
            return state
        state["exists"] = True
        state["restored_for"] = _restore.lineage_from_tags(_tags(ctx, described["TableArn"]))
        state["pitr"] = _pitr(ctx, table)["PointInTimeRecoveryStatus"] == "ENABLED"
        if count:
            state["item_count"] = _count(ctx, table, {})
        return state

    def _create_backup(self, ctx: KindContext, table: str, recorded_at: str) -> str:
        stamp = _restore.parse_iso(recorded_at).strftime("%Y%m%dT%H%M%SZ")
        name = f"lastgood-{table}"[: 255 - len(stamp) - 1] + f"-{stamp}"
        with map_aws_errors(f"dynamodb:CreateBackup {table}"):
            details = ctx.aws.client("dynamodb").create_backup(TableName=table, BackupName=name)["BackupDetails"]
        return str(details["BackupArn"])

    # Comparing and planning

    def differences(self, spec: DynamoDbTableSpec, current: State, target: State) -> list[str]:
        if _restore.restored_for_target(current, target, "table"):
            return []
        if not target.get("exists"):
            return [f"table {target['table']} did not exist at the release: there is nothing to restore"]
        return [f"data: {self.describe(current)} -> {self.describe(target)} (restored into a new table)"]

    def plan(self, spec: DynamoDbTableSpec, current: State, target: State) -> Change | None:
        if not self.differences(spec, current, target):
            return None
        if spec.in_place:
            return self._plan_in_place(spec, current, target)
        notes = [
            f"restores {target['table']} as of {target['recorded_at']} "
            f"({'from backup' if spec.restore_from == 'backup' else 'point-in-time'}) "
            f"into a new table {_restore.copy_stem(spec.table)}-restored-<id>; {target['table']} itself is not touched",
            f"after the checks pass, {describe_pointer(spec.switch)} is switched to the new table",
            "the copy has no stream, auto scaling, alarms or resource policy of the original "
            "(its tags, point-in-time recovery and TTL are copied); re-create what the app relies on",
            _sse_note(spec.encryption),
        ]
        notes += self.warnings(spec, target)
        return _restore.restore_change(self.describe, self.estimate_seconds, current, target, notes)

    def _plan_in_place(self, spec: DynamoDbTableSpec, current: State, target: State) -> Change:
        name = _in_place.safety_backup_name(spec.table, "<step>").replace(_restore.short_token("<step>"), "<id>")
        notes = [
            f"DESTRUCTIVE: deletes table {spec.table} and restores the recorded backup {target.get('backup_arn')} "
            "under the same name; needs --allow-destructive",
            f"first takes an on-demand backup {name} of {spec.table} as it is now (its ARN is the step's output); "
            "the table is deleted once that backup is AVAILABLE",
            f"{spec.table} is unavailable from the delete until the restore is ACTIVE; a backup keeps no tags, TTL, "
            "streams, auto scaling or alarms (point-in-time recovery is turned on as recorded)",
            _sse_note(spec.encryption),
            *self.warnings(spec, target),
        ]
        change = _restore.restore_change(self.describe, self.estimate_seconds, current, target, notes)
        return replace(change, action="restore-in-place", destructive=True)

    def describe(self, state: State) -> str:
        if not state.get("exists"):
            return f"table {state['table']} (missing)"
        count = "" if state.get("item_count") is None else f", {state['item_count']} items"
        lineage = state.get("restored_for")
        origin = f", restored from {lineage['source']} as of {lineage['at']}" if lineage else ""
        return f"table {state['table']} at {state['recorded_at']}{count}{origin}"

    def warnings(self, spec: DynamoDbTableSpec, state: State) -> list[str]:
        out = []
        if not state.get("exists"):
            out.append(f"table {state['table']} (the pointer's value) does not exist")
            return out
        if spec.restore_from == "point-in-time" and not state.get("pitr"):
            out.append(
                f"point-in-time recovery is OFF for {state['table']}: this release cannot be restored "
                f"(aws dynamodb update-continuous-backups --table-name {state['table']} "
                "--point-in-time-recovery-specification PointInTimeRecoveryEnabled=true)"
            )
        if spec.backup and not state.get("backup_arn"):
            out.append(f"backup: true, but no backup of {state['table']} was taken for this release")
        return out

    def readiness(self, spec: DynamoDbTableSpec, ctx: KindContext, state: State) -> list[ReadinessCheck]:
        if not state.get("exists"):
            return [ReadinessCheck("impossible", f"table {state['table']} did not exist at the release")]
        if spec.restore_from == "backup":
            return [_backup_readiness(ctx, state)]
        try:
            self._not_restorable(ctx, state["table"], state)
        except StepFailed as error:
            return [ReadinessCheck("impossible", str(error))]
        days = int(_pitr(ctx, state["table"]).get("RecoveryPeriodInDays") or PITR_DAYS)
        left = _restore.parse_iso(state["recorded_at"]) + timedelta(days=days) - ctx.now()
        if left < timedelta(days=1):
            return [
                ReadinessCheck(
                    "at-risk",
                    f"{state['table']}: {state['recorded_at']} leaves the {days}-day point-in-time window "
                    f"in {format_duration(max(left.total_seconds(), 0))}",
                )
            ]
        return [ReadinessCheck("ok", f"{state['table']}: point-in-time recovery covers {state['recorded_at']}")]

    # Rolling back

    def apply(self, spec: DynamoDbTableSpec, ctx: KindContext, target: State) -> ApplyResult:
        current = self._read(spec, ctx, count=False)
        if _restore.restored_for_target(current, target, "table"):
            return ApplyResult("already at target", changed=False, observed=current)
        if spec.in_place:
            return self._apply_in_place(spec, ctx, target)
        copy = _restore.copy_name(spec.table, ctx.token)
        started = self._start(spec, ctx, target, copy)
        return ApplyResult(started, extra={"table": copy})

    def verify(self, spec: DynamoDbTableSpec, ctx: KindContext, target: State) -> list[str]:
        """Drives the restore to its end: wait for ACTIVE, finish the copy, run the checks, switch the pointer."""
        if self._at_target(spec, ctx, target):
            return []
        if spec.in_place:
            return self._verify_in_place(spec, ctx, target)
        copy = _restore.copy_name(spec.table, ctx.token)
        described = _describe(ctx, copy)
        if described is None:
            return [self._start(spec, ctx, target, copy)]
        status = str(described["TableStatus"])
        self._status.report(ctx, f"table {copy}", status)
        if status != "ACTIVE":
            return [f"table {copy} is {status}"]
        self._finish_copy(ctx, target, copy, described["TableArn"])
        failures = self._check(spec, ctx, target, copy)
        if failures:
            raise StepFailed(
                f"restored table {copy} failed its checks, so {describe_pointer(spec.switch)} was NOT switched "
                f"(the copy is left for inspection): " + "; ".join(failures)
            )
        if set_pointer(spec.switch, ctx, copy):
            ctx.progress(f"{describe_pointer(spec.switch)} now names {copy}")
        return [] if self._at_target(spec, ctx, target) else [f"{describe_pointer(spec.switch)} does not name {copy}"]

    # In place (destructive): backup, delete, restore under the same name

    def _apply_in_place(self, spec: DynamoDbTableSpec, ctx: KindContext, target: State) -> ApplyResult:
        if not target.get("exists") or not target.get("backup_arn"):
            raise StepFailed(f"no backup of {spec.table} was recorded with this release: it cannot be restored")
        described = _describe(ctx, spec.table)
        if described is not None and _in_place.is_the_restore(described, target):
            return ApplyResult(f"table {spec.table} is being restored from an earlier attempt")
        arn = _in_place.take_safety_backup(ctx, spec.table)
        kept = f"backed up {spec.table} as {arn}" if arn else f"table {spec.table} is gone already"
        return ApplyResult(
            f"{kept}; it is deleted and restored from the recorded backup",
            extra={"table": spec.table, "backup_before_restore": arn},
        )

    def _verify_in_place(self, spec: DynamoDbTableSpec, ctx: KindContext, target: State) -> list[str]:
        table = spec.table
        described = _describe(ctx, table)
        if described is None:
            return [_in_place.start_restore(ctx, table, target, self._sse_override(spec, ctx, target))]
        if not _in_place.is_the_restore(described, target):
            return [_in_place.replace_table(ctx, table, described)]
        status = str(described["TableStatus"])
        self._status.report(ctx, f"table {table}", status)
        if status != "ACTIVE":
            return [f"table {table} is {status}"]
        self._finish_copy(ctx, target, table, described["TableArn"])
        failures = self._check(spec, ctx, target, table)
        if failures:
            before = _in_place.find_backup(ctx, table, _in_place.safety_backup_name(table, ctx.token))
            kept = before["BackupArn"] if before else "none"
            raise StepFailed(
                f"table {table}, restored in place, failed its checks (the table as it was before is in backup "
                f"{kept}): " + "; ".join(failures)
            )
        return [] if self._at_target(spec, ctx, target) else [f"table {table} has no lineage tags yet"]

    def _at_target(self, spec: DynamoDbTableSpec, ctx: KindContext, target: State) -> bool:
        return _restore.restored_for_target(self._read(spec, ctx, count=False), target, "table")

    def _start(self, spec: DynamoDbTableSpec, ctx: KindContext, target: State, copy: str) -> str:
        if _describe(ctx, copy) is not None:
            return f"table {copy} exists from an earlier attempt; reusing it"
        try:
            return self._begin_restore(spec, ctx, target, copy)
        except _restore.CopyExists:
            return f"table {copy} exists from an earlier attempt; reusing it"

    def _begin_restore(self, spec: DynamoDbTableSpec, ctx: KindContext, target: State, copy: str) -> str:
        source, at = target["table"], _restore.parse_iso(target["recorded_at"])
        if not target.get("exists"):
            raise StepFailed(f"table {source} did not exist at the release: there is nothing to restore")
        client = ctx.aws.client("dynamodb")
        if spec.restore_from == "backup":
            if not target.get("backup_arn"):
                raise StepFailed(f"no backup of {source} was recorded with this release: it cannot be restored")
            with (
                _restore.creating_copy(),
                map_aws_errors(f"dynamodb:RestoreTableFromBackup {target['backup_arn']} -> {copy}"),
            ):
                client.restore_table_from_backup(
                    TargetTableName=copy, BackupArn=target["backup_arn"], **self._sse_override(spec, ctx, target)
                )
            ctx.progress(f"restoring backup of {source} into {copy}")
            return f"restoring the backup of {source} into table {copy}"
        waiting = self._not_restorable(ctx, source, target)
        if waiting:
            return waiting
        with _restore.creating_copy(), map_aws_errors(f"dynamodb:RestoreTableToPointInTime {source} -> {copy}"):
            client.restore_table_to_point_in_time(
                SourceTableName=source,
                TargetTableName=copy,
                RestoreDateTime=at,
                **self._sse_override(spec, ctx, target),
            )
        ctx.progress(f"restoring {source} as of {target['recorded_at']} into {copy}")
        return f"restoring {source} as of {target['recorded_at']} into table {copy}"

    def _not_restorable(self, ctx: KindContext, source: str, target: State) -> str | None:
        """Why the recorded point cannot be restored yet (None: it can). Fails for good if it never will."""
        try:
            pitr = _pitr(ctx, source)
        except ResourceNotFound as error:
            raise StepFailed(f"source table {source} no longer exists; restore from a backup by hand") from error
        if pitr["PointInTimeRecoveryStatus"] != "ENABLED":
            raise StepFailed(f"point-in-time recovery is off for {source}: the recorded point cannot be restored")
        at = _restore.parse_iso(target["recorded_at"])
        earliest, latest = pitr.get("EarliestRestorableDateTime"), pitr.get("LatestRestorableDateTime")
        if earliest is not None and at < earliest:
            raise StepFailed(f"{source}: {target['recorded_at']} is older than the earliest restorable time {earliest}")
        if latest is not None and at > latest:
            # DynamoDB's restorable window trails the present by a few minutes.
            return f"waiting until {source} is restorable to {target['recorded_at']} (latest: {latest.isoformat()})"
        return None

    def _finish_copy(self, ctx: KindContext, target: State, copy: str, arn: str) -> None:
        """The source's tags plus lineage, point-in-time recovery and TTL on the copy; every call is idempotent."""
        client = ctx.aws.client("dynamodb")
        source = _describe(ctx, target["table"])
        tags = _restore.copy_tags(
            _tags(ctx, source["TableArn"]) if source else {},
            _restore.lineage_tags(target["table"], target["recorded_at"], ctx.token),
        )
        with map_aws_errors(f"dynamodb:TagResource {copy}"):
            client.tag_resource(ResourceArn=arn, Tags=_restore.tag_list(tags))
        try:
            if target.get("pitr") and _pitr(ctx, copy)["PointInTimeRecoveryStatus"] != "ENABLED":
                with map_aws_errors(f"dynamodb:UpdateContinuousBackups {copy}"):
                    client.update_continuous_backups(
                        TableName=copy, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
                    )
            self._copy_ttl(ctx, target["table"], copy)
        except AwsError as error:
            if error.retryable:
                raise
            # The restored data matters more than these settings: say so and carry on.
            ctx.progress(f"set point-in-time recovery / TTL on {copy} by hand: {error}")

    @staticmethod
    def _copy_ttl(ctx: KindContext, source: str, copy: str) -> None:
        client = ctx.aws.client("dynamodb")
        try:
            with map_aws_errors(f"dynamodb:DescribeTimeToLive {source}"):
                ttl = client.describe_time_to_live(TableName=source)["TimeToLiveDescription"]
        except ResourceNotFound:
            return
        if ttl.get("TimeToLiveStatus") not in {"ENABLED", "ENABLING"}:
            return
        with map_aws_errors(f"dynamodb:DescribeTimeToLive {copy}"):
            mine = client.describe_time_to_live(TableName=copy)["TimeToLiveDescription"]
        if mine.get("TimeToLiveStatus") in {"ENABLED", "ENABLING"}:
            return
        with map_aws_errors(f"dynamodb:UpdateTimeToLive {copy}"):
            client.update_time_to_live(
                TableName=copy, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
            )

    # Encryption of the copy

    def _source_key(self, spec: DynamoDbTableSpec, ctx: KindContext, target: State) -> str | None:
        """The KMS key of the data's source: the recorded table, or (in place, the table being replaced) the
        recorded backup's source table."""
        if spec.in_place:
            return _in_place.backup_source_key(ctx, target["backup_arn"])
        return _kms_key_of(_describe(ctx, target["table"]))

    def _wanted_sse(self, spec: DynamoDbTableSpec, ctx: KindContext, target: State) -> str | None:
        """The KMS key ARN the copy must be encrypted with; None: DynamoDB's own key."""
        if spec.encryption.kms_key == AWS_OWNED:
            return None
        if spec.encryption.kms_key is not None:
            return _restore.kms_arn(ctx, spec.encryption.kms_key)
        return self._source_key(spec, ctx, target)

    def _sse_override(self, spec: DynamoDbTableSpec, ctx: KindContext, target: State) -> dict[str, Any]:
        key = self._wanted_sse(spec, ctx, target)
        if key is not None:
            return {"SSESpecificationOverride": {"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key}}
        if spec.encryption.kms_key == AWS_OWNED:
            return {"SSESpecificationOverride": {"Enabled": False}}
        return {}  # the source uses DynamoDB's own key, which is what a restore uses by default

    def _sse_failures(self, spec: DynamoDbTableSpec, ctx: KindContext, target: State, copy: str) -> list[str]:
        wanted = self._wanted_sse(spec, ctx, target)
        found = _kms_key_of(_describe(ctx, copy))
        if wanted is None:
            return [] if found is None else [f"encrypted with KMS key {found}, expected DynamoDB's own key"]
        if found is None:
            return [f"encrypted with DynamoDB's own key, expected KMS key {wanted}"]
        return [] if _restore.same_key(ctx, found, wanted) else [f"encrypted with KMS key {found}, expected {wanted}"]

    def _check(self, spec: DynamoDbTableSpec, ctx: KindContext, target: State, copy: str) -> list[str]:
        checks, failures = spec.checks, self._sse_failures(spec, ctx, target, copy)
        if checks.min_items is not None or checks.count_tolerance is not None:
            count = _count(ctx, copy, {})
            ctx.progress(f"table {copy} has {count} items")
            if checks.min_items is not None and count < checks.min_items:
                failures.append(f"{count} items, fewer than min_items {checks.min_items}")
            expected = target.get("item_count")
            if checks.count_tolerance is not None and expected is not None:
                allowed = checks.count_tolerance * max(expected, 1)
                if abs(count - expected) > allowed:
                    failures.append(
                        f"{count} items, but {expected} were recorded (tolerance {checks.count_tolerance:.0%})"
                    )
        failures += [f"sample key {key} is missing" for key in checks.sample_keys if not _has_item(ctx, copy, key)]
        for query in checks.queries:
            found = _count(ctx, copy, _query_args(query), query=bool(query.key_condition))
            if found != query.expect_count:
                what = query.key_condition or query.filter
                failures.append(f"{what!r} returned {found} items, expected {query.expect_count}")
        return failures

    def iam_statements(self, spec: DynamoDbTableSpec, scope: IamScope) -> list[IamStatement]:
        base = f"arn:{scope.partition}:dynamodb:{scope.region}:{scope.account}:table"
        copies = (f"{base}/{_restore.copy_stem(spec.table)}-restored-*",)
        tables = (f"{base}/{spec.table}", *copies)
        return [
            IamStatement(
                actions=(
                    "dynamodb:DescribeTable",
                    "dynamodb:ListTagsOfResource",
                    "dynamodb:DescribeContinuousBackups",
                    "dynamodb:DescribeTimeToLive",
                    "dynamodb:Scan",
                    "dynamodb:Query",
                    "dynamodb:GetItem",
                ),
                resources=tables + tuple(f"{t}/index/*" for t in tables),
                purpose="read the table the pointer names, count items, run the data checks",
            ),
            IamStatement(
                actions=("dynamodb:CreateBackup", "dynamodb:RestoreTableToPointInTime"),
                resources=tables,
                purpose="back up at record time; restore a recorded point (the source is only read)",
            ),
            IamStatement(
                actions=("dynamodb:DescribeBackup", "dynamodb:RestoreTableFromBackup"),
                resources=tuple(f"{t}/backup/*" for t in tables),
                purpose="restore from the recorded backup",
            ),
            IamStatement(
                actions=(
                    "dynamodb:RestoreTableToPointInTime",
                    "dynamodb:RestoreTableFromBackup",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:BatchWriteItem",
                    "dynamodb:TagResource",
                    "dynamodb:UpdateContinuousBackups",
                    "dynamodb:UpdateTimeToLive",
                ),
                resources=copies,
                purpose="create and finish the restored copy (a restore needs write access to its target only)",
            ),
            IamStatement(
                actions=("kms:DescribeKey", "kms:CreateGrant", "kms:Decrypt", "kms:GenerateDataKey"),
                resources=(f"arn:{scope.partition}:kms:{scope.region}:{scope.account}:key/*",),
                purpose="tables encrypted with a KMS key only: restore with the key; narrow to that key",
            ),
            *(pointer_iam_statements(spec.pointer, scope) if spec.pointer else []),
            *(_in_place_iam(base, spec.table) if spec.in_place else []),
        ]


def _in_place_iam(base: str, table: str) -> list[IamStatement]:
    return [
        IamStatement(
            actions=(
                "dynamodb:ListBackups",
                "dynamodb:CreateBackup",
                "dynamodb:DescribeBackup",
                "dynamodb:DeleteTable",
                "dynamodb:RestoreTableFromBackup",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:BatchWriteItem",
                "dynamodb:TagResource",
                "dynamodb:UpdateContinuousBackups",
                "dynamodb:UpdateTimeToLive",
            ),
            resources=(f"{base}/{table}", f"{base}/{table}/backup/*"),
            purpose="in place (destructive): back the table up, delete it, restore the recorded backup under its name",
        )
    ]


def _sse_note(encryption: TableEncryption) -> str:
    if encryption.kms_key == AWS_OWNED:
        wanted = "DynamoDB's own key (the file's encryption.kms_key)"
    elif encryption.kms_key is not None:
        wanted = f"KMS key {encryption.kms_key} (the file's encryption.kms_key)"
    else:
        wanted = "the source table's key (passed to the restore)"
    return f"the restored table is encrypted with {wanted}; the checks compare its encryption before it is used"


def _kms_key_of(described: dict[str, Any] | None) -> str | None:
    """The KMS key ARN a table is encrypted with; None for DynamoDB's own key (or a missing table)."""
    sse = (described or {}).get("SSEDescription") or {}
    if sse.get("Status") in {"ENABLED", "UPDATING"} and sse.get("SSEType") == "KMS" and sse.get("KMSMasterKeyArn"):
        return str(sse["KMSMasterKeyArn"])
    return None


def _describe(ctx: KindContext, table: str) -> dict[str, Any] | None:
    try:
        with map_aws_errors(f"dynamodb:DescribeTable {table}"):
            return dict(ctx.aws.client("dynamodb").describe_table(TableName=table)["Table"])
    except ResourceNotFound:
        return None


def _backup_readiness(ctx: KindContext, state: State) -> ReadinessCheck:
    arn = state.get("backup_arn")
    if not arn:
        return ReadinessCheck("impossible", f"no backup of {state['table']} was recorded with this release")
    try:
        with map_aws_errors(f"dynamodb:DescribeBackup {arn}"):
            described = ctx.aws.client("dynamodb").describe_backup(BackupArn=arn)["BackupDescription"]
    except ResourceNotFound:
        return ReadinessCheck("impossible", f"backup {arn} no longer exists")
    status = described["BackupDetails"]["BackupStatus"]
    if status == "AVAILABLE":
        return ReadinessCheck("ok", f"backup {arn} is AVAILABLE")
    return ReadinessCheck("at-risk" if status == "CREATING" else "impossible", f"backup {arn} is {status}")


def _tags(ctx: KindContext, arn: str) -> dict[str, str]:
    client, tags, kwargs = ctx.aws.client("dynamodb"), [], {"ResourceArn": arn}
    with map_aws_errors(f"dynamodb:ListTagsOfResource {arn}"):
        while True:
            page = client.list_tags_of_resource(**kwargs)
            tags += page.get("Tags", [])
            if not page.get("NextToken"):
                return _restore.tag_dict(tags)
            kwargs["NextToken"] = page["NextToken"]


def _pitr(ctx: KindContext, table: str) -> dict[str, Any]:
    with map_aws_errors(f"dynamodb:DescribeContinuousBackups {table}"):
        described = ctx.aws.client("dynamodb").describe_continuous_backups(TableName=table)
    return dict(described["ContinuousBackupsDescription"].get("PointInTimeRecoveryDescription") or {})


def _count(ctx: KindContext, table: str, args: dict[str, Any], query: bool = False) -> int:
    operation = "query" if query else "scan"
    with map_aws_errors(f"dynamodb:{operation.capitalize()} {table} (count)"):
        pages = ctx.aws.client("dynamodb").get_paginator(operation).paginate(TableName=table, Select="COUNT", **args)
        return sum(int(page["Count"]) for page in pages)


def _query_args(query: ItemQuery) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if query.key_condition:
        args["KeyConditionExpression"] = query.key_condition
    if query.filter:
        args["FilterExpression"] = query.filter
    if query.index:
        args["IndexName"] = query.index
    if query.values:
        args["ExpressionAttributeValues"] = {k: _attr(v) for k, v in query.values.items()}
    if query.names:
        args["ExpressionAttributeNames"] = query.names
    return args


def _has_item(ctx: KindContext, table: str, key: dict[str, Any]) -> bool:
    first = next(iter(key))
    with map_aws_errors(f"dynamodb:GetItem {table}"):
        found = ctx.aws.client("dynamodb").get_item(
            TableName=table,
            Key={k: _attr(v) for k, v in key.items()},
            ProjectionExpression="#k",  # existence only: the item's data is never fetched
            ExpressionAttributeNames={"#k": first},
        )
    return "Item" in found
