"""lastgood kpis [ENV] | rollback-review ID (--unnecessary | --necessary)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from lastgood.cli.common import FileOption, OutputFormat, OutputOption, emit, open_app_ctx, stdout
from lastgood.cli.tables import print_table
from lastgood.clock import utcnow
from lastgood.config.durations import format_duration, parse_duration
from lastgood.config.policy import Targets
from lastgood.errors import BadInput
from lastgood.kpis import Check, GroupKpis, Section, format_rate
from lastgood.service.kpis import KpisResult, kpis_report, review_rollback

SinceOption = Annotated[
    str, typer.Option("--since", help="How far back: a duration (90d, 12h) or a date (2026-01-31)", show_default=True)
]


def register(app: typer.Typer) -> None:
    app.command("kpis")(kpis)
    app.command("rollback-review")(rollback_review)


def parse_since(value: str, now: datetime) -> datetime:
    """A duration back from now ('90d', '12h') or an ISO date or time (UTC unless it says otherwise)."""
    try:
        return now - timedelta(seconds=parse_duration(value))
    except ValueError as error:
        not_duration = str(error)
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadInput(f"--since: {not_duration}; or a date such as '2026-01-31'") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=now.tzinfo)


def kpis(
    env: Annotated[str | None, typer.Argument(help="Environment name [default: every one]", metavar="ENV")] = None,
    since: SinceOption = "90d",
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Time to detect, decide and restore, success and false rollback rates, data-loss incidents, against the
    file's targets (policy.targets); real incidents and drills apart, per environment and component kind."""
    ctx = open_app_ctx(file)
    report = kpis_report(ctx, env, parse_since(since, utcnow()))
    defaults = {name for name in Targets.model_fields if name not in ctx.runbook.policy.targets.model_fields_set}
    emit(output, report, lambda: render_report(report, defaults))


# --- rendering --------------------------------------------------------------------------------------------------


def render_report(report: KpisResult, defaults: set[str] | None = None) -> None:
    """`defaults`: the targets the file does not set (lastgood's defaults), marked so in the table."""
    scope = report.env or "every environment"
    since = report.since.strftime("%Y-%m-%d %H:%M UTC") if report.since else "the beginning"
    render_section(f"real incidents in {scope} since {since}", report.incidents, defaults or set())
    render_section(f"drills in {scope} since {since}", report.drills, defaults or set())


def render_section(title: str, section: Section, defaults: set[str] | None = None) -> None:
    """One row per figure; columns: the target, every rollback, then each environment and each kind."""
    if not section.overall.rollbacks:
        stdout.print(f"{title}: no rollbacks")
        return
    groups = {"all": section.overall}
    groups |= {f"env {name}": group for name, group in section.by_env.items()}
    groups |= {f"kind {name}": group for name, group in section.by_kind.items()}
    table = Table(title=title, title_justify="left")
    table.add_column("figure", no_wrap=True)
    table.add_column("target", style="dim", min_width=8)
    for name in groups:
        table.add_column(escape(name), overflow="fold")
    for label, target, cell in ROWS:
        table.add_row(label, target(section.overall.checks, defaults or set()), *(cell(g) for g in groups.values()))
    print_table(stdout, table)
    render_severities(section)


def render_severities(section: Section) -> None:
    """Each severity's maximum rollback time (policy.targets.rollback_time), and how many rollbacks kept to it."""
    if not any(s.target is not None for s in section.by_severity.values()):
        return
    table = Table(title="maximum rollback time per severity", title_justify="left")
    for column in ("severity", "target", "met", "missed", "no data", "missed rollbacks"):
        table.add_column(column, overflow="fold")
    for severity, row in section.by_severity.items():
        missed = ", ".join(r.id for r in row.rollbacks if r.status == "missed") or "-"
        target = "-" if row.target is None else format_duration(row.target)
        table.add_row(severity, target, str(row.met), str(row.missed), str(row.no_data), missed)
    print_table(stdout, table)


