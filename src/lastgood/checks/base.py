"""The check interface: a checker runs one check of its type and says what it saw; it never raises."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol

from lastgood.aws.clients import AwsClients
from lastgood.config.models import Trigger
from lastgood.config.validation import Check


@dataclass(frozen=True)
class CheckContext:
    """What a check may use: the environment's AWS clients, its triggers, the clock, and when the restore ended."""

    app: str
    env: str
    aws: AwsClients
    triggers: list[Trigger]
    restored_at: datetime
    base_dir: Path
    now: Callable[[], datetime]
    sleep: Callable[[float], None]


@dataclass
class CheckResult:
    name: str
    type: str
    passed: bool
    detail: str
    attempts: int = 1
    seconds: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "passed": self.passed,
            "detail": self.detail,
            "attempts": self.attempts,
            "seconds": round(self.seconds, 3),
            **({"data": self.data} if self.data else {}),
        }


class Checker(Protocol):
    type: ClassVar[str]  # the check's key in the file

    def run(self, check: Check, ctx: CheckContext) -> CheckResult: ...

    def describe(self, check: Check) -> str:
        """One line for `plan`: what the check will look at."""
        ...


def attempt_until(
    ctx: CheckContext, retries: int, within: float | None, interval: float, once: Callable[[], tuple[bool, str]]
) -> tuple[bool, str, int]:
    """Try `once` until it passes: `retries` more times, or (with `within`) until that long after the first."""
    started = ctx.now()
    attempts = 0
    while True:
        attempts += 1
        passed, detail = once()
        if passed:
            return True, detail, attempts
        elapsed = (ctx.now() - started).total_seconds()
        more = elapsed + interval <= within if within is not None else attempts <= retries
        if not more:
            return False, detail, attempts
        ctx.sleep(interval)
