"""The incident record as ONE self-contained HTML page: inline CSS, the timeline as inline SVG, no script and
no external URL (a Content-Security-Policy forbids loading anything). Every text is redacted, then escaped."""

from __future__ import annotations

from lastgood.report.chart import esc, render_chart
from lastgood.report.markdown import PHASE_TITLES, facts, message_lines, offset, tally, trigger_rows
from lastgood.report.model import HORIZONS, PHASES, ChecklistItem, IncidentReport, StepFact, human, span, when

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
TICKS = {"done": ("&#10004;", "done"), "not done": ("&#10008;", "not done"), "not applicable": ("&#8211;", "n/a")}

STYLE = """
body{font-family:"DejaVu Sans","Liberation Sans",Arial,sans-serif;margin:0;color:#1c2430;background:#f4f6f8}
header{padding:22px 32px;color:#fff;background:#37474f}
header.status-succeeded{background:#2e7d32}header.status-failed{background:#c62828}
header h1{margin:0 0 6px;font-size:24px}header p{margin:0;font-size:15px;opacity:.92}
main{padding:8px 32px 32px}section{background:#fff;border-radius:6px;margin:18px 0;padding:14px 20px;
box-shadow:0 1px 3px rgba(0,0,0,.12)}h2{font-size:19px;margin:4px 0 12px}h3{font-size:16px;margin:14px 0 6px}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{border-bottom:1px solid #e0e4e8;padding:5px 8px;
text-align:left;vertical-align:top}th{background:#eceff1}table.facts th{width:180px}
.failed td{color:#b71c1c}ul.checklist{list-style:none;padding:0;margin:0}
ul.checklist li{padding:6px 8px;border-bottom:1px solid #eceff1;font-size:14px}
.tick{display:inline-block;width:92px;white-space:nowrap;font-weight:bold}.tick-done .tick{color:#2e7d32}
.tick-not-done .tick{color:#c62828}.tick-not-applicable{color:#78909c}.evidence{color:#37474f}
.source{color:#90a4ae;font-size:12px}pre{background:#263238;color:#eceff1;padding:12px;border-radius:4px;
white-space:pre-wrap;font-size:13px}svg.timeline-chart{max-width:100%;height:auto;font-size:12px}
svg .stripe0{fill:#fafbfc}svg .stripe1{fill:#f0f3f5}svg .tick{stroke:#cfd8dc;stroke-dasharray:3 3}
svg .axis{fill:#546e7a}svg .lane-label{fill:#263238;font-weight:bold}svg .at{fill:#37474f}
footer{padding:0 32px 24px;color:#78909c;font-size:12px}
"""


def render_html(report: IncidentReport) -> str:
    inc = report.incident
    title = f"Incident record: rollback {inc.id} ({inc.app}/{inc.env})"
    sections = [_facts(report), _trigger(report), _timeline(report), _steps(report), _validation(report)]
    sections += [_checklist(report), _actions(report), _message(report)]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>"
        f"{_header(report, title)}<main>{''.join(sections)}</main>"
        f"<footer>Generated {esc(when(report.generated_at))} from the lastgood ledger.</footer></body></html>\n"
    )


def _header(report: IncidentReport, title: str) -> str:
    inc = report.incident
    left = inc.from_release.label if inc.from_release else "(unrecorded)"
    line = f"{inc.app}/{inc.env} \u00b7 {left} \u2192 {inc.to_release.label} \u00b7 {inc.status}"
    return f'<header class="status-{esc(inc.status)}"><h1>{esc(title)}</h1><p>{esc(line)}</p></header>'


def _table(head: list[str], rows: list[list[object]], css: str = "", row_class: list[str] | None = None) -> str:
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = []
    for index, row in enumerate(rows):
        cls = f' class="{row_class[index]}"' if row_class and row_class[index] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>")
    attr = f' class="{css}"' if css else ""
    return f"<table{attr}><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _facts(report: IncidentReport) -> str:
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in facts(report))
    return f'<section id="summary"><h2>Summary</h2><table class="facts"><tbody>{rows}</tbody></table></section>'


