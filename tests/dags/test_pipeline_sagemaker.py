"""The pipeline DAG on the SageMaker backend without AWS: training jobs on the SageMaker emulator,
S3, CloudWatch and the Model Registry on moto's server, all over HTTP on 127.0.0.1.

The connection is that of ``emulated.env``: ``aws_default`` sends its SageMaker calls to the
emulator, which runs the training jobs and passes the Model Registry's calls on to moto (which
implements them), and everything else to moto.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from typing import Any

from hb_emulator import Emulator
from tests.aws_fixtures import aws, client, emulator, make_bucket  # noqa: F401 - fixtures
from tests.dags.conftest import TINY, aws_environment, run_dag_file
from tests.hb_airflow.conftest import AirflowHome

BUCKET = "hb-dag-sagemaker"
S3_OUTPUT = f"s3://{BUCKET}/mlp"


def test_pipeline_runs_on_the_emulator_and_registers_in_moto(
    airflow_home: AirflowHome, aws: str, emulator: Callable[..., Emulator]  # noqa: F811
) -> None:
    make_bucket(aws, BUCKET)
    emulated = emulator(env={"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
    env = aws_environment(airflow_home, aws, training_endpoint=emulated.endpoint, s3_output=S3_OUTPUT,
                          model_package_group="mlp-sagemaker")
    conf = {**TINY, "backend": "sagemaker", "max_training_jobs": 3, "max_resource": 2, "instance_type": "ml.m5.large"}
    result = run_dag_file(airflow_home, "hyperband_tuning_pipeline", conf, env, label="pipeline-sagemaker")
    assert result.state == "success", result.log[-3000:]
    assert set(result.tasks.values()) == {"success"}

    tuning = result.xcom("tune", "summary")
    assert tuning["status"] == "Completed" and tuning["trials"] == 3
    assert result.xcom("tune", "state_uri") == f"{S3_OUTPUT}/{tuning['tuning_job_name']}/hyperband"
    retrained = result.xcom("retrain")
    tuning_jobs = [name for name in emulated.created if name.startswith(tuning["tuning_job_name"])]
    assert len(tuning_jobs) == 3 and emulated.created[-1] == retrained["training_job_name"]

    job: dict[str, Any] = emulated.job(retrained["training_job_name"])
    assert job["TrainingJobStatus"] == "Completed"
    assert job["HyperParameters"]["epochs"] == "2"  # MaxResource from the run's params
    assert job["ResourceConfig"]["InstanceType"] == "ml.m5.large"
    staged = result.xcom("prepare_data")
    assert job["HyperParameters"]["sagemaker_submit_directory"] == staged["submit_directory"]
    assert staged["submit_directory"].startswith(f"{S3_OUTPUT}/data/") and staged["submit_directory"].endswith(
        "/code/sourcedir.tar.gz")
    inputs = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job["InputDataConfig"]}
    assert inputs == {"train": staged["full"], "validation": staged["validation"]}  # retrained on train + validation

    assert retrained["model_artifacts"] == f"{S3_OUTPUT}/{retrained['training_job_name']}/output/model.tar.gz"
    evaluation = result.xcom("evaluate")
    assert 0.5 < evaluation["value"] <= 1
    registration = result.xcom("register")
    described = client("sagemaker", aws).describe_model_package(ModelPackageName=registration["model_package_arn"])
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == retrained["model_artifacts"]
    key = retrained["model_artifacts"].removeprefix(f"s3://{BUCKET}/")
    body = client("s3", aws).get_object(Bucket=BUCKET, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert "model.npz" in tar.getnames()  # the artifact the emulator uploaded is what was registered
    assert emulated.calls["CreateTrainingJob"] == 4
