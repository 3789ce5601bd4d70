"""Who is acting: every use case takes one, so the ledger records a person or a process, never a guess."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Via = Literal["cli", "guard", "api", "slack", "worker", "deploy", "drill", "demo", "test"]


class Actor(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1)
    roles: frozenset[str] = frozenset()
    via: Via = "cli"

    def __str__(self) -> str:
        return f"{self.name} ({self.via})"


GUARD = Actor(name="lastgood-guard", via="guard")

# What a user of the server may do through it, each role including the ones before it. Approving also needs
# one of the file's approver roles for the person of that name (`policy.people`), as on the CLI.
SERVER_ROLES = ("viewer", "operator", "approver", "admin")
ServerRole = Literal["viewer", "operator", "approver", "admin"]


def role_allows(role: str, needed: str) -> bool:
    """Whether a user with `role` may do what needs `needed`."""
    if role not in SERVER_ROLES or needed not in SERVER_ROLES:
        return False
    return SERVER_ROLES.index(role) >= SERVER_ROLES.index(needed)
