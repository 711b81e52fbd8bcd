"""The emulator's training jobs: the record DescribeTrainingJob shows, and the lifecycle that runs one.

Lifecycle (TrainingJobStatus / SecondaryStatus), as SageMaker reports it:

- InProgress / Starting, then Downloading: the entry point's code
  (``sagemaker_submit_directory``: a local directory, or an ``s3://`` prefix
  or ``.tar.gz`` on the moto server), the ``InputDataConfig`` channels
  (``S3Prefix`` data sources, into ``SM_CHANNEL_<NAME>`` directories) and the
  checkpoints under ``CheckpointConfig.S3Uri`` are downloaded.
- InProgress / Training: the entry point runs as a local process under the
  local backend's detached supervisor (:mod:`hb_core.backends.process`),
  with the same script-mode environment. Every log line goes to CloudWatch
  Logs (group ``/aws/sagemaker/TrainingJobs``, stream
  ``<job>/algo-1-<epoch seconds>``, and to the open Live Tail sessions,
  :mod:`hb_emulator.live_tail`); every ``MetricDefinitions`` match to
  CloudWatch (namespace ``/aws/sagemaker/TrainingJobs``, dimension
  ``Host=<job>/algo-1``, timestamp = the time the line was read). The
  checkpoint directory is uploaded every ``checkpoint_sync_seconds`` and at
  the end.
- InProgress / Uploading, then Completed / Completed (exit status 0), Failed
  / Failed (``FailureReason`` from ``output/failure`` or the exit status), or
  after StopTrainingJob Stopping / Stopping, then Stopped / Stopped. The
  model directory is uploaded as ``<S3OutputPath>/<job>/output/model.tar.gz``.
- ``StoppingCondition.MaxRuntimeInSeconds`` passed: Stopped /
  MaxRuntimeExceeded. A spot interruption (:meth:`Emulator.interrupt`): the
  process is killed at once and the job ends Failed (or Stopped) /
  Interrupted, as a managed-spot job with no retries left.

With ``run_processes=False`` a job runs nothing: it stays InProgress /
Training until it is stopped, interrupted, or ended by
:meth:`Emulator.complete` / :meth:`Emulator.fail` (fake jobs for fast tests
and benchmarks).

Size: about 570 lines, over the project's 400, because it is one lifecycle:
the record, the download, the supervised run with its log and metric
forwarding, checkpoint sync and the upload share a job's state, and split
apart they would pass it back and forth.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import logging
import math
import os
import re
import signal
import sys
import tarfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hb_core.backends import process as proc
from hb_emulator.faults import Faults
from hb_emulator.live_tail import LiveTailHub

__all__ = ["EmulatedJob", "JobFailure", "JobRunner", "Settings"]

log = logging.getLogger(__name__)

NAMESPACE = LOG_GROUP = "/aws/sagemaker/TrainingJobs"
ENDED = ("Completed", "Failed", "Stopped")
STOP, MAX_RUNTIME, INTERRUPTED = "stop", "MaxRuntimeExceeded", "Interrupted"
MESSAGES = {
    "Starting": "Preparing the instances for training",
    "Downloading": "Downloading input data",
    "Training": "Training image download completed. Training in progress.",
    "Uploading": "Uploading generated training model",
    "Completed": "Training job completed",
    "Failed": "Training job failed",
    "Stopping": "Stopping the training job",
    "Stopped": "The training job was stopped",
    "MaxRuntimeExceeded": "The job stopped because it exceeded the maximum allowed runtime",
    "Interrupted": "The job stopped because the managed spot training instances were interrupted",
}
REQUEST_FIELDS = (
    "HyperParameters", "AlgorithmSpecification", "RoleArn", "InputDataConfig", "OutputDataConfig", "ResourceConfig",
    "VpcConfig", "StoppingCondition", "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption",
    "EnableManagedSpotTraining", "CheckpointConfig", "RetryStrategy", "Environment",
)


class JobFailure(Exception):
    """The job cannot go on; ``reason`` becomes its FailureReason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason[:1024]


