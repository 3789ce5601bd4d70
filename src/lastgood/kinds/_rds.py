"""What rds-instance and aurora-cluster share: the spec, the state, lineage, and the restore state machine.

A rollback restores the recorded database into a NEW instance / cluster named from the rollback step (a retried
step finds and reuses it), waits until it is `available`, then points the application's pointer at the new
endpoint. The original is never modified or deleted. `apply` starts the restore; `verify`, polled by the engine,
drives it on (a point that is not yet restorable, a snapshot still being made, Aurora's writer instance) and
switches the pointer last. Before the switch the copy's encryption is checked: the file's `encryption`
(`kms_key`, Aurora only, is passed to the restore as KmsKeyId; `storage_encrypted` is required of the copy), else
the source's (an encrypted source's copy must be encrypted with the same key). See lastgood.kinds._restore for
why lineage, not names, decides "already there".
"""

from __future__ import annotations

import re
from abc import abstractmethod
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import Field, model_validator

from lastgood.aws.errors import map_aws_errors
from lastgood.config.durations import format_duration
from lastgood.config.models import Component, Strict
from lastgood.errors import ResourceNotFound, StepFailed
from lastgood.kinds import _restore
from lastgood.kinds.base import ApplyResult, Change, IamScope, IamStatement, Kind, KindContext, ReadinessCheck, State
from lastgood.kinds.pointers import Pointer, describe_pointer, pointer_iam_statements, read_pointer, set_pointer

AVAILABLE = "available"
SNAPSHOT_UNDER_WAY = frozenset({"creating", "copying", "pending"})
RDS_ID_LENGTH = 63


class DbEncryption(Strict):
    kms_key: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "KMS key (id, ARN or alias/...) of the restored copy; unset: the source's. aurora-cluster passes it as "
            "KmsKeyId; rds-instance (restore_from: snapshot only) restores a copy of the snapshot made with this key."
        ),
    )
    storage_encrypted: bool | None = Field(
        default=None,
        description="The restored copy must be encrypted (true) or not (false), checked before the switch.",
    )


class RdsRestoreSpec(Component):
    pointer: Pointer = Field(description="Where the application reads the database endpoint (the host name).")
    snapshot_on_record: bool = Field(default=False, description="Take a manual snapshot when a release is recorded.")
    restore_from: Literal["point-in-time", "snapshot"] = Field(
        default="point-in-time", description="Restore to the recorded time, or from the snapshot taken at record."
    )
    instance_class: str | None = Field(
        default=None, description="Instance class of the restored copy (default: the source's)."
    )
    encryption: DbEncryption = Field(
        default_factory=DbEncryption, description="Encryption of the restored copy (default: as the source)."
    )

    @model_validator(mode="after")
    def _snapshot_for_restore(self) -> RdsRestoreSpec:
        if self.restore_from == "snapshot" and not self.snapshot_on_record:
            raise ValueError("restore_from: snapshot needs snapshot_on_record: true")
        return self


SpecT = TypeVar("SpecT", bound=RdsRestoreSpec)


def host_of(endpoint: str) -> str:
    return endpoint.strip().split(":")[0].lower()


def snapshot_name(identifier: str, recorded_at: str) -> str:
    stamp = _restore.parse_iso(recorded_at).strftime("%Y%m%d-%H%M%S-%f")
    return re.sub(r"-{2,}", "-", f"lastgood-{identifier}-{stamp}")[:255]


