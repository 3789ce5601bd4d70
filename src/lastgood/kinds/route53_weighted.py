"""route53-weighted: the weights (and values) of one name's weighted record sets, told apart by SetIdentifier.

Rolling back UPSERTs every recorded record set in one change batch; a record set added since the release is
kept but given weight 0, so traffic splits as it did at the release.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from pydantic import Field

from lastgood.aws.errors import map_aws_errors
from lastgood.config.models import Component
from lastgood.errors import BadInput, ResourceNotFound
from lastgood.kinds.base import (
    ApplyResult,
    Change,
    IamScope,
    IamStatement,
    Kind,
    KindContext,
    Split,
    State,
    WeightedKind,
    split_by_weight,
    whole_percent,
)

DEFAULT_TYPES = ("A", "CNAME")


class Route53WeightedSpec(Component):
    kind: Literal["route53-weighted"] = "route53-weighted"
    hosted_zone_id: str = Field(description="Hosted zone id (with or without the /hostedzone/ prefix).")
    record_name: str = Field(description="The record name, e.g. api.example.com.")
    record_type: str | None = Field(default=None, description="Record type; by default the A or CNAME sets.")

    @property
    def zone(self) -> str:
        return self.hosted_zone_id.rsplit("/", 1)[-1]

    @property
    def fqdn(self) -> str:
        return self.record_name.rstrip(".").lower() + "."


class Route53Weighted(Kind[Route53WeightedSpec], WeightedKind[Route53WeightedSpec]):
    name = "route53-weighted"
    spec_model = Route53WeightedSpec
    estimate_seconds = 2.0
    version_noun = "record set"

    def read(self, spec: Route53WeightedSpec, ctx: KindContext) -> State:
        records = {r["SetIdentifier"]: _entry(r) for r in self._record_sets(spec, ctx)}
        if not records:
            raise ResourceNotFound(f"route53: no weighted {_types(spec)} record sets named {spec.fqdn} in {spec.zone}")
        return {"records": dict(sorted(records.items()))}

    def differences(self, spec: Route53WeightedSpec, current: State, target: State) -> list[str]:
        out = []
        now, then = current["records"], target["records"]
        for set_id, wanted in then.items():
            have = now.get(set_id)
            if have is None:
                out.append(f"{set_id}: deleted since the release (recreated with weight {wanted['weight']})")
            elif have["weight"] != wanted["weight"]:
                out.append(f"{set_id}: weight {have['weight']} -> {wanted['weight']}")
            if have is not None and _value(have) != _value(wanted):
                out.append(f"{set_id}: {_show(have)} -> {_show(wanted)}")
        out += [f"{s}: added since the release, weight {r['weight']} -> 0" for s, r in _extra(now, then).items()]
        return out

    def apply(self, spec: Route53WeightedSpec, ctx: KindContext, target: State) -> ApplyResult:
        current = self.read(spec, ctx)
        changes = [
            _upsert(spec, set_id, record)
            for set_id, record in target["records"].items()
            if current["records"].get(set_id) != record
        ]
        changes += [
            _upsert(spec, s, {**r, "weight": 0}) for s, r in _extra(current["records"], target["records"]).items()
        ]
        if not changes:
            return ApplyResult("already at target", changed=False)
        with map_aws_errors(f"route53:ChangeResourceRecordSets {spec.zone} {spec.fqdn}"):
            answer = ctx.aws.client("route53").change_resource_record_sets(
                HostedZoneId=spec.zone,
                ChangeBatch={"Comment": f"lastgood rollback {ctx.token}"[:256], "Changes": changes},
            )
        change_id = answer["ChangeInfo"]["Id"].rsplit("/", 1)[-1]
        return ApplyResult(f"{len(changes)} record sets upserted ({change_id}): {self.describe(target)}")

    def _record_sets(self, spec: Route53WeightedSpec, ctx: KindContext) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"HostedZoneId": spec.zone, "StartRecordName": spec.fqdn}
        if spec.record_type:
            kwargs["StartRecordType"] = spec.record_type
        found = []
        with map_aws_errors(f"route53:ListResourceRecordSets {spec.zone} {spec.fqdn}"):
            for page in ctx.aws.client("route53").get_paginator("list_resource_record_sets").paginate(**kwargs):
                sets = page["ResourceRecordSets"]
                found += [r for r in sets if _matches(spec, r)]
                if any(r["Name"].lower() != spec.fqdn for r in sets):
                    break  # sorted by name: the rest of the zone follows
        return found

    def plan(self, spec: Route53WeightedSpec, current: State, target: State) -> Change | None:
        change = super().plan(spec, current, target)
        if change is None:
            return None
        notes = ["DNS resolvers keep the old answer for up to the record's TTL"]
        if not any(record["weight"] for record in target["records"].values()):
            notes.append("every recorded weight is 0: Route 53 then splits traffic evenly")
        return replace(change, notes=tuple(notes))

    def action_name(self, current: State, target: State) -> str:
        return "upsert-records"

    def describe(self, state: State) -> str:
        records = state["records"]
        total = sum(r["weight"] for r in records.values()) or 1
        return ", ".join(f"{s} {r['weight'] * 100 / total:g}%" for s, r in records.items())

    # -- weighted: a version is a record set's SetIdentifier -----------------------------------------------------

    def resolve_version(self, spec: Route53WeightedSpec, ctx: KindContext, state: State, version: str) -> str:
        if version not in state["records"]:
            known = ", ".join(state["records"])
            raise BadInput(
                f"--version: {spec.fqdn} has no weighted record set {version!r} (it has {known}); "
                "create it with weight 0 first"
            )
        return version

    def current_split(self, spec: Route53WeightedSpec, state: State) -> Split:
        return split_by_weight({s: float(r["weight"]) for s, r in state["records"].items()})

    def split(
        self, spec: Route53WeightedSpec, ctx: KindContext, state: State, stable: str, candidate: str, percent: float
    ) -> State:
        """Weights in whole percents (Route 53 takes 0-255); the other record sets get weight 0."""
        share = whole_percent(percent)
        weights = {stable: 100 - share, candidate: share}
        records = {s: {**r, "weight": weights.get(s, 0)} for s, r in state["records"].items()}
        return {"records": records}

    def placeholders(self, spec: Route53WeightedSpec, state: State, version: str) -> dict[str, str]:
        return {"record_name": spec.fqdn, "hosted_zone_id": spec.zone}

    def iam_statements(self, spec: Route53WeightedSpec, scope: IamScope) -> list[IamStatement]:
        return [
            IamStatement(
                actions=("route53:ListResourceRecordSets", "route53:ChangeResourceRecordSets"),
                resources=(f"arn:{scope.partition}:route53:::hostedzone/{spec.zone}",),
                purpose=f"read and upsert the weighted record sets of {spec.fqdn}",
            )
        ]


def _matches(spec: Route53WeightedSpec, record: dict[str, Any]) -> bool:
    types = (spec.record_type,) if spec.record_type else DEFAULT_TYPES
    return (
        record["Name"].lower() == spec.fqdn
        and record["Type"] in types
        and "SetIdentifier" in record
        and "Weight" in record
    )


def _entry(record: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": record["Type"], "weight": int(record["Weight"])}
    if "AliasTarget" in record:
        alias = record["AliasTarget"]
        entry["alias"] = {
            "HostedZoneId": alias["HostedZoneId"],
            "DNSName": alias["DNSName"],
            "EvaluateTargetHealth": bool(alias.get("EvaluateTargetHealth", False)),
        }
    else:
        entry["ttl"] = int(record.get("TTL", 300))
        entry["values"] = sorted(r["Value"] for r in record.get("ResourceRecords") or [])
    if record.get("HealthCheckId"):
        entry["health_check"] = record["HealthCheckId"]
    return entry


def _upsert(spec: Route53WeightedSpec, set_id: str, entry: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {
        "Name": spec.fqdn,
        "Type": entry["type"],
        "SetIdentifier": set_id,
        "Weight": entry["weight"],
    }
    if "alias" in entry:
        record["AliasTarget"] = entry["alias"]
    else:
        record["TTL"] = entry["ttl"]
        record["ResourceRecords"] = [{"Value": value} for value in entry["values"]]
    if entry.get("health_check"):
        record["HealthCheckId"] = entry["health_check"]
    return {"Action": "UPSERT", "ResourceRecordSet": record}


def _extra(current: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    """Record sets created since the release that still take traffic."""
    return {s: r for s, r in current.items() if s not in target and r["weight"]}


def _value(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != "weight"}


def _show(entry: dict[str, Any]) -> str:
    if "alias" in entry:
        return f"alias {entry['alias']['DNSName']}"
    return f"{entry['type']} {','.join(entry['values'])} (ttl {entry['ttl']})"


def _types(spec: Route53WeightedSpec) -> str:
    return spec.record_type or "/".join(DEFAULT_TYPES)
