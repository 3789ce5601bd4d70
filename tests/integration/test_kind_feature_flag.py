"""feature-flag: the HTTP backend against a real JSON flag service on 127.0.0.1, AppConfig with botocore's Stubber.

Stubber-only paths: appconfig ListApplications, ListEnvironments, ListDeployments and StartDeployment (moto 5.2
implements neither environments nor deployments), and with them ListConfigurationProfiles,
GetHostedConfigurationVersion and CreateHostedConfigurationVersion, which moto has but which share the one
stubbed client.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from pydantic import ValidationError

from lastgood.aws.clients import AwsClients
from lastgood.errors import StepFailed
from lastgood.kinds.base import KindContext
from lastgood.kinds.feature_flag import FeatureFlag, FeatureFlagSpec, FlagServiceUnavailable, gradual_rounds

KIND = FeatureFlag()


class FlagService:
    """A tiny JSON flag service: GET returns every flag, PATCH merges, PUT replaces; `fail` queues error codes
    per method."""

    def __init__(self, flags: dict[str, Any]) -> None:
        self.flags = dict(flags)
        self.writes: list[tuple[str, dict[str, Any]]] = []
        self.auth: list[str | None] = []
        self.fail: dict[str, list[int]] = {}
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                service.auth.append(self.headers.get("Authorization"))
                if service.fail.get(method):
                    self._answer(service.fail[method].pop(0), {"error": "injected"})
                    return
                if method != "GET":
                    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                    service.writes.append((method, body))
                    service.flags = {**service.flags, **body} if method == "PATCH" else body
                self._answer(200, service.flags)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

            def do_PUT(self) -> None:
                self._handle("PUT")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/flags"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def service() -> Iterator[FlagService]:
    running = FlagService({"checkout_v2": True, "new_search": 100, "banner": "spring"})
    yield running
    running.close()


class Recorder:
    def __init__(self) -> None:
        self.progress: list[str] = []
        self.sleeps: list[float] = []

    def ctx(self, aws: AwsClients | None = None) -> KindContext:
        return KindContext(
            app="shop",
            env="prod",
            aws=aws or AwsClients(),
            token="rb-1-flags",
            progress=self.progress.append,
            sleep=self.sleeps.append,
        )


def http_spec(url: str, **kwargs: Any) -> FeatureFlagSpec:
    return FeatureFlagSpec.model_validate({"name": "flags", "http": {"url": url, **kwargs.pop("http", {})}, **kwargs})


def test_http_round_trip(service: FlagService) -> None:
    spec = http_spec(service.url, http={"headers": {"Authorization": "Bearer t0ken"}})
    ctx = Recorder().ctx()
    recorded = KIND.read(spec, ctx)
    assert recorded == {"backend": "http", "flags": {"banner": "spring", "checkout_v2": True, "new_search": 100}}

    service.flags.update(checkout_v2=False, banner="summer", added_later=True)
    current = KIND.read(spec, ctx)
    change = KIND.plan(spec, current, recorded)
    assert change is not None and change.action == "set-flags" and not change.destructive
    assert KIND.differences(spec, current, recorded) == ['banner: "summer" -> "spring"', "checkout_v2: false -> true"]
    assert "flags added since the release are left as they are: added_later" in change.notes

    result = KIND.apply(spec, ctx, recorded)
    assert result.changed and service.writes == [("PATCH", {"banner": "spring", "checkout_v2": True})]
    assert KIND.verify(spec, ctx, recorded) == []
    assert service.flags["added_later"] is True
    assert not KIND.apply(spec, ctx, recorded).changed
    assert KIND.plan(spec, KIND.read(spec, ctx), recorded) is None
    assert set(service.auth) == {"Bearer t0ken"}
    assert "t0ken" not in json.dumps(recorded) + result.detail


def test_http_put_sends_every_flag_and_subset_limits_what_is_recorded(service: FlagService) -> None:
    spec = http_spec(service.url, http={"method": "PUT"}, flags=["checkout_v2", "gone"])
    recorded = KIND.read(spec, Recorder().ctx())
    assert recorded["flags"] == {"checkout_v2": True}
    assert KIND.warnings(spec, recorded) == ["flags not found: gone"]
    service.flags.update(checkout_v2=False, new_search=5)
    KIND.apply(spec, Recorder().ctx(), recorded)
    assert service.writes == [("PUT", {"checkout_v2": True, "new_search": 5, "banner": "spring"})]


def test_gradual_disable_steps_percentages_down_with_pauses(service: FlagService) -> None:
    spec = http_spec(service.url, gradual={"steps": [50, 75, 25, 0], "pause": "30s"})
    recorder = Recorder()
    service.flags.update(new_search=0, checkout_v2=False)
    recorded = KIND.read(spec, recorder.ctx())
    service.flags.update(new_search=100, checkout_v2=True)

    change = KIND.plan(spec, KIND.read(spec, recorder.ctx()), recorded)
    assert change is not None and change.estimate_seconds == 2 + 90 and change.slow
    assert any(n.startswith("gradual: checkout_v2=false, new_search=75 -> new_search=50") for n in change.notes)
    KIND.apply(spec, recorder.ctx(), recorded)
    assert service.writes == [
        ("PATCH", {"checkout_v2": False, "new_search": 75}),
        ("PATCH", {"new_search": 50}),
        ("PATCH", {"new_search": 25}),
        ("PATCH", {"new_search": 0}),
    ]
    assert recorder.sleeps == [30.0, 30.0, 30.0]
    assert recorder.progress[0] == "step 1/4: checkout_v2=false, new_search=75"
    assert recorder.progress[-1] == "step 4/4: new_search=0"
    assert KIND.verify(spec, recorder.ctx(), recorded) == []


def test_gradual_rounds_stop_at_the_recorded_percentage_and_never_step_up() -> None:
    spec = http_spec("http://127.0.0.1:1/", gradual={})
    assert gradual_rounds({"a": 100}, {"a": 30}, spec.gradual) == [{"a": 75}, {"a": 50}, {"a": 30}]
    assert gradual_rounds({"a": 10}, {"a": 50}, spec.gradual) == [{"a": 50}]
    assert gradual_rounds({"a": 60, "b": 100}, {"a": 0, "b": 0}, spec.gradual) == [
        {"a": 50, "b": 75},
        {"a": 25, "b": 50},
        {"a": 0, "b": 25},
        {"b": 0},
    ]


def test_resumed_gradual_rollback_goes_on_from_where_it_is(service: FlagService) -> None:
    spec = http_spec(service.url, flags=["new_search"], gradual={"pause": 5})
    recorded = {"backend": "http", "flags": {"new_search": 0}}
    service.flags["new_search"] = 50  # a crash after the first two steps
    recorder = Recorder()
    KIND.apply(spec, recorder.ctx(), recorded)
    assert [body for _, body in service.writes] == [{"new_search": 25}, {"new_search": 0}]
    assert recorder.sleeps == [5.0]


def test_kill_switch_stops_and_releases(service: FlagService) -> None:
    service.flags["rules"] = {"enabled": True, "limit": 3}
    spec = http_spec(service.url, flags=["checkout_v2", "new_search", "rules"], kill_switch=True)
    assert KIND.takes_part_in_stop(spec) and not KIND.takes_part_in_stop(http_spec(service.url))
    saved = KIND.stop(spec, Recorder().ctx())
    assert saved == {
        "backend": "http",
        "flags": {"checkout_v2": True, "new_search": 100, "rules": {"enabled": True, "limit": 3}},
    }
    assert service.flags == {
        "checkout_v2": False,
        "new_search": 0,
        "banner": "spring",
        "rules": {"enabled": False, "limit": 3},
    }
    result = KIND.release_stop(spec, Recorder().ctx(), saved)
    assert result.changed and service.flags["new_search"] == 100 and service.flags["rules"]["enabled"] is True


def test_kill_switch_refuses_flags_it_cannot_turn_off(service: FlagService) -> None:
    spec = http_spec(service.url, kill_switch=True)  # every flag, and banner is a string
    with pytest.raises(StepFailed, match="flag banner is 'spring'"):
        KIND.stop(spec, Recorder().ctx())
    assert service.writes == []


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_http_failures_are_clear_and_only_outages_retry(service: FlagService) -> None:
    spec = http_spec(service.url)
    recorded = KIND.read(spec, Recorder().ctx())
    service.flags["checkout_v2"] = False
    service.fail = {"GET": [503]}
    with pytest.raises(FlagServiceUnavailable, match="HTTP 503") as outage:
        KIND.apply(spec, Recorder().ctx(), recorded)
    assert outage.value.retryable
    service.fail = {"PATCH": [403]}
    with pytest.raises(StepFailed, match=r"PATCH http://127\.0\.0\.1:\d+/flags: HTTP 403") as denied:
        KIND.apply(spec, Recorder().ctx(), recorded)
    assert not getattr(denied.value, "retryable", False)
    with pytest.raises(FlagServiceUnavailable, match="Connection refused"):
        KIND.read(http_spec("http://127.0.0.1:9/flags"), Recorder().ctx())


def test_spec_needs_one_backend() -> None:
    with pytest.raises(ValidationError, match="exactly one of appconfig or http"):
        FeatureFlagSpec.model_validate({"name": "f"})
    appconfig = {"application": "shop", "environment": "prod", "profile": "flags"}
    with pytest.raises(ValidationError, match="gradual is for http flags"):
        FeatureFlagSpec.model_validate({"name": "f", "appconfig": appconfig, "gradual": {}})
    with pytest.raises(ValidationError, match="http:// or https://"):
        http_spec("file:///etc/passwd")


# AppConfig, on a stubbed client.

APP, ENV, PROFILE = "app1234", "env5678", "prof901"
FLAGS_V3 = {
    "version": "1",
    "flags": {"checkout_v2": {"name": "checkout_v2"}, "dark": {"name": "dark"}},
    "values": {"checkout_v2": {"enabled": True}, "dark": {"enabled": False}},
}
FLAGS_V4 = {**FLAGS_V3, "values": {"checkout_v2": {"enabled": False}, "dark": {"enabled": True}}}


def summary(number: int, version: str, state: str, percent: float = 100.0) -> dict[str, Any]:
    return {
        "DeploymentNumber": number,
        "ConfigurationProfileId": PROFILE,
        "ConfigurationName": "flags",
        "ConfigurationVersion": version,
        "State": state,
        "PercentageComplete": percent,
        "StartedAt": datetime(2025, 1, 1, tzinfo=UTC),
    }


class AppConfigStub:
    def __init__(self, aws: AwsClients) -> None:
        client = boto3.client("appconfig", region_name="us-east-1")
        aws._clients["appconfig"] = client
        self.stub = Stubber(client)
        self.stub.activate()

    def ids(self) -> None:
        self.stub.add_response("list_applications", {"Items": [{"Id": APP, "Name": "shop"}]}, {})
        self.stub.add_response("list_environments", {"Items": [{"Id": ENV, "Name": "prod"}]}, {"ApplicationId": APP})
        profile = {"Id": PROFILE, "Name": "flags", "LocationUri": "hosted", "Type": "AWS.AppConfig.FeatureFlags"}
        self.stub.add_response("list_configuration_profiles", {"Items": [profile]}, {"ApplicationId": APP})

    def deployments(self, *items: dict[str, Any]) -> None:
        other = {**summary(99, "1", "COMPLETE"), "ConfigurationProfileId": "zzz9999", "ConfigurationName": "other"}
        self.stub.add_response(
            "list_deployments", {"Items": [*items, other]}, {"ApplicationId": APP, "EnvironmentId": ENV}
        )

    def content(self, version: int, body: dict[str, Any]) -> None:
        self.stub.add_response(
            "get_hosted_configuration_version",
            {"Content": json.dumps(body).encode(), "ContentType": "application/json", "VersionNumber": version},
            {"ApplicationId": APP, "ConfigurationProfileId": PROFILE, "VersionNumber": version},
        )

    def start(self, version: str, strategy: str, description: str, number: int) -> None:
        self.stub.add_response(
            "start_deployment",
            {"DeploymentNumber": number, "ConfigurationVersion": version, "State": "DEPLOYING"},
            {
                "ApplicationId": APP,
                "EnvironmentId": ENV,
                "DeploymentStrategyId": strategy,
                "ConfigurationProfileId": PROFILE,
                "ConfigurationVersion": version,
                "Description": description,
                "Tags": {"lastgood:step": "rb-1-flags"},
            },
        )


APPCONFIG = {"application": "shop", "environment": "prod", "profile": "flags"}


def appconfig_spec(**kwargs: Any) -> FeatureFlagSpec:
    return FeatureFlagSpec.model_validate(
        {"name": "flags", "appconfig": {**APPCONFIG, **kwargs.pop("cfg", {})}, **kwargs}
    )


def test_appconfig_redeploys_the_recorded_version(aws: AwsClients) -> None:
    stub, recorder = AppConfigStub(aws), Recorder()
    ctx = recorder.ctx(aws)
    spec = appconfig_spec(cfg={"strategy": "AppConfig.Linear50PercentEvery30Seconds"})
    stub.ids()
    stub.deployments(summary(5, "4", "ROLLED_BACK"), summary(4, "3", "COMPLETE"))
    stub.content(3, FLAGS_V3)
    recorded = KIND.read(spec, ctx)  # an alarm undid version 4: version 3 is what clients have
    assert recorded == {
        "backend": "appconfig",
        "version": "3",
        "flags": {"checkout_v2": {"enabled": True}, "dark": {"enabled": False}},
    }

    current = {"backend": "appconfig", "version": "4", "flags": FLAGS_V4["values"]}
    change = KIND.plan(spec, current, recorded)
    assert change is not None and change.action == "redeploy" and change.slow
    assert change.notes[0] == "redeploys configuration version 3 with AppConfig.Linear50PercentEvery30Seconds"

    stub.ids()
    stub.deployments(summary(6, "4", "COMPLETE"), summary(4, "3", "COMPLETE"))
    stub.start("3", "AppConfig.Linear50PercentEvery30Seconds", "lastgood rollback to version 3 (rb-1-flags)", 7)
    result = KIND.apply(spec, ctx, recorded)
    assert result.changed and result.detail.startswith("deployment 7 of configuration version 3 started")

    stub.ids()
    stub.deployments(summary(7, "3", "DEPLOYING", 50.0), summary(6, "4", "COMPLETE"))
    assert KIND.verify(spec, ctx, recorded) == ["deployment 7 is DEPLOYING (50%)"]
    assert recorder.progress == ["deployment 7 is DEPLOYING (50%)"]
    stub.ids()
    stub.deployments(summary(7, "3", "BAKING"), summary(6, "4", "COMPLETE"))
    assert KIND.verify(spec, ctx, recorded) == []

    stub.ids()
    stub.deployments(summary(7, "3", "COMPLETE"), summary(6, "4", "COMPLETE"))
    assert not KIND.apply(spec, ctx, recorded).changed
    stub.stub.assert_no_pending_responses()


def test_appconfig_conflict_and_undone_deployment_fail_clearly(aws: AwsClients) -> None:
    stub, ctx = AppConfigStub(aws), Recorder().ctx(aws)
    spec = appconfig_spec()
    recorded = {"backend": "appconfig", "version": "3", "flags": None}
    stub.ids()
    stub.deployments(summary(6, "4", "DEPLOYING", 20.0))
    stub.stub.add_client_error("start_deployment", "ConflictException", "Deployment 6 is in progress", 409)
    with pytest.raises(StepFailed, match=r"has a deployment under way \(Deployment 6 is in progress\)"):
        KIND.apply(spec, ctx, recorded)

    stub.ids()
    stub.deployments(summary(7, "3", "ROLLED_BACK"), summary(6, "4", "COMPLETE"))
    with pytest.raises(StepFailed, match="deployment 7 of version 3 is ROLLED_BACK"):
        KIND.verify(spec, ctx, recorded)

    stub.stub.add_response("list_applications", {"Items": [{"Id": APP, "Name": "shop"}]}, {})
    stub.stub.add_response("list_environments", {"Items": []}, {"ApplicationId": APP})
    with pytest.raises(StepFailed, match="AppConfig has no environment named 'prod'"):
        KIND.read(spec, ctx)
    stub.stub.assert_no_pending_responses()


def test_appconfig_kill_switch_publishes_a_version_with_flags_off(aws: AwsClients) -> None:
    stub, ctx = AppConfigStub(aws), Recorder().ctx(aws)
    spec = appconfig_spec(flags=["checkout_v2"], kill_switch=True)
    stub.ids()
    stub.deployments(summary(4, "3", "COMPLETE"))
    stub.content(3, FLAGS_V3)
    stub.content(3, FLAGS_V3)
    off = {**FLAGS_V3, "values": {"checkout_v2": {"enabled": False}, "dark": {"enabled": False}}}
    stub.stub.add_response(
        "create_hosted_configuration_version",
        {"VersionNumber": 8, "ApplicationId": APP, "ConfigurationProfileId": PROFILE},
        {
            "ApplicationId": APP,
            "ConfigurationProfileId": PROFILE,
            "Content": json.dumps(off).encode(),
            "ContentType": "application/json",
            "Description": "lastgood emergency stop (rb-1-flags)",
        },
    )
    stub.start("8", "AppConfig.AllAtOnce", "lastgood emergency stop (rb-1-flags)", 5)
    saved = KIND.stop(spec, ctx)
    assert saved == {"backend": "appconfig", "version": "3", "flags": {"checkout_v2": {"enabled": True}}}

    stub.ids()
    stub.deployments(summary(5, "8", "BAKING"), summary(4, "3", "COMPLETE"))
    stub.start("3", "AppConfig.AllAtOnce", "lastgood rollback to version 3 (rb-1-flags)", 6)
    assert KIND.release_stop(spec, ctx, saved).changed
    stub.stub.assert_no_pending_responses()


def test_appconfig_iam_is_scoped_to_appconfig() -> None:
    from lastgood.kinds.base import IamScope

    statements = KIND.iam_statements(appconfig_spec(kill_switch=True), IamScope(region="eu-west-1", account="1"))
    actions = {a for s in statements for a in s.actions}
    assert "appconfig:StartDeployment" in actions and "appconfig:CreateHostedConfigurationVersion" in actions
    assert all(r == "*" or r.startswith("arn:aws:appconfig:eu-west-1:1:") for s in statements for r in s.resources)
    assert KIND.iam_statements(http_spec("http://127.0.0.1/"), IamScope(region="eu-west-1")) == []
