"""lastgood report: the incident record of a real rollback (fake kind, real SQLite ledger, the real executor),
checked as Markdown and as HTML rendered by a REAL headless Chromium (Debian's chromium)."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from lastgood import redact
from lastgood.aws.clients import AwsClients
from lastgood.cli.app import main
from lastgood.clock import FakeClock
from lastgood.config.loader import load_runbook
from lastgood.domain.actor import Actor
from lastgood.domain.states import ROLLBACK_TRANSITIONS, transition
from lastgood.engine.executor import Executor, RetryPolicy
from lastgood.engine.planner import build_plan
from lastgood.engine.record import record_release
from lastgood.kinds.fake import FakeWorld, installed
from lastgood.ledger import store
from lastgood.ledger.db import open_ledger, resolve_url
from lastgood.ledger.tables import ApprovalRow, StepRow
from lastgood.report import IncidentReport, build_report, render_html, render_markdown
from lastgood.runtime.context import EnvContext

TESTER = Actor(name="tester")

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FAST = RetryPolicy(attempts=2, base_delay=0.1, max_delay=0.1, verify_interval=0.5)
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BAR_GREEN = (0x43, 0xA0, 0x47)  # chart.COLOURS["ok"]: only the succeeded step bars have it
SECRET = "hunter2-very-secret-token"

RUNBOOK = """\
app: shop
state: sqlite:///state/ledger.db
environments:
  prod: {}
components:
  - {name: api, kind: fake}
  - {name: worker, kind: fake, depends_on: [config]}
  - {name: config, kind: fake}
