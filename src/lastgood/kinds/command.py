"""command: any other tool (helm rollback, a cdk deploy of a git ref, a team's rollback.sh) as shell commands.

`record` prints the value to keep (e.g. `git rev-parse HEAD`); `rollback` brings the system back to it, with
{value} replaced by the recorded value, shell-quoted. Output is captured (its tail lands in the ledger), and a
command that outlives its timeout is killed with its whole process group.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import IO, ClassVar, Literal, Protocol

from pydantic import Field

from lastgood.config.durations import Duration, format_duration
from lastgood.config.models import Component
from lastgood.errors import StepFailed
from lastgood.kinds.base import ApplyResult, Change, IamScope, IamStatement, Kind, KindContext, State

OUTPUT_LIMIT = 8 * 1024
"""Bytes of a command's output kept for the ledger (the end of it, where errors are)."""
VALUE_LIMIT = 64 * 1024
_GRACE_SECONDS = 5.0


class CommandSpec(Component):
    kind: Literal["command"] = "command"
    path_fields: ClassVar[tuple[str, ...]] = ("cwd",)
    record: str = Field(
        description="Shell command whose stdout (stripped) is the value recorded at a release, e.g."
        " `git rev-parse HEAD`. The value is stored as is: never print a secret."
    )
    rollback: str = Field(
        description="Shell command that brings the system back; {value} becomes the recorded value, shell-quoted"
        " (write it bare, not inside quotes). Also in $LASTGOOD_VALUE, with $LASTGOOD_ENV and $LASTGOOD_APP."
    )
    verify: str | None = Field(
        default=None,
        description="Shell command whose exit status 0 means the system is at the recorded value"
        " (default: run `record` again and compare). {value} is substituted as in rollback.",
    )
    timeout: Duration = Field(default=600.0, description="Per command run; then its process group is killed.")
    cwd: str | None = Field(default=None, description="Working directory of the commands.")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment variables for the commands.")
    destructive: bool = Field(
        default=False, description="The rollback can lose data: the plan says so and asks for extra confirmation."
    )


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    output: str
    """The end of stdout and stderr together (stderr alone when stdout was kept apart)."""
    seconds: float


