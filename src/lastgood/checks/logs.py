"""logs: no more than `max_matches` CloudWatch Logs events matching a filter pattern in the last `within`.

One FilterLogEvents call per page and log group (the runbooks' `aws logs tail ... --filter-pattern ERROR`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

from lastgood.checks.base import CheckContext, CheckResult
from lastgood.config.durations import format_duration
from lastgood.config.validation import Check, LogCheck
from lastgood.errors import LastgoodError

EXAMPLES = 3  # matching messages quoted in the result
PAGE_LIMIT = 100  # pages read per log group before the count is called "at least"


def count_matches(spec: LogCheck, client: Any, start_ms: int, end_ms: int) -> tuple[int, list[str]]:
    from lastgood.aws.errors import map_aws_errors

    total, examples = 0, list[str]()
    for group in spec.log_groups:
        token: str | None = None
        for _ in range(PAGE_LIMIT):
            args: dict[str, Any] = {
                "logGroupName": group,
                "filterPattern": spec.pattern,
                "startTime": start_ms,
                "endTime": end_ms,
            }
            if token:
                args["nextToken"] = token
            with map_aws_errors(f"logs:FilterLogEvents on {group}"):
                page = client.filter_log_events(**args)
            events = page.get("events", [])
            total += len(events)
            examples += [f"{group}: {e.get('message', '').strip()[:200]}" for e in events[: EXAMPLES - len(examples)]]
            token = page.get("nextToken")
            if not token or total > spec.max_matches:
                break
    return total, examples


class LogsChecker:
    type: ClassVar[str] = "logs"

    def run(self, check: Check, ctx: CheckContext) -> CheckResult:
        spec = check.logs
        assert spec is not None
        started = ctx.now()
        ready = ctx.restored_at + timedelta(seconds=spec.wait)
        if (ready - ctx.now()).total_seconds() > 0:
            ctx.sleep((ready - ctx.now()).total_seconds())
        end = ctx.now()
        start = end - timedelta(seconds=spec.within)
        try:
            total, examples = count_matches(
                spec, ctx.aws.client("logs"), int(start.timestamp() * 1000), int(end.timestamp() * 1000)
            )
        except LastgoodError as error:
            return CheckResult(check.name, self.type, False, f"could not read the logs: {error}")
        window = format_duration(spec.within)
        seen = f"{total}{'+' if total > spec.max_matches else ''} events match {spec.pattern!r} in {window}"
        passed = total <= spec.max_matches
        detail = f"{seen} (at most {spec.max_matches})"
        seconds = (ctx.now() - started).total_seconds()
        return CheckResult(check.name, self.type, passed, detail, 1, seconds, {"matches": total, "examples": examples})

    def describe(self, check: Check) -> str:
        spec = check.logs
        assert spec is not None
        groups = ", ".join(spec.log_groups)
        window = format_duration(spec.within)
        return f"at most {spec.max_matches} events matching {spec.pattern!r} in {groups} over {window}"