"""

TRIGGER = {
    "trigger": "api-errors",
    "state": "firing",
    "action": "rollback",
    "severity": "high",
    "value": 7.5,
    "breaching_periods": 5,
    "required_periods": 5,
    "detail": "Errors/Invocations > 5% for 5 of 5 periods",
    "values": [6.1, 7.0, 7.2, 7.4, 7.5],
}


@dataclass
class Stand:
    ctx: EnvContext
    world: FakeWorld
    clock: FakeClock
    file: Path


@pytest.fixture
def stand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stand]:
    monkeypatch.delenv("LASTGOOD_STATE", raising=False)
    monkeypatch.delenv("LASTGOOD_TEST_STEP_DELAY", raising=False)
    monkeypatch.setenv("LASTGOOD_USER", "tester")
    file = tmp_path / "lastgood.yaml"
    file.write_text(RUNBOOK)
    with installed(FakeWorld()) as world:
        runbook = load_runbook(file)
        ledger = open_ledger(resolve_url(runbook.state, runbook.base_dir))
        clock = FakeClock(T0)
        ctx = EnvContext(runbook=runbook, env="prod", ledger=ledger, aws=AwsClients(), clock=clock, actor=TESTER)
        yield Stand(ctx, world, clock, file)
        ledger.close()
    redact.clear()


def event(stand: Stand, rollback_id: str, type_: str, message: str, **data: object) -> None:
    with stand.ctx.ledger.session() as session:
        store.add_event(session, "shop", "prod", type_, message, stand.clock.now(), rollback_id, dict(data))


def approve(stand: Stand, rollback_id: str, who: str) -> None:
    with stand.ctx.ledger.session() as session:
        at = stand.clock.now()
        session.add(ApprovalRow(rollback_id=rollback_id, who=who, decision="approve", roles=["lead"], at=at))
        store.add_event(session, "shop", "prod", "approved", f"approved by {who}", at, rollback_id, actor=who)


def decide(stand: Stand, rollback_id: str, detected: datetime, approvals: int) -> None:
    """What the decision flow records (filled in directly: the report only reads the ledger)."""
    with stand.ctx.ledger.session() as session:
        row = store.get_rollback(session, rollback_id)
        row.severity, row.method = "high", "rollback"
        row.decision_reason = "high within 4h of the deployment: rollback"
        row.trigger, row.detected_at, row.decided_at = TRIGGER, detected, stand.clock.now()
        row.approvals_needed, row.approver_roles = approvals, ["lead"]
        if approvals == 0:
            row.approved_at = stand.clock.now()
    event(stand, rollback_id, "decided", "high: rollback", severity="high")


def incident(stand: Stand, *, fail: bool = False, reason: str = "api errors after v2") -> str:
    """v1 then v2 recorded an hour apart; v2 is detected bad 10 minutes later and rolled back."""
    stand.world.update({"api": "1", "worker": "1", "config": "1"})
    record_release(stand.ctx, "v1")
    stand.clock.advance(3600)
    stand.world.update({"api": "2", "worker": "2", "config": "2"})
    record_release(stand.ctx, "v2")
    stand.clock.advance(600)
    detected = stand.clock.now()
    executor = Executor(stand.ctx, retry=FAST)
    rollback_id = executor.create(build_plan(stand.ctx), reason=reason)
    stand.clock.advance(30)
    decide(stand, rollback_id, detected, approvals=0 if fail else 2)
    if not fail:
        stand.clock.advance(60)
        approve(stand, rollback_id, "alice")
        stand.clock.advance(45)
        approve(stand, rollback_id, "bob")
        with stand.ctx.ledger.session() as session:
            store.get_rollback(session, rollback_id).approved_at = stand.clock.now()
        stand.clock.advance(15)
        event(stand, rollback_id, "notify-sent", "rollback starting: slack", channel="slack")
    stand.clock.advance(20)
    stand.world.lag_verify("worker", 4)
    stand.world.lag_verify("config", 6)
    if fail:
        stand.world.fail_next("config", permanent=True, message="fake:Put config: AccessDenied for role deployer")
    executor.run(rollback_id)
    if not fail:
        stand.clock.advance(40)
        event(stand, rollback_id, "notify-sent", "rollback verified: slack, email", channel=["slack", "email"])
    return rollback_id


def report_of(stand: Stand, rollback_id: str) -> IncidentReport:
    with stand.ctx.ledger.session() as session:
        return build_report(session, rollback_id, restore_target_seconds=900, generated_at=T0)


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def ticks(report: IncidentReport) -> dict[str, tuple[str, str]]:
    return {i.text: (i.tick, i.evidence) for i in report.checklist}


# --- the model and the Markdown -----------------------------------------------------------------------------------


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_markdown_of_a_verified_rollback(stand: Stand, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rollback_id = incident(stand)
    out = tmp_path / "reports"
    code, stdout, _err = run_cli(
        capsys, "report", rollback_id, "-f", str(stand.file), "--out", str(out), "--format", "md"
    )
    assert code == 0
    path = out / f"report-{rollback_id}.md"
    assert stdout.strip() == str(path.resolve())
    assert not (out / f"report-{rollback_id}.html").exists()
    md = path.read_text()

    # The timeline: detected, decided, approved (twice), notified, started, each step, verified, notified.
    report = report_of(stand, rollback_id)
    # The release left is marked bad in the last transaction, by an event without the rollback's id: found.
    assert [e.key for e in report.timeline].count("marked-bad") == 1
    keys = [e.key for e in report.timeline if e.key not in ("progress", "marked-bad", "requested")]
    assert keys == ["detected", "decided", "approved", "approved", "notified", "started"] + ["step"] * 3 + [
        "verified",
        "notified",
    ]
    steps = [e.component for e in report.timeline if e.key == "step"]
    assert steps.index("worker") < steps.index("config")  # config waits for worker, so it finishes later
    rows = ["| detected |", "| decided |", "| approved |", "| notified: slack |", "| started |", "| step: config |"]
    rows += ["| verified |", "| notified: slack, email |"]
    positions = [md.index(row) for row in rows]
    assert positions == sorted(positions), md
    assert [e.at for e in report.timeline] == sorted(e.at for e in report.timeline)

    # Trigger values, releases left and returned to, decision.
    assert "| trigger | api-errors |" in md and "| value | 7.5 |" in md and "6.1, 7, 7.2, 7.4, 7.5" in md
    assert "| Left release | v2, recorded 2026-03-02 10:00:00 UTC (marked bad) |" in md
    assert "| Returned to | v1, recorded 2026-03-02 09:00:00 UTC |" in md
    assert "| Approvals | 2 of 2 needed: alice (lead), bob (lead) |" in md

    # Checklist ticks, computed from the ledger.
    assert "- [x] Get the authorization the severity requires — **done**: 2 approval(s): alice, bob" in md
    assert "- [x] Verify each component's rollback completes successfully — **done**: 3/3 steps verified" in md
    assert "- [x] Notify team and stakeholders — **done**: notified: slack at 10:12:30 UTC" in md
    assert "- [x] Notify team and stakeholders of completion — **done**: notified: slack, email" in md
    assert "— **done**: order kept: worker before config" in md
    assert "- ~~Verify backup/snapshot is available (for database)~~ — not applicable" in md
    assert "- [ ] Test API endpoints — **not done**: not recorded in the ledger" in md
    assert (
        "### Pre-rollback (7/7 done, 1 not applicable)" in md
    )  # the backup item is not applicable, not counted as done
    by_text = ticks(report)
    assert by_text["Identify the issue and confirm rollback is necessary"] == (
        "done",
        "trigger api-errors = 7.5: Errors/Invocations > 5% for 5 of 5 periods",
    )
    assert by_text["Document current state and issue"] == (
        "done",
        "release v2 recorded 2026-03-02 10:00:00 UTC by tester (3 components)",
    )

    # Post-rollback actions, tracker-ready, with this incident's facts.
    assert "### Immediate actions (0-1 hour)" in md and "### Long-term actions (1-7 days)" in md
    assert f"- [x] Inform the development team: shop/prod rolled back from v2 to v1 ({rollback_id}, succeeded)" in md
    assert (
        "- [ ] Root cause analysis of v2: analyse deployment logs; review what changed: api (value 2 -> value 1)" in md
    )
    assert "- [ ] Post-rollback check: Test API endpoints" in md
    assert "lastgood resume" not in md  # nothing to finish
    assert report.durations["detect_to_restore"] < 900
    assert "Time to restore was" not in md


def test_a_failed_step_is_not_ticked_verified(stand: Stand, tmp_path: Path) -> None:
    rollback_id = incident(stand, fail=True)
    report = report_of(stand, rollback_id)
    by_text = ticks(report)
    assert by_text["Verify each component's rollback completes successfully"] == (
        "not done",
        "2/3 steps verified; failed: config",
    )
    assert by_text["Check for errors"][0] == "not done"
    assert "AccessDenied for role deployer" in by_text["Check for errors"][1]
    assert by_text["Run health checks"][0] == "not done"
    assert by_text["Get the authorization the severity requires"][0] == "not applicable"
    assert by_text["Notify team and stakeholders"] == (
        "not done",
        "no notification recorded before the rollback started",
    )
    assert by_text["Notify team and stakeholders of completion"][0] == "not done"
    # worker waits for config in the plan? No: config waits for worker; worker finished, config ran after it.
    assert by_text["Roll back in the correct order (dependents first, database last)"][0] == "done"

    md = render_markdown(report)
    assert "- [ ] Verify each component's rollback completes successfully — **not done**: 2/3 steps verified" in md
    assert f"`lastgood resume {rollback_id}`" in md
    assert "- [ ] Inform the development team" in md
    assert "Create a troubleshooting guide entry for: fake:Put config: AccessDenied for role deployer" in md
    assert "| step: config (failed) |" in md
    keys = [e.key for e in report.timeline]
    # approved_at is the decision's instant (no approval needed): the milestone goes after the decided event
    assert keys[:5] == ["detected", "requested", "decided", "approved", "started"]
    assert keys[-1] == "failed"
    assert "detect_to_restore" not in report.durations  # never restored


def test_steps_started_out_of_order_are_caught(stand: Stand) -> None:
    rollback_id = incident(stand)
    with stand.ctx.ledger.session() as session:
        steps = {s.component: s for s in session.scalars(select(StepRow).filter_by(rollback_id=rollback_id))}
        assert steps["config"].waits_for == ["worker"]
        assert steps["worker"].finished_at is not None
        worker_started = steps["worker"].started_at
        assert worker_started is not None and worker_started < steps["worker"].finished_at
        steps["config"].started_at = worker_started
    tick, evidence = ticks(report_of(stand, rollback_id))[
        "Roll back in the correct order (dependents first, database last)"
    ]
    assert (tick, evidence) == ("not done", "config started before worker finished")


@pytest.mark.slow  # about a second: moto resources or a server in a thread
def test_secrets_are_masked_and_text_is_escaped(stand: Stand, tmp_path: Path) -> None:
    redact.register_secret(SECRET)
    rollback_id = incident(stand, reason=f"token {SECRET} leaked <script>alert(1)</script> | broke the table")
    report = report_of(stand, rollback_id)
    assert SECRET in report.incident.reason  # the row holds it; every renderer must mask it
    md, page = render_markdown(report), render_html(report)
    for text in (md, page):
        assert SECRET not in text
        assert "token **** leaked" in text
    assert "<script" not in page
    assert "<script" not in re.sub(r"```.*?```", "", md, flags=re.S)  # only inside the fenced message, as text
    assert "leaked &lt;script>alert(1)&lt;/script> \\| broke" in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "\\| broke the table" in md  # the pipe does not split a table cell


def test_a_declined_rollback_has_nothing_to_tick_during_or_after(stand: Stand) -> None:
    stand.world.update({"api": "1", "worker": "1", "config": "1"})
    record_release(stand.ctx, "v1")
    stand.world.update({"api": "2", "worker": "2", "config": "2"})
    record_release(stand.ctx, "v2")
    rollback_id = Executor(stand.ctx, retry=FAST).create(build_plan(stand.ctx), reason="cosmetic bug")
    with stand.ctx.ledger.session() as session:
        row = store.get_rollback(session, rollback_id)
        row.severity, row.method, row.decision_reason = "medium", "fix-forward", "medium: fix forward"
        transition(row, "declined", ROLLBACK_TRANSITIONS)
    report = report_of(stand, rollback_id)
    assert not report.incident.ran
    during_and_post = [i for i in report.checklist if i.phase != "pre"]
    assert {i.tick for i in during_and_post} == {"not applicable"}
    assert during_and_post[0].evidence == "the rollback did not run (declined: medium: fix forward)"
    assert ticks(report)["Decide the rollback method"] == ("done", "fix-forward: medium: fix forward")
    assert [e.key for e in report.timeline] == ["requested"]


# --- the CLI and the HTML in a real Chromium -------------------------------------------------------------------


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM.exists(), (
        "Debian's chromium is missing: the HTML report is checked in a real headless browser. "
        "Install it with ./dev/setup (apt-get install -y chromium)."
    )
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
    command += ["--disable-background-networking", "--disable-component-update", "--disable-sync"]
    command += [f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


@pytest.mark.slow  # a Python process, server or browser of its own
@pytest.mark.browser
def test_html_renders_in_headless_chromium(stand: Stand, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rollback_id = incident(stand)
    out = tmp_path / "reports"
    args = ["report", rollback_id, "-f", str(stand.file), "--out", str(out), "--format", "both", "-o", "json"]
    code, stdout, _err = run_cli(capsys, *args)
    assert code == 0
    result = json.loads(stdout)
    page = Path(result["paths"]["html"])
    assert Path(result["paths"]["md"]).exists() and page.name == f"report-{rollback_id}.html"
    checklist = {i["item"]: i for i in result["checklist"]}
    assert checklist["Verify each component's rollback completes successfully"]["tick"] == "done"
    assert {i["phase"] for i in result["checklist"]} == {"pre", "during", "post"}

    source = page.read_text()
    for forbidden in ("<script", "http://", "https://", "src=", "<link"):
        assert forbidden not in source  # self-contained: nothing to load
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(page, ARTIFACTS / "report-verified.html")

    dom = chromium("--dump-dom", page.as_uri(), profile=tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert '<svg class="timeline-chart"' in html
    for lane in ("detected", "decided", "approved", "started", "verified", "notified"):
        assert f'<g class="lane" data-key="{lane}">' in html, lane
    assert html.count('<g class="step-bar" data-status="succeeded">') == 3
    for phase in ("pre", "during", "post"):
        assert f'<ul class="checklist" data-phase="{phase}">' in html
    assert html.count('data-tick="done"') >= 10 and 'data-tick="not done"' in html
    assert "3/3 steps verified" in html
    assert '<pre class="tracker" data-horizon="immediate">- [x] Inform the development team' in html

    shot = ARTIFACTS / "report-verified.png"
    shot.unlink(missing_ok=True)
    taken = chromium(f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri(), profile=tmp_path / "profile")
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 30_000, "the screenshot is missing or trivially small"
    image = read_png(shot, stop_at=BAR_GREEN)
    assert (image.width, image.height) == (1280, 2000)
    assert len(image.colours) > 50, f"only {len(image.colours)} colours: the page did not render"
    assert image.found, "no succeeded step bar (#43a047) in the screenshot: the SVG chart did not render"


def test_unknown_rollback_is_bad_input(stand: Stand, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    incident(stand)
    code, _out, err = run_cli(capsys, "report", "rb-nope", "-f", str(stand.file), "--out", str(tmp_path))
    assert code == 2
    assert "no rollback 'rb-nope'" in err
    assert not list(tmp_path.glob("report-*"))


# --- a PNG reader on the standard library ----------------------------------------------------------------------


@dataclass
class Png:
    width: int
    height: int
    colours: set[tuple[int, ...]]
    found: bool


def read_png(path: Path, stop_at: tuple[int, int, int], tolerance: int = 4) -> Png:
    """Decode rows (8-bit RGB/RGBA) until `stop_at` is seen; count the distinct colours on the way."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    chunks, offset = [], 8
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        chunks.append((kind, data[offset + 8 : offset + 8 + length]))
        offset += 12 + length
    width, height, depth, colour_type = struct.unpack(">IIBB", chunks[0][1][:10])
    assert depth == 8 and colour_type in (2, 6), f"unexpected PNG format: depth {depth}, colour type {colour_type}"
    channels = 3 if colour_type == 2 else 4
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride, previous = width * channels, bytearray(width * channels)
    colours: set[tuple[int, ...]] = set()
    for y in range(height):
        start = y * (stride + 1)
        row = unfilter(raw[start], bytearray(raw[start + 1 : start + 1 + stride]), previous, channels)
        pixels = {tuple(row[x : x + 3]) for x in range(0, stride, channels)}
        colours |= pixels
        if any(all(abs(p[i] - stop_at[i]) <= tolerance for i in range(3)) for p in pixels):
            return Png(width, height, colours, True)
        previous = row
    return Png(width, height, colours, False)


def unfilter(kind: int, row: bytearray, prev: bytearray, bpp: int) -> bytearray:
    if kind == 1:
        for i in range(bpp, len(row)):
            row[i] = (row[i] + row[i - bpp]) & 0xFF
    elif kind == 2:
        row = bytearray((a + b) & 0xFF for a, b in zip(row, prev, strict=True))
    elif kind == 3:
        for i in range(len(row)):
            left = row[i - bpp] if i >= bpp else 0
            row[i] = (row[i] + (left + prev[i]) // 2) & 0xFF
    elif kind == 4:
        for i in range(len(row)):
            a = row[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
    return row
