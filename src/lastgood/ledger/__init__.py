"""The release ledger: what every component was at each release, and every rollback, step and event."""
