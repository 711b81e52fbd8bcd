"""The tuning operator in a real Airflow DAG run (``dag.test()``) on the local backend."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from hb_airflow.operators import HyperbandTuningOperator
from hb_core.backends.stores import LocalFileStore
from hb_core.errors import ConfigError, StateError
from hb_core.naming import JOB_NAME_PATTERN
from hb_core.state import TuningState
from tests.hb_airflow.conftest import AirflowHome, live_group_members, tiny_request

DAG_SOURCE = """
import json, os
import pendulum
from airflow.sdk import DAG, task
from hb_airflow.operators import HyperbandTuningOperator

REQUEST = json.loads({request!r})

with DAG(dag_id={dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False) as dag:
    tune = HyperbandTuningOperator(task_id="tune", tuning_request=REQUEST, backend="local",
                                   poll_interval=0.2, deferrable={deferrable!r})

    @task
    def dump(ti=None):
        keys = ["best_hyperparameters", "best_training_job", "best_objective", "model_artifacts", "summary",
                "tuning_job_name", "state_uri"]
        with open(os.environ["HB_TEST_OUT"], "w") as handle:
            json.dump({{k: ti.xcom_pull(task_ids="tune", key=k) for k in keys}}, handle)

    tune >> dump()
"""


@pytest.mark.parametrize("deferrable", [True, False])
def test_local_tuning_dag_runs_and_pushes_results(airflow_home: AirflowHome, deferrable: bool) -> None:
    dag_id = f"tiny_local_{'deferred' if deferrable else 'worker'}"
    source = DAG_SOURCE.format(request=json.dumps(tiny_request()), dag_id=dag_id, deferrable=deferrable)
    state, xcoms = airflow_home.run_dag(dag_id, source)
    assert state == "success"
    summary = xcoms["summary"]
    assert summary["status"] == "Completed"
    assert sum(summary["trial_counts"].values()) == 8
    assert summary["trial_counts"].get("Stopped", 0) >= 1  # Hyperband stopped someone
    assert set(xcoms["best_hyperparameters"]) == {"x"}
    assert xcoms["best_objective"] == summary["best_objective"] > 0.5
    assert JOB_NAME_PATTERN.fullmatch(xcoms["best_training_job"])
    assert xcoms["best_training_job"].startswith(xcoms["tuning_job_name"])
    assert (Path(xcoms["model_artifacts"]) / "model.txt").exists()
    assert Path(xcoms["state_uri"]).is_relative_to(airflow_home.home / "hyperband")
    log = (airflow_home.home / f"{dag_id}.log").read_text()
    assert "rank=" in log and "cutoff=" in log  # one line per decision in the task log
    # the resource trained (billed) beside the resource judged, in the XCom and in the task log's summary
    assert 0 < summary["judged_resource"] <= summary["total_resource"]
    assert f"{summary['total_resource']} trained (billed)" in log and f"{summary['judged_resource']} judged" in log


def test_failed_tuning_job_fails_the_task(airflow_home: AirflowHome) -> None:
    request = tiny_request(script="fail.py", jobs=4)
    source = DAG_SOURCE.format(request=json.dumps(request), dag_id="tiny_failing", deferrable=True)
    state, xcoms = airflow_home.run_dag("tiny_failing", source)
    assert state == "failed"
    log = (airflow_home.home / "tiny_failing.log").read_text()
    assert re.search(r"the first \d+ training jobs all failed; the last: exit code 3", log)


def test_bad_request_fails_when_the_dag_is_parsed() -> None:
    request = tiny_request()
    request["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxParallelTrainingJobs"] = 0
    with pytest.raises(ConfigError, match="ResourceLimits.MaxParallelTrainingJobs"):
        HyperbandTuningOperator(task_id="t", tuning_request=request, backend="local")
    with pytest.raises(ConfigError, match="backend"):
        HyperbandTuningOperator(task_id="t", tuning_request=tiny_request(), backend="ec2")


def test_templated_request_is_validated_at_execute_time() -> None:
    request = tiny_request()
    request["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxParallelTrainingJobs"] = "{{ params.p }}"
    op = HyperbandTuningOperator(task_id="t", tuning_request=request, backend="local")  # no error at parse time
    op.tuning_request = json.loads(json.dumps(request).replace('"{{ params.p }}"', "0"))  # as rendered
    ti = SimpleNamespace(dag_id="d", run_id="r", task_id="t", map_index=-1)
    with pytest.raises(AirflowFailException, match="ResourceLimits.MaxParallelTrainingJobs"):
        op._spec({"ti": ti})  # type: ignore[typeddict-item]


TRIAL_DAG = """
import json, os
import pendulum
from airflow.sdk import DAG, task
from hb_airflow.operators import HyperbandTuningOperator
from hb_airflow.trial import SageMakerTrialOperator

REQUEST = json.loads({request!r})

with DAG(dag_id="tune_then_retrain", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         catchup=False) as dag:
    tune = HyperbandTuningOperator(task_id="tune", tuning_request=REQUEST, backend="local", poll_interval=0.2)
    retrain = SageMakerTrialOperator(
        task_id="retrain", training_job_definition=REQUEST["TrainingJobDefinition"], backend="local",
        hyperparameters="{{{{ ti.xcom_pull(task_ids='tune', key='best_hyperparameters') | tojson }}}}",
        resource=12, poll_interval=0.2)

    @task
    def dump(ti=None):
        with open(os.environ["HB_TEST_OUT"], "w") as handle:
            json.dump({{"best": ti.xcom_pull(task_ids="tune", key="best_hyperparameters"),
                       "retrain": ti.xcom_pull(task_ids="retrain")}}, handle)

    tune >> retrain >> dump()
"""


def test_retrain_the_best_with_the_trial_operator(airflow_home: AirflowHome) -> None:
    request = tiny_request(jobs=6)
    metrics = request["TrainingJobDefinition"]["AlgorithmSpecification"]["MetricDefinitions"]
    metrics.append({"Name": "loss", "Regex": "loss=([0-9.]+)"})
    state, xcoms = airflow_home.run_dag("tune_then_retrain", TRIAL_DAG.format(request=json.dumps(request)))
    assert state == "success"
    retrain = xcoms["retrain"]
    assert retrain["status"] == "Completed" and retrain["resource"] == 12  # ran to the budget it was given
    assert retrain["hyperparameters"] == {"x": repr(xcoms["best"]["x"])}
    assert retrain["final_metrics"]["score"] > 0.5 and "loss" in retrain["final_metrics"]
    assert (Path(retrain["model_artifacts"]) / "model.txt").read_text() == f"x={xcoms['best']['x']!r}\n"


KILL_DAG_SOURCE = """
import json
import pendulum
from airflow.sdk import DAG
from hb_airflow.operators import HyperbandTuningOperator
{preamble}
with DAG(dag_id={dag_id!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False) as dag:
    HyperbandTuningOperator(task_id="tune", tuning_request=json.loads({request!r}), backend="local",
                            state_uri={state_uri!r}, poll_interval=0.2, deferrable={deferrable!r})
"""


#: A log handler on ``hb_core`` that sends the task runner its SIGTERM from inside its own ``emit``, on the
#: controller's thread, at the first trial stop: the signal handler (and so ``on_kill``) runs while that thread
#: holds the handler's lock, which everything the abort logs needs too. A signal landing mid-log is what a
#: real "mark failed" does at random; this makes it certain.
SIGTERM_MID_LOG = """
import logging, os, signal, threading

class _SigtermMidLog(logging.Handler):
    sent = False

    def emit(self, record):
        if (not self.sent and threading.current_thread() is threading.main_thread()
                and "stopped" in record.getMessage()):
            type(self).sent = True
            os.kill(os.getpid(), signal.SIGTERM)
            print("SIGTERM sent inside a log handler", flush=True)

# Only in this DAG's own dag.test() (another DAG's parses this file too), and once: it may import this file twice.
if os.environ.pop("HB_TEST_SIGTERM_MID_LOG", None) == {dag_id!r}:
    logging.getLogger("hb_core").addHandler(_SigtermMidLog())
"""


@pytest.mark.parametrize("moment", ["between-rounds", "mid-log", "mid-log-deferred"])
def test_sigterm_to_a_worker_running_the_controller_stops_every_trial(airflow_home: AirflowHome, tmp_path: Path,
                                                                       moment: str) -> None:
    """What a user's "mark failed" does to a non-deferrable task: Airflow's task runner gets SIGTERM and calls
    ``on_kill``; every trial process must be gone and the job must end Failed, nothing left running.

    ``mid-log``: the signal lands while the controller's thread holds a log handler's lock. An ``on_kill`` that
    waited there for an abort on another thread, which logs, waited forever (seen once in a full test run).
    ``mid-log-deferred``: the same, while ``dag.test()`` runs the deferred task's trigger in line on that thread."""
    dag_id = f"tiny_local_killed_{moment.replace('-', '_')}"
    mid_log = moment.startswith("mid-log")
    state_uri = tmp_path / "killed"
    request = tiny_request(name="killed", parallel=3, jobs=9, sleep=0.5, max_resource=27)
    source = KILL_DAG_SOURCE.format(dag_id=dag_id, request=json.dumps(request), state_uri=str(state_uri),
                                    preamble=SIGTERM_MID_LOG.format(dag_id=dag_id) if mid_log else "",
                                    deferrable=moment.endswith("deferred"))
    process = airflow_home.start_dag(dag_id, source, env={"HB_TEST_SIGTERM_MID_LOG": dag_id} if mid_log else None)
    try:
        if moment == "between-rounds":
            deadline = time.monotonic() + 180
            running: list[int] = []
            while time.monotonic() < deadline and process.poll() is None:
                state = _load(state_uri)
                if state is not None and sum(1 for t in state.trials if t.points and not t.status.ended) >= 2:
                    running = _trial_groups(state_uri)
                    if len(running) >= 2:
                        break
                time.sleep(0.1)
            assert len(running) >= 2, "the controller never had two trials reporting"
            process.send_signal(signal.SIGTERM)  # to the task runner's process, as the supervisor does
        stdout, stderr = airflow_home.wait(dag_id, process, 180)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    dag_state, _ = airflow_home.dag_result(dag_id, process.returncode, stdout, stderr)
    assert dag_state == "failed"
    state = _load(state_uri)
    assert state is not None and state.status.value == "Failed"
    assert "killed by a user" in (state.completion_reason or "")
    assert all(t.status.ended for t in state.trials)
    assert not [pid for g in _trial_groups(state_uri) for pid in live_group_members(g)], "a trial outlived on_kill"
    log = (airflow_home.home / f"{dag_id}.log").read_text()
    assert "killed by a user" in log
    assert not mid_log or log.count("SIGTERM sent inside a log handler") == 1


def _load(state_uri: Path) -> TuningState | None:
    try:
        return asyncio.run(LocalFileStore(state_uri).load())
    except StateError:  # caught mid-write by a reader that does not lock: try again
        return None


def _trial_groups(state_uri: Path) -> list[int]:
    groups = [json.loads(p.read_text()).get("pid") for p in state_uri.rglob("pid.json")]
    return [int(g) for g in groups if g]
