"""`lastgood demo`: a bad release caught by the guard and rolled back, on a local endpoint, in under a minute."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lastgood.aws.clients import AwsClients
from lastgood.config.loader import load_runbook
from lastgood.demo import serve
from lastgood.guard.loop import GuardOutcome
from lastgood.judge.base import TriggerVerdict
from lastgood.ledger import store
from lastgood.ledger.db import open_ledger, resolve_url
from lastgood.runtime.context import EnvContext
from lastgood.service.guard import guard_for
from lastgood.service.releases import record as record_release
from lastgood.sources.cloudwatch import CloudWatchSource
from lastgood.testing import shop
from lastgood.testing.endpoint import LocalEndpoint, use_fake_credentials
from lastgood.testing.traffic import FunctionTraffic, TrafficSimulator

ENV = "prod"
GOOD_ERROR_RATE = 0.005
BAD_ERROR_RATE = 0.25


@dataclass
class Timeline:
    started: float = field(default_factory=time.monotonic)
    rows: list[tuple[datetime, str, str]] = field(default_factory=list)

    def mark(self, event: str, detail: str) -> None:
        self.rows.append((datetime.now(UTC), event, detail))


class DemoGuardListener:
    def __init__(self, console: Console, timeline: Timeline) -> None:
        self.console = console
        self.timeline = timeline
        self._last: dict[str, str] = {}
        self.decided = threading.Event()  # the guard is rolling back: the scripted promotion must not happen

    def evaluated(self, verdicts: list) -> None:  # type: ignore[type-arg]
        for v in verdicts:
            if self._last.get(v.trigger) != v.state:
                self._last[v.trigger] = v.state
                colour = {"ok": "green", "breaching": "yellow", "firing": "red"}.get(v.state, "dim")
                self.console.print(f"   guard: [{colour}]{v.state}[/] {v.trigger}: {v.detail}")

    def rollback_started(self, rollback_id: str, verdict: TriggerVerdict) -> None:
        self.decided.set()
        if verdict.trigger == "canary-judge":
            self.console.print(f"   guard: [red]firing[/] {verdict.trigger}: {escape(verdict.detail)}")
        self.console.print(f"   guard: [bold red]rolling back[/] ({rollback_id})")


def run_demo(
    keep: Path | None = None,
    console: Console | None = None,
    canary_seconds: float = 12.0,
    serve_port: int | None = None,
) -> int:
    """`serve_port`: then keep the team server up on the demo (0: a free port) until Ctrl-C."""
    console = console or Console(highlight=False)
    workdir = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="lastgood-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    use_fake_credentials()
    endpoint = LocalEndpoint().start()
    traffic: TrafficSimulator | None = None
    try:
        extra = serve.POLICY if serve_port is not None else ""
        outcome, timeline, ctx = _scenario(console, workdir, endpoint, canary_seconds, extra)
        traffic = outcome[1]
        code = _report(console, outcome[0], timeline, ctx, workdir, keep is not None)
        if code or serve_port is None:
            return code
        traffic.stop()
        return serve.serve_demo(console, ctx, workdir / "lastgood.yaml", serve_port)
    finally:
        if traffic is not None:
            traffic.stop()
        endpoint.stop()
        if keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


def _scenario(
    console: Console, workdir: Path, endpoint: LocalEndpoint, canary_seconds: float, extra: str = ""
) -> tuple[tuple[GuardOutcome, TrafficSimulator], Timeline, EnvContext]:
    timeline = Timeline()
    console.print(f"[bold]lastgood demo[/]: local AWS endpoint at {endpoint.url} (no AWS account used)")
    runbook_file = workdir / "lastgood.yaml"
    text = shop.runbook_text(endpoint.url, "sqlite:///state.db", period="1s", for_="5s")
    runbook_file.write_text(text + shop.canary_text(period="1s", warmup="2s") + extra)
    runbook = load_runbook(runbook_file)
    aws = AwsClients(runbook.environment(ENV).aws)
    ctx = EnvContext(runbook, ENV, open_ledger(resolve_url(runbook.state, runbook.base_dir)), aws)

    with console.status("creating the shop app (2 Lambda functions, 3 parameters, 1 secret)"):
        app = shop.create_shop(aws, ENV)
        record_release(ctx, "v1")
    timeline.mark("deploy", "release v1 deployed and recorded (good)")
    console.print(" 1. release [bold]v1[/] deployed and recorded: api and worker on version 1")

    functions = [FunctionTraffic(name, 120.0, {"1": GOOD_ERROR_RATE}, GOOD_ERROR_RATE) for name in app.functions]
    traffic = TrafficSimulator(aws, functions)
    traffic.start()
    time.sleep(3)

    new_versions = {name: shop.publish_new_version(aws, name, "v2") for name in app.functions}
    for function in functions:
        function.error_rate_by_version[new_versions[function.name]] = BAD_ERROR_RATE
    for name, version in new_versions.items():
        shop.shift_alias(aws, name, "1", version, 0.10)
    shop.deploy_config_change(aws, app, "v2")
    record_release(ctx, "v2")
    timeline.mark("deploy", "release v2 deployed at 10% canary (bad: 25% errors), parameter changed, secret rotated")
    console.print(" 2. release [bold]v2[/] deployed to 10% of traffic, with a changed parameter and a rotated secret")

    listener = DemoGuardListener(console, timeline)
    guard = guard_for(ctx, CloudWatchSource(aws), listener=listener)
    _shift_later(aws, new_versions, canary_seconds, console, timeline, listener.decided)
    console.print(
        " 3. the guard watches api-errors (> 5% of invocations for 5s; at 10% of traffic v2 shows as about 3%)\n"
        "    and judges each canary version against its baseline version, every second"
    )
    outcome = guard.run(duration=40)
    if outcome.rollback is not None:
        time.sleep(2.5)
        after = [v for v in guard.evaluate() if v.trigger == "api-errors"]
        if after:
            console.print(f" 5. after the rollback: api-errors {after[0].state}, {after[0].detail}")
    return (outcome, traffic), timeline, ctx


def _shift_later(
    aws: AwsClients,
    versions: dict[str, str],
    delay: float,
    console: Console,
    timeline: Timeline,
    decided: threading.Event,
) -> None:
    """Promote v2 to all traffic after `delay`, as a deployment script would, unless the guard acted first."""

    def shift() -> None:
        if decided.is_set():
            return
        for name, version in versions.items():
            shop.shift_alias(aws, name, "1", version, 1.0)
        timeline.mark("deploy", "release v2 promoted to 100% of traffic")
        console.print(" 4. release [bold]v2[/] promoted to 100% of traffic")

    timer = threading.Timer(delay, shift)
    timer.daemon = True
    timer.start()


def _report(
    console: Console, outcome: GuardOutcome, timeline: Timeline, ctx: EnvContext, workdir: Path, kept: bool
) -> int:
    with ctx.session() as session:
        events = store.events_since(session, ctx.app, ctx.env)
        rows = [(e.at, e.type, e.message) for e in events if e.type not in ("release-recorded",)]
    rows += timeline.rows
    rows.sort(key=lambda row: row[0])
    table = Table(title="timeline", title_justify="left")
    for column in ("t+ (s)", "event", "detail"):
        table.add_column(column)
    start = rows[0][0] if rows else datetime.now(UTC)
    for at, event, detail in rows:
        table.add_row(f"{(at - start).total_seconds():6.1f}", event, detail)
    console.print(table)
    elapsed = time.monotonic() - timeline.started
    if outcome.rollback is None or outcome.rollback.status != "succeeded" or outcome.detected_at is None:
        console.print(f"[red]demo failed[/]: {outcome.status}: {outcome.message}")
        return 1
    promoted = next((at for at, _e, d in timeline.rows if "100%" in d), None)
    deployed = next((at for at, _e, d in timeline.rows if "10% canary" in d), None)
    restored = outcome.detected_at.timestamp() + outcome.rollback.seconds
    if promoted is not None:
        console.print(f"bad release at 100% -> detected: {(outcome.detected_at - promoted).total_seconds():.1f}s")
    elif deployed is not None and outcome.fired is not None:
        console.print(
            f"bad release at 10% -> detected by {outcome.fired.trigger}, before any promotion: "
            f"{(outcome.detected_at - deployed).total_seconds():.1f}s"
        )
    console.print(
        f"detected -> restored and verified: [bold green]{restored - outcome.detected_at.timestamp():.2f}s[/] "
        f"({len(outcome.rollback.to_dict()['done'])} components, rollback {outcome.rollback.id}); "
        f"demo took {elapsed:.0f}s"
    )
    if kept:
        console.print(f"state kept in {workdir} (try: lastgood -f {workdir / 'lastgood.yaml'} ...)")
    return 0
