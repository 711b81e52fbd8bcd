"""How long after a SageMaker training job ends the controller sees the end, on the emulator, end polling on and off.

With the Live Tail metric source the SageMaker backend wakes the runner when
a metric line arrives, but SageMaker pushes no job end to a caller: an end is
seen at the next ``poll()``. With end polling on (``end_poll_seconds``, 5 s by
default) the backend describes the jobs due to end every ``end_poll_seconds``
while the runner waits, and wakes it when one has ended; off
(``end_poll_seconds=math.inf``) the end waits for the runner's next poll
(``--poll-interval``, 30 s by default) or for the next metric line of any job.

Two kinds of end, ``--jobs`` training jobs of each in parallel, each kind
followed by its own backend (its own tuning job, its own Live Tail session),
driven as the runner drives it: ``wait_for_event(poll interval)``, then
``poll()``, then the harness acts on the events.

- *stopped* (a loser at a rung, the common case): the job prints its value
  at epoch 1 and then trains a long, silent epoch; the poll that returns the
  value is followed by ``backend.stop(trial, attempt, reason)``.
- *completed*: the job prints epochs 1 and 2 (its budget) one second apart;
  nothing is done to it.

The jobs are real processes (the emulator's script mode, a tiny script
below), not fake jobs: the emulator's stop then goes the way SageMaker's does
(SIGTERM, the script's handler, the process exits, the job ends Stopped) and
a job completes when its process exits. Each job takes ``x`` seconds to end
once it is told to stop (its SIGTERM handler sleeps ``x``: saving a
checkpoint, say) or once it printed its last value (it sleeps ``x`` before
exiting: saving and uploading the model). ``x`` is spread over the poll
interval, one job in each ``1/M`` of it (``M`` jobs over all repeats) at a
golden-ratio offset within its share: job ``k`` has ``x = poll * (k + frac(k
* 0.618...)) / M``, so that the end falls at evenly spread phases of both
cycles, the runner's poll interval and the end polling's 5 s, and the median
is the cycles', not one lucky phase's. The emulator gives a stopped job
SageMaker's 120 s after SIGTERM before killing it.

A job's *end delay* is the wall time ``poll()`` returned its TrialStopped or
TrialCompleted minus its ``TrainingEndTime`` in the emulator's record (the
moment the emulator marked it ended, after its process exited and its model
was uploaded). The Describe price is ``backend.api_calls["DescribeTrainingJob"]``
per job-minute (launch to the end seen) and per minute due to end (from the
stop, or from the poll that returned the budget's last value, to the end
seen): the end polling describes each job due to end every ``end_poll_seconds``.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/job_ends.py [--poll-interval 30] [--end-poll 5]
        [--jobs 6] [--repeats 3]

Emulator settings: Live Tail updates every 1 s (as AWS sends them), the
emulator follows the jobs every 0.05 s, a stopped job gets 120 s after
SIGTERM. What this does not measure: on AWS a stop itself takes tens of
seconds (and a completing job's upload some more) before the job is
Stopped or Completed; the delay here starts when the job has ended.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shlex
import statistics
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hb_core.backends.aws import AioSessionClients  # noqa: E402
from hb_core.backends.sagemaker import SageMakerBackend  # noqa: E402
from hb_core.config import TuningConfig  # noqa: E402
from hb_core.events import Launch, MetricReported, TrialCompleted, TrialFailed, TrialStopped  # noqa: E402
from hb_emulator import Emulator  # noqa: E402
from hb_emulator.__main__ import moto_server  # noqa: E402

BUCKET = "bench-ends"
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
FIRST = 3.0  # seconds from a job's start to its first printed value (the Live Tail session is open by then)
GRACE = 120.0  # seconds SageMaker waits after SIGTERM before it kills a stopped job's container
MAX_ROUNDS = 10000  # wait/poll rounds of one run, at most
GOLDEN = (math.sqrt(5) - 1) / 2
SCRIPT = textwrap.dedent('''
    import argparse, signal, sys, time
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--gap", type=float)
    parser.add_argument("--first", type=float)
    parser.add_argument("-x", "--x", type=float)  # seconds to end: after SIGTERM, or after the last epoch
    args, _ = parser.parse_known_args()

    def shut_down(signum, frame):
        time.sleep(args.x)  # saving a checkpoint
        sys.exit(0)

    signal.signal(signal.SIGTERM, shut_down)
    time.sleep(args.first)
    for epoch in range(1, args.epochs + 1):
        print(f"epoch={epoch} score={epoch / 10:.2f}", flush=True)
        if epoch < args.epochs:
            time.sleep(args.gap)
    time.sleep(args.x)  # saving and uploading the model
''')


@dataclass(frozen=True)
class Kind:
    """A kind of end: ``budget`` epochs printed ``gap`` seconds apart; ``stopped``: stopped at its first value."""

    name: str
    budget: int
    gap: float
    stopped: bool


KINDS = (Kind("stopped", 9, 3600.0, True), Kind("completed", 2, 1.0, False))


@dataclass
class Run:
    """What one backend saw of one kind's jobs in one setting."""

    delays: list[float] = field(default_factory=list)
    describes: int = 0
    polls: int = 0
    job_minutes: float = 0.0
    due_minutes: float = 0.0
    unexpected: list[str] = field(default_factory=list)


