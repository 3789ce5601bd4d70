"""`lastgood sandbox`: the demo's endpoint and shop app, left running so a person can try every command."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from rich.console import Console

from lastgood.aws.clients import AwsClients
from lastgood.config.loader import load_runbook
from lastgood.ledger.db import open_ledger, resolve_url
from lastgood.runtime.context import EnvContext
from lastgood.service.releases import record as record_release
from lastgood.testing import shop
from lastgood.testing.endpoint import LocalEndpoint, export_lines, use_fake_credentials
from lastgood.testing.traffic import FunctionTraffic, TrafficSimulator


def run_sandbox(directory: Path | None, port: int | None, stop: threading.Event | None = None) -> None:
    console = Console(highlight=False)
    workdir = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="lastgood-sandbox-"))
    workdir.mkdir(parents=True, exist_ok=True)
    use_fake_credentials()
    endpoint = LocalEndpoint(port).start()
    runbook_file = workdir / "lastgood.yaml"
    runbook_file.write_text(shop.runbook_text(endpoint.url, "sqlite:///state.db", period="1m", for_="5m"))
    runbook = load_runbook(runbook_file)
    traffic = []
    for env in ("staging", "prod"):
        aws = AwsClients(runbook.environment(env).aws)
        ctx = EnvContext(runbook, env, open_ledger(resolve_url(runbook.state, runbook.base_dir)), aws)
        app = shop.create_shop(aws, env)
        record_release(ctx, "v1")
        versions = {name: shop.publish_new_version(aws, name, "v2") for name in app.functions}
        for name, version in versions.items():
            shop.shift_alias(aws, name, "1", version, 1.0)
        shop.deploy_config_change(aws, app, "v2")
        record_release(ctx, "v2")
        functions = [FunctionTraffic(n, 100.0, {v: 0.2}) for n, v in versions.items()]
        traffic.append(TrafficSimulator(aws, functions))
    for simulator in traffic:
        simulator.start()
    console.print(f"[bold]lastgood sandbox[/] is up: endpoint [bold]{endpoint.url}[/]")
    console.print(f"runbook file: {runbook_file}")
    console.print("staging and prod each have release v1 (good) and v2 (bad, live, 20% errors on the new versions)")
    console.print("in another shell:")
    for line in export_lines(endpoint.url, runbook_file):  # one per line, never wrapped: each pastes alone
        console.print(f"  {line}", soft_wrap=True, markup=False, highlight=False)
    for command in ("release list prod", "plan prod", "rollback staging", "guard prod --for 10m", "iam-policy"):
        console.print(f"  lastgood {command}")
    console.print("Ctrl-C stops the sandbox.")
    try:
        (stop or threading.Event()).wait()
    except KeyboardInterrupt:
        pass
    finally:
        for simulator in traffic:
            simulator.stop()
        endpoint.stop()
