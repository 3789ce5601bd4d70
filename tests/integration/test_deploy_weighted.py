"""`lastgood deploy` on every weighted kind besides lambda-alias, on the moto server over HTTP: a Step Functions
alias over state machine versions, an ALB listener's forward weights over target groups, Route 53 weighted record
sets. Each is shifted step by step and promoted, aborted back through a verified rollback (by a person, or by a
rollback trigger that fires), and refused with exit 2 for a version it does not have."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.cli.app import main
from lastgood.config.loader import load_runbook
from lastgood.config.models import AwsSettings, Canary
from lastgood.domain.actor import Actor
from lastgood.engine.deploy.rows import get as get_deployment
from lastgood.engine.deploy.rows import request
from lastgood.engine.deploy.shift import apply_share
from lastgood.engine.record import record_release
from lastgood.errors import ExitCode
from lastgood.guard.canary import feed_for
from lastgood.kinds.elbv2_listener import Elbv2Listener, Elbv2ListenerSpec
from lastgood.kinds.registry import get_kind
from lastgood.kinds.stepfunctions_alias import StepfunctionsAlias, StepfunctionsAliasSpec
from lastgood.ledger import store
from lastgood.ledger.db import open_ledger, resolve_url
from lastgood.ledger.tables import DeploymentRow
from lastgood.runtime.context import EnvContext
from lastgood.service.deploy import (
    DEPLOYABLE_KINDS,
    Deployer,
    Deployment,
    DeployRequest,
    DeployResult,
    QuietDeployListener,
)
from lastgood.sources.cloudwatch import CloudWatchSource
from lastgood.testing.endpoint import LocalEndpoint

ROLE = "arn:aws:iam::123456789012:role/sfn"
RUNBOOK = """\
app: shop
state: sqlite:///.lastgood/state.db
environments:
  prod:
    aws: {{region: us-east-1, endpoint_url: "{endpoint}"}}
components:
  - name: orders
    kind: stepfunctions-alias
    state_machine: orders
    alias: live
  - name: alb
    kind: elbv2-listener
    listener_arn: {listener}
  - name: dns
    kind: route53-weighted
    hosted_zone_id: {zone}
    record_name: api.example.com
triggers:
  - name: shop-errors
    cloudwatch: {{namespace: Shop, metric: Errors, stat: Sum}}
    when: "> 10"
    for: 2s
    period: 1s
    severity: critical
    action: rollback
