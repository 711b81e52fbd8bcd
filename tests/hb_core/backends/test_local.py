"""The local backend with real processes: the tiny scripts in ``scripts/`` are the training jobs.

Every wait is bounded in time; no assertion depends on how long anything took.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from hb_core.backends import process as proc
from hb_core.backends.clock import RealClock
from hb_core.backends.local import LocalBackend
from hb_core.backends.stores import LocalFileStore, MemoryStore
from hb_core.config import MetricDefinition, TuningConfig
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
from hb_core.naming import JOB_NAME_PATTERN
from hb_core.runner import Tuner
from hb_core.state import TrialStatus, TuningStatus
from tests.helpers import collect as poll_until

SCRIPTS = Path(__file__).parent / "scripts"
TERMINAL = ("TrialCompleted", "TrialFailed", "TrialStopped")
METRICS = [
    {"Name": "score", "Regex": r"score=([0-9.]+)"},
    {"Name": "loss", "Regex": r"loss=([0-9.]+)"},
    {"Name": "epoch", "Regex": r"epoch=([0-9]+)"},
]


def request(
    program: str = "epochs.py",
    *,
    name: str = "local-test",
    submit: str | None = None,
    static: dict[str, str] | None = None,
    parallel: int = 2,
    max_jobs: int = 8,
    max_resource: int = 9,
    max_runtime: int | None = None,
    resource_metric: str | None = None,
    input_data: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A CreateHyperParameterTuningJob body whose trials run ``program`` from ``scripts/``."""
    hyperband: dict[str, Any] = {"MinResource": 1, "MaxResource": max_resource}
    if resource_metric:
        hyperband["ResourceMetricName"] = resource_metric
    definition: dict[str, Any] = {
        "StaticHyperParameters": {
            "sagemaker_program": program,
            "sagemaker_submit_directory": submit if submit is not None else str(SCRIPTS),
            "sagemaker_region": "us-east-1",
            "epochs": str(max_resource),
            **(static or {}),
        },
        "AlgorithmSpecification": {"TrainingImage": "local", "TrainingInputMode": "File", "MetricDefinitions": METRICS},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime} if max_runtime else {},
    }
    if input_data is not None:
        definition["InputDataConfig"] = input_data
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Hyperband",
            "StrategyConfig": {"HyperbandStrategyConfig": hyperband},
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "score"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": max_jobs, "MaxParallelTrainingJobs": parallel},
            "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "1"}]},
            "TrainingJobEarlyStoppingType": "Off",
            "RandomSeed": 7,
        },
        "TrainingJobDefinition": definition,
    }


class TickClock:
    """A clock that advances one second per reading: shows that events carry the clock's time."""

    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> float:
        self.t += 1.0
        return self.t

    async def sleep_until(self, when: float) -> None:
        await asyncio.sleep(0)


def backend(tmp_path: Path, body: dict[str, Any] | None = None, **kwargs: Any) -> LocalBackend:
    config = TuningConfig.from_dict(body or request())
    kwargs.setdefault("tail_interval", 0.02)
    kwargs.setdefault("env", {"HB_TEST_LAUNCHES": str(tmp_path / "launches.log")})
    return LocalBackend(config, tmp_path / "job", job_name=config.name or "job", base_dir=tmp_path, **kwargs)


async def collect(b: Any, done: Callable[[list[Event]], bool], timeout: float = 20.0) -> list[Event]:
    """Poll until ``done(events)``; fail after ``timeout`` seconds."""
    return await poll_until(b, done, timeout, interval=0.02)


def ended(events: list[Event]) -> bool:
    return any(e.kind in TERMINAL for e in events)


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def supervisor_pids(root: Path) -> list[int]:
    """The supervisors recorded under ``root`` (a ``pid.json`` being written is skipped)."""
    records = (proc.read_json(path) for path in root.rglob(proc.PID_FILE))
    return [int(record["pid"]) for record in records if record is not None]


def wait_dead(pids: list[int], timeout: float = 5.0) -> bool:
    """True once none of ``pids`` runs; a SIGKILLed process may take a moment to be gone."""
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    return not any(alive(pid) for pid in pids)


