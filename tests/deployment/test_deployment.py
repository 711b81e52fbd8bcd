"""A real deployment, driven as operators run it: trigger, kill the triggerer, mark failed, clear, watch.

One deployment (four Airflow processes, LocalExecutor, SQLite) serves the
whole module; each test triggers its own DAG run through the REST API and
waits, bounded, for what a user would see. The dashboard test reads the runs
the earlier tests left, so the module runs in file order. The SageMaker tests
start a moto server and the SageMaker emulator in this process, on 127.0.0.1,
and point the deployment's AWS connection at the emulator (REST API): what
they assert is read from the emulator (DescribeTrainingJob, the StopTrainingJob
calls it received) and from the state in S3.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hb_core.backends.s3_store import S3Store
from hb_core.naming import training_job_name
from hb_core.state import Decision, TrialStatus, TuningState, TuningStatus
from hb_emulator import Emulator
from tests import aws_fixtures
from tests.aws_fixtures import REGION, aio_clients, client, make_bucket
from tests.deployment.conftest import BUCKET, DAGS, Deployment

moto_server, aws, emulator = aws_fixtures.moto_server, aws_fixtures.aws, aws_fixtures.emulator  # shared fixtures

KILLED = "killed by a user"


def assert_launched_once(deployment: Deployment, name: str) -> list[str]:
    launched = deployment.launches(name)
    doubled = [job for job, n in Counter(launched).items() if n > 1]
    assert not doubled, f"training jobs launched twice: {doubled}"
    return launched


def test_a_triggered_run_defers_and_succeeds_with_its_summary(deployment: Deployment) -> None:
    run_id = deployment.trigger("hb_fast")
    name = deployment.job_name("hb_fast", run_id)
    seen = set()

    def ended() -> str | None:
        seen.add(deployment.task("hb_fast", run_id)["state"])
        state = deployment.run_state("hb_fast", run_id)
        return state if state in ("success", "failed") else None

    assert deployment.wait(ended, 180, "hb_fast run ends") == "success"
    summary = deployment.xcom("hb_fast", run_id, "summary")
    assert summary["tuning_job_name"] == name and summary["status"] == "Completed"
    jobs = DAGS["hb_fast"]["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"]
    assert summary["trials"] == jobs and sum(summary["trial_counts"].values()) == jobs
    assert set(summary["trial_counts"]) <= {"Completed", "Stopped"}
    assert summary["best_trial_id"] is not None and 0 < summary["best_objective"] <= 1
    # the controller ran in the triggerer, with no worker slot held: the task was seen deferred, and its log
    # (the UI's, through the API) has the worker's deferral, then the trigger's decisions and its end
    assert "deferred" in seen, seen
    log = deployment.task_log("hb_fast", run_id)
    assert "deferring to the controller trigger" in log and f"{name}: reattached at revision" in log, log[-3000:]
    assert len(assert_launched_once(deployment, name)) == jobs
    assert not deployment.live_trials(name)
    deployment.runs[name] = "Completed"


def test_a_killed_triggerer_is_replaced_and_the_run_succeeds_with_no_job_doubled(deployment: Deployment) -> None:
    run_id, name = deployment.trigger_deferred("hb_slow")
    deployment.wait(lambda: len(deployment.launches(name)) >= 4, 120, "the triggerer launches more trials")
    deployment.airflow.kill("triggerer")  # SIGKILL, the whole group: no cleanup runs
    before = len(deployment.launches(name))
    deployment.airflow.start("triggerer")

    assert deployment.wait_run_ended("hb_slow", run_id, 240) == "success"
    summary = deployment.xcom("hb_slow", run_id, "summary")
    jobs = DAGS["hb_slow"]["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"]
    assert summary["status"] == "Completed" and summary["trials"] == jobs
    launched = assert_launched_once(deployment, name)
    assert len(launched) == jobs and before < jobs, (before, launched)
    job = deployment.job(name)
    assert job["status"] == "Completed" and not job["running"] and job["active_trials"] == 0
    assert not deployment.live_trials(name)


def test_mark_failed_mid_run_stops_every_trial_and_ends_the_job_failed(deployment: Deployment) -> None:
    run_id, name = deployment.trigger_deferred("hb_long")
    deployment.wait(lambda: sum(1 for t in deployment.trials(name) if t["points"] and t["status"] == "InProgress")
                    >= 2, 120, "two trials report values")
    deployment.api("PATCH", f"/api/v2/dags/hb_long/dagRuns/{run_id}/taskInstances/tune", {"new_state": "failed"})

    def terminal_and_gone() -> dict[str, Any] | None:
        job = deployment.job(name)
        return job if job["status"] in ("Completed", "Failed") and not deployment.live_trials(name) else None

    job = deployment.wait(terminal_and_gone, 30, "every trial process gone and the job terminal")
    assert job["status"] == "Failed" and KILLED in (job["completion_reason"] or "")
    assert not job["running"] and job["active_trials"] == 0
    trials = deployment.trials(name)
    assert trials and all(t["status"] in ("Completed", "Stopped", "Failed") for t in trials), trials
    assert deployment.task("hb_long", run_id)["state"] == "failed"
    assert_launched_once(deployment, name)
    deployment.runs[name] = "Failed"


class SageMakerRun:
    """A run of a SageMaker DAG of the deployment: the emulator runs its training jobs, moto holds its state."""

    def __init__(self, deployment: Deployment, emu: Emulator, moto: str, dag_id: str) -> None:
        self.deployment, self.emu, self.moto, self.dag_id = deployment, emu, moto, dag_id
        make_bucket(moto, BUCKET)
        deployment.aws_connection(emu.endpoint)  # what the worker and the triggerer call: the emulator, then moto
        self.sagemaker = client("sagemaker", emu.endpoint)
        self.run_id, self.name = deployment.trigger_deferred(dag_id)
        self.state_uri = deployment.xcom(dag_id, self.run_id, "state_uri")
        assert self.state_uri == f"s3://{BUCKET}/output/{self.name}/hyperband"

    def described(self) -> dict[str, dict[str, Any]]:
        """DescribeTrainingJob of every training job created so far."""
        return {job: self.sagemaker.describe_training_job(TrainingJobName=job) for job in list(self.emu.created)}

    def ended(self) -> dict[str, dict[str, Any]] | None:
        """The training jobs, once every one has ended."""
        jobs = self.described()
        return jobs if jobs and all(d["TrainingJobStatus"] not in ("InProgress", "Stopping")
                                    for d in jobs.values()) else None

    def state(self) -> tuple[TuningState | None, list[Decision]]:
        """The tuning job's state and decision log in S3 (moto), as the controller stored them."""
        async def load() -> tuple[TuningState | None, list[Decision]]:
            store = S3Store.from_uri(self.state_uri, aio_clients(self.moto))
            try:
                return await store.load(), list(await store.read_decisions())
            finally:
                await store.close()

        return asyncio.run(load())

    def mark_failed_while_training(self, hold: Path | None = None) -> set[str]:
        """Mark the task failed (REST) once two training jobs train and the controller in the triggerer has
        recorded values of theirs (creating ``hold`` first: the stops sent from then on do not land while it
        exists); the jobs that were running."""
        def training() -> bool:
            state, _ = self.state()
            jobs = self.described()
            followed = [training_job_name(self.name, t.trial_id, t.attempt) for t in (state.trials if state else ())
                        if t.status is TrialStatus.IN_PROGRESS and t.points]
            return sum(1 for job in followed if jobs.get(job, {}).get("SecondaryStatus") == "Training") >= 2

        self.deployment.wait(training, 120, "two training jobs training, with values in the state")
        if hold is not None:
            hold.touch()
        running = {job for job, d in self.described().items() if d["TrainingJobStatus"] == "InProgress"}
        self.deployment.api("PATCH", f"/api/v2/dags/{self.dag_id}/dagRuns/{self.run_id}/taskInstances/tune",
                            {"new_state": "failed"})
        return running

    def aborted(self, state: TuningState) -> list[str]:
        """The training jobs the abort stopped (those Hyperband was stopping keep their own reason)."""
        return [training_job_name(self.name, t.trial_id, t.attempt) for t in state.trials
                if (t.stop_reason or "").startswith("tuning job is stopping")]

    def assert_ended_failed(self, state: TuningState, decisions: list[Decision],
                            jobs: dict[str, dict[str, Any]]) -> None:
        """The state terminal (Failed, with the reason); every job the abort stopped got its StopTrainingJob and
        ended Stopped, every one ended; none created after the abort began, none left out of the state."""
        assert state.status is TuningStatus.FAILED and KILLED in str(state.finish), state.finish
        assert all(t.status.ended for t in state.trials) and not state.active
        aborted = self.aborted(state)
        assert aborted and set(aborted) <= set(self.emu.stop_requests), (aborted, self.emu.stop_requests)
        for job in aborted:
            assert (jobs[job]["TrainingJobStatus"], jobs[job]["SecondaryStatus"]) == ("Stopped", "Stopped"), jobs[job]
        assert all(d["TrainingJobStatus"] in ("Completed", "Stopped") for d in jobs.values()), jobs
        began = [d.time for d in decisions if d.action == "stopping" and KILLED in d.message]
        assert len(began) == 1, [d.line() for d in decisions[-20:]]
        assert all(d["CreationTime"].timestamp() <= began[0] for d in jobs.values()), (began, jobs)
        recorded = {training_job_name(self.name, t.trial_id, a) for t in state.trials for a in range(1, t.attempt + 1)}
        assert set(self.emu.created) <= recorded, (self.emu.created, recorded)  # the emulator refuses a name twice
        assert self.deployment.wait_run_ended(self.dag_id, self.run_id, 60) == "failed"
        assert self.deployment.task(self.dag_id, self.run_id)["state"] == "failed"


