"""How long each SageMaker metric source takes to bring a printed value to the controller, on the emulator.

For each source (``live``: a CloudWatch Logs Live Tail stream; ``logs``:
GetLogEvents polling; ``cloudwatch``: CloudWatch metrics), the SageMaker
backend follows ``--jobs`` training jobs on the emulator (moto behind it, all
on 127.0.0.1). Each job runs a tiny script that prints ``epoch=N
printed=<wall time mod 1e5>`` every ``gap`` seconds; ``printed`` is the
objective, so each value carries the moment it was printed. The backend is
driven as the runner drives it: a source that pushes (live) is waited on
with ``wait_for_event(poll interval)``, the others are polled every poll
interval (the runner's faster polling when a rung is due is left out: every
value here counts the same). A value's *delay* is the wall time ``poll()``
returned it minus the time it was printed. The jobs start at offsets and
print at intervals chosen so that the values fall at evenly spread phases of
the source's cycle (the update interval, the poll interval, the CloudWatch
period), so the median is the cycle's, not one lucky phase's.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/metric_sources.py [--poll-interval 5]
        [--metric-period 60] [--values 5] [--cloudwatch-values 3] [--jobs 4] [--sources live logs cloudwatch]

Emulator settings: Live Tail updates every 1 s (as AWS sends them), the
emulator reads the jobs' output every 0.05 s. On AWS add the ingestion
delays the emulator does not have (Logs: seconds; CloudWatch metrics: tens
of seconds, ``metric_delay_seconds``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hb_core.backends.aws import AioSessionClients  # noqa: E402
from hb_core.backends.sagemaker import SageMakerBackend  # noqa: E402
from hb_core.config import TuningConfig  # noqa: E402
from hb_core.events import Launch, MetricReported  # noqa: E402
from hb_core.protocols import EventSource  # noqa: E402
from hb_emulator import Emulator  # noqa: E402
from hb_emulator.__main__ import moto_server  # noqa: E402

WRAP = 100000.0  # the printed time is taken modulo this, so that it survives the float of a metric
SCRIPT = textwrap.dedent('''
    import argparse, time
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--gap", type=float)
    parser.add_argument("--offset", type=float)
    parser.add_argument("-x", "--x", type=float)
    args, _ = parser.parse_known_args()
    time.sleep(args.offset * args.x)
    for epoch in range(1, args.epochs + 1):
        time.sleep(args.gap)
        print(f"epoch={epoch} printed={time.time() % 100000.0:.4f}", flush=True)
''')


def request(name: str, code: Path, epochs: int, gap: float, offset: float) -> dict[str, Any]:
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Hyperband",
            "StrategyConfig": {"HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": epochs,
                                                           "ResourceMetricName": "epoch"}},
            "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "printed"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 100, "MaxParallelTrainingJobs": 10},
            "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "1"}]},
        },
        "TrainingJobDefinition": {
            "StaticHyperParameters": {"sagemaker_program": "delay.py", "sagemaker_submit_directory": str(code),
                                      "epochs": str(epochs), "gap": str(gap), "offset": str(offset)},
            "AlgorithmSpecification": {"TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/tiny:1",
                                       "TrainingInputMode": "File",
                                       "MetricDefinitions": [{"Name": "printed", "Regex": r"printed=([0-9.]+)"},
                                                             {"Name": "epoch", "Regex": r"epoch=([0-9]+)"}]},
            "RoleArn": "arn:aws:iam::123456789012:role/bench",
            "OutputDataConfig": {"S3OutputPath": "s3://bench-delay/output"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        },
    }


async def measure(source: str, endpoint: str, code: Path, *, jobs: int, values: int, cycle: float,
                  poll_interval: float, metric_period: int) -> list[float]:
    """The delays (s) of ``jobs * values`` printed values through ``source`` (module docstring)."""
    gap = cycle * (1 + 1 / values)  # value i of job j falls at phase j/jobs + i/values of the cycle
    config = TuningConfig.from_dict(request(f"delay-{source}", code, values, gap, cycle))
    clients = AioSessionClients(region_name="us-east-1", endpoint_urls={"*": endpoint})
    backend = SageMakerBackend(config, job_name=config.name or source, clients=clients, metric_source=source,  # type: ignore[arg-type]
                               metric_period=metric_period)
    delays: list[float] = []
    ended = 0
    try:
        for j in range(jobs):
            await backend.launch(Launch(f"{j:04d}", 1, {"x": j / jobs}, values))
        deadline = time.monotonic() + cycle * 3 + gap * values + 120
        while ended < jobs and time.monotonic() < deadline:
            if isinstance(backend, EventSource):
                await backend.wait_for_event(poll_interval)
            else:
                await asyncio.sleep(poll_interval)
            events = await backend.poll()
            seen = time.time() % WRAP
            for event in events:
                if isinstance(event, MetricReported):
                    delays.append((seen - event.value) % WRAP)
                ended += event.kind in ("TrialCompleted", "TrialFailed", "TrialStopped")
        if backend.notes:
            print(f"  {source}: {backend.notes}", file=sys.stderr)
    finally:
        await backend.close()
    return delays


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", nargs="+", default=["live", "logs", "cloudwatch"])
    parser.add_argument("--poll-interval", type=float, default=5.0, help="hb-tune run's default is 5 s")
    parser.add_argument("--metric-period", type=int, default=60, help="CloudWatch's: 60 s for training jobs")
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--values", type=int, default=5, help="values printed per job (live, logs)")
    parser.add_argument("--cloudwatch-values", type=int, default=3)
    args = parser.parse_args()
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    cycles = {"live": 1.0, "logs": args.poll_interval, "cloudwatch": float(args.metric_period)}
    rows = []
    with moto_server("127.0.0.1") as moto, tempfile.TemporaryDirectory(prefix="hb-delay-") as work:
        code = Path(work) / "code"
        code.mkdir()
        (code / "delay.py").write_text(SCRIPT)
        import boto3

        boto3.session.Session().client("s3", endpoint_url=moto, region_name="us-east-1").create_bucket(
            Bucket="bench-delay")
        with Emulator(moto, Path(work) / "emulator") as endpoint:
            for source in args.sources:
                values = args.cloudwatch_values if source == "cloudwatch" else args.values
                started = time.monotonic()
                delays = asyncio.run(measure(source, endpoint, code, jobs=args.jobs, values=values,
                                             cycle=cycles[source], poll_interval=args.poll_interval,
                                             metric_period=args.metric_period))
                wall = time.monotonic() - started
                quantiles = statistics.quantiles(delays, n=10) if len(delays) > 1 else [math_nan()] * 9
                rows.append((source, len(delays), statistics.median(delays) if delays else float("nan"),
                             quantiles[0], quantiles[-1], max(delays, default=float("nan")), wall))
                print(f"{source}: {len(delays)} values, median {rows[-1][2]:.2f} s", file=sys.stderr, flush=True)
    print(f"poll interval {args.poll_interval:g} s, CloudWatch period {args.metric_period} s, "
          f"{args.jobs} jobs in parallel\n")
    print("| source | values | median delay (s) | p10 | p90 | max | wall (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for source, n, median, p10, p90, high, wall in rows:
        print(f"| {source} | {n} | {median:.2f} | {p10:.2f} | {p90:.2f} | {high:.2f} | {wall:.0f} |")
    return 0


def math_nan() -> float:
    return float("nan")


if __name__ == "__main__":
    sys.exit(main())
