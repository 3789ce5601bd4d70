"""Running an environment's `validate:` block: every check in order, each result kept; it never raises."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lastgood.checks.base import CheckContext, CheckResult
from lastgood.checks.registry import checker_for
from lastgood.config.validation import Check, Validation

Sleep = Callable[[float], None]


@dataclass
class ValidationResult:
    results: list[CheckResult] = field(default_factory=list)
    interrupted: bool = False  # stopped (Ctrl-C, SIGTERM) before every check had run: the rollback is resumable

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    def summary(self) -> str:
        if not self.results:
            return "no validation checks"
        if self.passed:
            return f"validation passed ({len(self.results)} checks)"
        return "validation failed: " + "; ".join(f"{r.name} ({r.detail})" for r in self.failed)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": [r.to_dict() for r in self.results]}


def run_check(check: Check, ctx: CheckContext) -> CheckResult:
    try:
        return checker_for(check.type).run(check, ctx)
    except Exception as error:  # a check that breaks fails; it never stops the rollback's record
        return CheckResult(check.name, check.type, False, f"the check could not run: {type(error).__name__}: {error}")


def run_validation(block: Validation, ctx: CheckContext) -> ValidationResult:
    return ValidationResult([run_check(check, ctx) for check in block.checks])


def interruptible(sleep: Callable[[float], None], now: Callable[[], datetime], stop: threading.Event) -> Sleep:
    """A sleep in half-second slices that raises `Stopped` as soon as `stop` is set (the check is cut short)."""

    def pause(seconds: float) -> None:
        end = now().timestamp() + seconds
        while not stop.is_set():
            left = end - now().timestamp()
            if left <= 0:
                return
            sleep(min(left, 0.5))
        raise Stopped("interrupted")

    return pause


class Stopped(Exception):
    """An interrupt cut a check's wait short."""


def describe(block: Validation) -> list[dict[str, str]]:
    """What `plan` lists: each check's name, type and what it looks at."""
    return [{"name": c.name, "type": c.type, "what": checker_for(c.type).describe(c)} for c in block.checks]
