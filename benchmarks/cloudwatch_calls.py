"""Count the AWS calls one poll of the SageMaker backend makes, for 1, 100 and 1000 running trials.

Everything runs on this machine: a moto server and the SageMaker emulator in
front of it, with fake training jobs (``run_processes=False``: no
processes). For each n, a fresh tuning job launches n trials (n
CreateTrainingJob calls), one objective datapoint per job goes straight into
moto's CloudWatch (``put_metric_data``, namespace
``/aws/sagemaker/TrainingJobs``, dimension ``Host=<job>/algo-1``, in the
previous minute so its bucket is closed), and the backend polls ``--polls``
times (``metric_source="cloudwatch"``, ``Period=60``). The table gives the
calls per poll by operation (counted by the backend, and the GetMetricData
calls also as the emulator's proxy saw them), the points read, and the
wall time of a poll (moto's GetMetricData is the slow part; AWS is not
measured here). GetMetricData takes at most 500 queries, so the expected
count is ``ceil(5n / 500)`` (five statistics a job: the objective's
SampleCount, Minimum and Maximum, the epoch's Minimum and Maximum); the
script fails when it is not.

    /tmp/venvtest/.venv/bin/python benchmarks/cloudwatch_calls.py
    /tmp/venvtest/.venv/bin/python benchmarks/cloudwatch_calls.py --sizes 1 100 --out /tmp/cw.md

No real AWS endpoint is ever contacted: every client has an explicit
127.0.0.1 endpoint and dummy credentials.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import math
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hb_core.backends.aws import AioSessionClients
from hb_core.backends.sagemaker import NAMESPACE, SageMakerBackend
from hb_core.config import TuningConfig
from hb_core.events import Launch, MetricReported, TrialStarted
from hb_emulator import Emulator

OUT = Path(__file__).with_name("CLOUDWATCH.md")
REGION = "us-east-1"


def request(name: str, n: int) -> dict[str, Any]:
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Hyperband",  # for ResourceMetricName: CloudWatch values are exact only with the epoch
            "StrategyConfig": {"HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 27,
                                                           "ResourceMetricName": "epoch"}},
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "score"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": min(max(n, 2), 750), "MaxParallelTrainingJobs": 100},
            "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "1"}]},
            "TrainingJobEarlyStoppingType": "Off",
        },
        "TrainingJobDefinition": {
            "StaticHyperParameters": {"epochs": "27"},
            "AlgorithmSpecification": {"TrainingImage": "bench", "TrainingInputMode": "File",
                                       "MetricDefinitions": [{"Name": "score", "Regex": "score=([0-9.]+)"},
                                                             {"Name": "epoch", "Regex": "epoch=([0-9]+)"}]},
            "RoleArn": "arn:aws:iam::123456789012:role/bench",
            "OutputDataConfig": {"S3OutputPath": "s3://bench/output"},
            "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        },
    }


def put_points(moto: str, names: Sequence[str], when: float) -> None:
    import boto3

    cloudwatch = boto3.session.Session().client("cloudwatch", endpoint_url=moto, region_name=REGION,
                                                aws_access_key_id="testing", aws_secret_access_key="testing")
    stamp = dt.datetime.fromtimestamp(when, dt.UTC)
    data = [{"MetricName": metric, "Value": value, "Timestamp": stamp,
             "Dimensions": [{"Name": "Host", "Value": f"{name}/algo-1"}]}
            for name in names for metric, value in (("score", 0.5), ("epoch", 1.0))]
    for start in range(0, len(data), 1000):
        cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data[start:start + 1000])


async def measure(moto: str, emulator: Emulator, n: int, polls: int) -> dict[str, Any]:
    name = f"bench-{n}"
    config = TuningConfig.from_dict(request(name, n))
    clients = AioSessionClients(region_name=REGION, endpoint_urls={"*": emulator.endpoint})  # it proxies to moto
    backend = SageMakerBackend(config, job_name=name, clients=clients, metric_source="cloudwatch",
                               describe_concurrency=50)
    semaphore = asyncio.Semaphore(50)

    async def launch(i: int) -> None:
        async with semaphore:
            await backend.launch(Launch(f"{i:04d}", 1, {"x": 0.5}, 27))

    await asyncio.gather(*(launch(i) for i in range(n)))
    names = [backend.training_job_name(f"{i:04d}", 1) for i in range(n)]
    minute = math.floor(time.time() / 60) * 60
    put_points(moto, names, minute - 30)  # in the previous minute: its bucket is closed
    rows: list[tuple[Counter[str], int, float, int]] = []
    for _ in range(polls):
        before, proxied = Counter(backend.api_calls), emulator.calls["GetMetricData"]
        start = time.perf_counter()
        events = await backend.poll()
        elapsed = time.perf_counter() - start
        calls = Counter(backend.api_calls)
        calls.subtract(before)
        rows.append((calls, emulator.calls["GetMetricData"] - proxied, elapsed,
                     sum(isinstance(e, MetricReported) for e in events)))
        assert all(isinstance(e, (TrialStarted, MetricReported)) for e in events)
    await backend.close()
    return {
        "n": n,
        "expected": math.ceil(5 * n / 500),  # five statistics a job (hb_core.backends.aws.CloudWatchMetrics)
        "get_metric_data": [r[0]["GetMetricData"] for r in rows],
        "proxied": [r[1] for r in rows],
        "list": [r[0]["ListTrainingJobs"] for r in rows],
        "describe": [r[0]["DescribeTrainingJob"] for r in rows],
        "points": sum(r[3] for r in rows),  # each datapoint is read once, whatever the number of polls
        "seconds": [r[2] for r in rows],
    }


def table(results: Sequence[dict[str, Any]], polls: int) -> str:
    lines = [
        "# CloudWatch calls per poll of the SageMaker backend",
        "",
        "Measured by `benchmarks/cloudwatch_calls.py` on this machine: moto 5.2.5's server and the SageMaker",
        "emulator (fake jobs, no processes), aiobotocore 3.10. n training jobs are InProgress, each with one",
        "objective datapoint in a closed minute; the backend (`metric_source=\"cloudwatch\"`, `Period=60`)",
        f"polls {polls} times through the emulator, which proxies CloudWatch to moto. Calls are per poll (every",
        "poll the same); the GetMetricData count is also what the proxy saw. Each datapoint is read once over all",
        "polls. `ListTrainingJobs` pages 100 jobs at a time; `DescribeTrainingJob`",
        "is only called for jobs missing from that listing (none here: all are running). Poll seconds are",
        "dominated by moto's GetMetricData (a linear scan per query), not by the backend.",
        "",
        "    /tmp/venvtest/.venv/bin/python benchmarks/cloudwatch_calls.py",
        "",
        ("| running trials | GetMetricData per poll | ceil(5n/500) | seen by the proxy | ListTrainingJobs | "
         "DescribeTrainingJob | points read (all polls) | seconds per poll (median) |"),
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        calls, proxied = set(r["get_metric_data"]), set(r["proxied"])
        seconds = sorted(r["seconds"])[len(r["seconds"]) // 2]
        lines.append(
            f"| {r['n']} | {'/'.join(map(str, sorted(calls)))} | {r['expected']} | "
            f"{'/'.join(map(str, sorted(proxied)))} | {'/'.join(map(str, sorted(set(r['list']))))} | "
            f"{'/'.join(map(str, sorted(set(r['describe']))))} | {r['points']} | {seconds:.2f} |"
        )
    lines += ["", ("The count grows as ceil(5n/500): 1000 running trials cost 10 GetMetricData calls per poll, "
                   "where one call per trial would cost 1000."), ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--polls", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true"}.items():
        os.environ[key] = value
    os.environ.pop("AWS_PROFILE", None)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    moto = f"http://{host}:{port}"
    results = []
    try:
        with tempfile.TemporaryDirectory() as work:
            emulator = Emulator(moto, work, run_processes=False)
            with emulator:
                for n in args.sizes:
                    result = asyncio.run(measure(moto, emulator, n, args.polls))
                    results.append(result)
                    print(f"n={n}: GetMetricData per poll {result['get_metric_data']} (expected "
                          f"{result['expected']}), ListTrainingJobs {result['list']}, seconds "
                          f"{[round(s, 2) for s in result['seconds']]}", flush=True)
    finally:
        server.stop()
    text = table(results, args.polls)
    args.out.write_text(text)
    print(text)
    bad = [r["n"] for r in results if set(r["get_metric_data"]) != {r["expected"]}]
    if bad:
        print(f"GetMetricData calls per poll are not ceil(5n/500) for n in {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