def iso_or_none(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


class RdsRestoreKind(Kind[SpecT]):
    """The restore-into-a-copy state machine; subclasses say how to describe, restore and snapshot."""

    key: ClassVar[str]
    """The state's key for the resource's identifier: "instance" or "cluster"."""
    noun: ClassVar[str]
    id_length: ClassVar[int] = RDS_ID_LENGTH
    estimate_seconds = 1200.0
    verify_timeout_seconds = 7200.0
    verify_interval_seconds = 15.0
    slow = True
    restores_data = True

    def __init__(self) -> None:
        self._status = _restore.StatusReporter()

    # What subclasses provide

    @abstractmethod
    def base_id(self, spec: SpecT) -> str: ...

    @abstractmethod
    def describe_resource(self, ctx: KindContext, identifier: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def resolve(self, ctx: KindContext, host: str) -> tuple[dict[str, Any], bool] | None:
        """The instance / cluster whose endpoint is `host`, and whether it is a reader endpoint."""

    @abstractmethod
    def endpoint_of(self, described: dict[str, Any], reader: bool) -> str | None: ...

    @abstractmethod
    def create_snapshot(self, ctx: KindContext, identifier: str, name: str, recorded_at: str) -> str: ...

    @abstractmethod
    def snapshot_status(self, ctx: KindContext, name: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def restore_to_time(
        self, spec: SpecT, ctx: KindContext, source: dict[str, Any], copy: str, at: datetime, tags: list[Any]
    ) -> None: ...

    @abstractmethod
    def restore_snapshot(
        self,
        spec: SpecT,
        ctx: KindContext,
        snapshot: dict[str, Any],
        source: dict[str, Any] | None,
        copy: str,
        tags: list[Any],
    ) -> None: ...

    @abstractmethod
    def still_to_do(self, spec: SpecT, ctx: KindContext, target: State, copy: dict[str, Any]) -> list[str]:
        """What the available copy still lacks before the pointer may switch (Aurora: its writer)."""

    @abstractmethod
    def resource_iam(self, spec: SpecT, scope: IamScope) -> list[IamStatement]: ...

    def prepare_snapshot(self, spec: SpecT, ctx: KindContext, snapshot: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """The snapshot to restore from, or a message saying what is still being made ("": none)."""
        return snapshot, ""

    def copy_id(self, spec: SpecT, token: str) -> str:
        return _restore.copy_name(self.base_id(spec), token, self.id_length, rds=True)

    def copy_pattern(self, spec: SpecT) -> str:
        """Every restored copy's identifier matches this (for plans and IAM resources)."""
        return _restore.copy_stem(self.base_id(spec), self.id_length, rds=True) + "-restored-*"

    # Reading

    def read(self, spec: SpecT, ctx: KindContext) -> State:
        endpoint = host_of(read_pointer(spec.pointer, ctx))
        state: State = {
            self.key: None,
            "endpoint": endpoint,
            "reader": False,
            "exists": False,
            "status": None,
            "recorded_at": _restore.iso(ctx.now()),
            "latest_restorable": None,
            "backup_retention": None,
            "snapshot": None,
            "restored_for": None,
        }
        found = self.resolve(ctx, endpoint)
        if found is None:
            return state
        described, reader = found
        state.update(
            {
                self.key: self.identifier(described),
                "reader": reader,
                "exists": True,
                "status": self.status_of(described),
                "latest_restorable": iso_or_none(described.get("LatestRestorableTime")),
                "backup_retention": described.get("BackupRetentionPeriod"),
                "restored_for": _restore.lineage_from_tags(_restore.tag_dict(described.get("TagList"))),
            }
        )
        return state

    def record(self, spec: SpecT, ctx: KindContext) -> State:
        """read(), plus the manual snapshot `snapshot_on_record: true` asks for."""
        state = self.read(spec, ctx)
        if spec.snapshot_on_record and state["exists"]:
            name = snapshot_name(state[self.key], state["recorded_at"])
            state["snapshot"] = self.create_snapshot(ctx, state[self.key], name, state["recorded_at"])
        return state

    @abstractmethod
    def identifier(self, described: dict[str, Any]) -> str: ...

    @abstractmethod
    def status_of(self, described: dict[str, Any]) -> str: ...

    # Comparing and planning

    def differences(self, spec: SpecT, current: State, target: State) -> list[str]:
        if _restore.restored_for_target(current, target, self.key):
            return []
        if not target.get("exists"):
            return [f"the release's endpoint {target['endpoint']} was not a known {self.noun}: nothing to restore"]
        return [f"data: {self.describe(current)} -> {self.describe(target)} (restored into a new {self.noun})"]

    def plan(self, spec: SpecT, current: State, target: State) -> Change | None:
        if not self.differences(spec, current, target):
            return None
        how = f"from snapshot {target.get('snapshot')}" if spec.restore_from == "snapshot" else "point-in-time"
        notes = [
            f"restores {target[self.key]} as of {target['recorded_at']} ({how}) into a new {self.noun} "
            f"{self.copy_pattern(spec).replace('*', '<id>')}; {target[self.key]} itself is not touched",
            f"when it is available, {describe_pointer(spec.pointer)} is switched to its endpoint",
            f"the new {self.noun} costs as much as the original until you delete whichever you no longer need",
            _encryption_note(spec.encryption),
        ]
        notes += self.warnings(spec, target)
        return _restore.restore_change(self.describe, self.estimate_seconds, current, target, notes)

    def describe(self, state: State) -> str:
        if not state.get("exists"):
            return f"endpoint {state['endpoint']} (no {self.noun} found)"
        lineage = state.get("restored_for")
        origin = f", restored from {lineage['source']} as of {lineage['at']}" if lineage else ""
        return f"{self.noun} {state[self.key]} at {state['recorded_at']}{origin}"

    def warnings(self, spec: SpecT, state: State) -> list[str]:
        if not state.get("exists"):
            return [
                f"{describe_pointer(spec.pointer)} = {state['endpoint']}, which is not the endpoint of any {self.noun}"
            ]
        out = []
        if spec.restore_from == "point-in-time" and not state.get("backup_retention"):
            out.append(f"automated backups are off for {state[self.key]}: no point-in-time restore is possible")
        if spec.snapshot_on_record and not state.get("snapshot"):
            out.append(f"snapshot_on_record: true, but no snapshot of {state[self.key]} was taken for this release")
        return out

    # Rolling back

    def apply(self, spec: SpecT, ctx: KindContext, target: State) -> ApplyResult:
        current = self.read(spec, ctx)
        if _restore.restored_for_target(current, target, self.key):
            return ApplyResult("already at target", changed=False, observed=current)
        copy = self.copy_id(spec, ctx.token)
        return ApplyResult(self._start(spec, ctx, target, copy), extra={self.key: copy})

    def verify(self, spec: SpecT, ctx: KindContext, target: State) -> list[str]:
        """Drives the restore on: start it once restorable, wait until available, then switch the pointer."""
        if _restore.restored_for_target(self.read(spec, ctx), target, self.key):
            return []
        copy = self.copy_id(spec, ctx.token)
        described = self.describe_resource(ctx, copy)
        if described is None:
            return [self._start(spec, ctx, target, copy)]
        status = self.status_of(described)
        self._status.report(ctx, f"{self.noun} {copy}", status)
        if status != AVAILABLE:
            return [f"{self.noun} {copy} is {status}"]
        wrong = self._encryption_failures(spec, ctx, target, described)
        if wrong:
            raise StepFailed(
                f"restored {self.noun} {copy} is not encrypted as asked, so {describe_pointer(spec.pointer)} was NOT "
                "switched (the copy is left for inspection): " + "; ".join(wrong)
            )
        pending = self.still_to_do(spec, ctx, target, described)
        if pending:
            return pending
        endpoint = self.endpoint_of(described, bool(target.get("reader")))
        if not endpoint:
            return [f"{self.noun} {copy} has no endpoint yet"]
        if set_pointer(spec.pointer, ctx, endpoint):
            ctx.progress(f"{describe_pointer(spec.pointer)} now names {endpoint}")
        if _restore.restored_for_target(self.read(spec, ctx), target, self.key):
            return []
        return [f"{describe_pointer(spec.pointer)} does not name {endpoint} yet"]

    def _encryption_failures(self, spec: SpecT, ctx: KindContext, target: State, copy: dict[str, Any]) -> list[str]:
        wanted, encrypted = spec.encryption, bool(copy.get("StorageEncrypted"))
        origin = self._encryption_origin(spec, ctx, target)
        must_encrypt = wanted.storage_encrypted
        if must_encrypt is None and (wanted.kms_key or _encrypted(origin)):
            must_encrypt = True
        if must_encrypt is not None and encrypted != must_encrypt:
            return [f"StorageEncrypted is {encrypted}, expected {must_encrypt}"]
        key = wanted.kms_key or (origin.get("KmsKeyId") if _encrypted(origin) else None)
        if encrypted and key and not _restore.same_key(ctx, copy.get("KmsKeyId"), str(key)):
            return [f"encrypted with KMS key {copy.get('KmsKeyId')}, expected {key}"]
        return []

    def _encryption_origin(self, spec: SpecT, ctx: KindContext, target: State) -> dict[str, Any]:
        """What the copy's encryption comes from: the recorded snapshot, or the source."""
        if spec.restore_from == "snapshot" and target.get("snapshot"):
            return self.snapshot_status(ctx, target["snapshot"]) or {}
        source = self.describe_resource(ctx, target[self.key]) if target.get(self.key) else None
        return source or {}

    def _start(self, spec: SpecT, ctx: KindContext, target: State, copy: str) -> str:
        if self.describe_resource(ctx, copy) is not None:
            return f"{self.noun} {copy} exists from an earlier attempt; reusing it"
        try:
            return self._begin_restore(spec, ctx, target, copy)
        except _restore.CopyExists:
            return f"{self.noun} {copy} exists from an earlier attempt; reusing it"

    def _begin_restore(self, spec: SpecT, ctx: KindContext, target: State, copy: str) -> str:
        source_id = target.get(self.key)
        if not source_id:
            raise StepFailed(f"the release recorded no {self.noun} behind {target['endpoint']}: nothing to restore")
        source = self.describe_resource(ctx, source_id)
        lineage = _restore.lineage_tags(source_id, target["recorded_at"], ctx.token)
        tags = _restore.tag_list(_restore.copy_tags(_restore.tag_dict((source or {}).get("TagList")), lineage))
        if spec.restore_from == "snapshot":
            return self._start_from_snapshot(spec, ctx, target, source, copy, tags)
        if source is None:
            raise StepFailed(f"{self.noun} {source_id} no longer exists; restore its retained backups by hand")
        if not source.get("BackupRetentionPeriod"):
            raise StepFailed(f"automated backups are off for {source_id}: the recorded time cannot be restored")
        at = _restore.parse_iso(target["recorded_at"])
        earliest = source.get("EarliestRestorableTime")
        if earliest is not None and at < earliest:
            raise StepFailed(
                f"{source_id}: {target['recorded_at']} is older than the earliest restorable time {earliest}"
            )
        latest = source.get("LatestRestorableTime")
        if latest is None or at > latest:
            # The restorable window trails the present by about five minutes.
            shown = latest.isoformat() if latest is not None else "none yet"
            return f"waiting until {source_id} is restorable to {target['recorded_at']} (latest: {shown})"
        with _restore.creating_copy():
            self.restore_to_time(spec, ctx, source, copy, at, tags)
        ctx.progress(f"restoring {source_id} as of {target['recorded_at']} into {copy}")
        return f"restoring {source_id} as of {target['recorded_at']} into {self.noun} {copy}"

    def _start_from_snapshot(
        self,
        spec: SpecT,
        ctx: KindContext,
        target: State,
        source: dict[str, Any] | None,
        copy: str,
        tags: list[Any],
    ) -> str:
        name = target.get("snapshot")
        if not name:
            raise StepFailed(f"no snapshot of {target[self.key]} was recorded with this release")
        snapshot = self.snapshot_status(ctx, name)
        if snapshot is None:
            raise StepFailed(f"snapshot {name} no longer exists")
        if snapshot.get("Status") != AVAILABLE:
            return f"waiting for snapshot {name} ({snapshot.get('Status')})"
        snapshot, waiting = self.prepare_snapshot(spec, ctx, snapshot)
        if waiting:
            return waiting
        with _restore.creating_copy():
            self.restore_snapshot(spec, ctx, snapshot, source, copy, tags)
        ctx.progress(f"restoring snapshot {name} into {copy}")
        return f"restoring snapshot {name} into {self.noun} {copy}"

    # Readiness: is the recorded point still restorable?

    def readiness(self, spec: SpecT, ctx: KindContext, state: State) -> list[ReadinessCheck]:
        if not state.get("exists"):
            return [ReadinessCheck("impossible", f"the release's endpoint {state['endpoint']} was no {self.noun}")]
        if spec.restore_from == "snapshot":
            return [self._snapshot_readiness(ctx, state)]
        return [self._window_readiness(ctx, state)]

    def _snapshot_readiness(self, ctx: KindContext, state: State) -> ReadinessCheck:
        name = state.get("snapshot")
        if not name:
            return ReadinessCheck("impossible", f"no snapshot of {state[self.key]} was recorded with this release")
        snapshot = self.snapshot_status(ctx, name)
        if snapshot is None:
            return ReadinessCheck("impossible", f"snapshot {name} no longer exists")
        status = str(snapshot.get("Status"))
        if status == AVAILABLE:
            return ReadinessCheck("ok", f"snapshot {name} is available")
        return ReadinessCheck(
            "at-risk" if status in SNAPSHOT_UNDER_WAY else "impossible", f"snapshot {name} is {status}"
        )

    def _window_readiness(self, ctx: KindContext, state: State) -> ReadinessCheck:
        source_id, at = state[self.key], _restore.parse_iso(state["recorded_at"])
        source = self.describe_resource(ctx, source_id)
        if source is None:
            return ReadinessCheck("impossible", f"{self.noun} {source_id} no longer exists")
        retention = int(source.get("BackupRetentionPeriod") or 0)
        if not retention:
            return ReadinessCheck("impossible", f"automated backups are off for {source_id}")
        earliest = source.get("EarliestRestorableTime")
        if earliest is not None and at < earliest:
            return ReadinessCheck("impossible", f"{source_id}: {state['recorded_at']} is before {earliest.isoformat()}")
        if source.get("LatestRestorableTime") is None:
            return ReadinessCheck("at-risk", f"{source_id} reports no restorable time yet")
        left = at + timedelta(days=retention) - ctx.now()
        if left < timedelta(days=1):
            remaining = format_duration(max(left.total_seconds(), 0))
            return ReadinessCheck("at-risk", f"{source_id}: {state['recorded_at']} leaves the backups in {remaining}")
        return ReadinessCheck("ok", f"{source_id}: the {retention}-day backup window covers {state['recorded_at']}")

    def iam_statements(self, spec: SpecT, scope: IamScope) -> list[IamStatement]:
        prefix = f"arn:{scope.partition}:rds:{scope.region}:{scope.account}"
        return [
            *self.resource_iam(spec, scope),
            IamStatement(
                actions=(
                    "rds:RestoreDBInstanceToPointInTime",
                    "rds:RestoreDBInstanceFromDBSnapshot",
                    "rds:RestoreDBClusterToPointInTime",
                    "rds:RestoreDBClusterFromSnapshot",
                    "rds:CreateDBInstance",
                ),
                resources=(
                    f"{prefix}:subgrp:*",
                    f"{prefix}:pg:*",
                    f"{prefix}:cluster-pg:*",
                    f"{prefix}:og:*",
                    f"{prefix}:secgrp:*",
                ),
                purpose="the restored copy reuses the source's subnet, parameter and option groups",
            ),
            IamStatement(
                actions=("kms:DescribeKey", "kms:CreateGrant"),
                resources=(f"arn:{scope.partition}:kms:{scope.region}:{scope.account}:key/*",),
                purpose="encrypted databases only; narrow to the database's key",
            ),
            *pointer_iam_statements(spec.pointer, scope),
        ]


def _encryption_note(wanted: DbEncryption) -> str:
    key = f"KMS key {wanted.kms_key} (the file's)" if wanted.kms_key else "the source's encryption and key"
    required = "" if wanted.storage_encrypted is None else f", StorageEncrypted {wanted.storage_encrypted} required"
    return f"the copy has {key}{required}; checked before the switch"


def _encrypted(described: dict[str, Any]) -> bool:
    return bool(described.get("StorageEncrypted") or described.get("Encrypted"))


def describe_or_none(what: str, call: Any, **kwargs: Any) -> Any:
    """Run a Describe call; a missing resource is None."""
    try:
        with map_aws_errors(what):
            return call(**kwargs)
    except ResourceNotFound:
        return None
