"""The canary judges' store in the ledger (`ledger.judges`), as the `JudgeStore` a `CanaryWatch` uses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lastgood.guard.canary import SavedJudge
from lastgood.ledger import judges
from lastgood.runtime.context import EnvContext


class LedgerJudgeStore:
    def __init__(self, ctx: EnvContext) -> None:
        self.ctx = ctx

    def load(self, key: str) -> SavedJudge | None:
        with self.ctx.session() as session:
            stored = judges.load(session, key)
        return None if stored is None else SavedJudge(stored.state, stored.next_start, stored.version)

    def save(self, key: str, state: dict[str, Any], next_start: datetime, expected: int) -> bool:
        with self.ctx.session() as session:
            return judges.save(
                session, key, self.ctx.app, self.ctx.env, state, next_start, expected, self.ctx.clock.now()
            )