def request(name: str, code: Path, kind: Kind) -> dict[str, Any]:
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Hyperband",
            "StrategyConfig": {"HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": kind.budget,
                                                           "ResourceMetricName": "epoch"}},
            "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "score"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 100, "MaxParallelTrainingJobs": 20},
            "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "3600"}]},
        },
        "TrainingJobDefinition": {
            "StaticHyperParameters": {"sagemaker_program": "ends.py", "sagemaker_submit_directory": str(code),
                                      "epochs": str(kind.budget), "gap": str(kind.gap), "first": str(FIRST)},
            "AlgorithmSpecification": {"TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/tiny:1",
                                       "TrainingInputMode": "File",
                                       "MetricDefinitions": [{"Name": "score", "Regex": r"score=([0-9.]+)"},
                                                             {"Name": "epoch", "Regex": r"epoch=([0-9]+)"}]},
            "RoleArn": "arn:aws:iam::123456789012:role/bench",
            "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/output"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        },
    }


async def measure(kind: Kind, name: str, emu: Emulator, code: Path, ends: list[float], *,
                  poll_interval: float, end_poll: float) -> Run:
    """One backend following ``len(ends)`` jobs of ``kind``, job j taking ``ends[j]`` s to end (module docstring)."""
    config = TuningConfig.from_dict(request(name, code, kind))
    clients = AioSessionClients(region_name="us-east-1", endpoint_urls={"*": emu.endpoint})
    backend = SageMakerBackend(config, job_name=name, clients=clients, end_poll_seconds=end_poll)
    run = Run()
    launched: dict[str, float] = {}
    due: dict[str, float] = {}  # trial -> wall time it became due to end
    seen: dict[str, float] = {}  # trial -> wall time poll() returned its end
    try:
        for j, x in enumerate(ends):
            trial = f"{j:04d}"
            await backend.launch(Launch(trial, 1, {"x": x}, kind.budget))
            launched[trial] = time.time()
        deadline = time.monotonic() + FIRST + kind.gap * (kind.budget - 1) * (not kind.stopped) + max(ends) \
            + 3 * poll_interval + 60
        for _ in range(MAX_ROUNDS):
            if len(seen) == len(ends) or time.monotonic() > deadline:
                break
            await backend.wait_for_event(poll_interval)
            events = await backend.poll()
            now = time.time()
            run.polls += 1
            to_stop: list[MetricReported] = []
            for event in events:
                if isinstance(event, MetricReported) and event.trial_id not in due:
                    if kind.stopped:
                        to_stop.append(event)
                    elif (event.resource or 0) >= kind.budget:
                        due[event.trial_id] = now
                elif isinstance(event, TrialStopped | TrialCompleted | TrialFailed):
                    seen[event.trial_id] = now
                    expected = TrialStopped if kind.stopped else TrialCompleted
                    if not isinstance(event, expected):
                        run.unexpected.append(f"{event.trial_id}: {event!r}")
                        continue
                    ended = emu.job(backend.training_job_name(event.trial_id, event.attempt))["TrainingEndTime"]
                    run.delays.append(now - float(ended))
            for event in to_stop:  # as the runner acts: after the poll, on what it returned
                await backend.stop(event.trial_id, event.attempt, "rung 1: not among the best")
                due[event.trial_id] = time.time()
        missing = sorted(set(launched) - set(seen))
        if missing:
            run.unexpected.append(f"no end seen for {missing} before the deadline")
        run.describes = backend.api_calls.get("DescribeTrainingJob", 0)
        run.job_minutes = sum(seen[t] - launched[t] for t in seen) / 60
        run.due_minutes = sum(seen[t] - due[t] for t in seen if t in due) / 60
        if backend.notes:
            run.unexpected.extend(backend.notes)
        if backend.live_tail is None or backend.live_tail.updates == 0:
            run.unexpected.append("no Live Tail update came: the values were polled, not pushed")
    finally:
        await backend.stop_all("benchmark over")
        await backend.close()
    return run