"""


pytestmark = pytest.mark.slow  # real processes, servers and waits: not in the everyday subset


@dataclass
class Stack:
    directory: Path
    machine: str  # the state machine's ARN; its versions are machine:1, machine:2
    listener: str
    blue: str  # target group ARNs
    green: str
    zone: str


def _definition(result: str) -> str:
    return json.dumps({"StartAt": "S", "States": {"S": {"Type": "Pass", "Result": result, "End": True}}})


def _state_machine(aws: AwsClients) -> str:
    sfn = aws.client("stepfunctions")
    created = sfn.create_state_machine(name="orders", definition=_definition("v1"), roleArn=ROLE, publish=True)
    machine = created["stateMachineArn"]
    sfn.update_state_machine(stateMachineArn=machine, definition=_definition("v2"), publish=True)
    sfn.create_state_machine_alias(
        name="live", routingConfiguration=[{"stateMachineVersionArn": f"{machine}:1", "weight": 100}]
    )
    return str(machine)


def _load_balancer(aws: AwsClients) -> tuple[str, str, str]:
    """An ALB whose listener forwards everything to `blue`; `green` exists but is not in the forward action."""
    ec2, elbv2 = aws.client("ec2"), aws.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
        for i, z in enumerate("ab")
    ]
    lb = elbv2.create_load_balancer(Name="shop", Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    blue, green = (
        elbv2.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0]["TargetGroupArn"]
        for name in ("blue", "green")
    )
    listener = elbv2.create_listener(
        LoadBalancerArn=lb, Protocol="HTTP", Port=80, DefaultActions=[{"Type": "forward", "TargetGroupArn": blue}]
    )["Listeners"][0]["ListenerArn"]
    return str(listener), str(blue), str(green)


def _zone(aws: AwsClients) -> str:
    route53 = aws.client("route53")
    zone = str(route53.create_hosted_zone(Name="example.com", CallerReference="lastgood-deploy")["HostedZone"]["Id"])
    changes = [
        {
            "Action": "UPSERT",
            "ResourceRecordSet": {
                "Name": "api.example.com.",
                "Type": "A",
                "SetIdentifier": set_id,
                "Weight": weight,
                "TTL": 60,
                "ResourceRecords": [{"Value": value}],
            },
        }
        for set_id, weight, value in (("blue", 100, "10.0.0.1"), ("green", 0, "10.0.0.2"))
    ]
    route53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": changes})
    return zone


@pytest.fixture
def stack(aws_env: LocalEndpoint, aws: AwsClients, tmp_path: Path) -> Stack:
    """The three components with all traffic on their first version, recorded as release v1."""
    machine = _state_machine(aws)
    listener, blue, green = _load_balancer(aws)
    zone = _zone(aws)
    (tmp_path / "lastgood.yaml").write_text(RUNBOOK.format(endpoint=aws_env.url, listener=listener, zone=zone))
    record_release(context(tmp_path), "v1")
    return Stack(tmp_path, machine, listener, blue, green, zone)


def context(directory: Path) -> EnvContext:
    runbook = load_runbook(directory / "lastgood.yaml")
    aws = AwsClients(runbook.environment("prod").aws)
    return EnvContext(runbook, "prod", open_ledger(resolve_url(runbook.state, runbook.base_dir)), aws)


# -- what each component's traffic split is, read straight from AWS --------------------------------------------


def sfn_split(aws: AwsClients, stack: Stack) -> dict[str, int]:
    alias = aws.client("stepfunctions").describe_state_machine_alias(stateMachineAliasArn=f"{stack.machine}:live")
    return {r["stateMachineVersionArn"].rsplit(":", 1)[1]: r["weight"] for r in alias["routingConfiguration"]}


def alb_split(aws: AwsClients, stack: Stack) -> dict[str, int]:
    action = aws.client("elbv2").describe_listeners(ListenerArns=[stack.listener])["Listeners"][0]
    groups = action["DefaultActions"][0].get("ForwardConfig", {}).get("TargetGroups")
    if not groups:
        return {action["DefaultActions"][0]["TargetGroupArn"].split("/")[-2]: 1}
    return {g["TargetGroupArn"].split("/")[-2]: g["Weight"] for g in groups}


def dns_split(aws: AwsClients, stack: Stack) -> dict[str, int]:
    sets = aws.client("route53").list_resource_record_sets(HostedZoneId=stack.zone)["ResourceRecordSets"]
    return {r["SetIdentifier"]: r["Weight"] for r in sets if "SetIdentifier" in r}


@dataclass(frozen=True)
class Case:
    component: str
    typed: Callable[[Stack], str]  # what the user types after --version
    version: str  # what deploy calls it
    stable: str
    live: Callable[[AwsClients, Stack], dict[str, int]]
    before: dict[str, int]  # the split at release v1
    at: dict[float, dict[str, int]]  # the split at each step
    after: dict[str, int]  # all on the new version


CASES = [
    Case(
        "orders",
        lambda s: f"{s.machine}:2",  # the version's ARN, as `aws stepfunctions publish-state-machine-version` prints
        "2",
        "1",
        sfn_split,
        {"1": 100},
        {10.0: {"1": 90, "2": 10}, 50.0: {"1": 50, "2": 50}},
        {"2": 100},
    ),
    Case(
        "alb",
        lambda s: "green",
        "green",
        "blue",
        alb_split,
        {"blue": 1},
        {10.0: {"blue": 90, "green": 10}, 50.0: {"blue": 50, "green": 50}},
        {"blue": 0, "green": 100},
    ),
    Case(
        "dns",
        lambda s: "green",
        "green",
        "blue",
        dns_split,
        {"blue": 100, "green": 0},
        {10.0: {"blue": 90, "green": 10}, 50.0: {"blue": 50, "green": 50}},
        {"blue": 0, "green": 100},
    ),
]
IDS = [c.component for c in CASES]


class WatchingListener(QuietDeployListener):
    """Reads the component's live split from AWS at every shift: what the step really did."""

    def __init__(self, case: Case, aws: AwsClients, stack: Stack) -> None:
        self.case, self.aws, self.stack = case, aws, stack
        self.seen: dict[float, dict[str, int]] = {}

    def shifted(self, deployment: Deployment, step: int, percent: float) -> None:
        self.seen[percent] = self.case.live(self.aws, self.stack)


