"""A traffic simulator: each second, Poisson requests split by the alias weights, errors by each version's rate,
written to CloudWatch as AWS/Lambda Invocations and Errors, as Lambda itself would."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from lastgood.aws.clients import AwsClients


@dataclass
class FunctionTraffic:
    name: str
    requests_per_second: float
    error_rate_by_version: dict[str, float] = field(default_factory=dict)
    default_error_rate: float = 0.005


class TrafficSimulator:
    def __init__(self, aws: AwsClients, functions: list[FunctionTraffic], seed: int = 7) -> None:
        self.aws = aws
        self.functions = functions
        self.random = np.random.default_rng(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="traffic", daemon=True)
        self.seconds = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            now = datetime.now(UTC)
            # Write at the second's start so each datapoint lands in exactly one 1-second period.
            self.tick(now.replace(microsecond=0))
            self.seconds += 1
            self._stop.wait(1.0 - datetime.now(UTC).microsecond / 1e6)

    def tick(self, at: datetime) -> None:
        data = []
        for function in self.functions:
            requests, errors = self._one_second(function)
            dimensions = [{"Name": "FunctionName", "Value": function.name}]
            data += [
                {
                    "MetricName": "Invocations",
                    "Dimensions": dimensions,
                    "Timestamp": at,
                    "Value": requests,
                    "Unit": "Count",
                    "StorageResolution": 1,
                },
                {
                    "MetricName": "Errors",
                    "Dimensions": dimensions,
                    "Timestamp": at,
                    "Value": errors,
                    "Unit": "Count",
                    "StorageResolution": 1,
                },
            ]
        self.aws.client("cloudwatch").put_metric_data(Namespace="AWS/Lambda", MetricData=data)

    def _one_second(self, function: FunctionTraffic) -> tuple[float, float]:
        alias = self.aws.client("lambda").get_alias(FunctionName=function.name, Name="live")
        weights = {
            str(k): float(v) for k, v in (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights", {}).items()
        }
        shares = {alias["FunctionVersion"]: 1.0 - sum(weights.values()), **weights}
        total = int(self.random.poisson(function.requests_per_second))
        errors = 0
        for version, share in shares.items():
            served = int(self.random.binomial(total, min(1.0, max(0.0, share))))
            rate = function.error_rate_by_version.get(version, function.default_error_rate)
            errors += int(self.random.binomial(served, rate))
        return float(total), float(errors)
