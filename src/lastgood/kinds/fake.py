"""fake: an in-memory component kind for testing the engine without AWS (like httpx's MockTransport).

Not registered by default. Tests install it explicitly and remove it afterwards:

    world = FakeWorld({"api": "1"})
    with installed(world):
        runbook = parse_runbook(text)      # `kind: fake` components now validate
        ...

State lives in a FakeWorld: a thread-safe dict key -> value, with programmable faults (fail the next N
applies of a key, retryably or for good), verify lag (the next K verify polls of a key report the component
as not there yet), an optional delay inside apply, and a log of every apply call with timestamps and the
peak number of applies running at once.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, model_validator

from lastgood.config.models import Component
from lastgood.errors import AwsError, ResourceNotFound, TransientAwsError
from lastgood.kinds.base import ApplyResult, IamScope, IamStatement, Kind, KindContext, State

ApplyOutcome = Literal["changed", "unchanged", "failed"]
STOPPED = "stopped"


class FakeSpec(Component):
    kind: Literal["fake"] = "fake"
    key: str = Field(default="", description="The key in the fake world; defaults to the component's name.")
    kill_switch: bool = Field(default=False, description="Take part in the emergency stop (value becomes 'stopped').")

    @model_validator(mode="after")
    def _default_key(self) -> FakeSpec:
        if not self.key:
            self.key = self.name
        return self


@dataclass(frozen=True)
class ApplyCall:
    """One call to FakeKind.apply. Times are time.monotonic() seconds."""

    key: str
    target: str
    started: float
    finished: float
    outcome: ApplyOutcome


class FakeWorld:
    """The fake components' live state, shared by every thread of the process."""

    def __init__(self, values: Mapping[str, str] | None = None, apply_delay: float = 0.0) -> None:
        self._lock = threading.RLock()
        self._values: dict[str, str] = dict(values or {})
        self._faults: dict[str, deque[AwsError]] = {}
        self._verify_lag: dict[str, int] = {}
        self._calls: list[ApplyCall] = []
        self._active = 0
        self._peak = 0
        # Real seconds each apply sleeps while counted as running (to observe concurrency).
        self.apply_delay = apply_delay

    # state

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._values.get(key)

    def set(self, key: str, value: str) -> None:
        with self._lock:
            self._values[key] = value

    def update(self, values: Mapping[str, str]) -> None:
        with self._lock:
            self._values.update(values)

    def delete(self, key: str) -> None:
        with self._lock:
            self._values.pop(key, None)

    def snapshot(self) -> dict[str, str]:
        with self._lock:
            return dict(self._values)

    # faults

    def fail_next(self, key: str, times: int = 1, *, permanent: bool = False, message: str = "") -> None:
        """The next `times` applies of key raise TransientAwsError (retryable) or, if permanent, AwsError."""
        with self._lock:
            queue = self._faults.setdefault(key, deque())
            for _ in range(times):
                text = message or f"fake:Put {key}: injected {'permanent' if permanent else 'transient'} failure"
                queue.append(AwsError(text) if permanent else TransientAwsError(text))

    def lag_verify(self, key: str, polls: int) -> None:
        """The next `polls` verify polls of key report that it has not reached its target yet."""
        with self._lock:
            self._verify_lag[key] = self._verify_lag.get(key, 0) + polls

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._verify_lag.clear()

    def reset(self) -> None:
        """Forget values, faults and the apply log."""
        with self._lock:
            self._values.clear()
            self.clear_faults()
            self._calls.clear()
            self._active = 0
            self._peak = 0

    # observations

    @property
    def calls(self) -> list[ApplyCall]:
        """Every apply call so far, in the order they started."""
        with self._lock:
            return sorted(self._calls, key=lambda c: c.started)

    def apply_order(self, *, changed_only: bool = True) -> list[str]:
        """Keys in the order their applies started (by default only applies that changed something)."""
        return [c.key for c in self.calls if c.outcome == "changed" or not changed_only]

    def apply_count(self, key: str, outcome: ApplyOutcome | None = None) -> int:
        return sum(1 for c in self.calls if c.key == key and (outcome is None or c.outcome == outcome))

    @property
    def peak_concurrency(self) -> int:
        with self._lock:
            return self._peak

    # used by FakeKind

    def _start_apply(self) -> float:
        with self._lock:
            self._active += 1
            self._peak = max(self._peak, self._active)
            return time.monotonic()

    def _end_apply(self, key: str, target: str, started: float, outcome: ApplyOutcome) -> None:
        with self._lock:
            self._active -= 1
            self._calls.append(ApplyCall(key, target, started, time.monotonic(), outcome))

    def _take_fault(self, key: str) -> AwsError | None:
        with self._lock:
            queue = self._faults.get(key)
            return queue.popleft() if queue else None

    def _take_lag(self, key: str) -> bool:
        with self._lock:
            left = self._verify_lag.get(key, 0)
            if left <= 0:
                return False
            self._verify_lag[key] = left - 1
            return True