def ask(component: str, version: str, steps: list[float], pause: float, label: str | None = None) -> DeployRequest:
    return DeployRequest(component=component, version=version, steps=steps, pause_seconds=pause, label=label)


def test_every_weighted_kind_is_deployable() -> None:
    assert set(DEPLOYABLE_KINDS) == {"lambda-alias", "stepfunctions-alias", "elbv2-listener", "route53-weighted"}


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_deploy_shifts_each_step_and_promotes(case: Case, stack: Stack, aws: AwsClients) -> None:
    ctx = context(stack.directory)
    listener = WatchingListener(case, aws, stack)
    deployer = Deployer(ctx, CloudWatchSource(ctx.aws), listener=listener)
    row = deployer.start(ask(case.component, case.typed(stack), [10.0, 50.0, 100.0], 1.0, "v2"))
    assert (row.from_version, row.to_version) == (case.stable, case.version)
    assert case.live(aws, stack) == case.before  # start shifts nothing
    result = deployer.run(row.id)
    assert result.status == "promoted" and result.weight == 1.0, result.message
    assert listener.seen == case.at
    assert [d["percent"] for d in result.decisions] == [10.0, 50.0]
    assert all(d["decision"] == "healthy" for d in result.decisions)
    assert case.live(aws, stack) == case.after
    with ctx.ledger.session() as session:
        live = store.live_release(session, "shop", "prod")
        assert live is not None and live.label == "v2" and not live.bad
        recorded = next(c.state for c in live.components if c.component == case.component)
        steps = [e.data["percent"] for e in store.events_since(session, "shop", "prod") if e.type == "deploy-step"]
    assert steps == [10.0, 50.0]
    # The release records the component as the deploy left it: a plan to v2 has nothing to do for it.
    kind = get_kind(ctx.components([case.component])[0].kind)
    spec = ctx.components([case.component])[0]
    assert kind.differences(spec, kind.read(spec, ctx.kind_context), recorded) == []


