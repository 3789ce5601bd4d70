"""`lastgood demo --scenario data-corruption`: the runbooks' Scenario 4 on a local endpoint.

A bad release corrupts orders in DynamoDB. lastgood stops traffic (API Gateway throttled to 0), restores the
table as it was at the last good release into a NEW table, runs the data checks, switches the application's
pointer to it, releases the stop, and counts the writes that fall in the data-loss window.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from lastgood.aws.clients import AwsClients
from lastgood.config.durations import format_duration
from lastgood.config.loader import load_runbook
from lastgood.engine.planner import Plan
from lastgood.ledger.db import open_ledger, resolve_url
from lastgood.runtime.context import EnvContext
from lastgood.service.releases import record as record_release
from lastgood.service.rollbacks import Hooks, RollbackRequest, request_rollback
from lastgood.service.stop import release as release_stop
from lastgood.service.stop import stop as stop_traffic
from lastgood.testing import shop
from lastgood.testing.endpoint import LocalEndpoint, use_fake_credentials

ENV = "prod"
TABLE = f"shop-orders-{ENV}"
POINTER = f"/shop/{ENV}/orders-table"
SEED_ORDERS = 200

RUNBOOK = """\
app: shop
state: sqlite:///state.db
environments:
  prod:
    aws: {{region: us-east-1, endpoint_url: "{endpoint}"}}
    protected: true
    rto: 15m
components:
  - name: api
    kind: lambda-alias
    function: shop-api-{{env}}
    depends_on: [orders]      # code first, then data
  - name: api-stage
    kind: apigateway-stage
    rest_api: shop-api
    stage: prod
  - name: orders
    kind: dynamodb-table
    table: shop-orders-{{env}}
    pointer: {{ssm_parameter: /shop/{{env}}/orders-table}}
    backup: true
    restore_from: backup      # the local endpoint's point-in-time restore is not time-aware; a backup is
    checks:
      count_tolerance: 0.0
      sample_keys: [{{order_id: order-00001}}, {{order_id: order-00200}}]
      queries:
        - {{filter: "#t < :zero", names: {{"#t": total}}, values: {{":zero": 0}}, expect_count: 0}}
