"""After every component is restored and verified: the environment's `validate:` block, recorded in the ledger.

Each check's result is an event on the rollback's timeline (`validation-check`), then one `validation-passed` or
`validation-failed` with every result, which the report, `show`, the KPIs and the API read back.
"""

from __future__ import annotations

from lastgood.checks.base import CheckContext
from lastgood.checks.run import ValidationResult, run_check
from lastgood.ledger import store
from lastgood.runtime.context import EnvContext


def check_context(ctx: EnvContext) -> CheckContext:
    return CheckContext(
        app=ctx.app,
        env=ctx.env,
        aws=ctx.aws,
        triggers=ctx.runbook.triggers_for(ctx.env),
        restored_at=ctx.clock.now(),
        base_dir=ctx.runbook.base_dir,
        now=ctx.clock.now,
        sleep=ctx.clock.sleep,
    )


def validate_restore(ctx: EnvContext, rollback_id: str) -> ValidationResult | None:
    """None when the environment has no checks; else every check run in order and each result recorded."""
    block = ctx.runbook.validation_for(ctx.env)
    if not block.checks:
        return None
    checks = check_context(ctx)
    _event(ctx, rollback_id, "validation-started", f"validating {ctx.env}: {len(block.checks)} checks", None)
    result = ValidationResult()
    for check in block.checks:
        outcome = run_check(check, checks)
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