def _duration(value: float | None) -> str:
    return "-" if value is None else format_duration(value)


def _count(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def judged(check: Check, text: str) -> str:
    """A figure with its verdict against the target: green met, red missed."""
    if check.status == "met":
        return f"[green]{text} met[/]"
    if check.status == "missed":
        return f"[bold red]{text} missed[/]"
    return text


TargetCell = Callable[[dict[str, Check], set[str]], str]


def _target(name: str, operator: str, fmt: Callable[[float | None], str]) -> TargetCell:
    """The target's cell; `(default)` when the file does not set it (lastgood's default)."""

    def cell(checks: dict[str, Check], defaults: set[str]) -> str:
        target = checks[name].target
        if target is None:
            return "-"
        return f"{operator} {fmt(target)}" + (" (default)" if name in defaults else "")

    return cell


def _none(checks: dict[str, Check], defaults: set[str]) -> str:
    return ""


def _rollbacks(g: GroupKpis) -> str:
    return str(g.rollbacks) if g.ran == g.rollbacks else f"{g.rollbacks} ({g.ran} ran)"


ROWS: list[tuple[str, TargetCell, Callable[[GroupKpis], str]]] = [
    ("rollbacks", _none, _rollbacks),
    (
        "time to detect, mean",
        _target("mean_time_to_detect", "<=", _duration),
        lambda g: judged(g.checks["mean_time_to_detect"], _duration(g.time_to_detect.mean)),
    ),
    ("time to detect, p95", _none, lambda g: _duration(g.time_to_detect.p95)),
    ("time to decide, mean", _none, lambda g: _duration(g.time_to_decide.mean)),
    ("time to decide, p95", _none, lambda g: _duration(g.time_to_decide.p95)),
    (
        "time to restore, mean",
        _target("mean_time_to_restore", "<=", _duration),
        lambda g: judged(g.checks["mean_time_to_restore"], _duration(g.time_to_restore.mean)),
    ),
    ("time to restore, p95", _none, lambda g: _duration(g.time_to_restore.p95)),
    (
        "success rate",
        _target("success_rate", ">=", format_rate),
        lambda g: judged(g.checks["success_rate"], format_rate(g.success_rate)),
    ),
    ("  succeeded / finished", _none, lambda g: f"{g.succeeded} / {g.finished}"),
    (
        "false rollback rate",
        _target("false_rollback_rate", "<=", format_rate),
        lambda g: judged(g.checks["false_rollback_rate"], format_rate(g.false_rollback_rate)),
    ),
    ("  unnecessary / reviewed", _none, lambda g: f"{g.unnecessary} / {g.reviewed}"),
    (
        "restored-unhealthy",
        _none,
        lambda g: f"{g.restored_unhealthy} ({format_rate(g.restored_unhealthy_share)} of finished)",
    ),
    (
        "data-loss incidents",
        _target("data_loss_incidents", "<=", _count),
        lambda g: judged(g.checks["data_loss_incidents"], str(g.data_loss_incidents)),
    ),
]


# --- the review -------------------------------------------------------------------------------------------------


def rollback_review(
    rollback_id: Annotated[str, typer.Argument(help="The rollback id, e.g. rb-1a2b3c4d5e")],
    unnecessary: Annotated[
        bool | None,
        typer.Option(
            "--unnecessary/--necessary", help="Whether the rollback turned out unnecessary", show_default=False
        ),
    ] = None,
    note: Annotated[str, typer.Option("--note", help="Why; kept with the review and in the audit log")] = "",
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Record whether a rollback was needed after all: the false rollback rate counts the unnecessary ones."""
    if unnecessary is None:
        raise BadInput("say whether the rollback was needed: --unnecessary or --necessary")
    result = review_rollback(open_app_ctx(file), rollback_id, unnecessary, note)

    def render() -> None:
        verdict = "unnecessary" if unnecessary else "necessary"
        stdout.print(f"rollback {result.id} in {result.env} reviewed by {result.reviewed_by}: {verdict}")

    emit(output, result, render)
