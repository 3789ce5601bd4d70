"""`lastgood demo --serve`: after the story, the team server on the demo's endpoint, runbook and ledger, with
three people to sign in as, until Ctrl-C.

The served file is the demo's with a small `policy:` (written before the story, so the story runs on it): in
prod a person's rollback needs one approval from another person, while the guard still rolls back alone
(`automation: true`). A release v3 goes live after the story, so there is something to roll back.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path

from rich.console import Console

from lastgood.runtime.context import EnvContext
from lastgood.server.apps import Apps
from lastgood.server.run import serve
from lastgood.server.settings import ServerSettings
from lastgood.service.access import create_token
from lastgood.service.releases import record as record_release
from lastgood.testing import shop
from lastgood.testing.endpoint import free_port

POLICY = """\
policy:
  approvals:  # prod: a person's rollback waits for one approver other than them; the guard acts alone
    - {severity: critical, environments: [prod], roles: [approver], count: 1, automation: true}
    - {severity: high, environments: [prod], roles: [approver], count: 1, automation: true}
    - {severity: medium, environments: [prod], roles: [approver], count: 1, automation: true}
    - {severity: low, environments: [prod], roles: [approver], count: 1, automation: true}
  people:
    - {name: ada, roles: [approver]}
    - {name: abe, roles: [approver]}
    - {name: olive, roles: [operator]}
"""
USERS = (("ada", "admin"), ("abe", "approver"), ("olive", "operator"))
CREATED_BY = "lastgood-demo"


def serve_demo(console: Console, ctx: EnvContext, runbook_file: Path, port: int) -> int:
    """Serve until Ctrl-C; 0 once stopped."""
    _release_v3(ctx)
    settings = ServerSettings(runbooks=[runbook_file], host="127.0.0.1", port=port or free_port(), secure_cookies=False)
    tokens = _users(settings, ctx)
    console.print(" 6. release [bold]v3[/] deployed and recorded: roll it back to v1 through the server")
    welcome = threading.Thread(
        target=_welcome_once_listening, args=(settings, tokens, ctx.env), name="demo-welcome", daemon=True
    )
    welcome.start()
    with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C while the server shuts down
        serve(settings)
    console.print("server stopped")
    return 0


def _release_v3(ctx: EnvContext) -> None:
    for function in (f"shop-api-{ctx.env}", f"shop-worker-{ctx.env}"):
        version = shop.publish_new_version(ctx.aws, function, "v3")
        shop.shift_alias(ctx.aws, function, version, None, 0)
    record_release(ctx, "v3")


def _users(settings: ServerSettings, ctx: EnvContext) -> list[tuple[str, str, str]]:
    """(name, role, token) for each demo user, in the ledger the server is about to open."""
    ledger = Apps.load(settings.runbooks).ledger
    return [(name, role, create_token(ledger, name, role, created_by=CREATED_BY).token) for name, role in USERS]


def _welcome_once_listening(settings: ServerSettings, tokens: list[tuple[str, str, str]], env: str) -> None:
    """The URL and tokens once the port answers: whoever reads them (a person, a script) can use them at once."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            socket.create_connection((settings.host, settings.port), timeout=1).close()
        except OSError:
            time.sleep(0.1)
            continue
        _print_welcome(settings.url, tokens, env)
        return


def _print_welcome(url: str, tokens: list[tuple[str, str, str]], env: str) -> None:
    # plain print: the lines are read by people and scripts, and Rich would wrap a long token
    print(f"dashboard: {url}/  (sign in at {url}/login with a token below)")
    print(f"api: {url}/api/v1  (Authorization: Bearer TOKEN)")
    print("tokens (shown once; the server keeps only their hashes):")
    for name, role, token in tokens:
        print(f"  {name:<6} {role:<9} {token}")
    print(
        f"try the two-person rule: as olive, roll {env} back (it waits for an approval); as abe, approve it;"
        " olive cannot approve her own"
    )
    print("Ctrl-C stops the server and the demo.", flush=True)
