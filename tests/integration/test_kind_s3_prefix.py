"""s3-prefix against the moto server: record -> overwrite/delete/create -> plan -> copy versions back -> verify."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.errors import BadInput, StepFailed
from lastgood.kinds import s3_prefix
from lastgood.kinds.base import IamScope, KindContext
from lastgood.kinds.registry import get_kind
from lastgood.kinds.s3_prefix import S3Prefix, S3PrefixSpec

BUCKET = "shop-assets"


@pytest.fixture
def ctx(aws: AwsClients) -> KindContext:
    return KindContext(app="shop", env="prod", aws=aws, now=lambda: datetime(2026, 3, 1, 12, 0, tzinfo=UTC))


def _bucket(aws: AwsClients, versioned: bool = True) -> Any:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    if versioned:
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    for key, body in {"site/a.txt": "A1", "site/b.txt": "B1", "site/c.txt": "C1", "other/x.txt": "X"}.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode(), ContentType="text/plain")
    return s3


def _body(s3: Any, key: str) -> str:
    return str(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode())


def _spec(**extra: Any) -> S3PrefixSpec:
    return S3PrefixSpec.model_validate({"name": "assets", "bucket": BUCKET, "prefix": "site/", **extra})


@pytest.mark.slow
def test_copies_recorded_versions_back(aws: AwsClients, ctx: KindContext) -> None:
    s3 = _bucket(aws)
    kind = get_kind("s3-prefix")
    spec = _spec()
    recorded = kind.record(spec, ctx)
    assert recorded["versioning"] == "Enabled" and recorded["recorded_at"] == "2026-03-01T12:00:00+00:00"
    assert sorted(recorded["objects"]) == ["site/a.txt", "site/b.txt", "site/c.txt"]
    assert kind.warnings(spec, recorded) == []

    s3.put_object(Bucket=BUCKET, Key="site/a.txt", Body=b"A2-bad")
    s3.delete_object(Bucket=BUCKET, Key="site/b.txt")
    s3.put_object(Bucket=BUCKET, Key="site/d.txt", Body=b"D-new")
    current = kind.read(spec, ctx)
    assert kind.differences(spec, current, recorded) == [
        "site/a.txt: changed since the release",
        "site/b.txt: deleted since the release",
    ]
    change = kind.plan(spec, current, recorded)
    assert change is not None and change.action == "copy-versions" and not change.destructive and not change.slow
    assert "copies the recorded version over 2 keys (site/a.txt, site/b.txt)" in change.notes[0]
    assert change.notes[1] == "1 keys created since are left as they are (site/d.txt)"

    result = kind.apply(spec, ctx, recorded)
    assert result.changed and result.detail == "restored 2 objects"
    assert kind.verify(spec, ctx, recorded) == []
    assert (_body(s3, "site/a.txt"), _body(s3, "site/b.txt"), _body(s3, "site/d.txt")) == ("A1", "B1", "D-new")
    assert s3.head_object(Bucket=BUCKET, Key="site/a.txt")["ContentType"] == "text/plain"
    # Nothing lost: the bad version and the delete marker are still in the history.
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix="site/a.txt")["Versions"]
    assert len(versions) == 3
    assert len(s3.list_object_versions(Bucket=BUCKET, Prefix="site/b.txt")["DeleteMarkers"]) == 1

    assert not kind.apply(spec, ctx, recorded).changed
    assert kind.plan(spec, kind.read(spec, ctx), recorded) is None


@pytest.mark.slow
def test_delete_new_objects_puts_delete_markers(aws: AwsClients, ctx: KindContext) -> None:
    s3 = _bucket(aws)
    kind, spec = S3Prefix(), _spec(delete_new_objects=True)
    recorded = kind.read(spec, ctx)
    s3.put_object(Bucket=BUCKET, Key="site/d.txt", Body=b"D-new")
    change = kind.plan(spec, kind.read(spec, ctx), recorded)
    assert change is not None and not change.destructive
    assert change.notes == ("puts a delete marker on 1 keys created since (site/d.txt); their versions stay",)
    assert kind.apply(spec, ctx, recorded).detail == "delete markers on 1 new objects"
    assert kind.verify(spec, ctx, recorded) == []
    history = s3.list_object_versions(Bucket=BUCKET, Prefix="site/d.txt")
    assert len(history["Versions"]) == 1 and len(history["DeleteMarkers"]) == 1
    assert not kind.apply(spec, ctx, recorded).changed
    assert _body(s3, "other/x.txt") == "X"  # outside the prefix


@pytest.mark.slow
def test_multipart_objects_are_recognised_by_their_stamp(aws: AwsClients, ctx: KindContext) -> None:
    s3 = _bucket(aws)
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="site/big.bin", ContentType="application/octet-stream")
    parts = []
    for number, body in enumerate([b"x" * (5 * 1024 * 1024), b"tail"], start=1):
        answer = s3.upload_part(
            Bucket=BUCKET, Key="site/big.bin", UploadId=upload["UploadId"], PartNumber=number, Body=body
        )
        parts.append({"ETag": answer["ETag"], "PartNumber": number})
    s3.complete_multipart_upload(
        Bucket=BUCKET, Key="site/big.bin", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    kind, spec = S3Prefix(), _spec()
    recorded = kind.read(spec, ctx)
    assert recorded["objects"]["site/big.bin"]["etag"].endswith("-2")
    s3.put_object(Bucket=BUCKET, Key="site/big.bin", Body=b"small and wrong")

    assert kind.apply(spec, ctx, recorded).detail == "restored 1 objects"
    assert kind.verify(spec, ctx, recorded) == []
    head = s3.head_object(Bucket=BUCKET, Key="site/big.bin")
    assert head["ContentLength"] == 5 * 1024 * 1024 + 4 and head["ContentType"] == "application/octet-stream"
    assert head["Metadata"] == {s3_prefix.STAMP: recorded["objects"]["site/big.bin"]["version_id"]}
    assert not kind.apply(spec, ctx, recorded).changed


@pytest.mark.slow
def test_versioning_off_warns_and_refuses(aws: AwsClients, ctx: KindContext) -> None:
    s3 = _bucket(aws, versioned=False)
    kind, spec = S3Prefix(), _spec()
    recorded = kind.read(spec, ctx)
    assert kind.warnings(spec, recorded) == [
        f"versioning is off on bucket {BUCKET}: objects overwritten or deleted after this release cannot be restored"
    ]
    s3.put_object(Bucket=BUCKET, Key="site/a.txt", Body=b"A2")
    with pytest.raises(StepFailed, match=r"site/a\.txt had no version id at the release"):
        kind.apply(spec, ctx, recorded)


def test_a_recorded_version_that_was_purged(aws: AwsClients, ctx: KindContext) -> None:
    s3 = _bucket(aws)
    kind, spec = S3Prefix(), _spec()
    recorded = kind.read(spec, ctx)
    s3.put_object(Bucket=BUCKET, Key="site/a.txt", Body=b"A2")
    s3.delete_object(Bucket=BUCKET, Key="site/a.txt", VersionId=recorded["objects"]["site/a.txt"]["version_id"])
    with pytest.raises(StepFailed, match=r"site/a.txt: recorded version .* is gone"):
        kind.apply(spec, ctx, recorded)


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_too_many_keys_is_a_clear_error(aws: AwsClients, ctx: KindContext, monkeypatch: pytest.MonkeyPatch) -> None:
    _bucket(aws)
    monkeypatch.setattr(s3_prefix, "MAX_KEYS", 2)
    with pytest.raises(BadInput, match=r"s3://shop-assets/site/ holds more than 2 keys"):
        S3Prefix().read(_spec(), ctx)


def test_iam_is_scoped_to_the_prefix() -> None:
    statements = S3Prefix().iam_statements(_spec(), IamScope(region="eu-west-1", account="123"))
    assert statements[0].resources == ("arn:aws:s3:::shop-assets",)
    assert statements[1].resources == ("arn:aws:s3:::shop-assets/site/*",)
    assert "s3:DeleteObject" not in statements[1].actions
    with_markers = S3Prefix().iam_statements(_spec(delete_new_objects=True), IamScope(region="eu-west-1"))
    assert "s3:DeleteObject" in with_markers[1].actions


RUNBOOK = """\
app: shop
state: sqlite:///.lastgood/state.db
environments:
  staging:
    aws: {{region: us-east-1, endpoint_url: "{endpoint}"}}
