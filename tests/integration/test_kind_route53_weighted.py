"""route53-weighted against the moto server: record -> change -> plan -> apply -> verify, re-apply, failures."""

from __future__ import annotations

from typing import Any

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.errors import ResourceNotFound
from lastgood.kinds.base import IamScope, KindContext
from lastgood.kinds.route53_weighted import Route53Weighted, Route53WeightedSpec


@pytest.fixture
def ctx(aws: AwsClients) -> KindContext:
    return KindContext(app="shop", env="prod", aws=aws, token="rb-1-dns")


@pytest.fixture
def zone(aws: AwsClients) -> str:
    created = aws.client("route53").create_hosted_zone(Name="example.com", CallerReference="lastgood-test")
    return str(created["HostedZone"]["Id"])


def upsert(aws: AwsClients, zone: str, set_id: str, weight: int, value: str, name: str = "api.example.com.") -> None:
    record: dict[str, Any] = {
        "Name": name,
        "Type": "A",
        "SetIdentifier": set_id,
        "Weight": weight,
        "TTL": 60,
        "ResourceRecords": [{"Value": value}],
    }
    aws.client("route53").change_resource_record_sets(
        HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": record}]}
    )


def weights(aws: AwsClients, zone: str) -> dict[str, tuple[int, str]]:
    sets = aws.client("route53").list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    return {
        r["SetIdentifier"]: (r["Weight"], r["ResourceRecords"][0]["Value"])
        for r in sets
        if r["Name"] == "api.example.com." and "SetIdentifier" in r
    }


@pytest.mark.slow
def test_weights_go_back_and_a_new_set_is_drained(aws: AwsClients, ctx: KindContext, zone: str) -> None:
    upsert(aws, zone, "blue", 100, "10.0.0.1")
    upsert(aws, zone, "green", 0, "10.0.0.2")
    upsert(aws, zone, "other", 100, "10.9.9.9", name="www.example.com.")  # another name: not ours
    kind, spec = Route53Weighted(), Route53WeightedSpec(name="dns", hosted_zone_id=zone, record_name="api.example.com")
    recorded = kind.read(spec, ctx)
    assert recorded == {
        "records": {
            "blue": {"type": "A", "weight": 100, "ttl": 60, "values": ["10.0.0.1"]},
            "green": {"type": "A", "weight": 0, "ttl": 60, "values": ["10.0.0.2"]},
        }
    }

    # The switch to green, with green on a new address, and a canary set added.
    upsert(aws, zone, "blue", 0, "10.0.0.1")
    upsert(aws, zone, "green", 90, "10.0.0.3")
    upsert(aws, zone, "canary", 10, "10.0.0.4")
    current = kind.read(spec, ctx)
    assert kind.differences(spec, current, recorded) == [
        "blue: weight 0 -> 100",
        "green: weight 90 -> 0",
        "green: A 10.0.0.3 (ttl 60) -> A 10.0.0.2 (ttl 60)",
        "canary: added since the release, weight 10 -> 0",
    ]
    change = kind.plan(spec, current, recorded)
    assert change is not None and change.action == "upsert-records"
    assert change.after == "blue 100%, green 0%"

    assert kind.apply(spec, ctx, recorded).changed
    assert kind.verify(spec, ctx, recorded) == []
    assert weights(aws, zone) == {"blue": (100, "10.0.0.1"), "green": (0, "10.0.0.2"), "canary": (0, "10.0.0.4")}
    assert not kind.apply(spec, ctx, recorded).changed  # idempotent


def test_deleted_set_is_recreated(aws: AwsClients, ctx: KindContext, zone: str) -> None:
    upsert(aws, zone, "blue", 50, "10.0.0.1")
    upsert(aws, zone, "green", 50, "10.0.0.2")
    kind, spec = Route53Weighted(), Route53WeightedSpec(name="dns", hosted_zone_id=zone, record_name="api.example.com.")
    recorded = kind.read(spec, ctx)
    green = {"Name": "api.example.com.", "Type": "A", "SetIdentifier": "green", "Weight": 50, "TTL": 60,
             "ResourceRecords": [{"Value": "10.0.0.2"}]}  # fmt: skip
    aws.client("route53").change_resource_record_sets(
        HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": green}]}
    )
    assert kind.differences(spec, kind.read(spec, ctx), recorded) == [
        "green: deleted since the release (recreated with weight 50)"
    ]
    assert kind.apply(spec, ctx, recorded).changed
    assert kind.verify(spec, ctx, recorded) == []


def test_missing_records_and_zone_fail_clearly(aws: AwsClients, ctx: KindContext, zone: str) -> None:
    upsert(aws, zone, "blue", 100, "10.0.0.1")
    kind = Route53Weighted()
    with pytest.raises(ResourceNotFound, match=r"no weighted A/CNAME record sets named nope\.example\.com\."):
        kind.read(Route53WeightedSpec(name="dns", hosted_zone_id=zone, record_name="nope.example.com"), ctx)
    with pytest.raises(ResourceNotFound, match="no weighted AAAA record sets"):
        kind.read(
            Route53WeightedSpec(name="dns", hosted_zone_id=zone, record_name="api.example.com", record_type="AAAA"),
            ctx,
        )
    spec = Route53WeightedSpec(name="dns", hosted_zone_id="/hostedzone/Z0NE", record_name="api.example.com")
    statement = kind.iam_statements(spec, IamScope(region="us-east-1"))[0]
    assert statement.resources == ("arn:aws:route53:::hostedzone/Z0NE",)
