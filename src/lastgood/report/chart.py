"""The timeline chart: one lane per milestone (detected, decided, approved, started), one bar per step, then
verified or failed, and notified. Inline SVG, no script; every text redacted and escaped."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime

from lastgood.redact import redact
from lastgood.report.model import IncidentReport, StepFact, TimelineEntry, clock, human, span

WIDTH, LABELS, RIGHT, ROW, TOP, BOTTOM = 1160, 210, 190, 30, 34, 36
COLOURS = {"ok": "#43a047", "failed": "#c62828", "milestone": "#1565c0", "unchanged": "#78909c", "open": "#f9a825"}
MILESTONES = ("detected", "decided", "approved", "started")
ENDINGS = ("verified", "failed", "notified")


def esc(value: object) -> str:
    return html.escape(redact(str(value)), quote=True)


@dataclass(frozen=True)
class Lane:
    key: str
    label: str
    dots: list[TimelineEntry]
    step: StepFact | None = None


@dataclass(frozen=True)
class Scale:
    start: datetime
    seconds: float

    def x(self, at: datetime) -> float:
        return LABELS + (span(self.start, at) or 0.0) / self.seconds * (WIDTH - LABELS - RIGHT)


def lanes(report: IncidentReport) -> list[Lane]:
    by_key: dict[str, list[TimelineEntry]] = {}
    for entry in report.timeline:
        by_key.setdefault(entry.key, []).append(entry)
    out = [Lane(k, k, by_key[k]) for k in MILESTONES if k in by_key]
    out += [Lane("step", s.component, [], s) for s in report.incident.steps]
    out += [Lane(k, k, by_key[k]) for k in ENDINGS if k in by_key]
    return out


def scale(report: IncidentReport) -> Scale:
    times = [e.at for e in report.timeline]
    times += [t for s in report.incident.steps for t in (s.started_at, s.finished_at) if t is not None]
    if not times:
        times = [report.incident.created_at]
    start, end = min(times), max(times)
    return Scale(start, max(span(start, end) or 0.0, 1.0))


def render_chart(report: IncidentReport) -> str:
    rows, sc = lanes(report), scale(report)
    height = TOP + ROW * len(rows) + BOTTOM
    body = [_axis(sc, height)]
    body += [_lane(lane, index, sc) for index, lane in enumerate(rows)]
    return (
        f'<svg class="timeline-chart" role="img" aria-labelledby="chart-title" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}">'
        f'<title id="chart-title">Timeline of rollback {esc(report.incident.id)}</title>' + "".join(body) + "</svg>"
    )


def _axis(sc: Scale, height: int) -> str:
    parts = []
    for index in range(6):
        seconds = sc.seconds * index / 5
        x = LABELS + (WIDTH - LABELS - RIGHT) * index / 5
        parts.append(f'<line class="tick" x1="{x:.1f}" y1="{TOP - 8}" x2="{x:.1f}" y2="{height - BOTTOM}"/>')
        parts.append(
            f'<text class="axis" x="{x:.1f}" y="{height - BOTTOM + 18}" text-anchor="middle">+{human(seconds)}</text>'
        )
    parts.append(f'<text class="axis" x="{LABELS}" y="{TOP - 14}">{esc(clock(sc.start))} UTC</text>')
    return '<g class="axis">' + "".join(parts) + "</g>"


def _lane(lane: Lane, index: int, sc: Scale) -> str:
    y = TOP + index * ROW
    stripe = f'<rect class="stripe{index % 2}" x="0" y="{y}" width="{WIDTH}" height="{ROW}"/>'
    label = f'<text class="lane-label" x="10" y="{y + ROW / 2 + 4}">{esc(lane.label)}</text>'
    mark = _bar(lane.step, y, sc) if lane.step is not None else "".join(_dot(d, y, sc) for d in lane.dots)
    return f'<g class="lane" data-key="{esc(lane.key)}">{stripe}{label}{mark}</g>'


def _dot(entry: TimelineEntry, y: int, sc: Scale) -> str:
    colour = COLOURS["milestone"] if entry.ok else COLOURS["failed"]
    x, mid = sc.x(entry.at), y + ROW / 2
    tip = f"{entry.title} at {clock(entry.at)} UTC: {entry.detail}"
    return (
        f'<g class="milestone"><title>{esc(tip)}</title>'
        f'<circle cx="{x:.1f}" cy="{mid}" r="6" fill="{colour}"/>'
        f'<text class="at" x="{x + 10:.1f}" y="{mid + 4}">{esc(clock(entry.at))}</text></g>'
    )


def _bar(step: StepFact, y: int, sc: Scale) -> str:
    mid = y + ROW / 2
    if step.started_at is None:
        return f'<text class="at" x="{LABELS}" y="{mid + 4}">not started ({esc(step.status)})</text>'
    end = step.finished_at or step.started_at
    x1, x2 = sc.x(step.started_at), sc.x(end)
    colour = COLOURS.get(
        {"succeeded": "ok", "failed": "failed", "unchanged": "unchanged"}.get(step.status, "open"), COLOURS["open"]
    )
    took = human(span(step.started_at, step.finished_at)) if step.finished_at else "unfinished"
    tip = f"{step.component}: {step.status} in {took}: {step.error or step.detail or ''}"
    return (
        f'<g class="step-bar" data-status="{esc(step.status)}"><title>{esc(tip)}</title>'
        f'<rect x="{x1:.1f}" y="{y + 7}" width="{max(x2 - x1, 4):.1f}" height="{ROW - 14}" rx="3" fill="{colour}"/>'
        f'<text class="at" x="{max(x2, x1 + 4) + 8:.1f}" y="{mid + 4}">{esc(step.status)} ({esc(took)})</text></g>'
    )
