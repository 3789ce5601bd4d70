"""The `lastgood` executable. `--version` answers before Typer is imported: scripts and health checks ask it
often, and it should cost no more than starting Python. Everything else goes to lastgood.cli.app."""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import types


def entrypoint() -> None:
    if sys.argv[1:] == ["--version"]:
        from lastgood import __version__

        print(f"lastgood {__version__}")
        sys.exit(0)
    atexit.register(exit_without_teardown)  # registered first, so it runs last: after every other exit handler
    skip_pydantic_plugin_discovery()
    from lastgood.cli.app import main

    try:
        code = main()
    except SystemExit as leaving:  # a command that calls sys.exit itself
        _status[0] = exit_status(leaving.code)
        raise
    _status[0] = code
    sys.exit(code)


_status = [1]  # the process's exit status; 1 until main returns (an uncaught exception exits 1)


def exit_status(code: object) -> int:
    """What the interpreter makes of `sys.exit(code)`: None is 0, an int itself, anything else (printed) 1."""
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def exit_without_teardown() -> None:
    """The interpreter's teardown (clearing every module, collecting what boto3, botocore's service models and
    SQLAlchemy hold) costs ~0.4 s after a rollback, longer than the rollback's last steps. By the time this runs,
    non-daemon threads are joined and every other exit handler has run (logging flushed, queued notifications
    sent): the ledger's connections are closed, the standard streams flushed, and the process ends with its
    status. Under coverage measurement the teardown is kept: coverage saves its data in a handler of its own."""
    if "coverage" in sys.modules:
        return
    session = sys.modules.get("lastgood.service.session")
    if session is not None:
        session.forget_ledgers()
    if "logging" in sys.modules:
        sys.modules["logging"].shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`| head`): nothing more can be said on it
            stream.flush()
    os._exit(_status[0])


def skip_pydantic_plugin_discovery() -> None:
    """The first validator pydantic builds looks for pydantic plugins among every installed distribution's entry
    points: importing importlib.metadata (email, zipfile, socket) and reading each dist-info cost ~45 ms of the
    ~0.5 s `lastgood validate` takes. lastgood uses no pydantic plugin, so the executable answers that question
    itself: pydantic's documented switch (PYDANTIC_DISABLE_PLUGINS) for the scan, and the one function pydantic
    takes from its plugin loader (`get_plugins`, imported inside `create_schema_validator`) for the import.
    Someone who sets PYDANTIC_DISABLE_PLUGINS to a list of names keeps pydantic's own loader."""
    if os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__") != "__all__":
        return
    if "pydantic.plugin._loader" not in sys.modules:
        loader = types.ModuleType("pydantic.plugin._loader", "lastgood: pydantic plugins are not looked for")
        loader.get_plugins = tuple  # type: ignore[attr-defined]
        sys.modules["pydantic.plugin._loader"] = loader