components:
  - name: assets
    kind: s3-prefix
    bucket: shop-assets
    prefix: site/
    delete_new_objects: true
"""


@pytest.mark.slow
def test_s3_prefix_through_the_cli(
    aws_env: Any, aws: AwsClients, tmp_path: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from lastgood.cli.app import main

    def run(*args: str) -> tuple[int, Any]:
        code = main([*args, "--output", "json"])
        return code, json.loads(capsys.readouterr().out)

    (tmp_path / "lastgood.yaml").write_text(RUNBOOK.format(endpoint=aws_env.url))
    monkeypatch.chdir(tmp_path)
    s3 = _bucket(aws)
    assert run("release", "record", "staging", "--version", "v1")[0] == 0
    s3.put_object(Bucket=BUCKET, Key="site/a.txt", Body=b"A2-bad")
    s3.put_object(Bucket=BUCKET, Key="site/new.txt", Body=b"new")
    assert run("release", "record", "staging", "--version", "v2")[0] == 0
    code, plan = run("plan", "staging")
    assert code == 0 and plan["steps"][0]["action"] == "copy-versions" and not plan["steps"][0]["destructive"]
    code, result = run("rollback", "staging", "--yes")
    assert code == 0 and result["status"] == "succeeded", result
    assert _body(s3, "site/a.txt") == "A1"
    assert "site/new.txt" not in [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert run("plan", "staging", "--to", "v1")[1]["steps"] == []
