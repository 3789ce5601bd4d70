"""The `lastgood` command: error handling and exit codes at the top, command groups below."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from typer.exceptions import TyperException

from lastgood import __version__
from lastgood.cli import globals as globals_
from lastgood.cli.lazy import LazyCommand, LazyGroup
from lastgood.errors import BadInput, ConfigError, Interrupted, LastgoodError
from lastgood.redact import redact

# One line per command: its name, the module whose register(app) adds it, and the line `lastgood --help` shows
# (the first sentence of the command's help; tests/cli/test_lazy_commands.py keeps the two equal).
# A command's module is imported only when that command runs.
COMMANDS: dict[str, LazyCommand] = {
    "validate": LazyCommand(
        "lastgood.cli.runbook_cmd",
        "Check a runbook file; print one line per problem, with its path in the file (warnings: exit 0).",
    ),
    "init": LazyCommand(
        "lastgood.cli.init_cmd",
        "Write a starter runbook for an app from what exists in the account; read its CHOOSE comments.",
    ),
    "schema": LazyCommand(
        "lastgood.cli.runbook_cmd", "Print the JSON Schema of the runbook file (for editors and linters)."
    ),
    "status": LazyCommand(
        "lastgood.cli.status_cmd",
        "What is live, running, held and awaiting approval: each environment's live release, the operation holding"
        " it, the deployments running or paused, the rollbacks running, awaiting approval, planned or resumable, the"
        " last rollback and an active stop.",
    ),
    "plan": LazyCommand("lastgood.cli.rollback_cmd", "Show what a rollback would change."),
    "rollback": LazyCommand(
        "lastgood.cli.rollback_cmd",
        "Plan, confirm, execute, verify and record a rollback; the release left is marked bad.",
    ),
    "resume": LazyCommand(
        "lastgood.cli.rollback_cmd",
        "Finish a rollback that failed, was interrupted or whose process died, without redoing the steps done; or"
        " go on with a paused deployment (or one whose process died) from its current step, in this process.",
    ),
    "show": LazyCommand(
        "lastgood.cli.show_cmd",
        "A rollback's steps, owner and timeline; a deployment's steps and decisions; a release's components and the"
        " rollbacks and deployments that touched it.",
    ),
    "watch": LazyCommand(
        "lastgood.cli.watch_cmd",
        "Follow a rollback or a deployment until it ends, from any machine that reads the ledger.",
    ),
    "iam-policy": LazyCommand(
        "lastgood.cli.iam_cmd", "Print the least-privilege IAM policy (JSON) that lastgood needs for this file."
    ),
    "guard": LazyCommand(
        "lastgood.cli.guard_cmd",
        "Watch the file's triggers (CloudWatch, Prometheus, probes); a rollback trigger that holds rolls back.",
    ),
    "stop": LazyCommand(
        "lastgood.cli.stop_cmd",
        "Emergency stop: throttle every API Gateway stage in the file to 0 and turn kill-switch flags off.",
    ),
    "kpis": LazyCommand(
        "lastgood.cli.kpis_cmd",
        "Time to detect, decide and restore, success and false rollback rates, data-loss incidents, against the file's"
        " targets (policy.targets); real incidents and drills apart, per environment and component kind.",
    ),
    "rollback-review": LazyCommand(
        "lastgood.cli.kpis_cmd",
        "Record whether a rollback was needed after all: the false rollback rate counts the unnecessary ones.",
    ),
    "approve": LazyCommand(
        "lastgood.cli.approve_cmd",
        "Approve a rollback that awaits approval; the last approval needed starts it (unless --no-run).",
    ),
    "deny": LazyCommand("lastgood.cli.approve_cmd", "Deny a rollback that awaits approval, with the reason recorded."),
    "approval-token": LazyCommand(
        "lastgood.cli.approve_cmd",
        "Mint the signed token a person needs to approve on a protected environment (needs the approval key).",
    ),
    "drill": LazyCommand(
        "lastgood.cli.drill_cmd",
        "A rollback drill: record, make the file's bad change, let the guard catch it, roll back, compare times.",
    ),
    "readiness": LazyCommand(
        "lastgood.cli.readiness_cmd",
        "Whether rolling back is still possible, for the live release and the one before it.",
    ),
    "report": LazyCommand(
        "lastgood.cli.report_cmd",
        "Write a rollback's incident record: timeline, trigger values, checklist ticks and post-rollback actions.",
    ),
    "deploy": LazyCommand(
        "lastgood.cli.deploy_cmd",
        "Shift a weighted component's traffic to VERSION step by step; the file's triggers judge each step.",
    ),
    "promote": LazyCommand(
        "lastgood.cli.deploy_cmd",
        "Promote the running (or paused) deployment now: all traffic to the new version, its release live.",
    ),
    "abort": LazyCommand(
        "lastgood.cli.deploy_cmd",
        "Abort the running (or paused) deployment: all traffic back on the old version, the release bad.",
    ),
    "pause": LazyCommand(
        "lastgood.cli.deploy_cmd",
        "Pause a running deployment: no further shift and no promotion, the traffic left where its step put it.",
    ),
    "demo": LazyCommand(
        "lastgood.demo.cli",
        "Run a whole story on a local endpoint: release, bad release, guard, automatic rollback, timeline.",
    ),
    "sandbox": LazyCommand(
        "lastgood.demo.cli",
        "Start the local endpoint with the shop app (v1 good, v2 bad and live) and stay up, for trying commands.",
    ),
    "release": LazyCommand("lastgood.cli.release_cmd", "Record and list releases: the exact state of every component."),
    "audit": LazyCommand("lastgood.cli.audit_cmd", "The append-only, hash-chained audit log in the ledger."),
    "server": LazyCommand(
        "lastgood.cli.server_cmd", "The team service: REST API, live dashboard, sign-in and roles, the guard always on."
    ),
    "check": LazyCommand(
        "lastgood.cli.check_cmd",
        "Tick a rollback's checklist item by hand (the file's checklists, else the built-in list), with a note.",
    ),
    "ack": LazyCommand(
        "lastgood.cli.ack_cmd",
        "Acknowledge an open or restored-unhealthy rollback: no further escalation step or update is sent.",
    ),
}


class Commands(LazyGroup):
    lazy_commands = COMMANDS


app = typer.Typer(
    cls=Commands,
    name="lastgood",
    help="Rollback runbooks as software: record releases, plan and run verified rollbacks, guard new releases.",
    no_args_is_help=True,
    add_completion=True,
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
    profile: globals_.ProfileOption = None,
    region: globals_.RegionOption = None,
    endpoint_url: globals_.EndpointOption = None,
    debug: globals_.DebugOption = False,
) -> None:
    """lastgood: put an environment back on its last known good release, verified and recorded."""
    globals_.apply(profile, region, endpoint_url, debug)


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


def _not_text(args: list[str]) -> BadInput | None:
    """An argument that is not UTF-8 (bytes Python kept as lone surrogates): no ledger or API can take it."""
    for index, arg in enumerate(args, start=1):
        try:
            arg.encode()
        except UnicodeEncodeError:
            return BadInput(f"argument {index} is not valid UTF-8 text: {ascii(arg)[:80]}; nothing was changed")
    return None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    refused = _not_text(args)
    if refused is not None:
        report_error(refused, _wants_json(args))
        return refused.exit_code
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