def launches(tmp_path: Path) -> list[str]:
    path = tmp_path / "launches.log"
    return path.read_text().split() if path.exists() else []


@pytest.fixture(autouse=True)
def no_process_left(tmp_path: Path) -> Iterator[None]:
    """Kill whatever a failing test left running (a passing test leaves nothing: it checks)."""
    yield
    for path in tmp_path.rglob(proc.PID_FILE):
        record = proc.read_json(path)
        with contextlib.suppress(OSError):
            if record is not None and proc.probe(record) != proc.GONE:
                os.killpg(int(record["pid"]), signal.SIGKILL)


# ---------------------------------------------------------------- one job


async def test_launch_runs_the_entry_point_in_script_mode(tmp_path: Path) -> None:
    train = tmp_path / "data" / "train"
    train.mkdir(parents=True)
    channels = [
        {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": "data/train", "S3DataType": "S3Prefix"}}},
        {"ChannelName": "remote", "DataSource": {"S3DataSource": {"S3Uri": "s3://bucket/x", "S3DataType": "S3Prefix"}}},
    ]
    body = request(static={"sleep": "0.01"}, input_data=channels)
    body["TrainingJobDefinition"]["Environment"] = {"HB_SETTING": "on"}
    b = backend(tmp_path, body, clock=TickClock())
    await b.launch(Launch("0000", 1, {"x": 0.3}, 3))
    events = await collect(b, ended)
    await b.close()

    name = b.training_job_name("0000", 1)
    assert name == "local-test-0000-1"
    assert events[0] == TrialStarted("0000", 1, events[0].time, job_name=name)
    metrics = [e for e in events if isinstance(e, MetricReported)]
    assert [m.seq for m in metrics] == [1, 2, 3] and [m.resource for m in metrics] == [None] * 3
    assert [m.value for m in metrics] == pytest.approx([0.5, 0.75, 0.875])
    times = [e.time for e in events]
    assert times == sorted(times) and all(t > 1000 and t == int(t) for t in times)  # the TickClock's readings
    assert events[-1].kind == "TrialCompleted" and cast(TrialCompleted, events[-1]).billable_seconds is not None
    assert b.metrics("0000") == {"score": 0.875, "loss": 0.125, "epoch": 3.0}

    attempt = tmp_path / "job" / "trials" / "0000" / "1"
    received = json.loads((attempt / "output" / "data" / "received.json").read_text())
    env = received["env"]
    assert received["argv"] == ["--epochs", "3", "--sleep", "0.01", "-x", "0.3"]  # sorted; no sagemaker_*
    assert received["cwd"] == str(SCRIPTS.resolve())
    assert json.loads(env["SM_HPS"]) == {"epochs": 3, "sleep": 0.01, "x": 0.3}
    assert (env["SM_HP_X"], env["SM_HP_EPOCHS"]) == ("0.3", "3") and "SM_HP_SAGEMAKER_PROGRAM" not in env
    assert env["SM_CHANNEL_TRAIN"] == str(train) and json.loads(env["SM_CHANNELS"]) == ["train"]
    assert "SM_CHANNEL_REMOTE" not in env
    assert env["SM_MODEL_DIR"] == str(attempt / "model") and (attempt / "model" / "model.txt").exists()
    assert env["SM_OUTPUT_DATA_DIR"] == str(attempt / "output" / "data")
    assert env["SM_CHECKPOINT_DIR"] == str(attempt.parent / "checkpoints")
    assert (env["SM_CURRENT_HOST"], json.loads(env["SM_HOSTS"]), env["SM_NUM_GPUS"]) == ("algo-1", ["algo-1"], "0")
    assert int(env["SM_NUM_CPUS"]) >= 1 and env["TRAINING_JOB_NAME"] == name and env["PYTHONUNBUFFERED"] == "1"
    assert env["HB_SETTING"] == "on" and env["HB_TEST_LAUNCHES"]  # the definition's Environment, the extra env
    training_env = json.loads(env["SM_TRAINING_ENV"])
    assert training_env["job_name"] == name and training_env["hyperparameters"]["x"] == 0.3
    assert training_env["channel_input_dirs"] == {"train": str(train)}
    assert training_env["model_dir"] == str(attempt / "model")

    log = (attempt / "output.log").read_text()
    assert "starting at epoch 1" in log and "epoch=3 score=0.875000" in log and "done" in log  # stderr and stdout
    job = json.loads((attempt / "job.json").read_text())
    assert job["job_name"] == name and job["hyperparameters"]["sagemaker_program"] == "epochs.py"
    assert job["hyperparameters"]["epochs"] == "3" and job["command"][1].endswith("epochs.py")
    assert "start_time" in job
    assert launches(tmp_path) == [name]


async def test_resume_numbers_values_from_from_resource_and_reads_the_resource_metric(tmp_path: Path) -> None:
    b = backend(tmp_path, request(resource_metric="epoch"))
    await b.launch(Launch("0001", 1, {"x": 0.5}, 2))
    first = await collect(b, ended)
    await b.launch(Resume("0001", 2, {"x": 0.5}, from_resource=2, to_resource=4))
    second = await collect(b, ended)
    await b.close()
    assert [(m.seq, m.resource) for m in first if isinstance(m, MetricReported)] == [(1, 1), (2, 2)]
    resumed = [m for m in second if isinstance(m, MetricReported)]
    assert [(m.attempt, m.seq, m.resource) for m in resumed] == [(2, 3, 3), (2, 4, 4)]  # from the shared checkpoint
    assert second[-1].kind == "TrialCompleted"
    assert json.loads((tmp_path / "job/trials/0001/2/job.json").read_text())["from_resource"] == 2


async def test_resume_without_resource_metric_still_offsets_seq(tmp_path: Path) -> None:
    b = backend(tmp_path)
    (tmp_path / "job/trials/0002/checkpoints").mkdir(parents=True)
    (tmp_path / "job/trials/0002/checkpoints/epoch.txt").write_text("5")
    await b.launch(Resume("0002", 3, {"x": 0.5}, from_resource=5, to_resource=7))
    events = await collect(b, ended)
    await b.close()
    assert [(m.seq, m.resource) for m in events if isinstance(m, MetricReported)] == [(6, None), (7, None)]


# ---------------------------------------------------------------- ending jobs


async def test_stop_ends_the_whole_process_group(tmp_path: Path) -> None:
    b = backend(tmp_path, request("forever.py"))
    await b.launch(Launch("0000", 1, {"x": 0.1}, 9))
    await collect(b, lambda es: any(isinstance(e, MetricReported) for e in es))
    attempt = tmp_path / "job/trials/0000/1"
    supervisor = supervisor_pids(attempt)[0]
    grandchild = int((attempt / "output/data/grandchild.pid").read_text())
    assert alive(supervisor) and alive(grandchild)

    await b.stop("0000", 1, "rank 3 of 3 at rung 1")
    events = await collect(b, ended)
    await b.close()
    assert events[-1] == TrialStopped("0000", 1, events[-1].time,
                                      billable_seconds=cast(TrialStopped, events[-1]).billable_seconds)
    exit_record = json.loads((attempt / proc.EXIT_FILE).read_text())
    assert exit_record["returncode"] == -signal.SIGTERM  # the supervisor outlived the SIGTERM to record it
    assert json.loads((attempt / proc.STOP_FILE).read_text())["reason"] == "rank 3 of 3 at rung 1"
    assert wait_dead([supervisor, grandchild, exit_record["child_pid"]])
    await b.stop("0000", 1, "again")  # stopping a job that ended is not an error
    assert await b.poll() == []


async def test_a_job_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    b = backend(tmp_path, request("forever.py", static={"ignore_term": "1"}), stop_grace_seconds=0.3)
    await b.launch(Launch("0000", 1, {"x": 0.1}, 9))
    await collect(b, lambda es: any(isinstance(e, MetricReported) for e in es))
    attempt = tmp_path / "job/trials/0000/1"
    grandchild = int((attempt / "output/data/grandchild.pid").read_text())
    await b.stop("0000", 1, "stop")
    events = await collect(b, ended)
    await b.close()
    assert events[-1].kind == "TrialStopped"
    assert not (attempt / proc.EXIT_FILE).exists()  # SIGKILL took the supervisor too
    assert wait_dead([*supervisor_pids(attempt), grandchild])


async def test_max_runtime_kills_the_job_and_fails_the_trial(tmp_path: Path) -> None:
    b = backend(tmp_path, request("forever.py", max_runtime=1), stop_grace_seconds=0.5)
    await b.launch(Launch("0000", 1, {"x": 0.1}, 9))
    events = await collect(b, ended)
    await b.close()
    failed = events[-1]
    assert isinstance(failed, TrialFailed) and not failed.retriable
    assert failed.reason.startswith("MaxRuntimeExceeded") and "MaxRuntimeInSeconds=1" in failed.reason
    assert wait_dead(supervisor_pids(tmp_path / "job"))


async def test_a_failing_script_reports_its_exit_code_and_the_log_tail(tmp_path: Path) -> None:
    b = backend(tmp_path, request("fail.py"))
    await b.launch(Launch("0000", 1, {"x": 0.1}, 9))
    events = await collect(b, ended)
    await b.close()
    assert [e.kind for e in events] == ["TrialStarted", "MetricReported", "TrialFailed"]
    failed = events[-1]
    assert isinstance(failed, TrialFailed) and not failed.retriable
    assert failed.reason.startswith("exit code 3; failure: ValueError: bad hyperparameter")
    assert failed.reason.splitlines()[-20:] == [f"line {i}" for i in range(11, 31)]  # the last 20 lines
    assert "line 10" not in failed.reason.splitlines()


async def test_an_entry_point_that_cannot_start_fails_the_trial(tmp_path: Path) -> None:
    script = tmp_path / "code" / "train"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\necho never\n")  # not executable
    b = backend(tmp_path, request("train", submit="code"))
    await b.launch(Launch("0000", 1, {"x": 0.1}, 9))
    events = await collect(b, ended)
    await b.close()
    assert isinstance(events[-1], TrialFailed) and "could not start" in events[-1].reason


# ---------------------------------------------------------------- names, paths, limits, config


@pytest.mark.parametrize("trial_id", ["..", "../x", "/tmp/x", "a/b", "", ".hidden", "a\\b", "x" * 200])
async def test_trial_ids_that_could_leave_the_job_dir_are_rejected(tmp_path: Path, trial_id: str) -> None:
    b = backend(tmp_path)
    with pytest.raises(BackendError, match="trial_id"):
        await b.launch(Launch(trial_id, 1, {"x": 0.1}, 1))
    with pytest.raises(BackendError, match="trial_id"):
        b.attempt_dir(trial_id, 1)
    assert not (tmp_path / "job").exists() and not (tmp_path / "x").exists()


@pytest.mark.parametrize("attempt", [0, -1, True])
def test_attempts_must_be_positive_ints(tmp_path: Path, attempt: int) -> None:
    with pytest.raises(BackendError, match="attempt"):
        backend(tmp_path).attempt_dir("0000", attempt)


def test_a_symlinked_trial_dir_pointing_outside_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "job" / "trials").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "job" / "trials" / "evil").symlink_to(tmp_path / "outside")
    with pytest.raises(BackendError, match="stays inside"):
        backend(tmp_path).attempt_dir("evil", 1)


