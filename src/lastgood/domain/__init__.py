"""Pure domain logic: plans, ordering, states and their transitions. No I/O."""
