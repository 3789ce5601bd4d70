"""s3-prefix: the objects under a prefix of a versioned bucket, as they were at a release.

Recorded: the recorded time, the bucket's versioning status and, per key under the prefix (at most 10,000), the
current version's VersionId, ETag and size (ListObjectVersions; keys whose newest entry is a delete marker are
absent). Rolling back copies each recorded version over its key when the key's newest version has another ETag
or the key was deleted since: the copy is a NEW version, so nothing is lost and the bad versions stay in the
history. Keys created after the release are left alone unless `delete_new_objects: true`, which puts a delete
marker on them (their versions are kept, so this is not destructive; the plan names them).

A copy keeps the recorded version's encryption and storage class. A copy gets a new ETag when the recorded one
cannot be reproduced (multipart uploads, "…-N", and SSE-KMS / SSE-C objects); those copies carry the metadata
`lastgood-restored-version: <VersionId>`, by which verify and a repeated apply recognise them. (A later plan,
which sees listings only, lists such keys again; applying it changes nothing.) Objects over 5 GB are refused:
CopyObject cannot copy them in one request.

With `replica: {bucket, region}` (a cross-region replication target) the recorded versions are copied back from
the replica instead: the primary's own history may be what was corrupted or purged. Replication keeps version
ids, so each key's recorded VersionId is looked up in the replica first; a replica filled another way (a batch
copy) is searched for a version of the key with the recorded ETag. The copies land in the original bucket and
prefix as new versions (CopyObject sent to the primary's region, the source in the replica's); nothing is
deleted in either bucket, and readiness checks the replica's versions.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, field_validator

from lastgood.aws.errors import map_aws_errors
from lastgood.config.models import Component, Strict
from lastgood.config.urls import check_region
from lastgood.errors import AwsError, BadInput, ResourceNotFound, StepFailed
from lastgood.kinds import _restore
from lastgood.kinds.base import ApplyResult, Change, IamScope, IamStatement, Kind, KindContext, ReadinessCheck, State

MAX_KEYS = 10_000
READINESS_SAMPLE = 50  # keys whose recorded version readiness checks, spread over the prefix
MAX_COPY_BYTES = 5 * 1024**3
STAMP = "lastgood-restored-version"
_CARRIED_HEADERS = (
    "CacheControl",
    "ContentDisposition",
    "ContentEncoding",
    "ContentLanguage",
    "ContentType",
    "Expires",
    "WebsiteRedirectLocation",
)


class Replica(Strict):
    bucket: str = Field(description="The replica bucket (a cross-region replication destination, versioned).")
    region: str = Field(description="The replica bucket's region, e.g. us-west-2.")

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        return check_region(value)


class S3PrefixSpec(Component):
    kind: Literal["s3-prefix"] = "s3-prefix"
    bucket: str = Field(description="A bucket with versioning enabled.")
    prefix: str = Field(default="", description="Key prefix ('' for the whole bucket); at most 10,000 keys under it.")
    delete_new_objects: bool = Field(
        default=False,
        description="Put a delete marker on keys created after the release (their versions are kept).",
    )
    replica: Replica | None = Field(
        default=None,
        description="Copy the recorded versions back from this cross-region replica instead of the bucket itself.",
    )


def _etag(value: str) -> str:
    return value.strip('"')


class S3Prefix(Kind[S3PrefixSpec]):
    name = "s3-prefix"
    spec_model = S3PrefixSpec
    estimate_seconds = 5.0
    verify_timeout_seconds = 120.0
    verify_interval_seconds = 1.0
    restores_data = True

    def read(self, spec: S3PrefixSpec, ctx: KindContext) -> State:
        return {
            "bucket": spec.bucket,
            "prefix": spec.prefix,
            "recorded_at": _restore.iso(ctx.now()),
            "versioning": self._versioning(spec, ctx),
            "objects": self._objects(spec, ctx),
        }

    @staticmethod
    def _versioning(spec: S3PrefixSpec, ctx: KindContext) -> str | None:
        with map_aws_errors(f"s3:GetBucketVersioning {spec.bucket}"):
            status = ctx.aws.client("s3").get_bucket_versioning(Bucket=spec.bucket).get("Status")
        return str(status) if status else None

    @staticmethod
    def _objects(spec: S3PrefixSpec, ctx: KindContext) -> dict[str, dict[str, Any]]:
        """Each key's newest version (keys whose newest entry is a delete marker are left out)."""
        live: dict[str, dict[str, Any]] = {}
        seen: set[str] = set()
        with map_aws_errors(f"s3:ListObjectVersions s3://{spec.bucket}/{spec.prefix}"):
            pages = (
                ctx.aws.client("s3")
                .get_paginator("list_object_versions")
                .paginate(Bucket=spec.bucket, Prefix=spec.prefix)
            )
            for page in pages:
                for marker in page.get("DeleteMarkers") or []:
                    seen.add(marker["Key"])
                for version in page.get("Versions") or []:
                    seen.add(version["Key"])
                    if version.get("IsLatest"):
                        live[version["Key"]] = {
                            "version_id": str(version.get("VersionId") or "null"),
                            "etag": _etag(version["ETag"]),
                            "size": int(version.get("Size") or 0),
                        }
                if len(seen) > MAX_KEYS:
                    raise BadInput(
                        f"s3://{spec.bucket}/{spec.prefix} holds more than {MAX_KEYS} keys; "
                        "split it into s3-prefix components with longer prefixes"
                    )
        return dict(sorted(live.items()))

    # Comparing and planning

    @staticmethod
    def _stale(current: State, target: State) -> list[str]:
        """Recorded keys whose newest version is not the recorded content (changed or deleted since)."""
        now = current["objects"]
        return [k for k, o in target["objects"].items() if k not in now or now[k]["etag"] != o["etag"]]

    @staticmethod
    def _new(spec: S3PrefixSpec, current: State, target: State) -> list[str]:
        return [k for k in current["objects"] if k not in target["objects"]]

    def differences(self, spec: S3PrefixSpec, current: State, target: State) -> list[str]:
        out = [
            f"{key}: {'deleted' if key not in current['objects'] else 'changed'} since the release"
            for key in self._stale(current, target)
        ]
        if spec.delete_new_objects:
            out += [f"{key}: created after the release" for key in self._new(spec, current, target)]
        return out

    def plan(self, spec: S3PrefixSpec, current: State, target: State) -> Change | None:
        stale, new = self._stale(current, target), self._new(spec, current, target)
        if not stale and not (spec.delete_new_objects and new):
            return None
        notes = []
        if stale:
            notes.append(
                f"copies the recorded version over {len(stale)} keys ({_some(stale)}){_from_replica(spec)}: "
                "each copy is a new version, no version is deleted"
            )
        if new and spec.delete_new_objects:
            notes.append(f"puts a delete marker on {len(new)} keys created since ({_some(new)}); their versions stay")
        elif new:
            notes.append(f"{len(new)} keys created since are left as they are ({_some(new)})")
        notes += self.warnings(spec, target)
        return Change(
            action="copy-versions",
            before=self.describe(current),
            after=self.describe(target),
            estimate_seconds=max(self.estimate_seconds, 0.05 * (len(stale) + len(new))),
            notes=tuple(notes),
        )

    def describe(self, state: State) -> str:
        return f"s3://{state['bucket']}/{state['prefix']}: {len(state['objects'])} objects at {state['recorded_at']}"

    def warnings(self, spec: S3PrefixSpec, state: State) -> list[str]:
        if state.get("versioning") == "Enabled":
            return []
        return [
            f"versioning is {state.get('versioning') or 'off'} on bucket {spec.bucket}: objects overwritten or "
            "deleted after this release cannot be restored"
        ]

    def readiness(self, spec: S3PrefixSpec, ctx: KindContext, state: State) -> list[ReadinessCheck]:
        objects, where = state["objects"], f"s3://{spec.bucket}/{spec.prefix}"
        keys = list(objects)
        sample = keys[:: max(1, math.ceil(len(keys) / READINESS_SAMPLE))]
        if spec.replica is not None:
            return [_replica_readiness(spec.replica, ctx, where, sample, objects)]
        unversioned = [k for k in sample if objects[k]["version_id"] == "null"]
        gone = [k for k in sample if k not in unversioned and _version_gone(spec, ctx, k, objects[k]["version_id"])]
        if gone:
            return [ReadinessCheck("impossible", f"{where}: the recorded versions of {_some(gone)} are gone")]
        if unversioned or state.get("versioning") != "Enabled":
            missing = f"; {_some(unversioned)} have no version id" if unversioned else ""
            versioning = state.get("versioning") or "off"
            return [ReadinessCheck("at-risk", f"{where}: versioning was {versioning} at the release{missing}")]
        return [ReadinessCheck("ok", f"{where}: {len(sample)} of {len(keys)} recorded versions checked, all there")]

    # Rolling back

    def apply(self, spec: S3PrefixSpec, ctx: KindContext, target: State) -> ApplyResult:
        current = self.read(spec, ctx)
        stale = self._not_restored(spec, ctx, current, target)
        new = self._new(spec, current, target) if spec.delete_new_objects else []
        if not stale and not new:
            return ApplyResult("already at target", changed=False)
        self._refuse_uncopyable(spec, target, stale)
        for key in stale:
            self._copy_back(spec, ctx, key, target["objects"][key])
        for key in new:
            with map_aws_errors(f"s3:DeleteObject s3://{spec.bucket}/{key} (delete marker)"):
                ctx.aws.client("s3").delete_object(Bucket=spec.bucket, Key=key)
        done = [f"restored {len(stale)} objects"] if stale else []
        done += [f"delete markers on {len(new)} new objects"] if new else []
        return ApplyResult(", ".join(done))

    def verify(self, spec: S3PrefixSpec, ctx: KindContext, target: State) -> list[str]:
        current = self.read(spec, ctx)
        stale = self._not_restored(spec, ctx, current, target)
        out = [f"{key}: newest version is not the recorded content" for key in stale]
        if spec.delete_new_objects:
            out += [f"{key}: created after the release, still there" for key in self._new(spec, current, target)]
        return out

    def _not_restored(self, spec: S3PrefixSpec, ctx: KindContext, current: State, target: State) -> list[str]:
        """Stale keys, less those whose newest version is a copy of the recorded one with another ETag."""
        out = []
        for key in self._stale(current, target):
            now = current["objects"].get(key)
            if now is None or self._stamp(spec, ctx, key, now["version_id"]) != target["objects"][key]["version_id"]:
                out.append(key)
        return out

    @staticmethod
    def _stamp(spec: S3PrefixSpec, ctx: KindContext, key: str, version_id: str) -> str | None:
        with map_aws_errors(f"s3:HeadObject s3://{spec.bucket}/{key}"):
            version = {"VersionId": version_id} if version_id != "null" else {}
            head = ctx.aws.client("s3").head_object(Bucket=spec.bucket, Key=key, **version)
        return (head.get("Metadata") or {}).get(STAMP)

    @staticmethod
    def _refuse_uncopyable(spec: S3PrefixSpec, target: State, keys: list[str]) -> None:
        # A replica is searched by ETag when the id does not match, so a key without a version id is no bar.
        unversioned = [] if spec.replica else [k for k in keys if target["objects"][k]["version_id"] == "null"]
        if unversioned:
            raise StepFailed(
                f"s3://{spec.bucket}: {_some(unversioned)} had no version id at the release (versioning was off), "
                "so the recorded content cannot be found"
            )
        large = [k for k in keys if target["objects"][k]["size"] > MAX_COPY_BYTES]
        if large:
            raise StepFailed(f"s3://{spec.bucket}: {_some(large)} are over 5 GB; restore them with a multipart copy")

    def _copy_back(self, spec: S3PrefixSpec, ctx: KindContext, key: str, recorded: dict[str, Any]) -> None:
        client = ctx.aws.client("s3")
        version = recorded["version_id"]
        if spec.replica is not None:
            source_bucket, source_version, head = _replica_version(spec.replica, ctx, key, recorded)
        else:
            source_bucket, source_version = spec.bucket, version
            try:
                with map_aws_errors(f"s3:HeadObject s3://{spec.bucket}/{key}?versionId={version}"):
                    head = client.head_object(Bucket=spec.bucket, Key=key, VersionId=version)
            except AwsError as error:
                if error.retryable:
                    raise
                raise StepFailed(f"s3://{spec.bucket}/{key}: recorded version {version} is gone ({error})") from error
        kwargs: dict[str, Any] = {
            "Bucket": spec.bucket,
            "Key": key,
            "CopySource": {"Bucket": source_bucket, "Key": key, "VersionId": source_version},
        }
        kwargs.update(_encryption_and_class(head))
        if "-" in recorded["etag"] or head.get("ServerSideEncryption") == "aws:kms" or head.get("SSECustomerAlgorithm"):
            # The copy's ETag will differ from the recorded one: mark it so that verify can recognise it.
            kwargs["MetadataDirective"] = "REPLACE"
            kwargs["Metadata"] = {**(head.get("Metadata") or {}), STAMP: version}
            kwargs.update({h: head[h] for h in _CARRIED_HEADERS if head.get(h) is not None})
        with map_aws_errors(f"s3:CopyObject s3://{source_bucket}/{key}?versionId={source_version} -> {spec.bucket}"):
            client.copy_object(**kwargs)

    def iam_statements(self, spec: S3PrefixSpec, scope: IamScope) -> list[IamStatement]:
        bucket = f"arn:{scope.partition}:s3:::{spec.bucket}"
        actions = [
            "s3:GetObject",
            "s3:GetObjectVersion",
            "s3:GetObjectVersionTagging",
            "s3:PutObject",
            "s3:PutObjectTagging",
        ]
        if spec.delete_new_objects:
            actions.append("s3:DeleteObject")
        return [
            IamStatement(
                actions=("s3:ListBucketVersions", "s3:GetBucketVersioning"),
                resources=(bucket,),
                purpose=f"list the versions under {spec.prefix or 'the bucket'}",
            ),
            IamStatement(
                actions=tuple(actions),
                resources=(f"{bucket}/{spec.prefix}*",),
                purpose="copy recorded versions back over their keys"
                + (" and put delete markers on new keys" if spec.delete_new_objects else ""),
            ),
            IamStatement(
                actions=("kms:Decrypt", "kms:GenerateDataKey"),
                resources=(f"arn:{scope.partition}:kms:{scope.region}:{scope.account}:key/*",),
                purpose="SSE-KMS objects only; narrow to the bucket's key",
            ),
            *(_replica_iam(spec, spec.replica, scope) if spec.replica else []),
        ]


