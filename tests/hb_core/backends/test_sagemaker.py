"""The SageMaker backend over real HTTP: aiobotocore -> the SageMaker emulator -> moto (S3, CloudWatch, Logs).

The emulator runs the trials' entry points (``scripts/``) as real processes,
or, with ``run_processes=False``, holds fake jobs that tests end by hand.
Every wait is bounded; no assertion depends on how long anything took.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from hb_core.backends import process as proc
from hb_core.backends.aws import AwsCallError, RetryPolicy
from hb_core.backends.clock import RealClock
from hb_core.backends.s3_store import S3Store
from hb_core.backends.sagemaker import DEFAULT_PRICES, SageMakerBackend
from hb_core.config import TuningConfig
from hb_core.controller import decide, new_state
from hb_core.errors import BackendError, ConfigError
from hb_core.events import (
    Event,
    Launch,
    MetricReported,
    Resume,
    TrialCompleted,
    TrialFailed,
    TrialStarted,
    TrialStopped,
)
from hb_core.latency import DEFAULT_KEEP_ALIVE_SECONDS
from hb_core.protocols import Backend
from hb_core.runner import Tuner
from hb_core.state import TrialStatus, TuningState, TuningStatus
from hb_emulator import Emulator, Faults
from tests import aws_fixtures
from tests.aws_fixtures import ROLE, SCRIPTS, FastClock, aio_clients, client, make_bucket
from tests.helpers import collect as poll_until

moto_server, aws, emulator = aws_fixtures.moto_server, aws_fixtures.aws, aws_fixtures.emulator  # shared fixtures

TERMINAL = ("TrialCompleted", "TrialFailed", "TrialStopped")
BUCKET = "tuning"


def request(
    *, name: str = "sm-test", program: str = "epochs.py", jobs: int = 6, parallel: int = 2, max_resource: int = 9,
    sleep: float = 0.2, variant: str | None = None, seed: int = 7, resource_metric: bool = False, **definition: Any,
) -> dict[str, Any]:
    """A CreateHyperParameterTuningJob body whose trials run ``program`` from ``scripts/`` on ml.m5.large;
    ``resource_metric``: the printed epoch is the ``ResourceMetricName`` (what makes CloudWatch exact)."""
    hyperband: dict[str, Any] = {"MinResource": 1, "MaxResource": max_resource}
    if variant:
        hyperband["Variant"] = variant
    if resource_metric:
        hyperband["ResourceMetricName"] = "epoch"
    body: dict[str, Any] = {
        "StaticHyperParameters": {"sagemaker_program": program, "sagemaker_submit_directory": str(SCRIPTS),
                                  "epochs": str(max_resource), "sleep": str(sleep)},
        "AlgorithmSpecification": {"TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/tiny:1",
                                   "TrainingInputMode": "File",
                                   "MetricDefinitions": [{"Name": "score", "Regex": r"score=([0-9.]+)"},
                                                         {"Name": "epoch", "Regex": r"epoch=([0-9]+)"}]},
        "RoleArn": ROLE,
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }
    body.update(definition)
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Hyperband",
            "StrategyConfig": {"HyperbandStrategyConfig": hyperband},
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "score"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": jobs, "MaxParallelTrainingJobs": parallel},
            "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "1"}]},
            "TrainingJobEarlyStoppingType": "Off",
            "RandomSeed": seed,
        },
        "TrainingJobDefinition": body,
        "Tags": [{"Key": "team", "Value": "ml"}],
    }


def backend(endpoint: str, moto: str, body: dict[str, Any] | None = None, **kwargs: Any) -> SageMakerBackend:
    """A backend whose SageMaker calls go to ``endpoint`` and the rest to ``moto`` (or all to ``endpoint``)."""
    config = TuningConfig.from_dict(body or request())
    kwargs.setdefault("metric_source", "logs")
    kwargs.setdefault("metric_period", 1)
    clients = aio_clients(moto, sagemaker=endpoint) if moto else aio_clients(endpoint)
    return SageMakerBackend(config, job_name=config.name or "sm-test", clients=clients, **kwargs)


async def collect(b: Any, done: Callable[[list[Event]], bool], timeout: float = 30.0) -> list[Event]:
    """Poll until ``done(events)``; fail after ``timeout`` seconds."""
    return await poll_until(b, done, timeout, interval=0.05)


def ended(n: int = 1) -> Callable[[list[Event]], bool]:
    return lambda events: sum(e.kind in TERMINAL for e in events) >= n


def quality(x: float) -> float:
    return 1 - (x - 0.3) ** 2


def score(x: float, epoch: int) -> float:
    """What ``epochs.py`` prints for epoch ``epoch`` (6 decimals)."""
    return round(quality(x) * (1 - 0.5**epoch), 6)


@pytest.fixture(autouse=True)
def no_process_left(tmp_path: Path) -> Iterator[None]:
    """Kill whatever a failing test left running (the emulator kills its jobs too; this is the safety net)."""
    yield
    for path in tmp_path.rglob(proc.PID_FILE):
        record = proc.read_json(path)
        if record is not None and proc.probe(record) != "gone":
            proc.signal_group(record, 9)


# ---------------------------------------------------------------- the request


def test_the_request_carries_the_definition_the_trial_and_its_links() -> None:
    body = request(
        VpcConfig={"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1"]}, EnableNetworkIsolation=True,
        EnableManagedSpotTraining=True, RetryStrategy={"MaximumRetryAttempts": 1}, Environment={"A": "b"},
        ResourceConfig={"InstanceType": "ml.g5.xlarge", "InstanceCount": 2, "VolumeSizeInGB": 50,
                        "KeepAlivePeriodInSeconds": 600},
        StoppingCondition={"MaxRuntimeInSeconds": 600, "MaxWaitTimeInSeconds": 1200},
        InputDataConfig=[{"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": "s3://d/train",
                                                                                  "S3DataType": "S3Prefix"}}}],
    )
    b = backend("http://127.0.0.1:9", "", body)  # never called
    assert isinstance(b, Backend)
    launch = b.create_request(Launch("0003", 1, {"x": 0.25}, 3))
    resume = b.create_request(Resume("0003", 2, {"x": 0.25}, from_resource=3, to_resource=9))

    definition = body["TrainingJobDefinition"]
    assert launch["TrainingJobName"] == "sm-test-0003-1" and resume["TrainingJobName"] == "sm-test-0003-2"
    assert launch["HyperParameters"] == {"sagemaker_program": "epochs.py", "sagemaker_submit_directory": str(SCRIPTS),
                                         "epochs": "3", "sleep": "0.2", "x": "0.25"}
    assert resume["HyperParameters"]["epochs"] == "9"
    for key in ("AlgorithmSpecification", "RoleArn", "InputDataConfig", "OutputDataConfig", "ResourceConfig",
                "StoppingCondition", "VpcConfig", "EnableNetworkIsolation", "EnableManagedSpotTraining",
                "RetryStrategy", "Environment"):
        assert launch[key] == definition[key], key
    assert launch["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 600  # warm pools
    assert launch["AlgorithmSpecification"]["MetricDefinitions"] == definition["AlgorithmSpecification"][
        "MetricDefinitions"]
    shared = "s3://tuning/output/sm-test/checkpoints/0003/"
    assert launch["CheckpointConfig"] == resume["CheckpointConfig"] == {"S3Uri": shared}
    tags = {t["Key"]: t["Value"] for t in resume["Tags"]}
    assert tags == {"hyperband:tuning-job": "sm-test", "hyperband:trial": "0003", "hyperband:attempt": "2",
                    "hyperband:from-resource": "3", "team": "ml"}
    configured = backend("http://127.0.0.1:9", "", request(CheckpointConfig={"S3Uri": "s3://c/ck", "LocalPath": "/ck"}))
    assert configured.create_request(Launch("0001", 1, {"x": 0.5}, 1))["CheckpointConfig"] == {
        "S3Uri": "s3://c/ck/0001/", "LocalPath": "/ck"}


@pytest.mark.parametrize(
    ("tuning", "expected"),
    [
        ({"InstanceType": "ml.g5.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 40},
         {"InstanceType": "ml.g5.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 40,
          "KeepAlivePeriodInSeconds": DEFAULT_KEEP_ALIVE_SECONDS}),
        ({"InstanceConfigs": [{"InstanceType": "ml.g5.xlarge", "InstanceCount": 2, "VolumeSizeInGB": 20},
                              {"InstanceType": "ml.g4dn.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 20}],
          "AllocationStrategy": "Prioritized"},
         {"InstanceType": "ml.g5.xlarge", "InstanceCount": 2, "VolumeSizeInGB": 20,
          "KeepAlivePeriodInSeconds": DEFAULT_KEEP_ALIVE_SECONDS}),
    ],
)
def test_hyperparameter_tuning_resource_config_becomes_a_resource_config(
    tuning: dict[str, Any], expected: dict[str, Any]
) -> None:
    body = request()
    del body["TrainingJobDefinition"]["ResourceConfig"]
    body["TrainingJobDefinition"]["HyperParameterTuningResourceConfig"] = tuning
    b = backend("http://127.0.0.1:9", "", body)
    assert b.create_request(Launch("0000", 1, {"x": 0.5}, 1))["ResourceConfig"] == expected


def test_warm_pools_are_the_default_for_hyperband_unless_the_request_or_spot_says_otherwise() -> None:
    def keep_alive(body: dict[str, Any]) -> Any:
        b = backend("http://127.0.0.1:9", "", body)  # never called
        return b.create_request(Launch("0000", 1, {"x": 0.5}, 1))["ResourceConfig"].get("KeepAlivePeriodInSeconds")

    assert keep_alive(request()) == DEFAULT_KEEP_ALIVE_SECONDS
    assert keep_alive(request(ResourceConfig={"InstanceType": "ml.m5.large", "KeepAlivePeriodInSeconds": 0})) == 0
    assert keep_alive(request(EnableManagedSpotTraining=True)) is None
    random = request()
    random["HyperParameterTuningJobConfig"]["Strategy"] = "Random"
    del random["HyperParameterTuningJobConfig"]["StrategyConfig"]
    assert keep_alive(random) is None
    too_long = request(ResourceConfig={"InstanceType": "ml.m5.large", "KeepAlivePeriodInSeconds": 3601})
    with pytest.raises(ConfigError, match=r"ResourceConfig.KeepAlivePeriodInSeconds"):
        backend("http://127.0.0.1:9", "", too_long)


def test_config_errors_name_the_field() -> None:
    body = request()
    del body["TrainingJobDefinition"]["RoleArn"]
    with pytest.raises(ConfigError, match="RoleArn"):
        backend("http://127.0.0.1:9", "", body)
    body = request()
    del body["TrainingJobDefinition"]["AlgorithmSpecification"]["MetricDefinitions"]
    for source in ("logs", "cloudwatch"):  # the regexes are applied here (cloudwatch: when it falls back to the logs)
        with pytest.raises(ConfigError, match="MetricDefinition"):
            backend("http://127.0.0.1:9", "", body, metric_source=source)
    own_container = request()
    del own_container["TrainingJobDefinition"]["StaticHyperParameters"]["sagemaker_program"]
    assert backend("http://127.0.0.1:9", "", own_container).metric_source == "logs"  # no script mode needed
    with pytest.raises(ConfigError, match="metric_source"):
        backend("http://127.0.0.1:9", "", metric_source="stdout")
    with pytest.raises(ConfigError, match="Tags"):
        backend("http://127.0.0.1:9", "", {**request(), "Tags": [{"Key": f"k{i}", "Value": "v"} for i in range(47)]})
    with pytest.raises(ConfigError, match="TrainingJobName"):
        b = backend("http://127.0.0.1:9", "", request(name="x" * 32))
        SageMakerBackend(b.config, job_name="x" * 60, clients=aio_clients("http://127.0.0.1:9"))


# ---------------------------------------------------------------- launching and adopting (fake jobs)


async def test_a_launch_creates_once_and_a_new_backend_adopts_instead_of_doubling(
    emulator: Callable[..., Emulator], aws: str
) -> None:
    emu = emulator(run_processes=False)
    action = Resume("0000", 2, {"x": 0.5}, from_resource=3, to_resource=9)
    first = backend(emu.endpoint, aws)
    await first.launch(action)
    await first.launch(action)  # the same attempt again: nothing new
    await first.close()
    second = backend(emu.endpoint, aws)  # a controller that restarted between create and checkpoint
    await second.launch(action)
    events = await collect(second, lambda es: any(isinstance(e, TrialStarted) for e in es))
    assert events == [TrialStarted("0000", 2, events[0].time, job_name="sm-test-0000-2")]
    assert emu.created == ["sm-test-0000-2"] and emu.calls["CreateTrainingJob"] == 2  # the second was refused
    assert second.api_calls["ListTags"] == 1  # ownership checked before adopting
    described = emu.job("sm-test-0000-2")
    assert described["HyperParameters"]["epochs"] == "9" and described["CheckpointConfig"] == {
        "S3Uri": "s3://tuning/output/sm-test/checkpoints/0000/"}
    log_stream = await _log_stream(aws, "sm-test-0000-2")
    _put_log(aws, log_stream, ["epoch=4 score=0.5"])
    metrics = await collect(second, lambda es: any(isinstance(e, MetricReported) for e in es))
    assert [(m.seq, m.value) for m in metrics if isinstance(m, MetricReported)] == [(4, 0.5)]  # from its tag
    await second.close()


async def test_a_job_with_our_name_but_another_owner_is_not_adopted(emulator: Callable[..., Emulator], aws: str) -> None:
    emu = emulator(run_processes=False)
    b = backend(emu.endpoint, aws)
    foreign = b.create_request(Launch("0000", 1, {"x": 0.5}, 9))
    foreign["Tags"] = [{"Key": "hyperband:tuning-job", "Value": "someone-else"}]
    client("sagemaker", emu.endpoint).create_training_job(**foreign)
    with pytest.raises(BackendError, match=r"sm-test-0000-1 belongs to tuning job sm-test.*someone-else"):
        await b.launch(Launch("0000", 1, {"x": 0.5}, 9))
    await b.close()


async def test_a_create_the_service_refuses_fails_the_trial(emulator: Callable[..., Emulator], aws: str) -> None:
    emu = emulator(run_processes=False)
    body = request(EnableManagedSpotTraining=True)  # without MaxWaitTimeInSeconds: SageMaker refuses it
    b = backend(emu.endpoint, aws, body)
    await b.launch(Launch("0000", 1, {"x": 0.5}, 9))
    events = await b.poll()
    await b.close()
    assert len(events) == 1 and isinstance(events[0], TrialFailed) and not events[0].retriable
    assert events[0].reason.startswith("CreateTrainingJob refused: ValidationException: Invalid MaxWaitTimeInSeconds")
    assert emu.created == []


# ---------------------------------------------------------------- statuses and metrics (fake jobs)


async def test_terminal_statuses_become_the_right_events(emulator: Callable[..., Emulator], aws: str) -> None:
    emu = emulator(run_processes=False)
    b = backend(emu.endpoint, aws, request(jobs=10, parallel=10))
    endings: dict[str, Callable[[str], None]] = {
        "0000": emu.complete,
        "0001": lambda name: emu.fail(name, "AlgorithmError: ValueError: bad hyperparameter"),
        "0002": lambda name: emu.fail(name, "CapacityError: Unable to provision requested ML compute capacity."),
        "0003": emu.interrupt,
        "0004": lambda name: emu.interrupt(name, status="Stopped"),
        "0005": lambda name: client("sagemaker", emu.endpoint).stop_training_job(TrainingJobName=name),  # by someone
    }
    for trial_id in endings:
        await b.launch(Launch(trial_id, 1, {"x": 0.5}, 9))
    started = await collect(b, lambda es: sum(isinstance(e, TrialStarted) for e in es) == len(endings))
    assert sorted(e.trial_id for e in started) == sorted(endings)
    for trial_id, end in endings.items():
        end(b.training_job_name(trial_id, 1))
    events = {e.trial_id: e for e in await collect(b, ended(len(endings))) if e.kind in TERMINAL}
    await b.close()

    assert isinstance(events["0000"], TrialCompleted) and events["0000"].billable_seconds is not None
    failed = {k: e for k, e in events.items() if isinstance(e, TrialFailed)}
    assert {k: (e.retriable, e.reason.split(":")[0]) for k, e in failed.items()} == {
        "0001": (False, "AlgorithmError"), "0002": (True, "CapacityError"),
        "0003": (True, "Interrupted (managed spot)"), "0004": (True, "Interrupted (managed spot)"),
    }
    assert isinstance(events["0005"], TrialStopped)
    assert b.api_calls["DescribeTrainingJob"] <= 2 * len(endings)  # the listing tells the running ones apart


async def test_max_runtime_exceeded_fails_the_trial_for_good(emulator: Callable[..., Emulator], aws: str) -> None:
    emu = emulator(run_processes=False)
    b = backend(emu.endpoint, aws, request(StoppingCondition={"MaxRuntimeInSeconds": 1}))
    await b.launch(Launch("0000", 1, {"x": 0.5}, 9))
    events = await collect(b, ended())
    await b.close()
    failed = events[-1]
    assert isinstance(failed, TrialFailed) and not failed.retriable and failed.reason.startswith("MaxRuntimeExceeded")
    assert emu.job("sm-test-0000-1")["TrainingJobStatus"] == "Stopped"


async def test_cloudwatch_hands_out_one_epoch_per_period_else_the_backend_reads_the_logs(
    emulator: Callable[..., Emulator], aws: str
) -> None:
    emu = emulator(run_processes=False)
    b = backend(emu.endpoint, aws, request(resource_metric=True), metric_source="cloudwatch", metric_period=1)
    await b.launch(Resume("0000", 2, {"x": 0.5}, from_resource=2, to_resource=9))
    name = b.training_job_name("0000", 2)
    stream = await _log_stream(aws, name)
    base = math.floor(time.time()) - 1  # periods base, base+1, ...: inside the job's window
    _put_log(aws, stream, ["epoch=3 score=0.1", "epoch=4 score=0.2"])
    _put_metrics(aws, name, [(base + 0.1, 0.1, 3), (base + 1.1, 0.2, 4), (base + 1.5, 0.2, 4)])  # 4: published twice
    first = await collect(b, lambda es: sum(isinstance(e, MetricReported) for e in es) >= 2)
    assert b.notes == [] and b.api_calls.get("GetLogEvents", 0) == 0
    _put_log(aws, stream, ["epoch=5 score=0.3", "epoch=6 score=0.4"])
    _put_metrics(aws, name, [(base + 2.1, 0.3, 5), (base + 2.5, 0.4, 6)])  # two epochs in one period
    second = await collect(b, lambda es: sum(isinstance(e, MetricReported) for e in es) >= 2)
    emu.complete(name)
    third = await collect(b, ended())
    await b.close()
    metrics = [e for e in first + second + third if isinstance(e, MetricReported)]
    assert [(m.seq, m.resource, m.value) for m in metrics] == [(3, 3, 0.1), (4, 4, 0.2), (5, 5, 0.3), (6, 6, 0.4)]
    assert len(b.notes) == 1 and "2 score values (epochs 5 to 6) fell in one 1 s CloudWatch period" in b.notes[0]
    assert isinstance(third[-1], TrialCompleted)


def test_cloudwatch_without_a_resource_metric_reads_the_logs_and_says_so() -> None:
    b = backend("http://127.0.0.1:9", "", request(), metric_source="cloudwatch")  # never called
    assert len(b.notes) == 1 and "without HyperbandStrategyConfig.ResourceMetricName" in b.notes[0]


@pytest.mark.parametrize(("buckets", "final", "expected"), [
    # (timestamp, SampleCount, Minimum, Maximum, epoch Minimum, epoch Maximum)
    ([(0, 1, 0.5, 0.5, 1, 1), (1, 1, 0.6, 0.6, 2, 2)], False, [(0.5, 1), (0.6, 2)]),
    ([(0, 2, 0.5, 0.5, 1, 1)], False, [(0.5, 1)]),  # one point published twice
    ([(0, 1, 0.5, 0.5, 1, 1), (9, 1, 0.6, 0.6, 2, 2)], False, [(0.5, 1)]),  # period 9 may still fill
    ([(0, 1, 0.5, 0.5, 1, 1), (9, 1, 0.6, 0.6, 2, 2)], True, [(0.5, 1), (0.6, 2)]),  # the job ended
    ([(0, 3, 0.5, 0.7, 1, 3)], False, "3 score values (epochs 1 to 3) fell in one 1 s CloudWatch period"),
    ([(0, 2, 0.5, 0.5, 1, 2)], False, "(epochs 1 to 2)"),  # two epochs, the same value: still two
    ([(0, 1, 0.5, 0.5, None, None)], False, "epochs unknown: no resource value in the period"),
    ([(0, 1, 0.5, 0.5, 2, 2)], False, "CloudWatch gave epoch 2 after epoch 0"),  # epoch 1 is in no period
])
def test_a_cloudwatch_period_is_handed_out_only_when_it_is_one_epoch(
    buckets: list[tuple[float, ...]], final: bool, expected: list[tuple[float, int]] | str,
) -> None:
    from hb_core.backends.aws import Bucket, CloudWatchMetrics, Inexact, MetricCursor

    reader = CloudWatchMetrics(None, namespace="ns", metric="score", resource_metric="epoch",  # type: ignore[arg-type]
                               period=1, dimension="Host", delay_seconds=0.0)
    cursor = MetricCursor("job", created=0.0)
    found = {ts: Bucket(n, lo, hi, rlo, rhi) for ts, n, lo, hi, rlo, rhi in buckets}
    if isinstance(expected, str):
        with pytest.raises(Inexact, match=re.escape(expected)):
            reader._new_points(cursor, found, horizon=5.0, final=final)
        return
    assert [(v, r) for _, v, r in reader._new_points(cursor, found, horizon=5.0, final=final)] == expected


async def test_the_logs_source_reads_every_objective_line_once(emulator: Callable[..., Emulator], aws: str) -> None:
    emu = emulator(run_processes=False)
    b = backend(emu.endpoint, aws, metric_source="logs")
    await b.launch(Launch("0000", 1, {"x": 0.5}, 9))
    stream = await _log_stream(aws, b.training_job_name("0000", 1))
    _put_log(aws, stream, ["starting", "epoch=1 score=0.25", "epoch=2 score=0.5"])
    first = await collect(b, lambda es: sum(isinstance(e, MetricReported) for e in es) >= 2)
    _put_log(aws, stream, ["epoch=3 score=0.5", "noise score=", "epoch=4 score=0.75"])  # the same value twice is fine
    second = await collect(b, lambda es: sum(isinstance(e, MetricReported) for e in es) >= 2)
    assert await b.poll() == []  # nothing new: nothing reported twice
    await b.close()
    metrics = [e for e in first + second if isinstance(e, MetricReported)]
    assert [(m.seq, m.value) for m in metrics] == [(1, 0.25), (2, 0.5), (3, 0.5), (4, 0.75)]


async def test_get_metric_data_takes_500_queries_per_call(emulator: Callable[..., Emulator], aws: str) -> None:
    emu = emulator(run_processes=False)
    b = backend(emu.endpoint, aws, request(jobs=600, parallel=100, resource_metric=True), metric_source="cloudwatch")
    await asyncio.gather(*(b.launch(Launch(f"{i:04d}", 1, {"x": 0.5}, 9)) for i in range(501)))
    before = b.api_calls["GetMetricData"]
    events = await b.poll()
    assert sum(isinstance(e, TrialStarted) for e in events) == 501
    assert b.api_calls["GetMetricData"] - before == 6  # ceil(5 * 501 / 500): five statistics a job
    assert b.api_calls["ListTrainingJobs"] == 6 and b.api_calls["DescribeTrainingJob"] == 0  # 100 per page
    await b.close()


# ---------------------------------------------------------------- stopping


async def test_stop_is_idempotent_and_stopping_an_unknown_job_reports_it_stopped(
    emulator: Callable[..., Emulator], aws: str
) -> None:
    emu = emulator(run_processes=False)
    b = backend(emu.endpoint, aws)
    await b.stop("0009", 1, "tuning job is stopping")  # never launched
    assert [(e.kind, e.trial_id, e.billable_seconds) for e in await b.poll()] == [("TrialStopped", "0009", 0.0)]  # type: ignore[union-attr]
    await b.launch(Launch("0000", 1, {"x": 0.5}, 9))
    await collect(b, lambda es: any(isinstance(e, TrialStarted) for e in es))
    await b.stop("0000", 1, "rank 3 of 3 at rung 1")
    await b.stop("0000", 1, "again")
    events = await collect(b, ended())
    assert isinstance(events[-1], TrialStopped)
    await b.stop("0000", 1, "after it ended")  # not an error, and nothing more to report
    assert await b.poll() == []
    other = backend(emu.endpoint, aws)  # a backend that never followed it: the service says it ended
    await other.stop("0000", 1, "late stop")
    assert [e.kind for e in await collect(other, ended())] == ["TrialStarted", "TrialStopped"]
    assert emu.calls["StopTrainingJob"] == 4
    await b.close()
    await other.close()


async def test_a_job_we_stopped_ends_without_waiting_for_late_metrics(emulator: Callable[..., Emulator],
                                                                      aws: str) -> None:
    make_bucket(aws, BUCKET)  # where the stopped job uploads its model (without it the job fails, not stops)
    emu = emulator()
    b = backend(emu.endpoint, aws, metric_delay_seconds=3600)  # a completed job would wait an hour for its metrics
    await b.launch(Launch("0000", 1, {"x": 0.5}, 9))
    await collect(b, lambda es: any(isinstance(e, TrialStarted) for e in es))
    await b.stop("0000", 1, "rank 3 of 3 at rung 1")
    assert isinstance((await collect(b, ended()))[-1], TrialStopped)
    await b.close()


async def test_a_stopped_jobs_values_that_arrive_after_its_end_are_still_read(emulator: Callable[..., Emulator],
                                                                             aws: str) -> None:
    """Its end is reported at once; the lines it printed before the stop landed are read on until the metric
    delay is over (the controller records them: the trial's resource is what the job trained)."""
    make_bucket(aws, BUCKET)  # where the stopped job uploads its model
    emu = emulator()
    b = backend(emu.endpoint, aws, request(max_resource=100), metric_delay_seconds=3600)
    await b.launch(Launch("0000", 1, {"x": 0.5}, 100))  # 20 s of epochs: it is still training when stopped
    first = await collect(b, lambda es: any(isinstance(e, MetricReported) for e in es))
    real = b._logs

    class Lagging:  # CloudWatch Logs ingestion lag: the lines printed from now on are not readable yet
        lagging = True

        async def read(self, cursor: Any) -> list[str]:
            return [] if self.lagging else await real.read(cursor)

    lagging = Lagging()
    b._logs = lagging  # type: ignore[assignment]
    await asyncio.sleep(1.0)  # the job prints a few more epochs (0.2 s each)
    await b.stop("0000", 1, "rank 3 of 3 at rung 1")
    ending = await collect(b, ended())
    assert isinstance(ending[-1], TrialStopped)
    assert not any(isinstance(e, MetricReported) for e in ending)
    lagging.lagging = False
    late = [e for e in await collect(b, lambda es: any(isinstance(e, MetricReported) for e in es))
            if isinstance(e, MetricReported)]
    seen = max(e.seq or 0 for e in first if isinstance(e, MetricReported))
    assert late and [e.seq for e in late] == list(range(seen + 1, seen + 1 + len(late)))
    assert all(e.value == score(0.5, e.seq or 0) for e in late)
    await b.close()


# ---------------------------------------------------------------- restarts


async def test_reconcile_reports_what_happened_while_away_and_stops_orphans(
    emulator: Callable[..., Emulator], aws: str
) -> None:
    emu = emulator(run_processes=False)
    body = request(jobs=10, parallel=5)
    config = TuningConfig.from_dict(body)
    state, _ = decide(new_state(config, now=0.0, job_name="sm-test"), [], 0.0)  # five Pending trials
    trials = list(state.trials)
    trials[1] = dataclasses.replace(trials[1], status=TrialStatus.IN_PROGRESS)  # its job is gone
    trials[2] = dataclasses.replace(trials[2], status=TrialStatus.STOPPING, stop_reason="rank 2 of 2")  # no job
    trials[3] = dataclasses.replace(trials[3], status=TrialStatus.IN_PROGRESS, points=((1, 0.25, 1.0),))
    trials[4] = dataclasses.replace(trials[4], status=TrialStatus.IN_PROGRESS, attempt=2, retries=1)
    state = state.with_changes(trials=tuple(trials))
    before = backend(emu.endpoint, aws, body)  # the controller that died
    for trial_id, attempt in (("0003", 1), ("0004", 1), ("0004", 2), ("0009", 1)):
        await before.launch(Launch(trial_id, attempt, {"x": 0.5}, 9))
    # 0004-1 is an orphan: the state says attempt 2 runs. 0009 is a trial this state does not know yet (a
    # controller with a newer state may have launched it): not this controller's to stop.
    await collect(before, lambda es: sum(isinstance(e, TrialStarted) for e in es) == 4)
    stream = await _log_stream(aws, "sm-test-0003-1")
    _put_log(aws, stream, ["epoch=1 score=0.25", "epoch=2 score=0.5"])
    emu.complete("sm-test-0004-2")
    await before.close()

    after = backend(emu.endpoint, aws, body)
    events = await after.reconcile(state)
    kinds = [(e.kind, e.trial_id, e.attempt) for e in events]
    assert ("TrialFailed", "0001", 1) in kinds and ("TrialStopped", "0002", 1) in kinds
    assert next(e for e in events if e.trial_id == "0001").retriable  # type: ignore[union-attr]
    assert ("TrialStarted", "0003", 1) in kinds and ("TrialStarted", "0004", 2) in kinds
    assert [(m.trial_id, m.seq) for m in events if isinstance(m, MetricReported)] == [("0003", 2)]  # seq 1 is known
    if ("TrialCompleted", "0004", 2) not in kinds:  # the listing may still show it running: a later poll tells
        kinds += [(e.kind, e.trial_id, e.attempt) for e in await collect(after, ended())]
    assert ("TrialCompleted", "0004", 2) in kinds and "0000" not in {k for _, k, _ in kinds}  # Pending: relaunched
    assert (await _wait_status(emu, "sm-test-0004-1", "Stopped"))["TrainingJobStatus"] == "Stopped"
    assert emu.job("sm-test-0009-1")["TrainingJobStatus"] == "InProgress"
    assert not any(e.trial_id == "0009" for e in events)
    await after.close()


# ---------------------------------------------------------------- throttling and errors


async def test_throttling_and_5xx_on_every_call_back_off_and_succeed(emulator: Callable[..., Emulator],
                                                                      aws: str) -> None:
    faults = Faults(throttle={"*": 0.6}, server_errors={"*": 0.2}, max_consecutive=3, seed=1)
    emu = emulator(run_processes=False, faults=faults)
    clock = FastClock()
    b = backend(emu.endpoint, "", request(resource_metric=True), clock=clock, metric_source="cloudwatch",
                retry=RetryPolicy(max_attempts=5, base_delay=0.5, max_delay=2.0))  # everything through the faults
    await b.launch(Launch("0000", 1, {"x": 0.5}, 9))
    await b.launch(Launch("0001", 1, {"x": 0.5}, 9))
    await collect(b, lambda es: sum(isinstance(e, TrialStarted) for e in es) == 2)
    await b.stop("0000", 1, "stop")
    emu.complete(b.training_job_name("0001", 1))
    events = await collect(b, ended(2))
    await b.close()
    assert {e.kind for e in events if e.kind in TERMINAL} == {"TrialStopped", "TrialCompleted"}
    assert emu.created == ["sm-test-0000-1", "sm-test-0001-1"]
    kinds = {key.split(":")[0] for key in faults.injected}
    assert {"CreateTrainingJob", "ListTrainingJobs", "GetMetricData", "StopTrainingJob"} <= kinds
    assert clock.slept and all(0 <= s <= 2.0 for s in clock.slept)  # full jitter, capped
    assert sum(b.pool.retries.values()) == sum(faults.injected.values())  # botocore itself never retried


async def test_an_error_that_persists_is_a_backend_error_naming_the_job_and_code(
    emulator: Callable[..., Emulator], aws: str
) -> None:
    emu = emulator(run_processes=False, faults=Faults(server_errors={"DescribeTrainingJob": 1.0}, max_consecutive=99))
    clock = FastClock()
    b = backend(emu.endpoint, aws, clock=clock, retry=RetryPolicy(max_attempts=3))
    with pytest.raises(BackendError) as error:
        await b.model_uri("0000", 1)
    assert isinstance(error.value, AwsCallError)
    assert str(error.value).startswith("DescribeTrainingJob sm-test-0000-1: InternalFailure")
    assert len(clock.slept) == 2 and emu.calls["DescribeTrainingJob"] == 3
    await b.close()


# ---------------------------------------------------------------- cost and artifacts


async def test_cost_and_model_artifacts(emulator: Callable[..., Emulator], aws: str) -> None:
    emu = emulator(run_processes=False)
    body = request(ResourceConfig={"InstanceType": "ml.g5.xlarge", "InstanceCount": 2, "VolumeSizeInGB": 10})
    b = backend(emu.endpoint, aws, body)
    await b.launch(Launch("0000", 1, {"x": 0.5}, 9))
    await collect(b, lambda es: any(isinstance(e, TrialStarted) for e in es))
    emu.complete("sm-test-0000-1")  # SageMaker bills whole seconds: at least one
    done = (await collect(b, ended()))[-1]
    assert isinstance(done, TrialCompleted) and done.billable_seconds and done.billable_seconds >= 1
    expected = done.billable_seconds * DEFAULT_PRICES["ml.g5.xlarge"] / 3600 * 2
    assert b.cost("0000") == pytest.approx(expected) and b.total_cost() == pytest.approx(expected)
    assert b.cost("0001") == 0.0
    assert await b.model_uri("0000", 1) == "s3://tuning/output/sm-test-0000-1/output/model.tar.gz"
    assert await b.model_uri("0005", 1) == "s3://tuning/output/sm-test-0005-1/output/model.tar.gz"
    unpriced = backend(emu.endpoint, aws, body, price_table={"ml.m5.large": 0.1})
    assert unpriced.cost("0000") is None and unpriced.price_per_hour() is None
    await b.close()


# ---------------------------------------------------------------- real processes


async def test_a_failing_job_and_a_job_stopped_from_outside(emulator: Callable[..., Emulator], aws: str) -> None:
    make_bucket(aws, BUCKET)
    emu = emulator()
    failing = backend(emu.endpoint, aws, request(program="fail.py"))
    await failing.launch(Launch("0000", 1, {"x": 0.5}, 9))
    events = await collect(failing, ended())
    await failing.close()
    assert [e.kind for e in events] == ["TrialStarted", "MetricReported", "TrialFailed"]
    assert events[-1].reason == "AlgorithmError: ValueError: bad hyperparameter"  # type: ignore[union-attr]
    assert not events[-1].retriable  # type: ignore[union-attr]

    body = request(name="outside", program="forever.py")
    config = TuningConfig.from_dict(body)
    b = backend(emu.endpoint, aws, body)
    state, actions = decide(new_state(config, now=0.0), [], 0.0)
    for action in actions:
        await b.launch(action)  # type: ignore[arg-type]
    first = await collect(b, lambda es: sum(isinstance(e, MetricReported) for e in es) == 2)
    record = json.loads((emu.job_dir("outside-0000-1") / "job" / proc.PID_FILE).read_text())
    client("sagemaker", emu.endpoint).stop_training_job(TrainingJobName="outside-0000-1")  # someone else
    second = await collect(b, ended())
    state, _ = decide(state, first + second, 1.0)
    assert state.trials[0].status is TrialStatus.STOPPED
    assert state.trials[0].stop_reason == "stopped outside the controller"
    assert proc.probe(record) != "running"
    await b.stop_all("test over")
    await collect(b, ended(1))
    await b.close()


async def test_late_and_duplicated_cloudwatch_points_from_a_real_job(emulator: Callable[..., Emulator],
                                                                    aws: str) -> None:
    make_bucket(aws, BUCKET)
    emu = emulator(faults=Faults(duplicate_metrics=True, metric_lag_seconds=0.5))
    b = backend(emu.endpoint, aws, request(max_resource=2, sleep=1.6, resource_metric=True), metric_source="cloudwatch",
                metric_period=1, metric_delay_seconds=1.5)
    await b.launch(Launch("0000", 1, {"x": 0.1}, 2))
    events = await collect(b, ended())
    await b.close()
    metrics = [e for e in events if isinstance(e, MetricReported)]
    assert [(m.resource, m.value) for m in metrics] == [(e, score(0.1, e)) for e in (1, 2)]  # each epoch's own
    assert isinstance(events[-1], TrialCompleted)


def _tuner(emu: Emulator, aws: str, body: dict[str, Any], prefix: str, **kwargs: Any) -> tuple[Tuner, SageMakerBackend,
                                                                                              S3Store]:
    config = TuningConfig.from_dict(body)
    b = backend(emu.endpoint, aws, body, **kwargs)
    store = S3Store(BUCKET, prefix, aio_clients(aws))
    return Tuner(config, b, store, RealClock(), job_name=config.name, poll_interval=0.1), b, store


async def _finish(tuner: Tuner, b: SageMakerBackend, store: S3Store, timeout: float = 90) -> TuningState:
    try:
        return await asyncio.wait_for(tuner.run(), timeout)
    finally:
        await b.close()


def _assert_ran_once_and_ended(emu: Emulator, state: TuningState) -> None:
    """Every attempt of every trial was created exactly once, and no job process runs."""
    assert len(emu.created) == len(set(emu.created)), emu.created
    attempts = {f"{state.job_name}-{t.trial_id}-{a}" for t in state.trials for a in range(1, t.attempt + 1)}
    assert set(emu.created) == attempts
    for name in emu.created:
        described = emu.job(name)
        assert described["TrainingJobStatus"] in ("Completed", "Stopped", "Failed"), (name, described)
        record = proc.read_json(emu.job_dir(name) / "job" / proc.PID_FILE)
        assert record is None or proc.probe(record) != "running"


async def test_end_to_end_hyperband_stops_the_losers_and_finds_the_best(emulator: Callable[..., Emulator],
                                                                        aws: str) -> None:
    make_bucket(aws, BUCKET)
    emu = emulator()
    tuner, b, store = _tuner(emu, aws, request(jobs=6, parallel=2, max_resource=9, sleep=0.25), "state/e2e")
    state = await _finish(tuner, b, store)

    assert state.status is TuningStatus.COMPLETED and len(state.trials) == 6
    x = {t.trial_id: float(t.hyperparameters["x"]) for t in state.trials}
    assert state.finish is not None and state.finish["best_trial_id"] == max(x, key=lambda k: quality(x[k]))
    decisions = await store.read_decisions()
    assert len(decisions) == state.decision_count
    rung_decisions = [d for d in decisions if d.rung is not None]
    assert rung_decisions and all(d.value == score(x[cast(str, d.trial_id)], cast(int, d.rung))
                                  for d in rung_decisions
                                  if d.action in ("continue", "stop", "record"))
    stopped = [t for t in state.trials if t.status is TrialStatus.STOPPED]
    assert stopped and {d.trial_id for d in decisions if d.action == "stop"} == {t.trial_id for t in stopped}
    exits = [proc.read_json(emu.job_dir(f"sm-test-{t.trial_id}-1") / "job" / proc.EXIT_FILE) for t in stopped]
    assert any(e is not None and e["returncode"] < 0 for e in exits), exits  # a process ended by the stop's signal
    _assert_ran_once_and_ended(emu, state)
    best = state.trial(state.finish["best_trial_id"])
    assert best is not None and await b.model_uri(best.trial_id, best.attempt) == (
        f"s3://{BUCKET}/output/sm-test-{best.trial_id}-1/output/model.tar.gz")
    assert b.total_cost() is not None and b.total_cost() > 0  # type: ignore[operator]
    await b.close()
    await store.close()


async def test_end_to_end_with_cloudwatch_metrics(emulator: Callable[..., Emulator], aws: str) -> None:
    make_bucket(aws, BUCKET)
    emu = emulator()
    body = request(name="cw", jobs=3, parallel=3, max_resource=3, sleep=1.1, resource_metric=True)
    tuner, b, store = _tuner(emu, aws, body, "state/cw", metric_source="cloudwatch", metric_period=1)
    state = await _finish(tuner, b, store)
    await store.close()
    assert state.status is TuningStatus.COMPLETED
    assert b.api_calls["GetMetricData"] > 0
    x = {t.trial_id: float(t.hyperparameters["x"]) for t in state.trials}
    for trial in state.trials:
        # Epochs 1.1 s apart land in distinct 1 s periods, each one epoch's value; should the emulator stall and
        # put two epochs in one period, the backend says so and reads the logs: every value is exact either way.
        assert [(r, v) for r, v, _ in trial.points] == [(r, score(x[trial.trial_id], r))
                                                        for r in range(1, trial.resource + 1)]
    assert b.api_calls.get("GetLogEvents", 0) == 0 or len(b.notes) == 1
    assert any(t.status is TrialStatus.COMPLETED and t.resource == 3 for t in state.trials)
    _assert_ran_once_and_ended(emu, state)


async def test_promotion_variant_resumes_from_the_s3_checkpoints(emulator: Callable[..., Emulator], aws: str) -> None:
    make_bucket(aws, BUCKET)
    emu = emulator()
    body = request(name="promo", variant="Promotion", jobs=4, parallel=2, max_resource=9, sleep=0.05)
    tuner, b, store = _tuner(emu, aws, body, "state/promo")
    state = await _finish(tuner, b, store)
    await store.close()
    assert state.status is TuningStatus.COMPLETED
    resumed = [n for n in emu.created if not n.endswith("-1")]
    assert resumed, "nothing was promoted"
    for name in resumed:
        trial_id, attempt = name.split("-")[1], int(name.split("-")[2])
        tags = {t["Key"]: t["Value"] for t in client("sagemaker", emu.endpoint).list_tags(
            ResourceArn=emu.job(name)["TrainingJobArn"])["Tags"]}
        start = int(tags["hyperband:from-resource"])
        log = (emu.job_dir(name) / "job" / proc.LOG_FILE).read_text()
        assert f"starting at epoch {start + 1}\n" in log  # from the checkpoint its earlier attempt left in S3
        assert emu.job(name)["CheckpointConfig"]["S3Uri"] == emu.job(f"promo-{trial_id}-1")["CheckpointConfig"]["S3Uri"]
        assert int(emu.job(name)["HyperParameters"]["epochs"]) > start and attempt > 1
    x = {t.trial_id: float(t.hyperparameters["x"]) for t in state.trials}
    for trial in state.trials:  # resumed attempts continue the trial's numbering
        assert [r for r, _, _ in trial.points] == list(range(1, trial.resource + 1))
        assert [v for _, v, _ in trial.points] == [score(x[trial.trial_id], r) for r in range(1, trial.resource + 1)]
    _assert_ran_once_and_ended(emu, state)


class _Crash(Exception):
    pass


class _CrashAfterLaunch:
    """A backend that dies right after its n-th launch: a controller killed between CreateTrainingJob and the
    checkpoint that would have recorded the job as started."""

    def __init__(self, inner: SageMakerBackend, n: int) -> None:
        self.inner, self.n, self.launches = inner, n, 0

    async def launch(self, action: Launch | Resume) -> None:
        await self.inner.launch(action)
        self.launches += 1
        if self.launches == self.n:
            raise _Crash(f"controller killed after launching {action.trial_id}")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_a_new_controller_adopts_the_jobs_after_a_crash(emulator: Callable[..., Emulator], aws: str) -> None:
    make_bucket(aws, BUCKET)
    emu = emulator()
    body = request(name="crash", jobs=6, parallel=2, max_resource=9, sleep=0.1)
    first, first_backend, first_store = _tuner(emu, aws, body, "state/crash")
    first.backend = _CrashAfterLaunch(first_backend, 4)
    with pytest.raises(_Crash):
        await asyncio.wait_for(first.run(), 60)
    await first_backend.close()
    await first_store.close()
    reader = S3Store(BUCKET, "state/crash", aio_clients(aws))
    saved = await reader.load()
    await reader.close()
    assert saved is not None
    pending = [t for t in saved.trials if t.status is TrialStatus.PENDING]
    assert pending and all(f"crash-{t.trial_id}-{t.attempt}" in emu.created for t in pending)  # created, unrecorded

    second, second_backend, second_store = _tuner(emu, aws, body, "state/crash")
    final = await _finish(second, second_backend, second_store)
    await second_store.close()
    assert final.status is TuningStatus.COMPLETED and len(final.trials) == 6
    assert all(t.status.ended for t in final.trials)
    _assert_ran_once_and_ended(emu, final)  # the pending trials' jobs were adopted, not created again


async def test_end_to_end_under_throttling_on_every_call_type(emulator: Callable[..., Emulator], aws: str) -> None:
    make_bucket(aws, BUCKET)
    faults = Faults(throttle={"*": 0.3}, server_errors={"*": 0.05}, max_consecutive=2, fail_first=1, seed=3)
    emu = emulator(faults=faults)
    body = request(name="throttled", jobs=4, parallel=2, max_resource=9, sleep=0.1)
    config = TuningConfig.from_dict(body)
    clock = FastClock()
    b = backend(emu.endpoint, "", body, clock=clock)  # SageMaker, Logs and S3 all through the faults
    store = S3Store(BUCKET, "state/throttled", aio_clients(emu.endpoint), clock=clock)
    tuner = Tuner(config, b, store, RealClock(), job_name="throttled", poll_interval=0.1)
    state = await _finish(tuner, b, store)
    await store.close()
    assert state.status is TuningStatus.COMPLETED
    x = {t.trial_id: float(t.hyperparameters["x"]) for t in state.trials}
    assert state.finish is not None and state.finish["best_trial_id"] == max(x, key=lambda k: quality(x[k]))
    # fail_first=1: every operation's first call faulted, so each one the run made was retried through.
    assert {key.split(":")[0] for key in faults.injected} == set(faults.calls), (faults.calls, faults.injected)
    assert {"CreateTrainingJob", "DescribeTrainingJob", "ListTrainingJobs", "GetLogEvents",
            "PutObject"} <= set(faults.calls), faults.calls
    _assert_ran_once_and_ended(emu, state)


def test_hb_tune_runs_a_tuning_job_on_sagemaker_and_reattaches(emulator: Callable[..., Emulator], aws: str,
                                                              tmp_path: Path) -> None:
    """The command line, as a user runs it: ``hb-tune run --backend sagemaker`` in its own process."""
    make_bucket(aws, BUCKET)
    emu = emulator()
    body = request(name="from-cli", jobs=4, parallel=2, max_resource=9, sleep=0.1)
    path = tmp_path / "tuning.json"
    path.write_text(json.dumps(body))
    state_uri = f"s3://{BUCKET}/output/from-cli/hyperband"  # the default: <S3OutputPath>/<job>/hyperband
    aws_args = ["--endpoint-url", emu.endpoint, "--region", "us-east-1"]
    run = [sys.executable, "-m", "hb_core.cli", "run", str(path), "--backend", "sagemaker", "--metric-source", "logs",
           "--poll-interval", "0.2", *aws_args]
    first = subprocess.run(run, capture_output=True, text=True, timeout=180, check=False)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Completed" in first.stdout and f"state           {state_uri}" in first.stdout
    state = asyncio.run(_load(aws, "output/from-cli/hyperband"))
    assert state.status is TuningStatus.COMPLETED and len(state.trials) == 4
    best = state.trial(str(state.finish["best_trial_id"])) if state.finish else None
    assert best is not None
    assert (f"model           s3://{BUCKET}/output/from-cli-{best.trial_id}-{best.attempt}/output/model.tar.gz"
            in first.stdout)
    _assert_ran_once_and_ended(emu, state)

    created = list(emu.created)
    again = subprocess.run(run, capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0, again.stderr[-3000:]
    assert emu.created == created  # reattached to the finished job: nothing launched twice

    shown = subprocess.run([sys.executable, "-m", "hb_core.cli", "show", state_uri, *aws_args], capture_output=True,
                           text=True, timeout=60, check=False)
    assert shown.returncode == 0 and f"best job        from-cli-{best.trial_id}-{best.attempt}" in shown.stdout

    body["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"] = 5
    path.write_text(json.dumps(body))
    changed = subprocess.run(run, capture_output=True, text=True, timeout=60, check=False)
    assert changed.returncode == 2 and "FILE holds the request of the tuning job in " + state_uri in changed.stderr
    missing = subprocess.run([sys.executable, "-m", "hb_core.cli", "show", f"s3://{BUCKET}/output/none", *aws_args],
                             capture_output=True, text=True, timeout=60, check=False)
    assert missing.returncode == 2 and "s3://tuning/output/none" in missing.stderr


async def _load(endpoint: str, prefix: str) -> TuningState:
    store = S3Store(BUCKET, prefix, aio_clients(endpoint))
    try:
        state = await store.load()
    finally:
        await store.close()
    assert state is not None
    return state


# ---------------------------------------------------------------- helpers


async def _log_stream(endpoint: str, name: str) -> str:
    logs = client("logs", endpoint)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(logs.exceptions.ResourceNotFoundException):  # no log group yet
            streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                                logStreamNamePrefix=f"{name}/algo-1-")["logStreams"]
            if streams:
                return str(streams[0]["logStreamName"])
        await asyncio.sleep(0.05)
    raise AssertionError(f"no log stream for {name}")


def _put_log(endpoint: str, stream: str, lines: list[str]) -> None:
    now = int(time.time() * 1000)
    client("logs", endpoint).put_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream,
        logEvents=[{"timestamp": now + i, "message": line} for i, line in enumerate(lines)])


def _put_metrics(endpoint: str, name: str, points: list[tuple[float, float, int]]) -> None:
    """Publish (time, score, epoch) points as SageMaker does: the objective and the epoch, one datum each."""
    import datetime as dt

    client("cloudwatch", endpoint).put_metric_data(Namespace="/aws/sagemaker/TrainingJobs", MetricData=[
        {"MetricName": metric, "Value": value, "Timestamp": dt.datetime.fromtimestamp(t, dt.UTC),
         "Dimensions": [{"Name": "Host", "Value": f"{name}/algo-1"}]}
        for t, score, epoch in points for metric, value in (("score", score), ("epoch", float(epoch)))])


async def _wait_status(emu: Emulator, name: str, status: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = emu.job(name)
        if described["TrainingJobStatus"] == status:
            return described
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} never reached {status}: {emu.job(name)['TrainingJobStatus']}")
