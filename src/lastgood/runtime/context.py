"""Everything one operation needs about one environment: the file, the ledger, AWS, the clock, the actor."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.orm import Session

from lastgood.aws.clients import AwsClients
from lastgood.clock import Clock, SystemClock
from lastgood.config.messages import did_you_mean
from lastgood.config.models import Component, Runbook
from lastgood.domain.actor import Actor
from lastgood.errors import BadInput
from lastgood.kinds.base import Kind, KindContext
from lastgood.kinds.registry import get_kind
from lastgood.ledger.db import Ledger
from lastgood.notify.dispatch import Dispatch, NopDispatcher

if TYPE_CHECKING:
    from lastgood.runtime.lease import Lease

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class EnvContext:
    runbook: Runbook
    env: str
    ledger: Ledger
    aws: AwsClients
    clock: Clock = field(default_factory=SystemClock)
    concurrency: int = 16
    dispatch: Dispatch = field(default_factory=NopDispatcher)
    actor: Actor = field(default_factory=lambda: Actor(name="lastgood", via="test"))
    holding: Lease | None = None  # this process already holds the environment: nested operations run under it
    _specs: tuple[Runbook, str, list[Component]] | None = field(default=None, init=False, repr=False, compare=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A ledger transaction whose events are signed by this context's actor."""
        with self.ledger.session(self.actor.name) as session:
            yield session

    @property
    def app(self) -> str:
        return self.runbook.app

    @property
    def kind_context(self) -> KindContext:
        return KindContext(app=self.app, env=self.env, aws=self.aws, now=self.clock.now, sleep=self.clock.sleep)

    def components(self, only: Iterable[str] | None = None) -> list[Component]:
        """The file's components for this environment, substituted once per context (a rollback asks several
        times, and substituting 1,000 specs costs tens of milliseconds each time); a new runbook is read anew."""
        if self._specs is None or self._specs[0] is not self.runbook or self._specs[1] != self.env:
            self._specs = (self.runbook, self.env, self.runbook.components_for(self.env))
        specs = list(self._specs[2])
        if only is None:
            return specs
        names = [s.name for s in specs]
        wanted = list(only)
        unknown = [n for n in wanted if n not in names]
        if unknown:
            hints = "; ".join(f"{n!r}{did_you_mean(n, names)}" for n in unknown)
            raise BadInput(f"--only: no such component: {hints} (the file defines: {', '.join(names)})")
        return [s for s in specs if s.name in wanted]

    def kind_of(self, spec: Component) -> Kind[Any]:
        return get_kind(spec.kind)

    def parallel_map(self, fn: Callable[[T], R], items: list[T]) -> list[R]:
        if len(items) <= 1:
            return [fn(i) for i in items]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(items))) as pool:
            return list(pool.map(fn, items))
