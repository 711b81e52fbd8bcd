"""The tuning operator in a real Airflow DAG run (``dag.test()``) on the local backend."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from hb_airflow.operators import HyperbandTuningOperator
from hb_core.errors import ConfigError
from hb_core.naming import JOB_NAME_PATTERN
from tests.hb_airflow.conftest import AirflowHome, tiny_request

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
    assert JOB_NAME_PATTERN.match(xcoms["best_training_job"])
    assert xcoms["best_training_job"].startswith(xcoms["tuning_job_name"])
    assert (Path(xcoms["model_artifacts"]) / "model.txt").exists()
    assert Path(xcoms["state_uri"]).is_relative_to(airflow_home.home / "hyperband")
    log = (airflow_home.home / f"{dag_id}.log").read_text()
    assert "rank=" in log and "cutoff=" in log  # one line per decision in the task log


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