def test_job_names_are_deterministic_valid_and_distinct(tmp_path: Path) -> None:
    config = TuningConfig.from_dict(request())
    a = LocalBackend(config, tmp_path / "a", job_name="x" * 32)  # the longest tuning job name AMT allows
    b = LocalBackend(config, tmp_path / "b", job_name="x" * 32)
    keys = [(t, n) for t in ("0000", "0001", "12345") for n in (1, 2, 10)]
    names = {a.training_job_name(*key) for key in keys}
    assert len(names) == 9 and names == {b.training_job_name(*key) for key in keys}
    assert all(len(n) <= 63 and JOB_NAME_PATTERN.fullmatch(n) for n in names)
    assert a.training_job_name("0007", 2) == "x" * 32 + "-0007-2"
    with pytest.raises(ConfigError, match="TrainingJobName"):
        LocalBackend(config, tmp_path / "c", job_name="not_a valid name")
    with pytest.raises(ConfigError, match="TrainingJobName"):
        LocalBackend(config, tmp_path / "c", job_name="x" * 60)


async def test_launch_is_idempotent_and_a_new_backend_adopts_or_reads_the_result(tmp_path: Path) -> None:
    action = Launch("0000", 1, {"x": 0.2}, 4)
    first = backend(tmp_path, request(static={"sleep": "0.1"}))
    await first.launch(action)
    await first.launch(action)  # the same attempt again: nothing new
    await first.close()
    second = backend(tmp_path, request(static={"sleep": "0.1"}))  # a new controller while the job runs
    await second.launch(action)
    events = await collect(second, ended)
    await second.close()
    assert events[0].kind == "TrialStarted" and events[-1].kind == "TrialCompleted"
    assert [m.seq for m in events if isinstance(m, MetricReported)] == [1, 2, 3, 4]
    third = backend(tmp_path, request(static={"sleep": "0.1"}))  # after it ended: read the result
    await third.launch(action)
    replay = await collect(third, ended)
    await third.close()
    assert replay[-1].kind == "TrialCompleted"
    assert launches(tmp_path) == ["local-test-0000-1"]  # one process, ever
    assert len(list((tmp_path / "job").rglob("job.json"))) == 1


