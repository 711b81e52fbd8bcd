"""examples/resnet/tuning.json tuned for real on the CPU: local processes, and SageMaker (the emulator over moto).

The request is the file itself with a smaller budget (MaxResource 3, four
trials, two in parallel), the promotion variant (a promoted trial is a new
job that resumes from the trial's checkpoint), a tiny synthetic data set and
one torch thread per trial (the request's ``Environment``). The search space,
the image, the instance type (ml.g4dn.xlarge) and the metric definitions are
the file's. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import copy
import io
import json
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hb_core.backends import process as proc
from hb_core.backends.clock import RealClock
from hb_core.backends.s3_store import S3Store
from hb_core.backends.sagemaker import SageMakerBackend
from hb_core.backends.stores import LocalFileStore
from hb_core.config import TuningConfig
from hb_core.runner import Tuner
from hb_core.state import TrialStatus, TuningState, TuningStatus
from hb_emulator import Emulator
from tests import aws_fixtures
from tests.aws_fixtures import ROLE, aio_clients, client, make_bucket
from tests.examples.test_resnet_train import EXAMPLE, LINE_RE, TUNING, load_example, torch

moto_server, aws, emulator = aws_fixtures.moto_server, aws_fixtures.aws, aws_fixtures.emulator  # shared fixtures

BUCKET = "resnet"
JOBS, PARALLEL, MAX_RESOURCE = 4, 2, 3


def small_request(name: str) -> dict[str, Any]:
    """examples/resnet/tuning.json, with a budget a CPU runs in seconds and the promotion variant."""
    body: dict[str, Any] = copy.deepcopy(json.loads(TUNING.read_text()))
    body["HyperParameterTuningJobName"] = name
    cfg = body["HyperParameterTuningJobConfig"]
    cfg["StrategyConfig"]["HyperbandStrategyConfig"].update(MinResource=1, MaxResource=MAX_RESOURCE,
                                                             Variant="Promotion")
    cfg["ResourceLimits"].update(MaxNumberOfTrainingJobs=JOBS, MaxParallelTrainingJobs=PARALLEL)
    definition = body["TrainingJobDefinition"]
    definition["StaticHyperParameters"]["epochs"] = str(MAX_RESOURCE)
    definition["Environment"] = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    assert definition["ResourceConfig"]["InstanceType"] == "ml.g4dn.xlarge"
    return body


@pytest.fixture(scope="module")
def channels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    written: dict[str, str] = load_example("prepare_data").write_synthetic(
        str(tmp_path_factory.mktemp("resnet-tune-data")), 64, 32, seed=2)
    return written


def assert_promoted_trials_resumed(state: TuningState, log_of: Callable[[str, int], str]) -> list[str]:
    """Every promoted trial's later jobs continued from its checkpoint; returns the promoted trial ids."""
    promoted = [t for t in state.trials if t.attempt > 1]
    assert promoted, "no trial was promoted"
    for trial in promoted:
        assert [r for r, _, _ in trial.points] == list(range(1, trial.resource + 1))  # one point per epoch, no gap
        for attempt in range(2, trial.attempt + 1):
            log = log_of(trial.trial_id, attempt)
            assert "resumed from" in log, log
            epochs = [int(m.group(1)) for m in map(LINE_RE.match, log.splitlines()) if m]
            assert epochs and epochs[0] > 1, log  # continues after the epochs it had, never from epoch 1
    return [t.trial_id for t in promoted]


# ---------------------------------------------------------------- local processes, as a user runs them