def _deploy_in_thread(stack: Stack, case: Case) -> tuple[threading.Thread, dict[str, DeployResult], str]:
    ctx = context(stack.directory)
    deployer = Deployer(ctx, CloudWatchSource(ctx.aws))
    row = deployer.start(ask(case.component, case.typed(stack), [10.0, 50.0, 100.0], 120.0, "v2"))
    out: dict[str, DeployResult] = {}
    thread = threading.Thread(target=lambda: out.setdefault("result", deployer.run(row.id)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while get_deployment(ctx, row.id).current_step < 0:
        assert time.monotonic() < deadline, "the deployment never shifted its first step"
        time.sleep(0.2)
    return thread, out, row.id


def _back_and_bad(stack: Stack, case: Case, aws: AwsClients, result: DeployResult) -> None:
    assert result.status == "aborted", result.message
    rollback = result.rollback
    assert rollback is not None and rollback.status == "succeeded" and rollback.to_release == "v1"
    assert rollback.done == [case.component]  # applied and verified by the executor
    assert case.live(aws, stack) in (case.before, {**case.before, case.version: 0})
    with context(stack.directory).ledger.session() as session:
        live = store.live_release(session, "shop", "prod")
        assert live is not None and live.label == "v1"
        assert store.get_release(session, "shop", "prod", "v2").bad
        assert store.get_step(session, rollback.id, case.component).status == "succeeded"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_person_aborts_and_the_component_goes_back_through_a_rollback(
    case: Case, stack: Stack, aws: AwsClients
) -> None:
    thread, out, deployment = _deploy_in_thread(stack, case)
    assert case.live(aws, stack) == case.at[10.0]
    request(dataclasses.replace(context(stack.directory), actor=Actor(name="alice")), deployment, "abort")
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert "alice" in out["result"].message
    _back_and_bad(stack, case, aws, out["result"])


def test_abort_force_from_the_cli_while_the_deploy_process_is_gone(  # type: ignore[no-untyped-def]
    stack: Stack, aws: AwsClients, capsys
) -> None:
    case = CASES[1]  # the ALB: the rollback puts back the single-group forward action of release v1
    ctx = context(stack.directory)
    row = Deployer(ctx, CloudWatchSource(ctx.aws)).start(ask("alb", "green", [25.0, 100.0], 60.0, "v2"))
    apply_share(ctx, row, 25.0)  # the process shifted 25%, then died
    assert alb_split(aws, stack) == {"blue": 75, "green": 25}
    file = str(stack.directory / "lastgood.yaml")
    code = main(["abort", "prod", "-c", "alb", "--force", "-f", file, "--output", "json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0, result
    assert result["status"] == "aborted" and result["rollback"]["status"] == "succeeded"
    assert alb_split(aws, stack) == case.before


@pytest.fixture
def errors(aws: AwsClients) -> Iterator[threading.Event]:
    """Once set, the shop reports 50 errors a second (the file's rollback trigger: > 10 for 2 s)."""
    failing, stop = threading.Event(), threading.Event()

    def report() -> None:
        cloudwatch = aws.client("cloudwatch")
        while not stop.wait(0.25):
            if failing.is_set():
                point = {"MetricName": "Errors", "Value": 50.0, "Timestamp": datetime.now(UTC), "StorageResolution": 1}
                cloudwatch.put_metric_data(Namespace="Shop", MetricData=[point])

    thread = threading.Thread(target=report, daemon=True)
    thread.start()
    yield failing
    stop.set()
    thread.join(timeout=5)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_rollback_trigger_that_fires_aborts(
    case: Case, stack: Stack, aws: AwsClients, errors: threading.Event
) -> None:
    ctx = context(stack.directory)
    listener = WatchingListener(case, aws, stack)
    deployer = Deployer(ctx, CloudWatchSource(ctx.aws), listener=listener)
    row = deployer.start(ask(case.component, case.typed(stack), [10.0, 50.0, 100.0], 1.0, "v2"))
    errors.set()
    result = deployer.run(row.id)
    assert listener.seen == {10.0: case.at[10.0]}
    assert result.decisions[-1]["decision"] == "fired" and "shop-errors" in result.message
    _back_and_bad(stack, case, aws, result)


@pytest.mark.parametrize(
    ("component", "version", "message"),
    [
        ("orders", "7", "has no version 7 (publish it first)"),
        ("orders", "latest", "a state machine version is a number or a version ARN"),
        ("orders", "arn:aws:states:us-east-1:123456789012:stateMachine:other:2", "is not a version of state machine"),
        ("orders", "1", "already on version 1"),
        ("alb", "purple", "no target group 'purple'"),
        ("alb", "blue", "already on target group blue"),
        ("dns", "purple", "has no weighted record set 'purple' (it has blue, green)"),
    ],
)
def test_an_unknown_version_is_refused_and_nothing_changes(  # type: ignore[no-untyped-def]
    stack: Stack, aws: AwsClients, capsys, component: str, version: str, message: str
) -> None:
    case = next(c for c in CASES if c.component == component)
    file = str(stack.directory / "lastgood.yaml")
    code = main(["deploy", "prod", "-c", component, "--version", version, "--pause", "1s", "--yes", "-f", file])
    assert code == 2
    assert message in capsys.readouterr().err.replace("\n", " ")
    assert case.live(aws, stack) == case.before
    with context(stack.directory).ledger.session() as session:
        assert [r.label for r in store.list_releases(session, "shop", "prod")] == ["v1"]
        assert not list(session.query(DeploymentRow))


def test_a_split_already_in_flight_is_refused(stack: Stack, aws: AwsClients) -> None:
    aws.client("stepfunctions").update_state_machine_alias(
        stateMachineAliasArn=f"{stack.machine}:live",
        routingConfiguration=[
            {"stateMachineVersionArn": f"{stack.machine}:1", "weight": 80},
            {"stateMachineVersionArn": f"{stack.machine}:2", "weight": 20},
        ],
    )
    from lastgood.errors import Refused

    ctx = context(stack.directory)
    with pytest.raises(Refused, match="already splits its traffic"):
        Deployer(ctx, CloudWatchSource(ctx.aws)).start(ask("orders", "2", [10.0, 100.0], 1.0))


# -- the canary feed's placeholders per kind ---------------------------------------------------------------------

CANARY = Canary.model_validate(
    {
        "period": "1m",
        "cloudwatch": {
            "requests": {
                "namespace": "AWS/ApplicationELB",
                "metric": "RequestCount",
                "dimensions": {"TargetGroup": "{target_group}", "LoadBalancer": "{load_balancer}", "C": "{component}"},
            },
            "errors": {
                "namespace": "Orders",
                "metric": "Failed",
                "dimensions": {"Version": "{version}", "Arn": "{version_arn}", "Alias": "{alias_arn}"},
            },
        },
    }
)


SOURCE = CloudWatchSource(AwsClients(AwsSettings(region="us-east-1")))  # never called: only queries are built


def test_the_canary_feed_gets_each_kinds_placeholders() -> None:
    lb = "arn:aws:elasticloadbalancing:us-east-1:123456789012"
    listener = Elbv2ListenerSpec(name="alb", listener_arn=f"{lb}:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2")
    state = {"target_groups": {f"{lb}:targetgroup/blue/73e2d6bc24d8a067": 80, f"{lb}:targetgroup/green/aa11": 20}}
    kind = Elbv2Listener()
    assert kind.current_split(listener, state).weight == 0.2
    feed = feed_for(CANARY, kind, listener, state, ("green", "blue"), SOURCE, datetime.now(UTC))
    dimensions = feed.query("requests", "canary").dimensions  # type: ignore[union-attr]
    assert dimensions == {
        "TargetGroup": "targetgroup/green/aa11",
        "LoadBalancer": "app/shop/50dc6c495c0c9188",
        "C": "alb",
    }
    assert feed.query("requests", "baseline").dimensions["TargetGroup"] == "targetgroup/blue/73e2d6bc24d8a067"  # type: ignore[union-attr]

    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:orders"
    spec = StepfunctionsAliasSpec(name="orders", state_machine="orders", alias="live")
    routing = {
        "routing": [{"version_arn": f"{machine}:7", "weight": 90}, {"version_arn": f"{machine}:8", "weight": 10}]
    }
    sfn = StepfunctionsAlias()
    feed = feed_for(CANARY, sfn, spec, routing, ("8", "7"), SOURCE, datetime.now(UTC))
    assert feed.query("errors", "canary").dimensions == {  # type: ignore[union-attr]
        "Version": "8",
        "Arn": f"{machine}:8",
        "Alias": f"{machine}:live",
    }
    assert sfn.current_split(spec, routing).candidate == "8"


ALB_CANARY = """\
canary:
  period: 1s
  warmup: 1s
  latency: []
  cloudwatch:
    requests: {namespace: AWS/ApplicationELB, metric: RequestCount, dimensions: {TargetGroup: "{target_group}", LoadBalancer: "{load_balancer}"}}
    errors: {namespace: AWS/ApplicationELB, metric: HTTPCode_Target_5XX_Count, dimensions: {TargetGroup: "{target_group}", LoadBalancer: "{load_balancer}"}}
"""  # noqa: E501


def test_the_guard_judges_a_canary_in_flight_on_a_listener(  # type: ignore[no-untyped-def]
    stack: Stack, aws: AwsClients, capsys
) -> None:
    """20% of the listener's traffic on green (shifted by another tool): the guard keeps a judge for it, fed by
    target group; with no data in moto for AWS/ApplicationELB it never judges, and never rolls back."""
    file = stack.directory / "lastgood.yaml"
    file.write_text(file.read_text() + ALB_CANARY)
    groups = [{"TargetGroupArn": stack.blue, "Weight": 80}, {"TargetGroupArn": stack.green, "Weight": 20}]
    aws.client("elbv2").modify_listener(
        ListenerArn=stack.listener, DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}]
    )
    code = main(["guard", "prod", "--for", "3s", "-f", str(file), "--output", "json"])
    outcome = json.loads(capsys.readouterr().out)
    # moto has no ALB data: the rollback trigger saw none, so the guard says it was blind (not "healthy")
    assert code == ExitCode.BLIND and outcome["status"] == "blind" and outcome["fired"] is None, outcome
    (judge,) = outcome["canary"]  # the alias at 100% and the record sets at 100/0 have no canary in flight
    assert judge["label"] == "alb at 20%"
    assert (judge["canary_version"], judge["baseline_version"]) == ("green", "blue")
    assert judge["periods_judged"] == 0 and judge["state"] == "warming-up"