@dataclass
class Settings:
    """How the emulator runs jobs (see :class:`hb_emulator.Emulator`)."""

    python: str = sys.executable
    tick: float = 0.05
    stage_seconds: float = 0.0
    run_processes: bool = True
    stop_grace_seconds: float = 5.0
    checkpoint_sync_seconds: float = 1.0
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass
class EmulatedJob:
    """One training job as the emulator keeps it. Fields change under the emulator's lock."""

    name: str
    arn: str
    request: dict[str, Any]
    created: float
    directory: Path
    tags: list[dict[str, str]] = field(default_factory=list)
    status: str = "InProgress"
    secondary: str = "Starting"
    failure_reason: str | None = None
    transitions: list[dict[str, Any]] = field(default_factory=list)
    last_modified: float = 0.0
    training_start: float | None = None
    training_end: float | None = None
    model_artifacts: str | None = None
    final_metrics: dict[str, tuple[float, float]] = field(default_factory=dict)
    stop_kind: str | None = None
    interrupt_status: str = "Failed"
    hold_outcome: tuple[str, str | None] | None = None
    log_stream: str | None = None
    last_stamp: int = 0  # the newest log event time (ms): a stream's timestamps never go back
    process: proc.Supervised | None = None
    synced: dict[Path, tuple[int, int]] = field(default_factory=dict)  # checkpoint file -> (mtime_ns, size) uploaded

    def __post_init__(self) -> None:
        self.last_modified = self.created
        self.transitions.append({"Status": "Starting", "StartTime": self.created, "StatusMessage": MESSAGES["Starting"]})

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    def set_secondary(self, secondary: str, status: str | None = None, reason: str | None = None) -> None:
        now = time.time()
        if status is not None:
            self.status = status
        if reason is not None:
            self.failure_reason = reason[:1024]
        if secondary != self.secondary:
            self.transitions[-1]["EndTime"] = now
            self.transitions.append({"Status": secondary, "StartTime": now, "StatusMessage": MESSAGES.get(secondary, "")})
            self.secondary = secondary
        if self.ended:
            self.transitions[-1]["EndTime"] = now
            self.training_end = now
        self.last_modified = now

    def describe(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "TrainingJobName": self.name,
            "TrainingJobArn": self.arn,
            "TrainingJobStatus": self.status,
            "SecondaryStatus": self.secondary,
            "CreationTime": self.created,
            "LastModifiedTime": self.last_modified,
            "SecondaryStatusTransitions": [dict(t) for t in self.transitions],
            "ModelArtifacts": {"S3ModelArtifacts": self.model_artifacts or self.default_artifacts()},
        }
        body.update({key: self.request[key] for key in REQUEST_FIELDS if key in self.request})
        if self.failure_reason:
            body["FailureReason"] = self.failure_reason
        if self.training_start is not None:
            body["TrainingStartTime"] = self.training_start
        if self.training_end is not None:
            body["TrainingEndTime"] = self.training_end
            start = self.training_start if self.training_start is not None else self.training_end
            seconds = max(0, math.ceil(self.training_end - start))
            body["TrainingTimeInSeconds"] = seconds
            body["BillableTimeInSeconds"] = seconds
        if self.final_metrics:
            body["FinalMetricDataList"] = [{"MetricName": name, "Value": value, "Timestamp": at}
                                           for name, (value, at) in sorted(self.final_metrics.items())]
        return body

    def summary(self) -> dict[str, Any]:
        body = {
            "TrainingJobName": self.name,
            "TrainingJobArn": self.arn,
            "CreationTime": self.created,
            "LastModifiedTime": self.last_modified,
            "TrainingJobStatus": self.status,
            "SecondaryStatus": self.secondary,
        }
        if self.training_end is not None:
            body["TrainingEndTime"] = self.training_end
        return body

    def default_artifacts(self) -> str:
        output = str(self.request.get("OutputDataConfig", {}).get("S3OutputPath", "")).rstrip("/")
        return f"{output}/{self.name}/output/model.tar.gz"


