"""Check type -> checker. Adding a check type is one module, one settings model in config/validation.py and one
entry here."""

from __future__ import annotations

from lastgood.checks.base import Checker
from lastgood.checks.command import CommandChecker
from lastgood.checks.http import HttpChecker
from lastgood.checks.logs import LogsChecker
from lastgood.checks.metric import MetricChecker

CHECKERS: dict[str, Checker] = {c.type: c for c in (HttpChecker(), CommandChecker(), MetricChecker(), LogsChecker())}


def checker_for(check_type: str) -> Checker:
    if check_type not in CHECKERS:
        raise ValueError(f"unknown check type {check_type!r} (known: {', '.join(CHECKERS)})")
    return CHECKERS[check_type]
