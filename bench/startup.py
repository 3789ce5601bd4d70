"""What does starting lastgood cost, next to starting Python and the AWS CLI?

Times whole processes, as a person or a script starts them: `python -c pass` (the floor), `aws --version` (the
tool the runbooks used), `lastgood --version`, `lastgood --help` (the Typer app, no command imported) and
`lastgood validate -f FILE` (loads and checks a runbook file; no AWS, no ledger). Each round runs every command
once, in a rotating order, so that the ratios compare runs made under the same load; a warm-up round first
writes the bytecode caches (PYTHONDONTWRITEBYTECODE is cleared for the children, as on a user's machine).

Per command: wall time and CPU time (user + system, from wait4) and peak memory, min / median / max; then the
ratios, per round, of each lastgood command to `python -c pass` and to `aws --version`. Targets (issue 13):
`lastgood --version` < 0.15 s and `lastgood validate` < 0.4 s wall on an idle machine; the load average is
printed before and after, because a loaded machine stretches wall time well past CPU time.

    .venv/bin/python bench/startup.py                 # 15 rounds
    .venv/bin/python bench/startup.py --rounds 30 --file examples/propie.yaml
    git worktree add /tmp/before fcaebd9 && .venv/bin/python bench/startup.py --baseline /tmp/before/src
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"lastgood --version": 0.15, "lastgood validate": 0.4}


@dataclass
class Runs:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    """Added to the environment: the baseline's PYTHONPATH."""
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)


def run_once(argv: Sequence[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak resident MiB of one process."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    stderr = process.stderr.read().decode() if process.stderr else ""
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {process.returncode}: {stderr[-500:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def find_aws() -> str | None:
    beside = Path(sys.executable).with_name("aws")
    return str(beside) if beside.exists() else shutil.which("aws")


def commands(runbook: Path, baseline: Path | None) -> dict[str, Runs]:
    python, lastgood = sys.executable, str(Path(sys.executable).with_name("lastgood"))
    found = {"python -c pass": Runs([python, "-c", "pass"])}
    aws = find_aws()
    if aws:
        found["aws --version"] = Runs([aws, "--version"])
    found["lastgood --version"] = Runs([lastgood, "--version"])
    found["lastgood --help"] = Runs([lastgood, "--help"])
    found["lastgood validate"] = Runs([lastgood, "validate", "-f", str(runbook)])
    if baseline is not None:  # another checkout's src/, run by this Python, as its console script would
        start = [
            python,
            "-c",
            "import sys\ntry:\n    from lastgood.cli.entry import entrypoint\n"
            "except ImportError:  # a checkout from before cli/entry.py\n"
            "    from lastgood.cli.app import entrypoint\nsys.argv[0] = 'lastgood'\nentrypoint()",
        ]
        env = {"PYTHONPATH": str(baseline)}
        found["baseline --version"] = Runs([*start, "--version"], env)
        found["baseline validate"] = Runs([*start, "validate", "-f", str(runbook)], env)
    return found


def measure(runs: dict[str, Runs], rounds: int) -> dict[str, Runs]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "LASTGOOD_FILE")}
    names = list(runs)
    for name in names:  # warm-up: bytecode caches, page cache
        run_once(runs[name].argv, {**env, **runs[name].env})
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            wall, cpu, rss = run_once(runs[name].argv, {**env, **runs[name].env})
            runs[name].wall.append(wall)
            runs[name].cpu.append(cpu)
            runs[name].rss_mib.append(rss)
    return runs


def spread(values: Sequence[float], unit: str = "s", digits: int = 3) -> str:
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{low:.{digits}f} / {mid:.{digits}f} / {high:.{digits}f} {unit}"


def report(runs: dict[str, Runs], runbook: Path, load_before: tuple[float, ...]) -> None:
    rounds = len(next(iter(runs.values())).wall)
    print(f"start-up, {rounds} paired rounds, {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(f"validate file: {runbook.relative_to(ROOT) if runbook.is_relative_to(ROOT) else runbook}")
    if "aws --version" not in runs:
        print("aws --version: the AWS CLI is not installed here (no `aws` beside this Python or on PATH): not measured")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in load_before)}")
    print()
    print(f"{'command':<20} {'wall min / median / max':<28} {'cpu min / median / max':<28} {'peak MiB (median)':>17}")
    for name, run in runs.items():
        print(f"{name:<20} {spread(run.wall):<28} {spread(run.cpu):<28} {statistics.median(run.rss_mib):>17.1f}")
    print()
    bases = [base for base in ("python -c pass", "aws --version") if base in runs]
    for base in bases:
        print(f"ratio to {base} (per round, wall: min / median / max)")
        for name, run in runs.items():
            if name.startswith(("lastgood", "baseline")):
                ratios = [a / b for a, b in zip(run.wall, runs[base].wall, strict=True)]
                print(f"  {name:<20} {spread(ratios, 'x', 2)}")
    print()
    for name, limit in TARGETS.items():
        median = statistics.median(runs[name].wall)
        verdict = "met" if median < limit else "missed"
        print(f"target {name} < {limit} s wall: median {median:.3f} s -> {verdict}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if max(load_before) > (os.cpu_count() or 1):
        print("note: the machine was not idle (load above its core count): wall times include waiting for a core;")
        print("      the CPU column is what the process itself spent")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--file", type=Path, default=ROOT / "examples" / "cira-invoice.yaml")
    parser.add_argument(
        "--baseline", type=Path, help="another checkout's src/ (e.g. main before this change), measured beside"
    )
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    runbook = args.file.resolve()
    report(measure(commands(runbook, args.baseline), args.rounds), runbook, load_before)
    return 0


if __name__ == "__main__":
    sys.exit(main())