@dataclass
class _Setup:
    """What Downloading produced: where the code is, which file runs, the channel directories."""

    code_dir: Path
    program: Path
    program_name: str
    channels: dict[str, Path]


class MotoClients:
    """boto3 clients to the moto server, with dummy credentials (never a real AWS endpoint)."""

    def __init__(self, endpoint: str, region: str) -> None:
        self.endpoint = endpoint
        self.region = region
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                import boto3
                from botocore.config import Config

                self._clients[service] = boto3.session.Session().client(
                    service, endpoint_url=self.endpoint, region_name=self.region, aws_access_key_id="testing",
                    aws_secret_access_key="testing", config=Config(retries={"total_max_attempts": 3}),
                )
            return self._clients[service]


class JobRunner:
    """Runs the lifecycle of each job on the emulator's engine loop (module docstring)."""

    def __init__(self, aws: MotoClients, settings: Settings, faults: Faults, lock: threading.Lock,
                 live_tail: LiveTailHub | None = None) -> None:
        self.aws = aws
        self.live_tail = live_tail
        self.settings = settings
        self.faults = faults
        self.lock = lock
        self._delayed: list[tuple[float, dict[str, Any]]] = []  # (due, datum) for late/duplicated metrics

    # ------------------------------------------------------------ the lifecycle

    async def run(self, job: EmulatedJob) -> None:
        try:
            status, secondary, reason = await self._run(job)
        except JobFailure as failure:
            status, secondary, reason = "Failed", "Failed", failure.reason
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug of the emulator: the job fails, and says so
            log.exception("emulated job %s", job.name)
            status, secondary, reason = "Failed", "Failed", f"InternalServerError: {exc!r}"
        with self.lock:
            job.set_secondary(secondary, status, reason)
        log.info("emulated job %s: %s / %s%s", job.name, status, secondary, f" ({reason})" if reason else "")

    async def _run(self, job: EmulatedJob) -> tuple[str, str, str | None]:
        if not await self._wait(job, self.settings.stage_seconds):
            return self._ended_early(job)
        self._secondary(job, "Downloading")
        setup = await asyncio.to_thread(self._prepare, job) if self.settings.run_processes else None
        if not await self._wait(job, self.settings.stage_seconds):
            return self._ended_early(job)
        with self.lock:
            job.training_start = time.time()
            job.set_secondary("Training")
        await asyncio.to_thread(self._open_log_stream, job)
        if setup is None:
            return await self._hold(job)
        return await self._train(job, setup)

    async def _wait(self, job: EmulatedJob, seconds: float) -> bool:
        """Wait ``seconds``; False as soon as a stop or an interruption is requested."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and job.stop_kind is None:
            await asyncio.sleep(min(self.settings.tick, max(0.0, deadline - time.monotonic())))
        return job.stop_kind is None

    def _ended_early(self, job: EmulatedJob) -> tuple[str, str, str | None]:
        if job.stop_kind == INTERRUPTED:
            return job.interrupt_status, INTERRUPTED, f"{MESSAGES[INTERRUPTED]}."
        return "Stopped", "Stopped", None

    def _secondary(self, job: EmulatedJob, secondary: str, status: str | None = None) -> None:
        with self.lock:
            job.set_secondary(secondary, status)

    async def _hold(self, job: EmulatedJob) -> tuple[str, str, str | None]:
        """A job that runs nothing: it ends when told to, or at its runtime limit."""
        limit = _max_runtime(job.request)
        while True:
            if job.stop_kind is not None:
                break
            if job.hold_outcome is not None:
                status, reason = job.hold_outcome
                return status, status, reason
            if limit is not None and job.training_start is not None and time.time() - job.training_start >= limit:
                with self.lock:
                    job.stop_kind = MAX_RUNTIME
                break
            await asyncio.sleep(self.settings.tick)
        if job.stop_kind == INTERRUPTED:
            return job.interrupt_status, INTERRUPTED, f"{MESSAGES[INTERRUPTED]}."
        return "Stopped", MAX_RUNTIME if job.stop_kind == MAX_RUNTIME else "Stopped", None

    async def _train(self, job: EmulatedJob, setup: _Setup) -> tuple[str, str, str | None]:
        run_dir = job.directory / "job"
        command, sm_env = proc.script_mode(
            job_name=job.name, directory=run_dir, hyperparameters=job.request.get("HyperParameters", {}),
            program=setup.program, user_entry_point=setup.program_name, submit_dir=setup.code_dir,
            channels=setup.channels, python=self.settings.python,
        )
        for sub in (run_dir / "model", run_dir / "output" / "data", job.directory / "checkpoints"):
            sub.mkdir(parents=True, exist_ok=True)
        (run_dir / proc.LOG_FILE).touch()
        env = {"PYTHONUNBUFFERED": "1", **os.environ, **dict(job.request.get("Environment") or {}),
               **self.settings.env, **sm_env}
        try:
            record = await proc.spawn(run_dir, command, setup.code_dir, env)
        except proc.LaunchError as exc:
            raise JobFailure(f"InternalServerError: the training process could not start: {exc}") from exc
        process = proc.Supervised(run_dir, record)
        job.process = process
        limit = _max_runtime(job.request)
        next_sync = time.monotonic() + self.settings.checkpoint_sync_seconds
        while True:
            finished = process.finished()
            lines = process.read_lines(final=finished)
            if lines:
                await asyncio.to_thread(self._publish, job, lines)
            if finished:
                break
            kind = job.stop_kind
            if kind == INTERRUPTED and not process.killed:
                proc.signal_group(record, signal.SIGKILL)  # the instance is reclaimed: no grace
                process.killed = True
            elif kind is not None and process.term_sent is None:
                process.request_stop(kind, MESSAGES.get(kind, kind))
            elif kind is None and limit is not None and job.training_start is not None \
                    and time.time() - job.training_start >= limit:
                with self.lock:
                    job.stop_kind = MAX_RUNTIME
                    job.set_secondary("Stopping", "Stopping")
                process.request_stop(MAX_RUNTIME, MESSAGES[MAX_RUNTIME])
            process.kill_if_overdue(self.settings.stop_grace_seconds)
            if time.monotonic() >= next_sync:
                await asyncio.to_thread(self._sync_checkpoints, job)
                next_sync = time.monotonic() + self.settings.checkpoint_sync_seconds
            await asyncio.sleep(self.settings.tick)
        await asyncio.to_thread(self._sync_checkpoints, job)
        if job.stop_kind == INTERRUPTED:
            return job.interrupt_status, INTERRUPTED, f"{MESSAGES[INTERRUPTED]}."
        if job.stop_kind is None:
            self._secondary(job, "Uploading")
        outcome = process.outcome()
        if job.stop_kind is None and outcome.status != proc.COMPLETED:
            return "Failed", "Failed", _failure_reason(run_dir, outcome.description)
        await asyncio.to_thread(self._upload_model, job)
        if job.stop_kind == MAX_RUNTIME:
            return "Stopped", MAX_RUNTIME, None
        if job.stop_kind is not None:
            return "Stopped", "Stopped", None
        return "Completed", "Completed", None

    # ------------------------------------------------------------ S3 and CloudWatch (blocking: run in threads)

    def _prepare(self, job: EmulatedJob) -> _Setup:
        """Downloading: the code, the channels and the checkpoints."""
        hyperparameters = job.request.get("HyperParameters", {})
        program = _unquote(hyperparameters.get("sagemaker_program"))
        submit = _unquote(hyperparameters.get("sagemaker_submit_directory"))
        if not program or not submit:
            raise JobFailure("ClientError: the emulator runs script-mode jobs: the hyperparameters "
                             "sagemaker_program and sagemaker_submit_directory must name the entry point")
        if submit.startswith("s3://"):
            code_dir = job.directory / "code"
            bucket, key = _split_s3(submit)
            if key.endswith((".tar.gz", ".tgz")):
                self._download_tar(bucket, key, code_dir)
            else:
                self._download_prefix(bucket, key, code_dir)
        else:
            code_dir = Path(submit.removeprefix("file://"))
            if not code_dir.is_absolute() or not code_dir.is_dir():
                raise JobFailure(f"ClientError: sagemaker_submit_directory {submit!r} is not an absolute local "
                                 "directory nor an s3:// URI")
        path = (code_dir / program).resolve()
        if not path.is_file():
            raise JobFailure(f"AlgorithmError: ExecuteUserScriptError: the entry point {program!r} is not in "
                             f"sagemaker_submit_directory {submit!r}")
        channels: dict[str, Path] = {}
        for channel in job.request.get("InputDataConfig") or []:
            name = str(channel.get("ChannelName"))
            source = (channel.get("DataSource") or {}).get("S3DataSource") or {}
            uri = str(source.get("S3Uri", ""))
            if source.get("S3DataType", "S3Prefix") != "S3Prefix" or not uri.startswith("s3://"):
                raise JobFailure(f"ClientError: channel {name}: the emulator reads S3Prefix data sources, got {uri!r}")
            target = job.directory / "input" / "data" / name
            bucket, prefix = _split_s3(uri)
            if self._download_prefix(bucket, prefix, target) == 0:
                raise JobFailure(f"ClientError: No S3 objects found under S3 URL \"{uri}\" given in input data "
                                 f"source. Please ensure that the bucket exists in the selected region ({self.aws.region}), "
                                 "that objects exist under that S3 prefix, and that the role has access to them.")
            channels[name] = target
        checkpoint = (job.request.get("CheckpointConfig") or {}).get("S3Uri")
        if checkpoint:
            bucket, prefix = _split_s3(str(checkpoint))
            self._download_prefix(bucket, prefix, job.directory / "checkpoints", missing_ok=True)
        return _Setup(code_dir, path, program, channels)

    def _download_prefix(self, bucket: str, prefix: str, target: Path, *, missing_ok: bool = False) -> int:
        s3 = self.aws("s3")
        count = 0
        try:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    relative = item["Key"][len(prefix):].lstrip("/") or Path(item["Key"]).name
                    if item["Key"].endswith("/"):
                        continue
                    destination = (target / relative).resolve()
                    if target.resolve() not in destination.parents:
                        continue  # a key that would leave the target directory
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    s3.download_file(bucket, item["Key"], str(destination))
                    count += 1
        except Exception as exc:
            if missing_ok:
                return 0
            raise JobFailure(f"ClientError: cannot download s3://{bucket}/{prefix}: {exc}") from exc
        target.mkdir(parents=True, exist_ok=True)
        return count

    def _download_tar(self, bucket: str, key: str, target: Path) -> None:
        try:
            data = self.aws("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:
            raise JobFailure(f"ClientError: cannot download s3://{bucket}/{key}: {exc}") from exc
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            archive.extractall(target, filter="data")

    def _open_log_stream(self, job: EmulatedJob) -> None:
        logs = self.aws("logs")
        try:
            logs.create_log_group(logGroupName=LOG_GROUP)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        job.log_stream = f"{job.name}/algo-1-{int(time.time())}"
        logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=job.log_stream)

    def _publish(self, job: EmulatedJob, lines: list[str]) -> None:
        """Send the lines to CloudWatch Logs and their metric matches to CloudWatch."""
        now = time.time()
        first = max(int(now * 1000) - (len(lines) - 1), job.last_stamp + 1)
        job.last_stamp = first + len(lines) - 1
        stamps = [(first + i) / 1000.0 for i in range(len(lines))]  # distinct ms, in order, after the last batch's
        if job.log_stream is not None:
            for start in range(0, len(lines), 1000):
                events = [{"timestamp": round(t * 1000), "message": line}
                          for t, line in zip(stamps[start:start + 1000], lines[start:start + 1000])]
                self.aws("logs").put_log_events(logGroupName=LOG_GROUP, logStreamName=job.log_stream,
                                                logEvents=events)
                if self.live_tail is not None:
                    self.live_tail.publish(LOG_GROUP, job.log_stream, events)
        definitions = [(d["Name"], re.compile(d["Regex"]))
                       for d in (job.request.get("AlgorithmSpecification") or {}).get("MetricDefinitions", [])]
        data = []
        for t, line in zip(stamps, lines):
            for name, regex in definitions:
                match = regex.search(line)
                if match is None:
                    continue
                try:
                    value = float(match.group(1))
                except (IndexError, TypeError, ValueError):
                    continue
                job.final_metrics[name] = (value, t)
                data.append({
                    "MetricName": name, "Value": value, "Timestamp": dt.datetime.fromtimestamp(t, dt.UTC),
                    "Dimensions": [{"Name": "Host", "Value": f"{job.name}/algo-1"}],
                })
        lag, copies = self.faults.metric_lag_seconds, 2 if self.faults.duplicate_metrics else 1
        if not lag and copies == 1:
            self.put_metrics(data)
            return
        with self.lock:
            for datum in data:
                for copy in range(copies):
                    self._delayed.append((now + lag + copy * 2 * self.settings.tick, datum))

    def put_metrics(self, data: list[dict[str, Any]]) -> None:
        for start in range(0, len(data), 1000):
            self.aws("cloudwatch").put_metric_data(Namespace=NAMESPACE, MetricData=data[start:start + 1000])

    def flush_delayed(self) -> None:
        """Publish the delayed datapoints that are due (late arrival, duplicates)."""
        now = time.time()
        with self.lock:
            due = [datum for when, datum in self._delayed if when <= now]
            self._delayed = [(when, datum) for when, datum in self._delayed if when > now]
        if due:
            self.put_metrics(due)

    def _sync_checkpoints(self, job: EmulatedJob) -> None:
        """Upload the checkpoint files that changed since the last upload."""
        uri = (job.request.get("CheckpointConfig") or {}).get("S3Uri")
        local = job.directory / "checkpoints"
        if not uri or not local.is_dir():
            return
        bucket, prefix = _split_s3(str(uri))
        prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        for path in sorted(p for p in local.rglob("*") if p.is_file()):
            stat = path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            if job.synced.get(path) == stamp:
                continue
            self.aws("s3").put_object(Bucket=bucket, Key=prefix + path.relative_to(local).as_posix(),
                                      Body=path.read_bytes())
            job.synced[path] = stamp

    def _upload_model(self, job: EmulatedJob) -> None:
        model = job.directory / "job" / "model"
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for path in sorted(p for p in model.rglob("*") if p.is_file()):
                archive.add(path, arcname=path.relative_to(model).as_posix())
        uri = job.default_artifacts()
        bucket, key = _split_s3(uri)
        try:
            self.aws("s3").put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
        except Exception as exc:
            raise JobFailure(f"ClientError: cannot upload the model to {uri}: {exc}") from exc
        with self.lock:
            job.model_artifacts = uri


def _max_runtime(request: Mapping[str, Any]) -> float | None:
    value = (request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
    return float(value) if value is not None else None


def _failure_reason(run_dir: Path, description: str) -> str:
    failure = run_dir / "output" / "failure"
    if failure.is_file():
        return "AlgorithmError: " + failure.read_text(encoding="utf-8", errors="replace").strip()[:900]
    return "AlgorithmError: ExecuteUserScriptError: " + description.splitlines()[0] if description else \
        "AlgorithmError: the entry point failed"


def _unquote(value: Any) -> str | None:
    """A hyperparameter as the SageMaker SDK writes it (JSON-quoted) or plain."""
    if value is None:
        return None
    text = str(value)
    try:
        decoded = json.loads(text)
    except ValueError:
        return text
    return decoded if isinstance(decoded, str) else text


def _split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise JobFailure(f"ClientError: {uri!r} is not an s3:// URI")
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key