def test_hb_tune_runs_the_resnet_request_on_local_processes_with_promotion(tmp_path: Path,
                                                                          channels: dict[str, str]) -> None:
    body = small_request("resnet-local")
    definition = body["TrainingJobDefinition"]
    definition["StaticHyperParameters"]["sagemaker_submit_directory"] = str(EXAMPLE)
    for channel in definition["InputDataConfig"]:  # local paths instead of S3 prefixes
        channel["DataSource"]["S3DataSource"]["S3Uri"] = channels[channel["ChannelName"]]
    path = tmp_path / "tuning.json"
    path.write_text(json.dumps(body))
    job_dir = tmp_path / "job"
    run = subprocess.run([sys.executable, "-m", "hb_core.cli", "run", str(path), "--job-dir", str(job_dir),
                          "--poll-interval", "0.2"], capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "best trial" in run.stdout
    state = asyncio.run(LocalFileStore(job_dir).load())
    assert state is not None and state.status is TuningStatus.COMPLETED and len(state.trials) == JOBS
    assert not [t for t in state.trials if t.status is TrialStatus.FAILED]

    def log_of(trial_id: str, attempt: int) -> str:
        return (job_dir / "trials" / trial_id / str(attempt) / proc.LOG_FILE).read_text()

    for trial_id in assert_promoted_trials_resumed(state, log_of):
        ckpt = torch.load(job_dir / "trials" / trial_id / "checkpoints" / "checkpoint.pt", map_location="cpu",
                          weights_only=True)
        assert ckpt["epoch"] == state.trial(trial_id).resource  # type: ignore[union-attr]
    best = state.trial(str((state.finish or dict[str, Any]())["best_trial_id"]))
    assert best is not None and best.resource == MAX_RESOURCE
    assert (job_dir / "trials" / best.trial_id / str(best.attempt) / "model" / "model.pt").is_file()
    assert f"trials/{best.trial_id}/{best.attempt}/model" in run.stdout


# ---------------------------------------------------------------- SageMaker: the emulator over moto


def _upload(aws_url: str, channels: dict[str, str]) -> str:
    """The code as SageMaker's SDK packages it (sourcedir.tar.gz) and the channels under s3://BUCKET/; the code URI."""
    s3 = client("s3", aws_url)
    make_bucket(aws_url, BUCKET)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name in ("train.py", "prepare_data.py"):
            archive.add(EXAMPLE / name, arcname=name)
    s3.put_object(Bucket=BUCKET, Key="code/sourcedir.tar.gz", Body=buffer.getvalue())
    for channel, directory in channels.items():
        for file in sorted(Path(directory).iterdir()):
            s3.put_object(Bucket=BUCKET, Key=f"cifar10/{channel}/{file.name}", Body=file.read_bytes())
    return f"s3://{BUCKET}/code/sourcedir.tar.gz"


def test_the_g4dn_request_runs_end_to_end_on_the_sagemaker_backend(emulator: Callable[..., Emulator], aws: str,
                                                                   channels: dict[str, str]) -> None:
    body = small_request("resnet-sm")
    definition = body["TrainingJobDefinition"]
    definition["StaticHyperParameters"]["sagemaker_submit_directory"] = _upload(aws, channels)
    definition["RoleArn"] = ROLE
    for channel in definition["InputDataConfig"]:  # the file's layout, in the test bucket
        channel["DataSource"]["S3DataSource"]["S3Uri"] = f"s3://{BUCKET}/cifar10/{channel['ChannelName']}/"
    definition["OutputDataConfig"]["S3OutputPath"] = f"s3://{BUCKET}/output"
    definition["CheckpointConfig"]["S3Uri"] = f"s3://{BUCKET}/checkpoints"
    emu = emulator(checkpoint_sync_seconds=0.5)
    config = TuningConfig.from_dict(body)
    backend = SageMakerBackend(config, job_name="resnet-sm", clients=aio_clients(aws, sagemaker=emu.endpoint),
                               metric_source="logs", metric_period=1)
    store = S3Store(BUCKET, "state/resnet-sm", aio_clients(aws))

    async def tune() -> TuningState:
        tuner = Tuner(config, backend, store, RealClock(), job_name="resnet-sm", poll_interval=0.2)
        try:
            return await asyncio.wait_for(tuner.run(), 300)
        finally:
            await backend.close()
            await store.close()

    state = asyncio.run(tune())
    assert state.status is TuningStatus.COMPLETED and len(state.trials) == JOBS
    assert not [t for t in state.trials if t.status is TrialStatus.FAILED]
    for name in emu.created:  # what SageMaker was asked for: the file's instance and image, one trial's checkpoints
        request = emu.job(name)
        assert request["ResourceConfig"]["InstanceType"] == "ml.g4dn.xlarge"
        assert request["AlgorithmSpecification"]["TrainingImage"] == (
            json.loads(TUNING.read_text())["TrainingJobDefinition"]["AlgorithmSpecification"]["TrainingImage"])
        assert request["TrainingJobStatus"] == "Completed"

    def log_of(trial_id: str, attempt: int) -> str:
        return (emu.job_dir(f"resnet-sm-{trial_id}-{attempt}") / "job" / proc.LOG_FILE).read_text()

    s3 = client("s3", aws)
    for trial_id in assert_promoted_trials_resumed(state, log_of):  # the checkpoint went through S3
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"checkpoints/{trial_id}/")["Contents"]]
        assert f"checkpoints/{trial_id}/checkpoint.pt" in keys
    best = state.trial(str((state.finish or dict[str, Any]())["best_trial_id"]))
    assert best is not None and best.resource == MAX_RESOURCE
    model = s3.get_object(Bucket=BUCKET, Key=f"output/resnet-sm-{best.trial_id}-{best.attempt}/output/model.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(model["Body"].read()), mode="r:gz") as archive:
        assert "model.pt" in archive.getnames()
    assert len(emu.created) == len(set(emu.created))  # no job created twice
    assert "device cpu" in log_of(best.trial_id, best.attempt)  # the emulator runs the GPU request on the CPU


# ---------------------------------------------------------------- the README's DAG


def test_the_readme_dag_for_the_resnet_request_parses(tmp_path: Path) -> None:
    """The DAG in README.md ("Tuning a PyTorch model on SageMaker GPUs") parses in a DagBag, I/O forbidden."""
    from tests.dags.test_dagbag import parse

    readme = (EXAMPLE.parents[1] / "README.md").read_text()
    section = readme[readme.index("## Tuning a PyTorch model on SageMaker GPUs"):readme.index("\n## Deploy")]
    [snippet] = [block.split("```", 1)[0] for block in section.split("```python\n")[1:]]
    folder = tmp_path / "dags"
    (folder / "resnet").mkdir(parents=True)
    (folder / "resnet" / "tuning.json").write_text(TUNING.read_text())  # "examples/resnet, copied"
    (folder / "resnet20_hyperband.py").write_text(snippet)
    found = parse(folder, tmp_path)
    assert found["import_errors"] == {} and found["warnings"] == {}
    assert found["dags"]["resnet20_hyperband"]["tasks"] == ["tune"]
