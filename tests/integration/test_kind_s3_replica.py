"""s3-prefix with `replica:`: the recorded versions copied back from a bucket in another region (moto's server).

moto does not replicate, so the tests write the replica themselves: by the same bytes (new version ids, found by
ETag, as a batch-copied replica) and, for the version-id path, by reading the ids the replica got.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.cli.app import main
from lastgood.errors import StepFailed
from lastgood.kinds.base import IamScope, KindContext
from lastgood.kinds.s3_prefix import S3Prefix, S3PrefixSpec

pytestmark = [pytest.mark.aws, pytest.mark.slow]  # moto restores and copies: seconds each on a loaded machine

BUCKET, REPLICA, REPLICA_REGION = "shop-assets", "shop-assets-replica", "eu-west-1"
FILES = {"site/a.txt": "A1", "site/b.txt": "B1", "site/c.txt": "C1"}


@pytest.fixture
def ctx(aws: AwsClients) -> KindContext:
    return KindContext(app="shop", env="prod", aws=aws, now=lambda: datetime(2026, 3, 1, 12, 0, tzinfo=UTC))


def _buckets(aws: AwsClients) -> tuple[Any, Any]:
    """The primary (us-east-1) and its replica (eu-west-1), both versioned, holding the same objects."""
    s3, replica = aws.client("s3"), aws.client("s3", region=REPLICA_REGION)
    s3.create_bucket(Bucket=BUCKET)
    replica.create_bucket(Bucket=REPLICA, CreateBucketConfiguration={"LocationConstraint": REPLICA_REGION})
    for client, bucket in ((s3, BUCKET), (replica, REPLICA)):
        client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        for key, body in FILES.items():
            client.put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType="text/plain")
    return s3, replica


def _spec(**extra: Any) -> S3PrefixSpec:
    return S3PrefixSpec.model_validate(
        {
            "name": "assets",
            "bucket": BUCKET,
            "prefix": "site/",
            "replica": {"bucket": REPLICA, "region": REPLICA_REGION},
        }
        | extra
    )


def _versions(client: Any, bucket: str) -> int:
    listed = client.list_object_versions(Bucket=bucket)
    return len(listed.get("Versions") or []) + len(listed.get("DeleteMarkers") or [])


def _purge(s3: Any, key: str) -> None:
    """A compromise: every version of `key` in the primary deleted for good, then bad content written."""
    for version in s3.list_object_versions(Bucket=BUCKET, Prefix=key).get("Versions") or []:
        s3.delete_object(Bucket=BUCKET, Key=key, VersionId=version["VersionId"])
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"ransomed")


def test_restores_purged_versions_from_the_replica(aws: AwsClients, ctx: KindContext) -> None:
    s3, replica = _buckets(aws)
    kind, spec = S3Prefix(), _spec()
    recorded = kind.record(spec, ctx)
    _purge(s3, "site/a.txt")
    _purge(s3, "site/b.txt")
    s3.put_object(Bucket=BUCKET, Key="site/new.txt", Body=b"later")

    change = kind.plan(spec, kind.read(spec, ctx), recorded)
    assert change is not None and change.action == "copy-versions"
    assert any(
        f"from the replica s3://{REPLICA} ({REPLICA_REGION})" in n and "no version is deleted" in n
        for n in change.notes
    )
    assert kind.readiness(spec, ctx, recorded)[0].status == "ok"

    replica_before, primary_before = _versions(replica, REPLICA), _versions(s3, BUCKET)
    result = kind.apply(spec, ctx, recorded)
    assert result.changed and result.detail == "restored 2 objects"
    assert kind.verify(spec, ctx, recorded) == []
    for key in ("site/a.txt", "site/b.txt"):
        got = s3.get_object(Bucket=BUCKET, Key=key)
        assert got["Body"].read() == FILES[key].encode() and got["ContentType"] == "text/plain"
    # New versions in the primary, nothing deleted anywhere; the key created since is left alone.
    assert _versions(s3, BUCKET) == primary_before + 2 and _versions(replica, REPLICA) == replica_before
    assert s3.get_object(Bucket=BUCKET, Key="site/new.txt")["Body"].read() == b"later"
    assert not kind.apply(spec, ctx, recorded).changed  # a retry copies nothing twice
    assert _versions(s3, BUCKET) == primary_before + 2


def test_the_recorded_version_id_is_used_when_the_replica_has_it(aws: AwsClients, ctx: KindContext) -> None:
    """Replication keeps version ids: the replica's id is what the release recorded (here: recorded from it)."""
    s3, replica = _buckets(aws)
    replica.put_object(Bucket=REPLICA, Key="site/a.txt", Body=b"A-newer-in-replica")
    kind, spec = S3Prefix(), _spec()
    # A release recorded from the replica's ids; the newest replica version of a.txt has another content.
    listed = replica.list_object_versions(Bucket=REPLICA, Prefix="site/a.txt")["Versions"]
    first = next(v for v in listed if not v["IsLatest"])
    recorded = kind.record(spec, ctx)
    recorded["objects"]["site/a.txt"] = {"version_id": first["VersionId"], "etag": "not-the-etag", "size": 2}
    kind.apply(spec, ctx, recorded)
    assert s3.get_object(Bucket=BUCKET, Key="site/a.txt")["Body"].read() == b"A1"


def test_a_replica_without_the_recorded_content_fails_clearly(aws: AwsClients, ctx: KindContext) -> None:
    s3, replica = _buckets(aws)
    kind, spec = S3Prefix(), _spec()
    recorded = kind.record(spec, ctx)
    for version in replica.list_object_versions(Bucket=REPLICA, Prefix="site/c.txt")["Versions"]:
        replica.delete_object(Bucket=REPLICA, Key="site/c.txt", VersionId=version["VersionId"])
    _purge(s3, "site/c.txt")
    readiness = kind.readiness(spec, ctx, recorded)
    assert readiness[0].status == "impossible" and "site/c.txt" in readiness[0].detail
    with pytest.raises(StepFailed, match=r"the replica has no version of site/c\.txt with the recorded content"):
        kind.apply(spec, ctx, recorded)


def test_iam_names_the_replica_read_only(aws: AwsClients) -> None:
    statements = S3Prefix().iam_statements(_spec(), IamScope(region="us-east-1", account="123456789012"))
    on_replica = [s for s in statements if any(REPLICA in r for r in s.resources)]
    actions = {a for s in on_replica for a in s.actions}
    assert {"s3:ListBucketVersions", "s3:GetObjectVersion"} <= actions
    assert not any(a.startswith(("s3:Put", "s3:Delete")) for a in actions)
    assert any(f"kms:{REPLICA_REGION}:" in r for s in statements for r in s.resources)


@pytest.mark.parametrize(
    ("replica", "expected"),
    [
        ("{bucket: r}", "region"),
        ("{bucket: r, region: mars}", "expected an AWS region"),
        ("{bucket: r, region: eu-west-1, x: 1}", "x"),
    ],
)
def test_a_bad_replica_is_exit_2(
    replica: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "lastgood.yaml"
    file.write_text(
        "app: shop\nenvironments: {prod: {}}\ncomponents:\n"
        f"  - {{name: assets, kind: s3-prefix, bucket: b, replica: {replica}}}\n"
    )
    assert main(["validate", "-f", str(file)]) == 2
    err = capsys.readouterr().err
    assert "replica" in err and expected in err