def _replica_iam(spec: S3PrefixSpec, replica: Replica, scope: IamScope) -> list[IamStatement]:
    bucket = f"arn:{scope.partition}:s3:::{replica.bucket}"
    return [
        IamStatement(
            actions=("s3:ListBucketVersions", "s3:GetBucketVersioning"),
            resources=(bucket,),
            purpose=f"find the recorded versions in the replica ({replica.region})",
        ),
        IamStatement(
            actions=("s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectVersionTagging"),
            resources=(f"{bucket}/{spec.prefix}*",),
            purpose="read the replica's versions (the copy source); the replica is never written",
        ),
        IamStatement(
            actions=("kms:Decrypt",),
            resources=(f"arn:{scope.partition}:kms:{replica.region}:{scope.account}:key/*",),
            purpose="SSE-KMS replicas only; narrow to the replica's key",
        ),
    ]


def _from_replica(spec: S3PrefixSpec) -> str:
    return f" from the replica s3://{spec.replica.bucket} ({spec.replica.region})" if spec.replica else ""


def _replica_version(replica: Replica, ctx: KindContext, key: str, recorded: dict[str, Any]) -> tuple[str, str, Any]:
    """(bucket, version id, head) of the replica's copy of a recorded version: by id, else by ETag."""
    client = ctx.aws.client("s3", region=replica.region)
    version, where = recorded["version_id"], f"s3://{replica.bucket}/{key}"
    if version != "null":
        try:
            with map_aws_errors(f"s3:HeadObject {where}?versionId={version} (replica)"):
                return replica.bucket, version, client.head_object(Bucket=replica.bucket, Key=key, VersionId=version)
        except AwsError as error:
            if error.retryable:
                raise
    found = _replica_by_etag(client, replica, key, recorded["etag"])
    if found is None:
        raise StepFailed(
            f"{where}: the replica has no version of {key} with the recorded content (ETag {recorded['etag']})"
        )
    with map_aws_errors(f"s3:HeadObject {where}?versionId={found} (replica)"):
        return replica.bucket, found, client.head_object(Bucket=replica.bucket, Key=key, VersionId=found)