def spread(jobs: int, repeats: int, poll: float) -> list[list[float]]:
    """Per repeat, the seconds each job takes to end: spread over the poll interval (module docstring)."""
    total = jobs * repeats
    return [[round(poll * (k + k * GOLDEN % 1) / total, 3) for k in (j * repeats + r for j in range(jobs))]
            for r in range(repeats)]


def stats(values: list[float]) -> tuple[float, float, float]:
    """Median, p90, max (NaN when there are none)."""
    if not values:
        return math.nan, math.nan, math.nan
    p90 = statistics.quantiles(values, n=10, method="inclusive")[-1] if len(values) > 1 else values[0]
    return statistics.median(values), p90, max(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--poll-interval", type=float, default=30.0, help="the runner's (Airflow operator's) default")
    parser.add_argument("--end-poll", type=float, default=5.0, help="end_poll_seconds when end polling is on")
    parser.add_argument("--jobs", type=int, default=6, help="jobs of each kind in parallel")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not (0 < args.poll_interval < GRACE and 0 < args.end_poll < math.inf and args.jobs >= 1 and args.repeats >= 1):
        parser.error(f"`0 < poll interval < {GRACE:g}, 0 < end poll < inf, jobs >= 1, repeats >= 1` must hold, "
                     f"but got {args.poll_interval}, {args.end_poll}, {args.jobs}, {args.repeats}")
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    settings = (("on", args.end_poll), ("off", math.inf))
    runs: dict[tuple[str, str], list[Run]] = {(s, k.name): [] for s, _ in settings for k in KINDS}
    ends = spread(args.jobs, args.repeats, args.poll_interval)
    with moto_server("127.0.0.1") as moto, tempfile.TemporaryDirectory(prefix="hb-ends-") as work:
        code = Path(work) / "code"
        code.mkdir()
        (code / "ends.py").write_text(SCRIPT)
        import boto3

        session = boto3.session.Session()
        session.client("s3", endpoint_url=moto, region_name="us-east-1").create_bucket(Bucket=BUCKET)
        session.client("logs", endpoint_url=moto, region_name="us-east-1").create_log_group(logGroupName=LOG_GROUP)
        emu = Emulator(moto, Path(work) / "emulator", stop_grace_seconds=GRACE)
        with emu:
            for r in range(args.repeats):
                for setting, end_poll in settings:
                    started = time.monotonic()

                    async def both(r: int = r, setting: str = setting, end_poll: float = end_poll) -> list[Run]:
                        return list(await asyncio.gather(*(
                            measure(kind, f"ends-{setting}-{kind.name[0]}{r:02d}", emu, code, ends[r],
                                    poll_interval=args.poll_interval, end_poll=end_poll) for kind in KINDS)))

                    for kind, run in zip(KINDS, asyncio.run(both())):
                        runs[(setting, kind.name)].append(run)
                        for note in run.unexpected:
                            print(f"  {setting} {kind.name} repeat {r}: {note}", file=sys.stderr)
                    print(f"repeat {r + 1}/{args.repeats}, end polling {setting}: {time.monotonic() - started:.0f} s",
                          file=sys.stderr, flush=True)
    print(f"command: `OPENBLAS_NUM_THREADS=1 .venv/bin/python {shlex.join(['benchmarks/job_ends.py', *sys.argv[1:]])}`")
    print(f"runner poll interval {args.poll_interval:g} s; end polling on: end_poll_seconds={args.end_poll:g}, "
          f"off: inf; {args.jobs} jobs of each kind in parallel, {args.repeats} repeats; emulator: real processes, "
          f"Live Tail updates every 1 s, jobs followed every 0.05 s, {GRACE:g} s after SIGTERM\n")
    print("| end polling | kind | n | median delay (s) | p90 | max |")
    print("|---|---|---:|---:|---:|---:|")
    for setting, _ in settings:
        for kind in KINDS:
            delays = [d for run in runs[(setting, kind.name)] for d in run.delays]
            median, p90, high = stats(delays)
            print(f"| {setting} | {kind.name} | {len(delays)} | {median:.2f} | {p90:.2f} | {high:.2f} |")
    print("\n| end polling | kind | DescribeTrainingJob | job-minutes | per job-minute | minutes due to end "
          "| per minute due to end | polls |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for setting, _ in settings:
        for kind in KINDS:
            group = runs[(setting, kind.name)]
            describes = sum(run.describes for run in group)
            job_minutes = sum(run.job_minutes for run in group)
            due_minutes = sum(run.due_minutes for run in group)
            print(f"| {setting} | {kind.name} | {describes} | {job_minutes:.1f} | {describes / job_minutes:.1f} "
                  f"| {due_minutes:.1f} | {describes / due_minutes:.1f} | {sum(run.polls for run in group)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
