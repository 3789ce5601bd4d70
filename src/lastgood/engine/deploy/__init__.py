"""Progressive delivery, the parts below the guard: the deployment row, shifting a weighted component's
traffic, and promoting or aborting through the planner and the executor.

`models` (Pydantic views the callers get), `rows` (the ledger row and its state changes), `start` (the checks
and the release recorded before the first shift), `shift` (a share of traffic through the `WeightedKind`),
`finish` (promote, abort, pause). Judging each step with the guard is `service/deploy/`'s.
"""
