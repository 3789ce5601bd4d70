"""What every operation runs in: the environment context (file, ledger, AWS, clock, actor) and its notices."""