WORLD = FakeWorld()
"""The process-wide default world, used by FakeKind() without an argument."""


class FakeKind(Kind[FakeSpec]):
    name = "fake"
    spec_model = FakeSpec
    estimate_seconds = 0.1
    verify_timeout_seconds = 5.0

    def __init__(self, world: FakeWorld | None = None) -> None:
        self.world = world if world is not None else WORLD

    def takes_part_in_stop(self, spec: FakeSpec) -> bool:
        return spec.kill_switch

    def stop(self, spec: FakeSpec, ctx: KindContext) -> State:
        saved = self.read(spec, ctx)
        self.world.set(spec.key, STOPPED)
        return saved

    def release_stop(self, spec: FakeSpec, ctx: KindContext, saved: State) -> ApplyResult:
        self.world.set(spec.key, str(saved["value"]))
        return ApplyResult(f"{spec.key} back to {saved['value']}")

    def read(self, spec: FakeSpec, ctx: KindContext) -> State:
        value = self.world.get(spec.key)
        if value is None:
            raise ResourceNotFound(f"fake:Get {spec.key}: no such key")
        return {"value": value}

    def differences(self, spec: FakeSpec, current: State, target: State) -> list[str]:
        if current.get("value") != target.get("value"):
            return [f"value {current.get('value')} -> {target.get('value')}"]
        return []

    def apply(self, spec: FakeSpec, ctx: KindContext, target: State) -> ApplyResult:
        wanted = str(target["value"])
        started = self.world._start_apply()
        outcome: ApplyOutcome = "failed"
        try:
            if self.world.apply_delay > 0:
                time.sleep(self.world.apply_delay)
            fault = self.world._take_fault(spec.key)
            if fault is not None:
                raise fault
            with self.world._lock:
                if not self.differences(spec, self.read(spec, ctx), target):
                    outcome = "unchanged"
                    return ApplyResult("already at target", changed=False)
                self.world.set(spec.key, wanted)
                outcome = "changed"
            return ApplyResult(f"{spec.key} -> {wanted}")
        finally:
            self.world._end_apply(spec.key, wanted, started, outcome)

    def verify(self, spec: FakeSpec, ctx: KindContext, target: State) -> list[str]:
        if self.world._take_lag(spec.key):
            return [f"{spec.key}: change not visible yet"]
        return super().verify(spec, ctx, target)

    def action_name(self, current: State, target: State) -> str:
        return "set"

    def describe(self, state: State) -> str:
        return f"value {state['value']}"

    def iam_statements(self, spec: FakeSpec, scope: IamScope) -> list[IamStatement]:
        return []


@contextmanager
def installed(world: FakeWorld | None = None) -> Iterator[FakeWorld]:
    """Register FakeKind(world) for the duration of the block, then restore the registry as it was."""
    from lastgood.kinds import registry

    kind = FakeKind(world)
    previous: Kind[Any] | None = registry.KINDS.get(FakeKind.name)
    registry.register(kind)
    try:
        yield kind.world
    finally:
        if previous is None:
            registry.KINDS.pop(FakeKind.name, None)
        else:
            registry.KINDS[FakeKind.name] = previous
