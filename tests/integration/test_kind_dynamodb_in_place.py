"""dynamodb-table `in_place: true` on moto's server: backup of the current table, delete, restore under the same
name (iRacing's ir_auth), behind --allow-destructive. moto makes backups AVAILABLE, deletes and restores at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.cli.app import main
from lastgood.kinds import _dynamodb_in_place, _restore
from lastgood.kinds.base import KindContext, State
from lastgood.kinds.dynamodb_table import DynamoDbTable, DynamoDbTableSpec
from lastgood.testing.endpoint import LocalEndpoint

pytestmark = [pytest.mark.aws, pytest.mark.slow]  # moto restores and copies: seconds each on a loaded machine

TABLE, TOKEN = "ir_auth", "rb-0000000011-auth"


def _ir_auth(aws: AwsClients, items: int = 5) -> None:
    client = aws.client("dynamodb")
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for n in range(items):
        client.put_item(TableName=TABLE, Item={"pk": {"S": f"user-{n}"}, "role": {"S": "driver"}})
    client.update_continuous_backups(
        TableName=TABLE, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )


def _corrupt(aws: AwsClients) -> None:
    client = aws.client("dynamodb")
    client.delete_item(TableName=TABLE, Key={"pk": {"S": "user-0"}})
    client.put_item(TableName=TABLE, Item={"pk": {"S": "user-1"}, "role": {"S": "admin"}})


def _spec(**extra: Any) -> DynamoDbTableSpec:
    return DynamoDbTableSpec.model_validate(
        {"name": "auth", "table": TABLE, "in_place": True, "backup": True, "restore_from": "backup", **extra}
    )


def _ctx(aws: AwsClients, events: list[str] | None = None) -> KindContext:
    log = events if events is not None else []
    return KindContext(app="ir", env="prod", aws=aws, token=TOKEN, progress=log.append)


def _finish(kind: DynamoDbTable, spec: DynamoDbTableSpec, ctx: KindContext, target: State) -> list[list[str]]:
    seen = []
    for _ in range(8):
        problems = kind.verify(spec, ctx, target)
        if not problems:
            return seen
        seen.append(problems)
    pytest.fail(f"the in-place restore did not finish: {seen}")


def _role(aws: AwsClients, pk: str) -> str | None:
    item = aws.client("dynamodb").get_item(TableName=TABLE, Key={"pk": {"S": pk}}).get("Item")
    return None if item is None else str(item["role"]["S"])


def _count(aws: AwsClients) -> int:
    return int(aws.client("dynamodb").scan(TableName=TABLE, Select="COUNT")["Count"])


def test_backs_up_deletes_and_restores_under_the_same_name(aws: AwsClients) -> None:
    _ir_auth(aws)
    kind, spec = DynamoDbTable(), _spec()
    recorded = kind.record(spec, _ctx(aws))
    assert recorded["table"] == TABLE and recorded["backup_arn"]
    _corrupt(aws)

    change = kind.plan(spec, kind.read(spec, _ctx(aws)), recorded)
    assert change is not None and change.destructive and change.action == "restore-in-place"
    assert any(n.startswith(f"DESTRUCTIVE: deletes table {TABLE}") and "--allow-destructive" in n for n in change.notes)
    assert any(f"on-demand backup lastgood-{TABLE}-before-<id>" in n for n in change.notes)

    events: list[str] = []
    result = kind.apply(spec, _ctx(aws, events), recorded)
    before = result.extra["backup_before_restore"]
    assert before and result.extra["table"] == TABLE and before in result.detail
    assert _role(aws, "user-1") == "admin"  # apply only backed up: nothing deleted yet
    steps = _finish(kind, spec, _ctx(aws, events), recorded)
    assert [f"table {TABLE} is being deleted"] in steps
    assert ["restoring the recorded backup into table ir_auth"] in steps

    assert _count(aws) == 5 and _role(aws, "user-0") == "driver" and _role(aws, "user-1") == "driver"
    client = aws.client("dynamodb")
    described = client.describe_table(TableName=TABLE)["Table"]
    assert described["RestoreSummary"]["SourceBackupArn"] == recorded["backup_arn"]
    pitr = client.describe_continuous_backups(TableName=TABLE)["ContinuousBackupsDescription"]
    assert pitr["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    # The table as it was before the restore is kept in the safety backup.
    kept = client.describe_backup(BackupArn=before)["BackupDescription"]["BackupDetails"]
    assert kept["BackupName"] == _dynamodb_in_place.safety_backup_name(TABLE, TOKEN)
    assert any(e.startswith(f"deleted table {TABLE} (backed up as {before})") for e in events)

    now = kind.read(spec, _ctx(aws))
    assert now["restored_for"] == _restore.lineage(TABLE, recorded["recorded_at"])
    assert kind.plan(spec, now, recorded) is None
    assert not kind.apply(spec, _ctx(aws), recorded).changed


def test_a_retry_takes_no_second_backup_and_never_deletes_the_restore(aws: AwsClients) -> None:
    _ir_auth(aws)
    kind, spec = DynamoDbTable(), _spec()
    recorded = kind.record(spec, _ctx(aws))
    _corrupt(aws)
    first = kind.apply(spec, _ctx(aws), recorded).extra["backup_before_restore"]
    assert kind.apply(spec, _ctx(aws), recorded).extra["backup_before_restore"] == first  # found by name
    assert kind.verify(spec, _ctx(aws), recorded) == [f"table {TABLE} is being deleted"]
    # A crash here: the table is gone; the retried apply finds the backup it took, not a second one.
    assert DynamoDbTable().apply(spec, _ctx(aws), recorded).extra["backup_before_restore"] == first
    assert kind.verify(spec, _ctx(aws), recorded) == ["restoring the recorded backup into table ir_auth"]
    # The restored table is recognised by its RestoreSummary (no lineage tags yet): a retry does not delete it.
    assert DynamoDbTable().apply(spec, _ctx(aws), recorded).detail.endswith("being restored from an earlier attempt")
    assert kind.verify(spec, _ctx(aws), recorded) == []
    names = [b["BackupName"] for b in aws.client("dynamodb").list_backups(TableName=TABLE)["BackupSummaries"]]
    assert names.count(_dynamodb_in_place.safety_backup_name(TABLE, TOKEN)) == 1


RUNBOOK = """
app: ir
state: sqlite:///{state}
environments: {{prod: {{aws: {{region: us-east-1, endpoint_url: "{endpoint}"}}}}}}
components:
  - {{name: auth, kind: dynamodb-table, table: ir_auth, in_place: true, backup: true, restore_from: backup}}