def _tail(file: IO[bytes], limit: int = OUTPUT_LIMIT) -> str:
    size = file.seek(0, os.SEEK_END)
    file.seek(max(0, size - limit))
    text = file.read().decode(errors="replace")
    return (f"[... {size - limit} bytes cut ...]\n" if size > limit else "") + text


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """TERM to the command's whole process group, KILL to whatever is left after a grace period."""
    for sig, wait in ((signal.SIGTERM, _GRACE_SECONDS), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue


class ShellSettings(Protocol):
    """Where and how long a command runs (a command component, or a redeploy's command)."""

    @property
    def cwd(self) -> str | None: ...
    @property
    def env(self) -> dict[str, str]: ...
    @property
    def timeout(self) -> float: ...


def run_shell(command: str, spec: ShellSettings, env: dict[str, str], what: str, keep_stdout: bool = False) -> Ran:
    """Run one command under /bin/sh in its own session, output to temporary files (no pipe to fill up)."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            process = subprocess.Popen(
                ["/bin/sh", "-c", command],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err if keep_stdout else subprocess.STDOUT,
                cwd=spec.cwd,
                env={**os.environ, **spec.env, **env},
                start_new_session=True,
            )
        except OSError as error:
            raise StepFailed(f"{what} command could not start: {error}") from None
        try:
            code = process.wait(timeout=spec.timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raise StepFailed(
                f"{what} command timed out after {format_duration(spec.timeout)} and was killed;"
                f" last output:\n{_tail(out if not keep_stdout else err, 2000)}"
            ) from None
        stdout = ""
        if keep_stdout:
            if out.seek(0, os.SEEK_END) > VALUE_LIMIT:
                raise StepFailed(f"{what} command printed over {VALUE_LIMIT} bytes: record an id, not a document")
            out.seek(0)
            stdout = out.read().decode(errors="replace")
        return Ran(code, stdout, _tail(err if keep_stdout else out), time.monotonic() - started)


def _failed(what: str, ran: Ran) -> StepFailed:
    return StepFailed(f"{what} command exited {ran.code}; last output:\n{ran.output[-2000:].strip() or '(none)'}")


class Command(Kind[CommandSpec]):
    name = "command"
    spec_model = CommandSpec
    estimate_seconds = 30.0
    verify_timeout_seconds = 300.0
    verify_interval_seconds = 5.0

    @staticmethod
    def _env(ctx: KindContext, value: str | None = None) -> dict[str, str]:
        env = {"LASTGOOD_ENV": ctx.env, "LASTGOOD_APP": ctx.app, "LASTGOOD_STEP": ctx.token}
        if value is not None:
            env["LASTGOOD_VALUE"] = value
        return env

    def read(self, spec: CommandSpec, ctx: KindContext) -> State:
        ran = run_shell(spec.record, spec, self._env(ctx), "record", keep_stdout=True)
        if ran.code != 0:
            raise _failed("record", ran)
        return {"value": ran.stdout.strip()}

    def differences(self, spec: CommandSpec, current: State, target: State) -> list[str]:
        if current.get("value") == target.get("value"):
            return []
        return [f"{_short(current.get('value'))} -> {_short(target.get('value'))}"]

    def plan(self, spec: CommandSpec, current: State, target: State) -> Change | None:
        change = super().plan(spec, current, target)
        if change is None:
            return None
        notes = [f"runs the rollback command with {{value}} = {shlex.quote(str(target.get('value')))}"]
        if spec.destructive:
            notes.append("declared destructive in the runbook file")
        return Change(
            action=change.action,
            before=change.before,
            after=change.after,
            estimate_seconds=change.estimate_seconds,
            destructive=spec.destructive,
            notes=tuple(notes),
        )

    def action_name(self, current: State, target: State) -> str:
        return "run-command"

    def apply(self, spec: CommandSpec, ctx: KindContext, target: State) -> ApplyResult:
        value = str(target.get("value", ""))
        try:
            if self.read(spec, ctx).get("value") == value:
                return ApplyResult(f"already at {_short(value)}", changed=False)
        except StepFailed as error:  # a broken system may not answer `record`: that is no reason not to roll back
            ctx.progress(f"{error}; running the rollback anyway")
        ran = run_shell(_with_value(spec.rollback, value), spec, self._env(ctx, value), "rollback")
        if ran.code != 0:
            raise _failed("rollback", ran)
        detail = f"rollback command exited 0 after {format_duration(ran.seconds)}"
        if ran.output.strip():
            detail += "; output:\n" + ran.output.rstrip()
        return ApplyResult(detail, extra={"exit_code": ran.code, "output": ran.output, "seconds": ran.seconds})

    def verify(self, spec: CommandSpec, ctx: KindContext, target: State) -> list[str]:
        value = str(target.get("value", ""))
        try:
            if spec.verify is None:
                return self.differences(spec, self.read(spec, ctx), target)
            ran = run_shell(_with_value(spec.verify, value), spec, self._env(ctx, value), "verify")
        except StepFailed as error:  # e.g. a tool still restarting: polled again until verify_timeout_seconds
            return [str(error)]
        if ran.code == 0:
            return []
        tail = ran.output[-300:].strip()
        return [f"verify command exited {ran.code}" + (f": {tail}" if tail else "")]

    def describe(self, state: State) -> str:
        return _short(state.get("value"))

    def warnings(self, spec: CommandSpec, state: State) -> list[str]:
        if not state.get("value"):
            return ["the record command printed nothing: a rollback would get an empty {value}"]
        return []

    def iam_statements(self, spec: CommandSpec, scope: IamScope) -> list[IamStatement]:
        return []  # the commands run with whatever credentials their tools find


def _with_value(command: str, value: str) -> str:
    # str.replace, not str.format: shell commands are full of braces (${VAR}, awk '{print}').
    return command.replace("{value}", shlex.quote(value))


def _short(value: object, limit: int = 60) -> str:
    text = " ".join(str(value if value is not None else "none").split())
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return text if text and " " not in text else repr(text)