async def test_more_jobs_than_max_parallel_is_refused(tmp_path: Path) -> None:
    b = backend(tmp_path, request("forever.py", parallel=1), stop_grace_seconds=0.5)
    await b.launch(Launch("0000", 1, {"x": 0.1}, 9))
    with pytest.raises(BackendError, match="MaxParallelTrainingJobs=1"):
        await b.launch(Launch("0001", 1, {"x": 0.2}, 9))
    assert not (tmp_path / "job/trials/0001").exists()
    await b.stop_all("test over")
    events = await b.poll()
    await b.close()
    assert [e.kind for e in events if e.kind in TERMINAL] == ["TrialStopped"]
    assert b.running() == [] and wait_dead(supervisor_pids(tmp_path / "job"))


def _with_definition(config: TuningConfig, **changes: Any) -> TuningConfig:
    assert config.training_job_definition is not None
    definition = dataclasses.replace(config.training_job_definition, **changes)
    return dataclasses.replace(config, training_job_definition=definition)


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (request(submit="s3://bucket/code/sourcedir.tar.gz"), "StaticHyperParameters.sagemaker_submit_directory"),
        (request(submit="sourcedir.tar.gz"), "StaticHyperParameters.sagemaker_submit_directory"),
        (request(submit="no-such-dir"), "StaticHyperParameters.sagemaker_submit_directory"),
        (request("missing.py"), "StaticHyperParameters.sagemaker_program"),
        (request(input_data=[{"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": "file://nowhere"}}}]),
         "InputDataConfig[0].DataSource.S3DataSource.S3Uri"),
        (request(input_data=[{"ChannelName": "bad name", "DataSource": {}}]), "InputDataConfig[0].ChannelName"),
        ({**request(), "TrainingJobDefinition": {**request()["TrainingJobDefinition"], "Environment": {"A": 1}}},
         "Environment"),
    ],
)
def test_config_errors_name_the_field(tmp_path: Path, body: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as error:
        backend(tmp_path, body)
    assert error.value.path == f"TrainingJobDefinition.{path}"


def test_config_errors_for_what_the_request_checks_cannot_see(tmp_path: Path) -> None:
    config = TuningConfig.from_dict(request())
    no_group = _with_definition(config, metric_definitions=(MetricDefinition("score", "score=[0-9.]+"),))
    with pytest.raises(ConfigError, match=r"MetricDefinitions\[0\]\.Regex.*capturing group"):
        LocalBackend(no_group, tmp_path, job_name="j")
    static = {k: v for k, v in config.training_job_definition.static_hyperparameters.items()  # type: ignore[union-attr]
              if k != "sagemaker_program"}
    with pytest.raises(ConfigError, match="sagemaker_program"):
        LocalBackend(_with_definition(config, static_hyperparameters=static), tmp_path, job_name="j")
    with pytest.raises(ConfigError, match="TrainingJobDefinition"):
        LocalBackend(dataclasses.replace(config, training_job_definition=None), tmp_path, job_name="j")


# ---------------------------------------------------------------- restarts


async def test_reconcile_adopts_a_running_job_and_reports_only_what_the_state_lacks(tmp_path: Path) -> None:
    body = request("forever.py")
    first = backend(tmp_path, body)
    await first.launch(Launch("0000", 1, {"x": 0.1}, 9))
    await collect(first, lambda es: any(isinstance(e, MetricReported) for e in es))
    await first.close()  # the controller goes away; the job does not
    config = TuningConfig.from_dict(body)
    state, _ = decide(new_state(config, now=0.0), [], 0.0)
    trials = list(state.trials)
    trials[0] = dataclasses.replace(trials[0], status=TrialStatus.IN_PROGRESS, points=((1, 0.5, 1.0),))
    state = state.with_changes(trials=tuple(trials))

    second = backend(tmp_path, body)
    events = await second.reconcile(state)
    assert [(e.kind, e.trial_id) for e in events] == [("TrialStarted", "0000")]  # its one value is known already
    assert events[0].job_name == "local-test-0000-1"  # type: ignore[union-attr]
    assert second.running() == [("0000", 1)] and alive(supervisor_pids(tmp_path / "job")[0])
    await second.stop("0000", 1, "rank 2 of 2 at rung 1")
    assert (await collect(second, ended))[-1].kind == "TrialStopped"
    await second.close()
    assert launches(tmp_path) == ["local-test-0000-1"] and wait_dead(supervisor_pids(tmp_path / "job"))


async def test_reconcile_handles_jobs_that_never_started_or_were_lost(tmp_path: Path) -> None:
    config = TuningConfig.from_dict(request(parallel=3, static={"sleep": "0.01"}))
    state, _ = decide(new_state(config, now=0.0), [], 0.0)  # three Pending trials
    trials = list(state.trials)
    trials[1] = dataclasses.replace(trials[1], status=TrialStatus.IN_PROGRESS)
    trials[2] = dataclasses.replace(trials[2], status=TrialStatus.STOPPING)
    state = state.with_changes(trials=tuple(trials))
    crashed = tmp_path / "job/trials/0000/1"  # a launch that died between mkdir and spawn
    crashed.mkdir(parents=True)
    (crashed / "job.json").write_text("{}")
    b = backend(tmp_path, request(parallel=3, static={"sleep": "0.01"}))
    events = await b.reconcile(state)
    assert [(e.kind, e.trial_id) for e in events] == [("TrialFailed", "0001"), ("TrialStopped", "0002")]
    assert isinstance(events[0], TrialFailed) and events[0].retriable and "lost" in events[0].reason
    await b.launch(Launch("0000", 1, dict(trials[0].hyperparameters), 2))  # the runner's reissued launch
    assert (await collect(b, ended))[-1].kind == "TrialCompleted"
    await b.close()
    assert launches(tmp_path) == ["local-test-0000-1"]


async def test_two_controllers_launching_one_attempt_start_one_process(tmp_path: Path) -> None:
    action = Launch("0000", 1, {"x": 0.2}, 2)
    a, b = backend(tmp_path), backend(tmp_path)
    await asyncio.gather(a.launch(action), b.launch(action))  # the pid.json claim admits one supervisor
    for each in (a, b):
        assert (await collect(each, ended))[-1].kind == "TrialCompleted"
        await each.close()
    assert launches(tmp_path) == ["local-test-0000-1"]


async def test_stopping_an_attempt_whose_launch_never_started_blocks_that_launch(tmp_path: Path) -> None:
    b = backend(tmp_path)
    directory = tmp_path / "job/trials/0000/1"  # made by a controller whose launcher has not claimed it yet
    directory.mkdir(parents=True)
    await b.stop("0000", 1, "tuning job is stopping")
    assert [e.kind for e in await b.poll()] == ["TrialStopped"]
    record = await proc.spawn(directory, [sys.executable, str(SCRIPTS / "epochs.py"), "--epochs", "1"], SCRIPTS, {})
    assert "pid" not in record  # the late launcher lost the claim: nothing ran
    assert not (directory / proc.LOG_FILE).exists() and launches(tmp_path) == []
    again = backend(tmp_path)
    await again.launch(Launch("0000", 1, {"x": 0.5}, 1))  # a reissued launch adopts the given-up attempt
    assert [e.kind for e in await collect(again, ended)] == ["TrialStarted", "TrialStopped"]
    await again.close()
    await b.close()


async def test_a_new_controller_finishes_a_cancelled_tuning_job(tmp_path: Path) -> None:
    body = request(static={"sleep": "0.05"}, max_jobs=6, parallel=2)
    config = TuningConfig.from_dict(body)
    env = {"HB_TEST_LAUNCHES": str(tmp_path / "launches.log")}
    store = LocalFileStore(tmp_path / "job")

    def tuner() -> tuple[Tuner, LocalBackend]:
        b = LocalBackend(config, tmp_path / "job", job_name="local-test", env=env, tail_interval=0.02)
        return Tuner(config, b, store, RealClock(), job_name="local-test", poll_interval=0.05), b

    first, first_backend = tuner()
    task = asyncio.create_task(first.run())
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        state = await store.load()
        if state is not None and any(t.points for t in state.trials) and len(state.trials) >= 3:
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the first controller never got going")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await first_backend.close()  # the controller is gone; its jobs are not

    second, second_backend = tuner()
    final = await asyncio.wait_for(second.run(), timeout=30)
    await second_backend.close()
    assert final.status is TuningStatus.COMPLETED and len(final.trials) == 6
    assert all(t.status.ended for t in final.trials)
    _assert_each_attempt_launched_once(tmp_path, final)


async def test_end_to_end_hyperband_on_local_processes(tmp_path: Path) -> None:
    config = TuningConfig.from_dict(request(static={"sleep": "0.01"}, max_jobs=8, parallel=2, max_resource=9))
    b = LocalBackend(config, tmp_path / "job", job_name="e2e", env={"HB_TEST_LAUNCHES": str(tmp_path / "launches.log")},
                     tail_interval=0.02)
    tuner = Tuner(config, b, MemoryStore(serialize=True), RealClock(), job_name="e2e", poll_interval=0.05)
    state = await asyncio.wait_for(tuner.run(), timeout=40)
    await b.close()
    assert state.status is TuningStatus.COMPLETED and len(state.trials) == 8
    best_id = (state.finish or dict[str, Any]())["best_trial_id"]
    quality = {t.trial_id: 1 - (float(t.hyperparameters["x"]) - 0.3) ** 2 for t in state.trials}
    assert best_id == max(quality, key=quality.__getitem__)  # rankings agree at every rung: the best survives
    best = state.trial(best_id)
    assert best is not None and best.status is TrialStatus.COMPLETED and best.resource == 9
    assert (b.model_dir(best_id, best.attempt) / "model.txt").read_text() == f"x={best.hyperparameters['x']}\n"
    _assert_each_attempt_launched_once(tmp_path, state)


async def test_hb_tune_run_survives_a_sigkilled_controller(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    shutil.copy(SCRIPTS / "epochs.py", code / "epochs.py")
    tuning = tmp_path / "tuning.json"
    tuning.write_text(json.dumps(request(submit="code", static={"sleep": "0.1"}, max_jobs=6, parallel=2)))
    job_dir = tmp_path / "job"
    command = [sys.executable, "-m", "hb_core.cli", "run", str(tuning), "--backend", "local",
               "--job-dir", str(job_dir), "--poll-interval", "0.1"]
    env = {**os.environ, "HB_TEST_LAUNCHES": str(tmp_path / "launches.log")}
    controller = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = proc.read_json(job_dir / "state.json")
            if state and len(state["trials"]) >= 2 and len(supervisor_pids(job_dir)) >= 2:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the controller never launched two trials")
    finally:
        controller.send_signal(signal.SIGKILL)
        controller.wait(timeout=10)
    for pid_file in job_dir.rglob(proc.PID_FILE):  # the controller's death took no job with it
        record = proc.read_json(pid_file)
        assert record is not None and (alive(record["pid"]) or (pid_file.parent / proc.EXIT_FILE).exists())

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert rerun.returncode == 0, rerun.stderr
    assert "reattached" in rerun.stderr and "best trial" in rerun.stdout and "model" in rerun.stdout
    state_final = await LocalFileStore(job_dir).load()
    assert state_final is not None and state_final.status is TuningStatus.COMPLETED
    assert len(state_final.trials) == 6 and all(t.status.ended for t in state_final.trials)
    _assert_each_attempt_launched_once(tmp_path, state_final)


async def test_hb_tune_run_stops_the_running_trials_on_ctrl_c(tmp_path: Path) -> None:
    tuning = tmp_path / "tuning.json"
    tuning.write_text(json.dumps(request("forever.py", max_jobs=4, parallel=2)))
    job_dir = tmp_path / "job"
    command = [sys.executable, "-m", "hb_core.cli", "run", str(tuning), "--job-dir", str(job_dir), "--poll-interval", "0.1"]
    controller = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while len([p for p in supervisor_pids(job_dir) if alive(p)]) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert len(supervisor_pids(job_dir)) == 2, "the controller never launched two trials"
    finally:
        controller.send_signal(signal.SIGINT)
        _, err = controller.communicate(timeout=30)
    assert controller.returncode == 130, err
    assert "interrupted" in err
    assert wait_dead(supervisor_pids(job_dir)), err
    reasons = [json.loads(p.read_text())["reason"] for p in job_dir.rglob(proc.STOP_FILE)]
    assert reasons == ["tuning job is stopping: the tuning job was interrupted (Ctrl-C)"] * 2
    state = await LocalFileStore(job_dir).load()  # Tuner.abort, as on SageMaker: the tuning job ended
    assert state is not None and state.status is TuningStatus.FAILED and not state.active


def _assert_each_attempt_launched_once(tmp_path: Path, state: Any) -> None:
    """Every (trial, attempt) ran exactly once, every trial ran, and nothing is left running."""
    names = launches(tmp_path)
    assert len(names) == len(set(names)), f"a job was launched twice: {names}"
    jobs = sorted(json.loads(p.read_text())["job_name"] for p in (tmp_path / "job").rglob("job.json"))
    assert sorted(names) == jobs
    assert {n.rsplit("-", 2)[1] for n in names} == {t.trial_id for t in state.trials}
    exits = (proc.read_json(p) for p in (tmp_path / "job").rglob(proc.EXIT_FILE))
    children = [int(e["child_pid"]) for e in exits if e and "child_pid" in e]
    assert wait_dead(supervisor_pids(tmp_path / "job") + children)


async def test_the_state_counts_the_epochs_trained_after_a_stop_as_the_logs_show(tmp_path: Path) -> None:
    """A controller that rounds slowly lets stopped trials train past their rung: the accounting counts it."""
    import re

    from hb_core.report import summary

    config = TuningConfig.from_dict(request(static={"sleep": "0.05"}, max_jobs=8, parallel=2, max_resource=27))
    b = LocalBackend(config, tmp_path / "job", job_name="acct", tail_interval=0.02)
    tuner = Tuner(config, b, MemoryStore(serialize=True), RealClock(), job_name="acct", poll_interval=0.4)
    state = await asyncio.wait_for(tuner.run(), timeout=60)
    await b.close()
    logged = {}
    for trial in state.trials:
        text = (b.attempt_dir(trial.trial_id, trial.attempt) / proc.LOG_FILE).read_text()
        logged[trial.trial_id] = max((int(m) for m in re.findall(r"epoch=(\d+)", text)), default=0)
    assert {t.trial_id: t.resource for t in state.trials} == logged
    s = summary(state)
    assert s["total_resource"] == sum(logged.values()) >= s["judged_resource"]
    assert s["resource_saved_fraction"] == pytest.approx(1 - sum(logged.values()) / (8 * 27))
