"""lastgood server (serve the API, the dashboard and the background work), lastgood server token ..."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from lastgood.cli.common import OutputFormat, OutputOption, cli_user, emit, option_duration, stderr, stdout

server_app = typer.Typer(
    help="The team service: REST API, live dashboard, sign-in and roles, the guard always on.",
    no_args_is_help=False,
    invoke_without_command=True,
)
token_app = typer.Typer(help="API tokens of the server's users (stored hashed; shown once).", no_args_is_help=True)
server_app.add_typer(token_app, name="token")

RunbookOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--runbook",
        "-r",
        help="A runbook file, or a folder of them; repeatable [default: $LASTGOOD_FILE or ./lastgood.yaml]",
    ),
]
StateOption = Annotated[
    str | None,
    typer.Option("--state", help="The server's database URL [default: $LASTGOOD_STATE, else the first file's state]"),
]


def register(app: typer.Typer) -> None:
    app.add_typer(server_app, name="server")


def _runbooks(runbook: list[Path] | None) -> list[Path]:
    if runbook:
        return runbook
    return [Path(os.environ.get("LASTGOOD_FILE") or "lastgood.yaml")]


@server_app.callback()
def server(
    ctx: typer.Context,
    runbook: RunbookOption = None,
    state: StateOption = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on")] = 8080,
    public_url: Annotated[
        str | None, typer.Option("--public-url", help="How browsers and Slack reach this server, for links")
    ] = None,
    insecure_cookies: Annotated[
        bool, typer.Option("--insecure-cookies", help="Session cookies without Secure (plain http, not localhost)")
    ] = False,
    trusted_proxy_header: Annotated[
        str | None,
        typer.Option("--trusted-proxy-header", help="Header naming the user, set by an authenticating proxy"),
    ] = None,
    trusted_proxy: Annotated[
        list[str] | None, typer.Option("--trusted-proxy", help="Address or network the header is trusted from")
    ] = None,
    role: Annotated[
        str,
        typer.Option(
            "--role",
            help="all: API, dashboard and background work; api: API and dashboard only; worker: background work "
            "only (the guard, rollbacks, deployments). api and worker need a PostgreSQL state",
        ),
    ] = "all",
) -> None:
    """Serve the API (/api/v1), the dashboard (/) and the background work until Ctrl-C or SIGTERM."""
    if ctx.invoked_subcommand is not None:
        return
    from lastgood.server.run import serve
    from lastgood.server.settings import ServerSettings, check_networks, check_role

    settings = ServerSettings(
        runbooks=_runbooks(runbook),
        state=state,
        host=host,
        port=port,
        public_url=public_url,
        secure_cookies=not insecure_cookies,
        trusted_proxy_header=trusted_proxy_header,
        trusted_proxies=check_networks(trusted_proxy or []),
        slack_signing_secret=os.environ.get("LASTGOOD_SLACK_SIGNING_SECRET") or None,
        role=check_role(role),
    )
    serve(settings)


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option("--user", help="Who the token is for (a person of the file's people:)")],
    role: Annotated[str, typer.Option("--role", help="viewer | operator | approver | admin")],
    runbook: RunbookOption = None,
    state: StateOption = None,
    expires: Annotated[str | None, typer.Option("--expires", help="Lifetime, e.g. 90d [default: none]")] = None,
    label: Annotated[str, typer.Option("--label", help="What the token is for")] = "",
    output: OutputOption = OutputFormat.text,
) -> None:
    """Create the user (or change its role) and print a new API token, once: keep it secret."""
    from lastgood.server.apps import Apps
    from lastgood.service.access import create_token

    lifetime = option_duration("--expires", expires) if expires else None
    apps = Apps.load(_runbooks(runbook), state)
    issued = create_token(apps.ledger, user, role, created_by=cli_user(), expires_in=lifetime, label=label)
    emit(output, issued, lambda: _print_token(issued.user, issued.role, issued.token))


def _print_token(user: str, role: str, token: str) -> None:
    stderr.print(f"token for {escape(user)} ({role}); shown once, only its hash is kept:")
    print(token)  # plain print: the redacting console would mask nothing here, and scripts read stdout


@token_app.command("list")
def token_list(
    runbook: RunbookOption = None, state: StateOption = None, output: OutputOption = OutputFormat.text
) -> None:
    """Every token: its id, user, label, when it was last used, whether it is revoked. Never the secret."""
    from lastgood.server.apps import Apps
    from lastgood.service.access import list_tokens

    tokens = list_tokens(Apps.load(_runbooks(runbook), state).ledger)

    def render() -> None:
        for t in tokens:
            used = t.last_used_at.isoformat(timespec="seconds") if t.last_used_at else "never"
            revoked = " revoked" if t.revoked else ""
            stdout.print(f"{t.id}  {escape(t.user):<20} used {used}{revoked}  {escape(t.label)}")

    emit(output, {"tokens": [t.model_dump(mode="json") for t in tokens]}, render)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (lastgood server token list)", metavar="ID")],
    runbook: RunbookOption = None,
    state: StateOption = None,
) -> None:
    """Revoke a token: requests with it are refused from now on."""
    from lastgood.server.apps import Apps
    from lastgood.service.access import revoke_token

    revoke_token(Apps.load(_runbooks(runbook), state).ledger, token_id, by=cli_user())
    stderr.print(f"revoked {escape(token_id)}")
