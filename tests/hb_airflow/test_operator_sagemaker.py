"""The SageMaker path in a real Airflow DAG run: the emulator runs the training jobs, moto is S3,
CloudWatch and Logs, and the Airflow AWS connection (AwsBaseHook) routes the clients.

The connection carries a known fake secret key and session token; no trace of them may reach the
task logs, the XComs, the state store, the decision log or the stored trigger kwargs.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from hb_core.naming import JOB_NAME_PATTERN
from hb_emulator import Emulator
from tests.aws_fixtures import ROLE, aws, client, emulator, make_bucket, moto_server  # noqa: F401
from tests.hb_airflow.conftest import AirflowHome, tiny_request

SECRET_KEY = "hbFakeSecretKey/DoNotLeak/0123456789abcdef"
SESSION_TOKEN = "hbFakeSessionToken-DoNotLeak-9876543210"

DAG_SOURCE = """
import json, os
import pendulum
from airflow.sdk import DAG, task
from hb_airflow.operators import HyperbandTuningOperator

REQUEST = json.loads({request!r})

with DAG(dag_id="tiny_sagemaker", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
         catchup=False) as dag:
    tune = HyperbandTuningOperator(task_id="tune", tuning_request=REQUEST, backend="sagemaker",
                                   aws_conn_id="aws_hb", region_name="us-east-1", poll_interval=0.2,
                                   backend_options={{"metric_source": "logs"}}, deferrable=True)

    @task
    def dump(ti=None):
        keys = ["best_hyperparameters", "best_training_job", "best_objective", "model_artifacts", "summary",
                "tuning_job_name", "state_uri"]
        with open(os.environ["HB_TEST_OUT"], "w") as handle:
            json.dump({{k: ti.xcom_pull(task_ids="tune", key=k) for k in keys}}, handle)

    tune >> dump()
"""


def sagemaker_request() -> dict[str, object]:
    request = tiny_request(name="smtiny", jobs=6, parallel=2, max_resource=9, sleep=0.1)
    definition = request["TrainingJobDefinition"]
    assert isinstance(definition, dict)
    definition.update({
        "RoleArn": ROLE,
        "OutputDataConfig": {"S3OutputPath": "s3://hb-sm-test/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
    })
    return request


def test_sagemaker_path_with_a_connection_and_no_leaked_secret(
    airflow_home: AirflowHome, emulator: Callable[..., Emulator], aws: str
) -> None:
    emu = emulator()
    make_bucket(aws, "hb-sm-test")
    connection = {
        "conn_type": "aws",
        "login": "AKIAHBFAKEACCESSKEY",
        "password": SECRET_KEY,
        "extra": {
            "aws_session_token": SESSION_TOKEN,
            "endpoint_url": aws,
            "service_config": {"sagemaker": {"endpoint_url": emu.endpoint}},
        },
    }
    source = DAG_SOURCE.format(request=json.dumps(sagemaker_request()))
    state, xcoms = airflow_home.run_dag("tiny_sagemaker", source,
                                        env={"AIRFLOW_CONN_AWS_HB": json.dumps(connection)})
    log = (airflow_home.home / "tiny_sagemaker.log").read_text()
    assert state == "success", log[-4000:]

    summary = xcoms["summary"]
    assert summary["status"] == "Completed" and sum(summary["trial_counts"].values()) == 6
    assert summary["trial_counts"].get("Stopped", 0) >= 1
    job = xcoms["best_training_job"]
    assert JOB_NAME_PATTERN.fullmatch(job) and job in emu.created
    assert len(emu.created) == len(set(emu.created))  # no training job created twice
    assert xcoms["model_artifacts"] == f"s3://hb-sm-test/output/{job}/output/model.tar.gz"
    assert xcoms["state_uri"] == f"s3://hb-sm-test/output/{xcoms['tuning_job_name']}/hyperband"
    s3 = client("s3", aws)
    s3.head_object(Bucket="hb-sm-test", Key=f"output/{job}/output/model.tar.gz")
    described = client("sagemaker", emu.endpoint).describe_training_job(TrainingJobName=job)
    assert described["TrainingJobStatus"] == "Completed"

    # The secrets: not in the task log, the XComs, the state store or the decisions, nor in the
    # metadata database, where Airflow stores the trigger's kwargs.
    prefix = f"output/{xcoms['tuning_job_name']}/hyperband/"
    stored = [s3.get_object(Bucket="hb-sm-test", Key=item["Key"])["Body"].read()
              for item in s3.list_objects_v2(Bucket="hb-sm-test", Prefix=prefix)["Contents"]]
    assert any(b"schema_version" in body for body in stored)
    database = (airflow_home.home / "airflow.db").read_bytes()
    for secret in (SECRET_KEY, SESSION_TOKEN):
        assert secret not in log
        assert secret not in json.dumps(xcoms)
        assert all(secret.encode() not in body for body in stored)
        assert secret.encode() not in database
    assert xcoms["tuning_job_name"].encode() in database  # the scan sees text the database stores