"""


@dataclass
class Shop:
    """The application: clients place orders through the API into the table the pointer names."""

    aws: AwsClients
    api_id: str
    accepted: list[tuple[float, bool]] = field(default_factory=list)  # (time, written by the bad release)
    rejected: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        number = SEED_ORDERS
        while not self._stop.wait(0.05):
            if self._throttled():
                self.rejected += 1  # API Gateway answers 429 while the stage is throttled to 0
                continue
            number += 1
            corrupt = self._live_version() == "2"  # release v2's code is the bad one
            table = self.aws.client("ssm").get_parameter(Name=POINTER)["Parameter"]["Value"]
            total = -1 if corrupt else 10 + number % 90
            self.aws.client("dynamodb").put_item(
                TableName=table, Item={"order_id": {"S": f"order-{number:05d}"}, "total": {"N": str(total)}}
            )
            if corrupt:  # the bad release also rewrites an existing order
                victim = {"order_id": {"S": f"order-{1 + number % SEED_ORDERS:05d}"}}
                self.aws.client("dynamodb").update_item(
                    TableName=table,
                    Key=victim,
                    UpdateExpression="SET #t = :bad",
                    ExpressionAttributeNames={"#t": "total"},
                    ExpressionAttributeValues={":bad": {"N": "-1"}},
                )
            self.accepted.append((time.time(), corrupt))

    def _live_version(self) -> str:
        return str(self.aws.client("lambda").get_alias(FunctionName=f"shop-api-{ENV}", Name="live")["FunctionVersion"])

    def _throttled(self) -> bool:
        stage = self.aws.client("apigateway").get_stage(restApiId=self.api_id, stageName="prod")
        settings = (stage.get("methodSettings") or {}).get("*/*", {})
        return bool(settings.get("throttlingRateLimit") == 0)

    def stop(self) -> None:
        self._stop.set()


def create_resources(aws: AwsClients) -> str:
    shop.create_function(aws, f"shop-api-{ENV}", shop._role(aws))
    api = aws.client("apigateway")
    api_id = str(api.create_rest_api(name="shop-api")["id"])
    root = api.get_resources(restApiId=api_id)["items"][0]["id"]
    api.put_method(restApiId=api_id, resourceId=root, httpMethod="POST", authorizationType="NONE")
    api.put_integration(restApiId=api_id, resourceId=root, httpMethod="POST", type="MOCK")
    api.create_deployment(restApiId=api_id, stageName="prod")
    limits = [("rateLimit", "100"), ("burstLimit", "200")]
    api.update_stage(
        restApiId=api_id,
        stageName="prod",
        patchOperations=[{"op": "replace", "path": f"/*/*/throttling/{k}", "value": v} for k, v in limits],
    )
    dynamodb = aws.client("dynamodb")
    dynamodb.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "order_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "order_id", "KeyType": "HASH"}],
    )
    dynamodb.update_continuous_backups(
        TableName=TABLE, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    for number in range(1, SEED_ORDERS + 1):
        dynamodb.put_item(
            TableName=TABLE, Item={"order_id": {"S": f"order-{number:05d}"}, "total": {"N": str(10 + number % 90)}}
        )
    aws.client("ssm").put_parameter(Name=POINTER, Value=TABLE, Type="String")
    return api_id


def corrupted(aws: AwsClients, table: str) -> int:
    pages = (
        aws.client("dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=table,
            FilterExpression="#t < :zero",
            ExpressionAttributeNames={"#t": "total"},
            ExpressionAttributeValues={":zero": {"N": "0"}},
            Select="COUNT",
        )
    )
    return sum(int(page["Count"]) for page in pages)


def run_data_corruption(keep: Path | None = None, console: Console | None = None) -> int:
    console = console or Console(highlight=False)
    workdir = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="lastgood-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    use_fake_credentials()
    endpoint = LocalEndpoint().start()
    try:
        return _scenario(console, workdir, endpoint)
    finally:
        endpoint.stop()
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


def _scenario(console: Console, workdir: Path, endpoint: LocalEndpoint) -> int:
    started = time.monotonic()
    console.print(f"[bold]lastgood demo: data corruption[/] (runbook Scenario 4), local endpoint {endpoint.url}")
    (workdir / "lastgood.yaml").write_text(RUNBOOK.format(endpoint=endpoint.url))
    runbook = load_runbook(workdir / "lastgood.yaml")
    aws = AwsClients(runbook.environment(ENV).aws)
    ctx = EnvContext(runbook, ENV, open_ledger(resolve_url(runbook.state, runbook.base_dir)), aws)
    with console.status("creating the shop: API Gateway stage, orders table (200 orders), table pointer"):
        api_id = create_resources(aws)
        record_release(ctx, "v1")
    console.print(f" 1. release [bold]v1[/] recorded: {SEED_ORDERS} orders, on-demand backup taken")
    orders = Shop(aws, api_id)
    writer = threading.Thread(target=orders.run, name="orders", daemon=True)
    writer.start()
    time.sleep(2.5)
    name = f"shop-api-{ENV}"
    shop.shift_alias(aws, name, "1", shop.publish_new_version(aws, name, "v2"), 1.0)
    record_release(ctx, "v2")
    console.print(" 2. release [bold]v2[/] deployed: it writes negative totals and rewrites existing orders")
    time.sleep(2.5)
    bad = corrupted(aws, TABLE)
    console.print(f" 3. [red]data corruption detected[/]: {bad} orders with a negative total")

    stopped = stop_traffic(ctx)
    stop_time = time.time()
    console.print(f" 4. emergency stop {stopped.id}: {', '.join(stopped.done)} throttled to 0; writes are rejected")

    # The stage stays stopped: rolling it back now would lift the stop before the data is good again.
    request = RollbackRequest(to="v1", only=["api", "orders"], reason="data corruption in orders", confirmed=True)
    outcome = request_rollback(ctx, request, Hooks(on_plan=lambda plan: _show_plan(console, plan)))
    result = outcome.result
    if result is None or result.status != "succeeded":
        console.print(f"[red]restore failed[/]: {outcome.message}")
        orders.stop()
        return 1
    restored = aws.client("ssm").get_parameter(Name=POINTER)["Parameter"]["Value"]
    console.print(" 6. code back on version 1, then the table restored")
    console.print(f"    into NEW table [bold]{restored}[/]; data checks passed; pointer switched")
    console.print(
        f"    original table {TABLE} kept untouched ({corrupted(aws, TABLE)} corrupted orders, for forensics)"
    )

    release_stop(ctx)
    console.print(" 7. emergency stop released: orders flow again, into the restored table")
    time.sleep(1.0)
    orders.stop()

    recorded_at = _recorded_time(ctx)
    in_window = [(at, bad_write) for at, bad_write in orders.accepted if recorded_at <= at <= stop_time]
    good_lost = sum(1 for _, bad_write in in_window if not bad_write)
    bad_lost = sum(1 for _, bad_write in in_window if bad_write)
    console.print(
        f"writes in the data-loss window: [bold]{len(in_window)}[/] ({good_lost} good orders to re-enter from "
        f"logs, {bad_lost} corrupt writes discarded); requests rejected during the stop: {orders.rejected}"
    )
    console.print(
        f"corrupted orders in the restored table: {corrupted(aws, restored)}; "
        f"restore took {result.seconds:.2f}s; demo took {time.monotonic() - started:.0f}s"
    )
    return 0


def _show_plan(console: Console, plan: Plan) -> None:
    for step in plan.steps:
        console.print(f" 5. plan: {step.component}: {step.change.action} {step.change.before} -> {step.change.after}")
    window = max(s.change.data_loss_window_seconds or 0.0 for s in plan.steps)
    rto = " (over the 15m recovery-time objective: AWS restores take long)" if plan.exceeds_rto else ""
    console.print(
        f"    data-loss window {format_duration(window)}; estimate {format_duration(plan.estimate_seconds)}{rto}"
    )


def _recorded_time(ctx: EnvContext) -> float:
    from lastgood.ledger import store

    with ctx.session() as session:
        release = store.get_release(session, ctx.app, ctx.env, "v1")
        return release.recorded_at.timestamp()