def _replica_by_etag(client: Any, replica: Replica, key: str, etag: str) -> str | None:
    """The newest version of `key` in the replica whose ETag is the recorded one."""
    with map_aws_errors(f"s3:ListObjectVersions s3://{replica.bucket}/{key} (replica)"):
        pages = client.get_paginator("list_object_versions").paginate(Bucket=replica.bucket, Prefix=key)
        matches = [
            v for page in pages for v in page.get("Versions") or [] if v["Key"] == key and _etag(v["ETag"]) == etag
        ]
    if not matches:
        return None
    return str(max(matches, key=lambda v: v["LastModified"])["VersionId"])


def _replica_readiness(
    replica: Replica, ctx: KindContext, where: str, sample: list[str], objects: dict[str, Any]
) -> ReadinessCheck:
    missing = []
    for key in sample:
        try:
            _replica_version(replica, ctx, key, objects[key])
        except StepFailed:
            missing.append(key)
    source = f"replica s3://{replica.bucket} ({replica.region})"
    if missing:
        return ReadinessCheck("impossible", f"{where}: the {source} lacks the recorded versions of {_some(missing)}")
    return ReadinessCheck("ok", f"{where}: {len(sample)} of {len(objects)} recorded versions found in the {source}")


def _version_gone(spec: S3PrefixSpec, ctx: KindContext, key: str, version_id: str) -> bool:
    try:
        with map_aws_errors(f"s3:HeadObject s3://{spec.bucket}/{key}?versionId={version_id}"):
            ctx.aws.client("s3").head_object(Bucket=spec.bucket, Key=key, VersionId=version_id)
    except ResourceNotFound:
        return True
    return False


def _encryption_and_class(head: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if head.get("ServerSideEncryption"):
        out["ServerSideEncryption"] = head["ServerSideEncryption"]
    if head.get("SSEKMSKeyId"):
        out["SSEKMSKeyId"] = head["SSEKMSKeyId"]
    if head.get("BucketKeyEnabled") is not None:
        out["BucketKeyEnabled"] = bool(head["BucketKeyEnabled"])
    if head.get("StorageClass") and head["StorageClass"] != "STANDARD":
        out["StorageClass"] = head["StorageClass"]
    return out


def _some(keys: list[str], shown: int = 3) -> str:
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return ", ".join(keys[:shown]) + more
