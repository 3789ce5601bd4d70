"""The `lastgood` command: error handling and exit codes at the top, command groups below."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from typer.exceptions import TyperException

from lastgood import __version__
from lastgood.cli import (
    approve_cmd,
    audit_cmd,
    deploy_cmd,
    drill_cmd,
    guard_cmd,
    iam_cmd,
    kpis_cmd,
    readiness_cmd,
    release_cmd,
    report_cmd,
    rollback_cmd,
    runbook_cmd,
    server_cmd,
    status_cmd,
    stop_cmd,
)
from lastgood.errors import ConfigError, Interrupted, LastgoodError
from lastgood.redact import redact

app = typer.Typer(
    name="lastgood",
    help="Rollback runbooks as software: record releases, plan and run verified rollbacks, guard new releases.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        print(f"lastgood {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version")
    ] = False,
) -> None:
    """lastgood: put an environment back on its last known good release, verified and recorded."""


runbook_cmd.register(app)
release_cmd.register(app)
status_cmd.register(app)
rollback_cmd.register(app)
iam_cmd.register(app)
guard_cmd.register(app)
stop_cmd.register(app)
audit_cmd.register(app)
kpis_cmd.register(app)
approve_cmd.register(app)
drill_cmd.register(app)
readiness_cmd.register(app)
report_cmd.register(app)
deploy_cmd.register(app)
server_cmd.register(app)


def _demo_commands() -> None:
    from lastgood.demo import cli as demo_cli

    demo_cli.register(app)


_demo_commands()


def _wants_json(argv: list[str]) -> bool:
    for index, arg in enumerate(argv):
        if arg in ("-o", "--output") and index + 1 < len(argv):
            return argv[index + 1].lower() == "json"
        if arg.startswith("--output="):
            return arg.split("=", 1)[1].lower() == "json"
    return False


def report_error(error: LastgoodError, as_json: bool) -> None:
    problems = redact(error.problems if isinstance(error, ConfigError) else [str(error)])
    if as_json:
        payload = {"error": type(error).__name__, "message": redact(str(error)), "problems": problems}
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return
    if isinstance(error, ConfigError):
        print(f"error: {error.source or 'runbook file'} has {len(problems)} problem(s):", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
    else:
        print(f"{'' if isinstance(error, Interrupted) else 'error: '}{redact(str(error))}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        # Without standalone mode, click hands back typer.Exit's code as the return value.
        returned = app(args=args, prog_name="lastgood", standalone_mode=False)
    except LastgoodError as error:
        report_error(error, _wants_json(args))
        return error.exit_code
    except typer.Exit as done:
        return int(done.exit_code)
    except typer.Abort:
        print("\naborted: nothing was changed", file=sys.stderr)
        return 3
    except TyperException as error:  # usage errors: a wrong flag, a missing argument
        show = getattr(error, "show", None)
        print(str(error), file=sys.stderr) if show is None else show()
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    if returned == 130:  # typer turns a KeyboardInterrupt into a silent 130
        print("\ninterrupted", file=sys.stderr)
    return returned if isinstance(returned, int) else 0


def entrypoint() -> None:
    sys.exit(main())
