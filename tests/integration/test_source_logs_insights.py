"""`logs_insights:` one Logs Insights query per period. moto 5 runs StartQuery/GetQueryResults but evaluates only
`fields`, `sort` and `limit` (moto/logs/logs_query/query_parser.py; no `filter`, no `stats`), and its queries
complete at once: so the round trip (seconds, log groups, result cells) is tested on moto's server with a
`fields ... | limit 1` query, and the polling, a query that never completes, failures and the exact request
shapes with botocore's Stubber."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from lastgood.aws.clients import AwsClients
from lastgood.config.models import Trigger
from lastgood.sources.base import Series, SeriesRequest
from lastgood.sources.logs_insights import InsightsQuery, LogsInsightsSource

START = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
GROUP = "/aws/lambda/shop-api"
ERRORS = "filter @message like /ERROR/ | stats count(*) as errors"


def insights(**query: object) -> InsightsQuery:
    return InsightsQuery.model_validate({"log_groups": [GROUP], "query": ERRORS, "field": "errors", **query})


@pytest.mark.slow
def test_the_round_trip_on_moto(aws_env, aws: AwsClients) -> None:  # type: ignore[no-untyped-def]
    logs = aws.client("logs")
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName="s1")
    stamps = [int((START + timedelta(seconds=s)).timestamp() * 1000) for s in (10, 70, 80)]
    logs.put_log_events(
        logGroupName=GROUP, logStreamName="s1", logEvents=[{"timestamp": t, "message": "ERROR x"} for t in stamps]
    )
    newest = insights(query="fields @timestamp, @message | sort @timestamp desc | limit 1", field="@timestamp")
    every = insights(query="fields @timestamp, @message", field="@timestamp")
    missing = insights(query="fields @timestamp | limit 1", field="errors")
    requests = [
        SeriesRequest("newest", newest, 60),
        SeriesRequest("every", every, 60),
        SeriesRequest("missing", missing, 60),
    ]
    got = LogsInsightsSource(aws, poll=0.01).fetch(requests, START, START + timedelta(minutes=3))
    assert got["newest"].points == {
        START: stamps[0],
        START + timedelta(minutes=1): stamps[2],
        START + timedelta(minutes=2): 0.0,
    }
    assert got["every"].status == "error" and "returned 2 rows; aggregate it to one" in str(got["every"].error)
    assert got["missing"].status == "error" and "no field 'errors' (its fields: @timestamp)" in str(
        got["missing"].error
    )
    unknown = LogsInsightsSource(aws).fetch(
        [SeriesRequest("u", insights(log_groups=["/nope"]), 60)], START, START + timedelta(minutes=1)
    )
    assert unknown["u"].status == "error" and "could not start the query" in str(unknown["u"].error)


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


class Stubbed:
    def __init__(self) -> None:
        self.client = boto3.client("logs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        self.stubber = Stubber(self.client)
        self.time = FakeTime()

    def client_for(self, service: str) -> Any:
        return self.client

    def source(self) -> LogsInsightsSource:
        clients: Any = type("Clients", (), {"client": lambda _self, service: self.client})()
        return LogsInsightsSource(clients, poll=1.0, sleep=self.time.sleep, monotonic=self.time.monotonic)

    def start(self, query_id: str, at: datetime, query: InsightsQuery = insights()) -> None:
        expected = {
            "logGroupNames": [GROUP],
            "startTime": int(at.timestamp()),
            "endTime": int(at.timestamp()) + 60,
            "queryString": query.query,
        }
        self.stubber.add_response("start_query", {"queryId": query_id}, expected)

    def results(self, query_id: str, status: str, rows: list[list[dict[str, str]]] | None = None) -> None:
        self.stubber.add_response("get_query_results", {"status": status, "results": rows or []}, {"queryId": query_id})


def fetch(stub: Stubbed, source: LogsInsightsSource, minutes: int = 1, query: InsightsQuery = insights()) -> Series:
    with stub.stubber:
        got = source.fetch([SeriesRequest("e", query, 60)], START, START + timedelta(minutes=minutes))["e"]
    stub.stubber.assert_no_pending_responses()
    return got


def test_it_polls_until_complete_and_keeps_a_complete_period() -> None:
    stub = Stubbed()
    source = stub.source()
    stub.start("q1", START)
    stub.results("q1", "Scheduled")
    stub.results("q1", "Running")
    stub.results("q1", "Complete", [[{"field": "errors", "value": "7"}, {"field": "@ptr", "value": "abc"}]])
    assert fetch(stub, source).points == {START: 7.0}
    assert stub.time.slept == [1.0, 1.0]
    # The guard looks back again a period later: the first period is not queried again, the new one is.
    second = START + timedelta(minutes=1)
    stub.start("q2", second)
    stub.results("q2", "Complete", [])  # no rows: a count that found nothing
    assert fetch(stub, source, minutes=2).points == {START: 7.0, second: 0.0}


def test_a_query_that_never_completes_is_stopped_and_is_an_error() -> None:
    stub = Stubbed()
    stub.start("q1", START, insights(timeout="5s"))
    for _ in range(6):
        stub.results("q1", "Running")
    stub.stubber.add_response("stop_query", {"success": True}, {"queryId": "q1"})
    got = fetch(stub, stub.source(), query=insights(timeout="5s"))
    assert got.status == "error" and got.error == "the Logs Insights query did not complete within 5s; stopped it"
    assert sum(stub.time.slept) == 5.0


@pytest.mark.parametrize(
    ("status", "rows", "query", "error"),
    [
        ("Failed", [], insights(), "the Logs Insights query ended Failed"),
        ("Cancelled", [], insights(), "the Logs Insights query ended Cancelled"),
        ("Complete", [[{"field": "count(*)", "value": "3"}]], insights(), "no field 'errors' (its fields: count(*))"),
        ("Complete", [[{"field": "errors", "value": "many"}]], insights(), "'errors' is not a number: 'many'"),
        ("Complete", [[{"field": "errors", "value": "1"}]] * 2, insights(), "returned 2 rows"),
    ],
)
def test_failures_and_results_without_the_field_are_errors(
    status: str, rows: list[list[dict[str, str]]], query: InsightsQuery, error: str
) -> None:
    stub = Stubbed()
    stub.start("q1", START, query)
    stub.results("q1", status, rows)
    got = fetch(stub, stub.source(), query=query)
    assert got.status == "error" and error in str(got.error)


def test_no_rows_may_mean_no_data() -> None:
    stub = Stubbed()
    query = insights(no_rows="no-data")
    stub.start("q1", START, query)
    stub.results("q1", "Complete", [])
    assert fetch(stub, stub.source(), query=query).status == "no-data"


def test_a_logs_insights_trigger_in_the_file() -> None:
    data = {"name": "errors-in-logs", "logs_insights": {"log_groups": [GROUP], "query": ERRORS, "field": "errors"}}
    trigger = Trigger.model_validate({**data, "when": "> 5", "for": "5m"})
    assert trigger.source_type == "logs_insights" and trigger.query.field == "errors"
    with pytest.raises(ValueError, match="takes no baseline"):
        Trigger.model_validate({**data, "when": "> 3x baseline"})
    with pytest.raises(ValueError, match="whole seconds"):
        Trigger.model_validate({**data, "when": "> 5", "period": 1.5, "for": 3})
    with pytest.raises(ValueError, match="field"):
        Trigger.model_validate({"name": "n", "logs_insights": {"log_groups": [GROUP], "query": ERRORS}, "when": "> 1"})
