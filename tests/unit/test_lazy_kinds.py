"""The kind registry imports a kind's module when the kind is first looked up: `lastgood validate` builds the
models of the kinds its file uses, not every kind's (issue 13, goal 1)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lastgood.kinds import registry

EXAMPLE = Path(__file__).parents[2] / "examples" / "cira-invoice.yaml"
UNRELATED = ("dynamodb_table", "security_group", "route53_weighted", "codedeploy", "elbv2_listener", "s3_prefix")


def test_every_entry_makes_the_kind_it_names() -> None:
    assert list(registry.KINDS) == list(registry._MODULES)
    for name, kind in registry.KINDS.items():
        assert kind.name == name and registry.get_kind(name) is kind


@pytest.mark.slow
def test_validating_a_file_imports_only_its_kinds() -> None:
    code = (
        "import json, sys\n"
        "from lastgood.config.loader import load_runbook\n"
        f"runbook = load_runbook({str(EXAMPLE)!r})\n"
        "print(json.dumps([sorted({c.kind for c in runbook.components}), sorted(sys.modules)]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    used, modules = json.loads(done.stdout)
    loaded = {where.partition(":")[0] for where in registry._MODULES.values()} & set(modules)
    wanted = {registry._MODULES[name].partition(":")[0] for name in used}
    assert wanted <= loaded
    # Kinds neither used by the file nor imported by a used kind's module are not loaded.
    assert loaded & ({f"lastgood.kinds.{name}" for name in UNRELATED} - wanted) == set()
    assert "urllib.request" not in modules  # the sources and notifiers import it when they send
