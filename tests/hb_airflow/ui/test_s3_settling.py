"""A SageMaker tuning job left ``Stopping`` in S3 is finished by whoever reads it next, once its jobs have ended.

Its controller aborted it (a user marked the task failed) and died before the
stopped training jobs ended: the state in S3 says Stopping, and no controller
will come back (the task is failed, nothing retries it). The readers, the
dashboard's S3 view and ``hb-tune show s3://...``, finish it as they do a local
job: the SageMaker emulator runs the training jobs (a stopped one saves its
checkpoint until the test lets it end), moto is S3 and CloudWatch Logs, all on
127.0.0.1.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from hb_airflow.ui.s3_jobs import S3StateRoot
from hb_core.backends.clock import RealClock
from hb_core.backends.s3_store import S3Store
from hb_core.runner import Tuner
from hb_core.state import TrialStatus, TuningState, TuningStatus
from hb_emulator import Emulator
from tests import aws_fixtures
from tests.aws_fixtures import aio_clients, client, make_bucket, wait_for
from tests.hb_core.backends.test_sagemaker import BUCKET, backend, request

moto_server, aws, emulator = aws_fixtures.moto_server, aws_fixtures.aws, aws_fixtures.emulator  # shared fixtures

CHECKPOINTING = Path(__file__).resolve().parents[2] / "deployment" / "scripts"
REASON = "the Airflow task was killed by a user"


def slow_stopping(name: str, hold: Path) -> dict[str, object]:
    """A request whose stopped training jobs end once the file ``hold`` is gone (at most 60 s after their stop)."""
    body = request(name=name, jobs=6, parallel=2, max_resource=27, sleep=0.5)
    body["TrainingJobDefinition"]["StaticHyperParameters"].update(
        {"sagemaker_program": "checkpointing.py", "sagemaker_submit_directory": str(CHECKPOINTING),
         "stop_seconds": "60", "stop_hold": str(hold)})
    return body


async def left_stopping(emu: Emulator, moto: str, name: str, hold: Path) -> TuningState:
    """Run tuning job ``name`` until two training jobs report values, abort it, and die before the stops land."""
    body = slow_stopping(name, hold)
    sagemaker = backend(emu.endpoint, moto, body)
    store = S3Store(BUCKET, f"output/{name}/hyperband", aio_clients(moto))
    tuner = Tuner(sagemaker.config, sagemaker, store, RealClock(), job_name=name, poll_interval=0.2)
    try:
        state = await tuner.start()
        for _ in range(300):  # at most ~60 s: until both running jobs have printed (their SIGTERM handler is set)
            active = [state.trials[i] for i in state.active]
            if len(active) == 2 and all(t.points and t.status is TrialStatus.IN_PROGRESS for t in active):
                break
            await asyncio.sleep(0.2)
            state = await tuner.step()
        hold.touch()
        aborted = await tuner.abort(REASON, timeout=0)  # the stops are sent; nobody waits for them to land
    finally:
        await sagemaker.close()
        await store.close()
    assert aborted is not None and aborted.status is TuningStatus.STOPPING and aborted.active, aborted
    return aborted


def stored(moto: str, name: str) -> TuningState:
    async def load() -> TuningState | None:
        store = S3Store(BUCKET, f"output/{name}/hyperband", aio_clients(moto))
        try:
            return await store.load()
        finally:
            await store.close()

    state = asyncio.run(load())
    assert state is not None
    return state


def jobs_ended(emu: Emulator, name: str) -> bool:
    mine = [job for job in list(emu.created) if job.startswith(f"{name}-")]
    return bool(mine) and all(emu.job(job)["TrainingJobStatus"] in ("Completed", "Stopped") for job in mine)


def assert_finished_failed(state: TuningState) -> None:
    assert state.status is TuningStatus.FAILED and REASON in (state.completion_reason or ""), state.finish
    assert all(t.status.ended for t in state.trials) and not state.active


def test_the_readers_of_s3_state_finish_a_job_left_stopping_once_its_training_jobs_ended(
    emulator: Callable[..., Emulator], aws: str, tmp_path: Path,
) -> None:
    make_bucket(aws, BUCKET)
    emu = emulator(stop_grace_seconds=90.0)
    hold = {name: tmp_path / f"hold-{name}" for name in ("dashboard", "shown")}

    async def both() -> None:
        await asyncio.gather(*(left_stopping(emu, aws, name, path) for name, path in hold.items()))

    asyncio.run(both())
    stopped = set(emu.stop_requests)

    # the dashboard's S3 view (one root, as the API server keeps it): Stopping while a job stops, then Failed
    root = S3StateRoot(f"s3://{BUCKET}/output", client("s3", aws), clients=aio_clients(emu.endpoint))
    loaded = root.load("dashboard")
    assert loaded.state is not None and loaded.state.status is TuningStatus.STOPPING
    assert root.load("dashboard").state == loaded.state and stored(aws, "dashboard") == loaded.state
    hold["dashboard"].unlink()  # the stopped training jobs have saved their checkpoints: they end
    wait_for(lambda: jobs_ended(emu, "dashboard"), 30, "the dashboard job's training jobs end")
    settled = root.load("dashboard").state  # the same root: a stopping state is not served from its cache
    assert settled is not None
    assert_finished_failed(settled)
    assert stored(aws, "dashboard") == settled
    listed = {job.name: job.state for job in root.jobs()}
    assert listed["dashboard"] == settled

    # hb-tune show s3://...: as stored while a job stops, then it finishes the job
    uri = f"s3://{BUCKET}/output/shown/hyperband"
    show = [sys.executable, "-m", "hb_core.cli", "show", uri, "--endpoint-url", emu.endpoint, "--region", "us-east-1"]
    early = subprocess.run(show, capture_output=True, text=True, timeout=60, check=False)
    assert early.returncode == 0 and "Stopping" in early.stdout, (early.stdout, early.stderr[-2000:])
    hold["shown"].unlink()
    wait_for(lambda: jobs_ended(emu, "shown"), 30, "the shown job's training jobs end")
    shown = subprocess.run(show, capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 1 and "Failed" in shown.stdout, (shown.stdout, shown.stderr[-2000:])
    assert_finished_failed(stored(aws, "shown"))

    # the readers stopped nothing and started nothing: only the aborts' stops were sent
    assert set(emu.stop_requests) == stopped
    assert all(emu.job(job)["TrainingJobStatus"] in ("Completed", "Stopped") for job in emu.created)
