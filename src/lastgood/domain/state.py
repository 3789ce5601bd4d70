"""A component's recorded state and its fingerprint: what the ledger stores and the kinds read and restore."""

from __future__ import annotations

import hashlib
import json
from typing import Any

State = dict[str, Any]
"""A component's recorded state: JSON-able, never a secret value (values are stored as hashes)."""


def state_hash(state: State) -> str:
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16]
