"""The dispatcher never blocks or fails its caller: retries, recorded failures, periodic updates, redaction;
and the messages' template and defaults."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from lastgood import redact
from lastgood.notify import Dispatcher, Message, NopDispatcher, NotifyError, message_for, message_from_rollback
from lastgood.notify.recording import RecordingNotifier

Failure = tuple[str, Message, str]


def message(event: str = "status-update", n: int = 0, details: list[str] | None = None) -> Message:
    return message_for(
        event,
        "shop",
        "prod",
        "rb-1",
        issue="api errors",
        impact="checkout fails",
        action="rolling back to v41",
        eta="2m",
        status=f"In Progress {n}",
        details=details or [],
    )


class Failures:
    """A thread-safe record_failure that can be waited on."""

    def __init__(self) -> None:
        self.items: list[Failure] = []
        self._cond = threading.Condition()

    def __call__(self, name: str, message: Message, error: str) -> None:
        with self._cond:
            self.items.append((name, message, error))
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Failure]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.items) >= count, timeout)
            return list(self.items)


@pytest.fixture(autouse=True)
def forget_secrets() -> Iterator[None]:
    yield
    redact.clear()


@pytest.fixture
def failures() -> Failures:
    return Failures()


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_send_returns_at_once_while_a_notifier_is_slow_and_other_channels_do_not_wait(failures: Failures) -> None:
    slow, fast = RecordingNotifier("slow", delay=1.0), RecordingNotifier("fast")
    dispatcher = Dispatcher([slow, fast], failures, retries=0)
    started = time.monotonic()
    dispatcher.send(message())
    dispatcher.send(message(n=1))
    assert time.monotonic() - started < 0.1
    assert len(fast.wait_for(2, timeout=0.5)) == 2  # long before the slow one finished its first
    assert slow.messages == []
    assert dispatcher.close(timeout=5)
    assert [m.status for m in slow.messages] == ["In Progress 0", "In Progress 1"]
    assert failures.items == []


def test_a_failing_notifier_is_retried_with_backoff_then_recorded(failures: Failures) -> None:
    broken, good = RecordingNotifier("channels[0].slack", fail_times=100), RecordingNotifier("good")
    sleeps: list[float] = []
    dispatcher = Dispatcher([broken, good], failures, retries=3, backoff=0.5, sleep=sleeps.append)
    started = time.monotonic()
    dispatcher.send(message("rollback-failed"))  # must not raise
    assert time.monotonic() - started < 0.1
    ((name, failed, error),) = failures.wait_for(1)
    assert broken.attempts == 4 and sleeps == [0.5, 1.0, 2.0]
    assert name == "channels[0].slack" and failed.event == "rollback-failed"
    assert error == "channels[0].slack: injected failure 4 of 100 (gave up after 4 attempts)"
    assert [m.event for m in good.wait_for(1)] == ["rollback-failed"]
    assert dispatcher.close(timeout=5)


def test_backoff_is_capped(failures: Failures) -> None:
    dispatcher = Dispatcher([], failures, retries=10, backoff=1.0, max_backoff=5.0)
    assert [dispatcher.backoff_for(a) for a in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert dispatcher.close()


def test_a_notifier_that_recovers_within_its_retries_is_not_recorded(failures: Failures) -> None:
    flaky = RecordingNotifier("flaky", fail_times=2)
    dispatcher = Dispatcher([flaky], failures, retries=2, backoff=0.001)
    dispatcher.send(message())
    assert dispatcher.flush(timeout=5)
    assert flaky.attempts == 3 and len(flaky.messages) == 1
    assert failures.items == []
    assert dispatcher.close()


class Crashing:
    name = "buggy"

    def send(self, message: Message) -> None:
        raise RuntimeError("unexpected None")


def test_any_exception_is_caught_and_a_failing_record_failure_does_not_stop_delivery() -> None:
    calls: list[str] = []

    def record(name: str, message: Message, error: str) -> None:
        calls.append(error)
        raise OSError("ledger is locked")

    good = RecordingNotifier("good")
    dispatcher = Dispatcher([Crashing(), good], record, retries=0)
    dispatcher.send(message(n=1))
    dispatcher.send(message(n=2))
    assert dispatcher.flush(timeout=5)
    assert calls == ["RuntimeError: unexpected None (gave up after 1 attempts)"] * 2
    assert [m.status for m in good.messages] == ["In Progress 1", "In Progress 2"]
    assert dispatcher.close()


def test_each_notifier_receives_the_messages_in_order(failures: Failures) -> None:
    notifier = RecordingNotifier("ordered")
    dispatcher = Dispatcher([notifier], failures, retries=0)
    for n in range(50):
        dispatcher.send(message(n=n))
    assert dispatcher.close(timeout=5)
    assert [m.status for m in notifier.messages] == [f"In Progress {n}" for n in range(50)]


def test_a_secret_never_reaches_a_notifier_or_the_failure_record(failures: Failures) -> None:
    secret = "xoxb-planted-7731"
    redact.register_secret(secret)

    class Leaky:
        name = "leaky"

        def send(self, message: Message) -> None:
            raise NotifyError(f"leaky: POST https://hooks.example/{secret} refused")

    seen = RecordingNotifier("seen")
    dispatcher = Dispatcher([seen, Leaky()], failures, retries=1, backoff=0.001)
    planted = message(details=[f"token={secret}", "ok"])
    planted = Message(**(planted.as_dict() | {"issue": f"{secret} leaked", "eta": secret}))
    dispatcher.send(planted)
    assert dispatcher.close(timeout=5)
    (delivered,) = seen.messages
    assert secret not in repr(delivered) and secret not in delivered.text()
    assert delivered.details == ["token=****", "ok"] and delivered.issue == "**** leaked"
    ((_, recorded, error),) = failures.items
    assert secret not in repr(recorded) and secret not in error
    assert error.startswith("leaky: POST https://hooks.example/**** refused")


def test_periodic_updates_arrive_at_the_interval_until_stopped(failures: Failures) -> None:
    notifier = RecordingNotifier("updates")
    dispatcher = Dispatcher([notifier], failures, retries=0)
    count = iter(range(1000))
    started = time.monotonic()
    dispatcher.start_updates("rb-1", lambda: message(n=next(count)), every=0.1)
    assert len(notifier.wait_for(3, timeout=2)) >= 3
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 1.5  # three updates took three intervals, not fewer
    dispatcher.stop_updates("rb-1")
    stopped_at = len(notifier.messages)
    time.sleep(0.35)
    assert len(notifier.messages) == stopped_at  # nothing after stop_updates returned
    assert [m.status for m in notifier.messages] == [f"In Progress {n}" for n in range(stopped_at)]
    dispatcher.stop_updates("never-started")
    assert dispatcher.close()


def test_restarting_a_key_replaces_its_updates_and_a_bad_builder_is_survived(failures: Failures) -> None:
    notifier = RecordingNotifier("updates")
    dispatcher = Dispatcher([notifier], failures, retries=0)
    calls = iter(range(1000))

    def build() -> Message | None:
        n = next(calls)
        if n == 0:
            raise KeyError("rollback row gone")
        return None if n == 1 else message(n=n)

    dispatcher.start_updates("rb-1", build, every=10.0)
    dispatcher.start_updates("rb-1", build, every=0.05)  # replaces the first
    notifier.wait_for(3, timeout=2)
    assert dispatcher.close(timeout=5)
    statuses = [m.status for m in notifier.messages]
    assert statuses[:3] == ["In Progress 2", "In Progress 3", "In Progress 4"]  # 0 raised, 1 was None
    with pytest.raises(ValueError, match="positive"):
        Dispatcher([], failures, retries=0).start_updates("k", build, every=0)


def test_close_drains_the_queue_including_retries(failures: Failures) -> None:
    notifier = RecordingNotifier("drain", fail_times=1, delay=0.02)
    dispatcher = Dispatcher([notifier], failures, retries=1, backoff=0.01)
    for n in range(5):
        dispatcher.send(message(n=n))
    assert dispatcher.close(timeout=5)
    assert len(notifier.messages) == 5 and failures.items == []
    dispatcher.send(message())  # after close: dropped, no exception
    assert dispatcher.close() is True


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_close_gives_up_on_a_stuck_notifier_and_records_what_was_not_delivered(failures: Failures) -> None:
    stuck = RecordingNotifier("stuck", delay=1.0)
    dispatcher = Dispatcher([stuck], failures, retries=0)
    dispatcher.start_updates("rb-1", message, every=0.01)
    for n in range(3):
        dispatcher.send(message("rollback-succeeded", n=n))
    time.sleep(0.05)
    started = time.monotonic()
    assert dispatcher.close(timeout=0.2) is False
    assert time.monotonic() - started < 0.5
    recorded = failures.items
    assert {name for name, _, _ in recorded} == {"stuck"}
    assert len(recorded) >= 3  # the one in flight and every queued one
    assert all("not delivered" in error and "0.2s" in error for _, _, error in recorded)
    time.sleep(1.2)  # the in-flight send ends: no second record, nothing more sent
    assert len(failures.items) == len(recorded)
    assert len(stuck.messages) <= 1


def test_nop_dispatcher_accepts_everything() -> None:
    nop = NopDispatcher()
    nop.send(message())
    nop.start_updates("k", message, every=1)
    nop.stop_updates("k")
    assert nop.flush() and nop.close()


# --- the message and its defaults ----------------------------------------------------------------------------


def test_text_renders_the_004_template_then_details() -> None:
    text = message("rollback-started", details=["requested by ana", "trigger: api-errors=7.2"]).text()
    assert text == (
        "Issue: api errors\n"
        "Impact: checkout fails\n"
        "Action: rolling back to v41\n"
        "ETA: 2m\n"
        "Status: In Progress 0\n"
        "\n"
        "- requested by ana\n"
        "- trigger: api-errors=7.2"
    )
    assert message("rollback-started").subject() == "[URGENT] Rolling back shop prod (rb-1): In Progress 0"
    assert message("status-update").subject().startswith("[UPDATE] Still rolling back")
    assert message().as_dict()["details"] == []


def test_message_is_frozen() -> None:
    with pytest.raises(AttributeError):
        message().status = "Complete"  # type: ignore[misc]


FACTS = {
    "id": "rb-9",
    "app": "shop",
    "env": "prod",
    "from_release": "v42",
    "to_release": "v41",
    "steps_done": 3,
    "steps_total": 4,
    "estimate_seconds": 60.0,
}


@pytest.mark.parametrize(
    ("event", "facts", "eta", "status"),
    [
        ("rollback-started", {"elapsed_seconds": 0}, "about 1m (estimate 1m)", "In Progress (3 of 4 steps done)"),
        (
            "status-update",
            {"elapsed_seconds": 150},
            "overdue: estimated 1m, 2m30s so far",
            "In Progress (3 of 4 steps done)",
        ),
        ("status-update", {"estimate_seconds": None}, "unknown", "In Progress (3 of 4 steps done)"),
        ("approval-needed", {}, "about 1m once approved", "Awaiting approval"),
        ("rollback-succeeded", {"steps_done": 4}, "done", "Complete (4 of 4 steps done)"),
        ("rollback-failed", {}, "unknown: the rollback needs a person", "Failed (3 of 4 steps done)"),
    ],
)
def test_defaults_for_eta_and_status(event: str, facts: dict[str, object], eta: str, status: str) -> None:
    built = message_from_rollback(event, FACTS | facts)
    assert (built.eta, built.status) == (eta, status)
    assert (built.app, built.env, built.rollback_id, built.event) == ("shop", "prod", "rb-9", event)


def test_defaults_for_issue_action_and_details() -> None:
    failed = message_from_rollback(
        "step-failed",
        FACTS | {"severity": "SEV2", "step": {"component": "api-config", "error": "parameter deleted"}},
        details=["see the runbook"],
    )
    assert failed.issue == "SEV2: release v42 of shop in prod is bad"
    assert failed.action == "api-config failed while rolling back from v42 to v41"
    assert failed.details == ["error: parameter deleted", "Team: please stand by and monitor", "see the runbook"]
    approval = message_from_rollback("approval-needed", FACTS | {"approvals_needed": 2, "approver_roles": ["sre"]})
    assert approval.action == "waiting for 2 approvals (sre) to roll back from v42 to v41"
    drill = message_from_rollback("rollback-started", FACTS | {"drill": True, "reason": "game day"})
    assert drill.issue == "DRILL (not a real incident): game day" and drill.impact == "none expected: this is a drill"
    done = message_from_rollback("rollback-succeeded", FACTS, impact="checkout was down 4 minutes")
    assert done.impact == "checkout was down 4 minutes" and done.details == []
    with pytest.raises(TypeError, match="colour"):
        message_from_rollback("rollback-started", FACTS, colour="red")
