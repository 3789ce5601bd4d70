"""command: a program (argv) or a shell line that must exit with the expected code within its timeout."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import ClassVar

from lastgood.checks.base import CheckContext, CheckResult, attempt_until
from lastgood.config.durations import format_duration
from lastgood.config.validation import Check, CommandCheck

OUTPUT_TAIL = 2000  # characters of output kept in the result


def _argv(spec: CommandCheck) -> list[str]:
    return ["/bin/sh", "-c", spec.shell] if spec.shell is not None else list(spec.argv or [])


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    process.wait()


def run_once(spec: CommandCheck, ctx: CheckContext) -> tuple[bool, str]:
    cwd = Path(spec.cwd) if spec.cwd else ctx.base_dir
    cwd = cwd if cwd.is_absolute() else ctx.base_dir / cwd
    env = {**os.environ, **spec.env, "LASTGOOD_ENV": ctx.env, "LASTGOOD_APP": ctx.app}
    with tempfile.TemporaryFile() as out:
        try:
            process = subprocess.Popen(
                _argv(spec),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
        except OSError as error:
            return False, f"could not start: {error}"
        try:
            code = process.wait(timeout=spec.timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            return False, f"timed out after {format_duration(spec.timeout)} and was killed"
        out.seek(0)
        tail = out.read().decode(errors="replace")[-OUTPUT_TAIL:].strip()
    if code != spec.exit_code:
        return False, f"exited {code}, expected {spec.exit_code}; last output: {tail or '(none)'}"
    return True, f"exited {code}"


class CommandChecker:
    type: ClassVar[str] = "command"

    def run(self, check: Check, ctx: CheckContext) -> CheckResult:
        spec = check.command
        assert spec is not None
        started = ctx.now()
        passed, detail, attempts = attempt_until(ctx, spec.retries, None, spec.interval, lambda: run_once(spec, ctx))
        return CheckResult(check.name, self.type, passed, detail, attempts, (ctx.now() - started).total_seconds())

    def describe(self, check: Check) -> str:
        spec = check.command
        assert spec is not None
        line = spec.shell if spec.shell is not None else shlex.join(spec.argv or [])
        return f"`{line}` exits {spec.exit_code} within {format_duration(spec.timeout)}"
