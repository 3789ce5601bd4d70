"""python -m lastgood.docs [--check] [DIR]: write the reference pages (default docs/reference), or list the
stale ones and exit 1."""

from __future__ import annotations

import sys
from pathlib import Path

from lastgood.docs import stale, write


def main(argv: list[str]) -> int:
    check = "--check" in argv
    root = Path(next((a for a in argv if not a.startswith("-")), "docs/reference"))
    changed = stale(root) if check else write(root)
    for path in changed:
        print(f"{'stale' if check else 'wrote'}: {root / path}")
    return 1 if check and changed else 0


sys.exit(main(sys.argv[1:]))
