"""The rollback engine: record releases, plan, execute durably and resumably, verify, finish."""
