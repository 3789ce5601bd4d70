"""Ctrl-C and SIGTERM for long commands: the first asks the work to stop cleanly, the second exits at once."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Protocol

import typer

from lastgood.cli.common import option_duration

INTERRUPTED_EXIT = 130

WaitOption = Annotated[
    str | None,
    typer.Option(
        "--wait",
        metavar="DURATION",
        help="If another operation holds the environment, wait up to DURATION (e.g. 90s, 10m) for it [default: refuse]",
    ),
]


class HasExitCode(Protocol):
    @property
    def exit_code(self) -> int: ...


def parse_wait(value: str | None) -> float | None:
    return None if value is None else option_duration("--wait", value)


@contextmanager
def interruptible(
    stop: threading.Event, on_first: Callable[[], None], armed: Callable[[], bool] = lambda: True
) -> Iterator[None]:
    """While the block runs, SIGINT/SIGTERM set `stop` (the work winds down and records what it did); a second
    one exits at once with 130, leaving the lease to expire. Until `armed()` (e.g. at a prompt, before anything
    changed), Ctrl-C interrupts as usual."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    count = 0

    def handler(signum: int, frame: object) -> None:
        nonlocal count
        if not armed():
            raise KeyboardInterrupt
        count += 1
        if count > 1:
            sys.stderr.write("interrupted again: exiting now; the lease expires and `lastgood resume` finishes it\n")
            sys.stderr.flush()
            os._exit(INTERRUPTED_EXIT)
        stop.set()
        on_first()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def exit_now(result: HasExitCode) -> None:
    """Exit with the result's code; after an interrupt, without waiting for worker threads still in an AWS call."""
    code = result.exit_code
    if code == INTERRUPTED_EXIT:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(INTERRUPTED_EXIT)
    if code:
        raise typer.Exit(code)
