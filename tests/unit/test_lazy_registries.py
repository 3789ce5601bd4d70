"""The kind, source and channel registries import an entry's module when it is first looked up: `lastgood
validate` builds the models of the kinds, sources and channels its file uses, not every one's (issue 13, goal 1)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lastgood.config import plugins
from lastgood.kinds import registry
from lastgood.notify import registry as channels
from lastgood.sources import registry as sources

EXAMPLE = Path(__file__).parents[2] / "examples" / "cira-invoice.yaml"
UNRELATED = ("dynamodb_table", "security_group", "route53_weighted", "codedeploy", "elbv2_listener", "s3_prefix")


def test_every_entry_makes_the_kind_it_names() -> None:
    assert list(registry.KINDS) == list(registry._MODULES)
    for name, kind in registry.KINDS.items():
        assert kind.name == name and registry.get_kind(name) is kind


def test_every_source_and_channel_entry_makes_the_class_it_names() -> None:
    assert list(sources.SOURCES) == list(sources._MODULES) == list(plugins.sources())
    for name in sources._MODULES:
        assert sources.SOURCES[name].name == name and plugins.sources()[name] is sources.SOURCES[name]
    assert list(channels.NOTIFIERS) == list(channels._MODULES) == list(plugins.channels())
    for key in channels._MODULES:
        assert channels.NOTIFIERS[key].key == key and plugins.channels()[key] is channels.NOTIFIERS[key]


@pytest.mark.slow
def test_validating_a_file_imports_only_its_kinds_sources_and_channels() -> None:
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
    # cira-invoice's triggers are CloudWatch metrics and its one channel is Slack.
    source_modules = {where.partition(":")[0] for where in sources._MODULES.values()} & set(modules)
    channel_modules = {where.partition(":")[0] for where in channels._MODULES.values()} & set(modules)
    assert source_modules == {"lastgood.sources.cloudwatch"}
    assert channel_modules == {"lastgood.notify.slack"}