"""


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    code = main([*args, "-o", "json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


@pytest.mark.slow
def test_the_rollback_needs_allow_destructive(
    aws: AwsClients, aws_env: LocalEndpoint, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.setattr(DynamoDbTable, "verify_interval_seconds", 0.05)
    monkeypatch.chdir(tmp_path)  # where `lastgood report` writes its files
    _ir_auth(aws)
    runbook = tmp_path / "lastgood.yaml"
    runbook.write_text(RUNBOOK.format(state=tmp_path / "state.db", endpoint=aws_env.url))
    file = ("-f", str(runbook))
    assert _cli(capsys, "release", "record", "prod", "--version", "r1", *file)[0] == 0
    _corrupt(aws)
    assert _cli(capsys, "release", "record", "prod", "--version", "r2", *file)[0] == 0
    code, plan = _cli(capsys, "plan", "prod", "--to", "r1", *file)
    assert code == 0 and plan["destructive_steps"] == ["auth"]

    code, refused = _cli(capsys, "rollback", "prod", "--to", "r1", "--yes", *file)
    assert code == 3 and "--allow-destructive" in refused["message"]
    backups = aws.client("dynamodb").list_backups(TableName=TABLE)["BackupSummaries"]
    assert _role(aws, "user-1") == "admin" and not [b for b in backups if "-before-" in b["BackupName"]]

    code, done = _cli(capsys, "rollback", "prod", "--to", "r1", "--yes", "--allow-destructive", *file)
    assert code == 0, done
    assert _role(aws, "user-1") == "driver" and _count(aws) == 5
    before = _dynamodb_in_place.safety_backup_name(TABLE, f"{done['id']}-auth")
    arns = [
        b["BackupArn"]
        for b in aws.client("dynamodb").list_backups(TableName=TABLE)["BackupSummaries"]
        if b["BackupName"] == before
    ]
    assert len(arns) == 1
    code, report = _cli(capsys, "report", done["id"], *file)
    assert code == 0 and arns[0] in Path(report["paths"]["md"]).read_text()  # the step's detail, in the report


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("in_place: true, backup: true", "in_place: true needs restore_from: backup"),
        ("in_place: true, backup: true, restore_from: backup, pointer: {ssm_parameter: /p}", "remove pointer"),
        ("backup: true", "a pointer is needed"),
        ("in_place: yes-please, backup: true, restore_from: backup", "in_place"),
    ],
)
def test_bad_in_place_config_is_exit_2(
    extra: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "lastgood.yaml"
    file.write_text(
        "app: ir\nenvironments: {prod: {}}\ncomponents:\n"
        f"  - {{name: auth, kind: dynamodb-table, table: ir_auth, {extra}}}\n"
    )
    assert main(["validate", "-f", str(file)]) == 2
    assert expected in capsys.readouterr().err