def _trigger(report: IncidentReport) -> str:
    rows = trigger_rows(report.incident.trigger)
    if not rows:
        body = "<p>No trigger values recorded: the rollback was started by hand.</p>"
    else:
        body = _table(["name", "value"], [[k, v] for k, v in rows], "trigger")
    return f'<section id="trigger"><h2>Trigger</h2>{body}</section>'


def _timeline(report: IncidentReport) -> str:
    rows: list[list[object]] = [
        [i, when(e.at), offset(report, e.at), e.title, e.detail, e.actor] for i, e in enumerate(report.timeline, 1)
    ]
    classes = ["" if e.ok else "failed" for e in report.timeline]
    table = _table(["#", "at (UTC)", "since start", "event", "detail", "by"], rows, "timeline", classes)
    figure = f"<figure>{render_chart(report)}<figcaption>Each lane: a milestone or a step.</figcaption></figure>"
    return f'<section id="timeline"><h2>Timeline</h2>{figure}{table}</section>'


def _steps(report: IncidentReport) -> str:
    steps = report.incident.steps
    if not steps:
        return (
            '<section id="steps"><h2>Steps</h2><p>No steps: every component already matched the target.</p></section>'
        )
    head = ["#", "component", "action", "from", "to", "status", "attempts", "took", "data-loss window", "error"]
    rows: list[list[object]] = [
        [s.position + 1, s.component, s.action, s.before, s.after, s.status, s.attempts, *_timing(s)] for s in steps
    ]
    classes = ["failed" if s.status == "failed" else "" for s in steps]
    return f'<section id="steps"><h2>Steps</h2>{_table(head, rows, "steps", classes)}</section>'


def _validation(report: IncidentReport) -> str:
    validation = report.incident.validation
    if validation is None:
        return ""
    verdict = "passed" if validation["passed"] else "failed: restored-unhealthy, nothing rolled back again"
    rows: list[list[object]] = [
        [c["name"], c["type"], "passed" if c["passed"] else "FAILED", c["detail"], c["attempts"]]
        for c in validation["checks"]
    ]
    classes = ["" if c["passed"] else "failed" for c in validation["checks"]]
    table = _table(["check", "type", "result", "detail", "attempts"], rows, "steps", classes)
    return f'<section id="validation"><h2>Validation</h2><p>{esc(verdict)}</p>{table}</section>'


def _timing(step: StepFact) -> list[object]:
    return [human(span(step.started_at, step.finished_at)), human(step.data_loss_window_seconds), step.error or ""]


def _item(item: ChecklistItem) -> str:
    symbol, word = TICKS[item.tick]
    css = "tick-" + item.tick.replace(" ", "-")
    return (
        f'<li class="{css}" data-tick="{esc(item.tick)}"><span class="tick">{symbol} {word}</span> '
        f'<strong>{esc(item.text)}</strong> \u2014 <span class="evidence">{esc(item.evidence)}</span> '
        f'<span class="source">({esc(item.source)})</span></li>'
    )


def _checklist(report: IncidentReport) -> str:
    parts = ['<section id="checklist"><h2>Checklist</h2>']
    for phase in PHASES:
        items = report.items(phase)
        parts.append(f"<h3>{esc(PHASE_TITLES[phase])} ({esc(tally(items))})</h3>")
        parts.append(f'<ul class="checklist" data-phase="{phase}">' + "".join(_item(i) for i in items) + "</ul>")
    return "".join(parts) + "</section>"


def _actions(report: IncidentReport) -> str:
    parts = ['<section id="actions"><h2>Post-rollback actions</h2><p>Ready to paste into a tracker:</p>']
    for horizon, title in HORIZONS.items():
        lines = "\n".join(a.markdown_line() for a in report.actions_for(horizon))
        parts.append(f'<h3>{esc(title)}</h3><pre class="tracker" data-horizon="{horizon}">{esc(lines)}</pre>')
    return "".join(parts) + "</section>"


def _message(report: IncidentReport) -> str:
    body = esc("\n".join(message_lines(report)))
    return f'<section id="communication"><h2>Communication (004 template)</h2><pre>{body}</pre></section>'