def test_mark_failed_on_sagemaker_stops_every_training_job_and_ends_the_job_failed(
    deployment: Deployment, emulator: Callable[..., Emulator], aws: str,
) -> None:
    run = SageMakerRun(deployment, emulator(stop_grace_seconds=30.0), aws, "hb_sagemaker")  # stops land in 3 s
    running = run.mark_failed_while_training()

    def terminal_and_ended() -> tuple[TuningState, list[Decision], dict[str, dict[str, Any]]] | None:
        (state, decisions), jobs = run.state(), run.ended()
        return (state, decisions, jobs) if state is not None and state.done and jobs else None

    state, decisions, jobs = deployment.wait(terminal_and_ended, 60, "every training job ended, the S3 state terminal")
    run.assert_ended_failed(state, decisions, jobs)
    assert all(jobs[job]["TrainingJobStatus"] in ("Completed", "Stopped") for job in running), (running, jobs)
    assert sorted(run.emu.created) == sorted(jobs), "a training job was created after the tuning job ended"


def test_a_triggerer_killed_mid_abort_on_sagemaker_leaves_the_job_stopping_until_a_reader_finishes_it(
    deployment: Deployment, emulator: Callable[..., Emulator], aws: str, tmp_path: Path,
) -> None:
    """The task is failed, so no retry comes back to it: whoever reads the S3 state next finishes it."""
    hold = tmp_path / "hold"  # while it exists, a stopped training job saves its checkpoint (at most 120 s)
    run = SageMakerRun(deployment, emulator(stop_grace_seconds=150.0, env={"HB_TEST_STOP_HOLD": str(hold)}),
                       aws, "hb_sagemaker_held")
    run.mark_failed_while_training(hold)

    def stops_sent() -> TuningState | None:  # the abort's first checkpoint, and each of its stops, sent
        state, _ = run.state()
        if state is None or state.status is not TuningStatus.STOPPING:
            return None
        return state if run.aborted(state) and set(run.aborted(state)) <= set(run.emu.stop_requests) else None

    deployment.wait(stops_sent, 60, "the abort's stops sent")
    deployment.airflow.kill("triggerer")  # SIGKILL mid-abort: the stops have not landed
    deployment.airflow.start("triggerer")
    hold.unlink()  # the stops land
    jobs = deployment.wait(run.ended, 60, "every training job ended")
    left, _ = run.state()
    assert left is not None and left.status is TuningStatus.STOPPING, left  # nothing runs that would finish it

    show = [sys.executable, "-m", "hb_core.cli", "show", run.state_uri, "--endpoint-url", run.emu.endpoint,
            "--region", REGION]
    shown = subprocess.run(show, capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 1 and "Failed" in shown.stdout, (shown.stdout, shown.stderr[-2000:])
    state, decisions = run.state()
    assert state is not None
    run.assert_ended_failed(state, decisions, jobs)


def test_clearing_a_running_task_reattaches_without_doubling_a_trial(deployment: Deployment) -> None:
    run_id, name = deployment.trigger_deferred("hb_slow")
    deployment.wait(lambda: len(deployment.launches(name)) >= 3, 120, "three trials launched")
    deployment.api("POST", "/api/v2/dags/hb_slow/clearTaskInstances",
                   {"dry_run": False, "dag_run_id": run_id, "task_ids": ["tune"], "only_failed": False,
                    "reset_dag_runs": True})

    assert deployment.wait_run_ended("hb_slow", run_id, 240) == "success"
    task = deployment.task("hb_slow", run_id)
    assert task["try_number"] >= 2, task  # a new try ran
    summary = deployment.xcom("hb_slow", run_id, "summary")
    jobs = DAGS["hb_slow"]["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"]
    assert summary["status"] == "Completed" and summary["trials"] == jobs
    assert KILLED not in (summary["reason"] or "")
    assert len(assert_launched_once(deployment, name)) == jobs
    assert not deployment.live_trials(name)
    deployment.runs[name] = "Completed"


def test_the_dashboard_needs_a_token_and_lists_every_run_with_its_true_status(deployment: Deployment) -> None:
    if not deployment.runs:
        pytest.skip("needs the runs the earlier tests of this module leave (run the whole module)")
    assert deployment.airflow.request("GET", "/hyperband/api/jobs")[0] == 401
    assert deployment.airflow.request("GET", "/hyperband/")[0] == 401
    http_status, page = deployment.airflow.request("GET", "/hyperband/", token=deployment.token)
    assert http_status == 200 and b"Hyperband tuning jobs" in page
    listed = {row["tuning_job_name"]: row for row in deployment.api("GET", "/hyperband/api/jobs")["jobs"]}
    for name, status in deployment.runs.items():
        row, job = listed[name], deployment.job(name)
        assert row["status"] == job["status"] == status and row["running"] is job["running"] is False, (row, job)
        assert row["dag_id"] in DAGS and row["run_id"]
        assert row["best_objective"] == job["best_objective"] == job["summary"]["best_objective"]
        assert row["best_trial_id"] == job["best_trial_id"] == job["summary"]["best_trial_id"]
        page_status, html = deployment.airflow.request("GET", f"/hyperband/jobs/{name}", token=deployment.token)
        assert page_status == 200 and status.encode() in html
