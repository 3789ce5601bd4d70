"""After every component is restored and verified: the environment's `validate:` block, recorded in the ledger.

Each check's result is an event on the rollback's timeline (`validation-check`), then one `validation-passed` or
`validation-failed` with every result, which the report, `show`, the KPIs and the API read back.
"""

from __future__ import annotations

import threading

from lastgood.checks.base import CheckContext
from lastgood.checks.run import ValidationResult, interruptible, run_check
from lastgood.ledger import store
from lastgood.runtime.context import EnvContext


def check_context(ctx: EnvContext, stop: threading.Event | None = None) -> CheckContext:
    """`stop`: set by an interrupt; a check's waits end at once and no further check starts."""
    stop = stop or threading.Event()
    return CheckContext(
        app=ctx.app,
        env=ctx.env,
        aws=ctx.aws,
        triggers=ctx.runbook.triggers_for(ctx.env),
        restored_at=ctx.clock.now(),
        base_dir=ctx.runbook.base_dir,
        now=ctx.clock.now,
        sleep=interruptible(ctx.clock.sleep, ctx.clock.now, stop),
    )


def validate_restore(ctx: EnvContext, rollback_id: str, stop: threading.Event) -> ValidationResult | None:
    """None when the environment has no checks; else every check run in order and each result recorded. An
    interrupt ends it `interrupted`, the check it cut short not recorded: resume validates again."""
    block = ctx.runbook.validation_for(ctx.env)
    if not block.checks:
        return None
    checks = check_context(ctx, stop)
    _event(ctx, rollback_id, "validation-started", f"validating {ctx.env}: {len(block.checks)} checks", None)
    result = ValidationResult()
    for check in block.checks:
        outcome = run_check(check, checks)
        if stop.is_set():
            result.interrupted = True
            _event(ctx, rollback_id, "validation-interrupted", f"interrupted during {check.name}", None)
            return result
        result.results.append(outcome)
        verdict = "passed" if outcome.passed else "failed"
        _event(
            ctx,
            rollback_id,
            "validation-check",
            f"{check.name} ({check.type}) {verdict}: {outcome.detail}",
            outcome.to_dict(),
        )
    kind = "validation-passed" if result.passed else "validation-failed"
    _event(ctx, rollback_id, kind, result.summary(), result.to_dict())
    return result


def _event(ctx: EnvContext, rollback_id: str, kind: str, message: str, data: dict[str, object] | None) -> None:
    with ctx.session() as session:
        store.add_event(session, ctx.app, ctx.env, kind, message, ctx.clock.now(), rollback_id, data)
