"""``hb-tune run --backend sagemaker`` as a user runs it, with its default options, in its own process.

Everything speaks HTTP on 127.0.0.1: the command -> the SageMaker emulator
(real training processes) -> moto (S3, CloudWatch, CloudWatch Logs). What a
trial printed is read from its job's own log file in the emulator, and every
value the tuning job recorded is compared with it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hb_core.backends import process as proc
from hb_core.backends.s3_store import S3Store
from hb_core.state import TrialStatus, TuningState, TuningStatus
from hb_emulator import Emulator
from tests import aws_fixtures
from tests.aws_fixtures import aio_clients, make_bucket, wait_for
from tests.hb_core.backends.test_sagemaker import BUCKET, request

moto_server, aws, emulator = aws_fixtures.moto_server, aws_fixtures.aws, aws_fixtures.emulator  # shared fixtures


def hb_tune(path: Path, endpoint: str, *options: str) -> list[str]:
    """The command line: default options but the endpoint (and ``options``)."""
    return [sys.executable, "-m", "hb_core.cli", "run", str(path), "--backend", "sagemaker",
            "--endpoint-url", endpoint, "--region", "us-east-1", *options]


def printed(emu: Emulator, job: str) -> dict[int, float]:
    """What the job's process printed: {epoch: score}, from its own log file."""
    values: dict[int, float] = {}
    for line in (emu.job_dir(job) / "job" / proc.LOG_FILE).read_text().splitlines():
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        if "epoch" in fields and "score" in fields:
            values[int(fields["epoch"])] = float(fields["score"])
    return values


async def load(endpoint: str, prefix: str) -> tuple[TuningState, list]:  # type: ignore[type-arg]
    store = S3Store(BUCKET, prefix, aio_clients(endpoint))
    try:
        state = await store.load()
        decisions = await store.read_decisions()
    finally:
        await store.close()
    assert state is not None
    return state, decisions


@pytest.mark.parametrize("source", [(), ("--metric-source", "cloudwatch")], ids=["default", "cloudwatch"])
def test_every_recorded_value_is_one_the_trial_printed_at_that_epoch(
    emulator: Callable[..., Emulator], aws: str, tmp_path: Path, source: tuple[str, ...],
) -> None:
    make_bucket(aws, BUCKET)
    emu = emulator()
    name = "printed"
    body = request(name=name, jobs=6, parallel=3, max_resource=9, sleep=0.8, resource_metric=True)
    path = tmp_path / "tuning.json"
    path.write_text(json.dumps(body))
    done = subprocess.run(hb_tune(path, emu.endpoint, *source), capture_output=True, text=True, timeout=240,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    state, decisions = asyncio.run(load(aws, f"output/{name}/hyperband"))
    assert state.status is TuningStatus.COMPLETED and len(state.trials) == 6

    lines = {t.trial_id: printed(emu, f"{name}-{t.trial_id}-1") for t in state.trials}
    for trial in state.trials:  # the values recorded are the ones printed, epoch by epoch, from the first
        assert trial.points, trial.trial_id
        assert [(r, v) for r, v, _ in trial.points] == [(r, lines[trial.trial_id][r])
                                                        for r in range(1, trial.resource + 1)], trial.trial_id
    judged = [d for d in decisions if d.rung is not None and d.action in ("continue", "stop", "record")]
    assert {d.rung for d in judged} == {1, 3, 9}  # trials at every rung
    assert all(d.value == lines[str(d.trial_id)][d.rung] for d in judged)
    best = state.trial(str(state.finish["best_trial_id"])) if state.finish else None
    assert best is not None and best.status is TrialStatus.COMPLETED and best.resource == 9
    assert state.finish is not None and state.finish["best_objective"] == lines[best.trial_id][9]  # its last value
    if source:  # several epochs in one 60 s period: CloudWatch cannot be exact, and the summary says so
        assert "note            rung values come from the training jobs' CloudWatch Logs" in done.stdout
    else:
        assert "note" not in done.stdout


def test_ctrl_c_stops_every_training_job_and_ends_the_tuning_job(
    emulator: Callable[..., Emulator], aws: str, tmp_path: Path,
) -> None:
    make_bucket(aws, BUCKET)
    emu = emulator()
    name = "interrupted"
    body = request(name=name, jobs=6, parallel=3, max_resource=9, sleep=3.0)  # 27 s a job: Ctrl-C comes first
    path = tmp_path / "tuning.json"
    path.write_text(json.dumps(body))
    run = subprocess.Popen(hb_tune(path, emu.endpoint), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def training() -> bool:
            return len(emu.created) == 3 and all(emu.job(n)["SecondaryStatus"] == "Training" for n in emu.created)

        wait_for(training, timeout=60, what="three training jobs")
        time.sleep(0.5)  # the command is polling by now
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 130, err[-3000:]
    assert "interrupted: the running trials were stopped" in err
    assert sorted(set(emu.stop_requests)) == sorted(emu.created)  # StopTrainingJob reached each job
    for job in emu.created:
        described = emu.job(job)
        assert (described["TrainingJobStatus"], described["SecondaryStatus"]) == ("Stopped", "Stopped"), job
    state, _ = asyncio.run(load(aws, f"output/{name}/hyperband"))
    assert state.done and state.status is TuningStatus.FAILED and "interrupted (Ctrl-C)" in str(state.finish)
    assert all(t.status.ended for t in state.trials)


def test_package_names_the_destination_when_aws_refuses(aws: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """An AWS error while uploading is the backend's BackendError, printed by hb-tune as one line, exit 1."""
    from hb_core.cli import main

    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text("print('epoch=1 score=0.5')\n")
    assert main(["package", str(source), "--s3", "s3://no-such-bucket/code", "--endpoint-url", aws]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: uploading to s3://no-such-bucket/code: ") and "NoSuchBucket" in err, err
