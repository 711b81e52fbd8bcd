"""The DAG templates run end to end with ``dag.test()``: trials are local processes (the MLP of
``examples/mlp`` with tiny budgets), the SageMaker Model Registry and S3 are moto's server over HTTP.

The first pipeline run registers its model (no approved model yet); the retraining DAG then
warm-starts from that run's tuning job and, facing a better approved model, skips registration; a
pipeline run facing a worse approved model registers, pending review below the approval threshold.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from hb_airflow.registry import METRIC_KEY, TRAINING_JOB_KEY, TUNING_JOB_KEY, VALUE_KEY
from tests.aws_fixtures import client
from tests.dags.conftest import TINY, DagResult, aws_environment, run_dag_file
from tests.hb_airflow.conftest import AirflowHome

BUCKET = "hb-dag-tests"
S3_OUTPUT = f"s3://{BUCKET}/mlp"
PIPELINE_TASKS = {"prepare_data", "configure", "tune", "retrain", "evaluate", "compare", "register", "summary"}


@pytest.fixture(scope="module")
def environment(airflow_home: AirflowHome, moto_server: str) -> Any:
    client("s3", moto_server).create_bucket(Bucket=BUCKET)

    def make(group: str) -> dict[str, str]:
        return aws_environment(airflow_home, moto_server, s3_output=S3_OUTPUT, model_package_group=group)

    return make


@pytest.fixture(scope="module")
def first_run(airflow_home: AirflowHome, environment: Any) -> DagResult:
    """The pipeline DAG, once, into an empty model package group."""
    return run_dag_file(airflow_home, "hyperband_tuning_pipeline", TINY, environment("mlp-first"),
                        label="pipeline-first")


def seed_approved(moto: str, group: str, accuracy: float) -> str:
    """An approved version of ``group`` recording ``accuracy``, as an earlier pipeline run would leave it."""
    sagemaker = client("sagemaker", moto)
    groups = sagemaker.list_model_package_groups(NameContains=group)["ModelPackageGroupSummaryList"]
    if not any(g["ModelPackageGroupName"] == group for g in groups):
        sagemaker.create_model_package_group(ModelPackageGroupName=group)
    arn: str = sagemaker.create_model_package(
        ModelPackageGroupName=group, ModelApprovalStatus="Approved", ModelPackageDescription="seeded (production)",
        InferenceSpecification={"Containers": [{"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/mlp:1",
                                                "ModelDataUrl": f"{S3_OUTPUT}/seeded/model.tar.gz"}],
                                "SupportedContentTypes": ["application/json"],
                                "SupportedResponseMIMETypes": ["application/json"]},
        CustomerMetadataProperties={METRIC_KEY: "accuracy", VALUE_KEY: repr(accuracy)})["ModelPackageArn"]
    return arn


def versions(moto: str, group: str) -> list[dict[str, Any]]:
    page = client("sagemaker", moto).list_model_packages(ModelPackageGroupName=group, SortBy="CreationTime",
                                                          SortOrder="Ascending", MaxResults=100)
    summaries: list[dict[str, Any]] = page["ModelPackageSummaryList"]
    return summaries


def s3_object(moto: str, url: str) -> bytes:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    body: bytes = client("s3", moto).get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def test_pipeline_registers_its_model_when_none_is_approved(first_run: DagResult, moto_server: str) -> None:
    assert first_run.state == "success", first_run.log[-3000:]
    assert first_run.tasks == {task: "success" for task in PIPELINE_TASKS}

    request = first_run.xcom("configure", "tuning_request")
    config = request["HyperParameterTuningJobConfig"]
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2}  # from params
    assert config["StrategyConfig"]["HyperbandStrategyConfig"]["MaxResource"] == 3
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
                for c in request["TrainingJobDefinition"]["InputDataConfig"]}
    assert set(channels) == {"train", "validation"} and all(Path(uri).is_dir() for uri in channels.values())
    assert "WarmStartConfig" not in request

    tuning = first_run.xcom("tune", "summary")
    assert tuning["status"] == "Completed" and tuning["trials"] == 4
    retrained = first_run.xcom("retrain")
    assert retrained["status"] == "Completed"
    assert retrained["resource"] == 3  # MaxResource: every epoch of the budget
    assert retrained["hyperparameters"] == {k: str(v) for k, v in tuning["best_hyperparameters"].items()}
    assert first_run.xcom("configure", "retrain")["channels"]["train"].endswith("/full")  # train + validation

    evaluation = first_run.xcom("evaluate")
    assert evaluation["metric"] == "accuracy" and 0.5 < evaluation["value"] <= 1
    assert evaluation["metrics"]["n"] == 2000
    decision = first_run.xcom("compare")
    assert decision["register"] and decision["approval_status"] == "Approved" and decision["champion"] is None

    registration = first_run.xcom("register")
    assert registration["created"] and registration["model_package_version"] == 1
    [version] = versions(moto_server, "mlp-first")
    assert version["ModelPackageArn"] == registration["model_package_arn"]
    described = client("sagemaker", moto_server).describe_model_package(ModelPackageName=version["ModelPackageArn"])
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["CustomerMetadataProperties"] == {
        METRIC_KEY: "accuracy", VALUE_KEY: repr(evaluation["value"]),
        TRAINING_JOB_KEY: retrained["training_job_name"], TUNING_JOB_KEY: tuning["tuning_job_name"]}
    model_url = described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    assert model_url == f"{S3_OUTPUT}/{retrained['training_job_name']}/output/model.tar.gz"
    with tarfile.open(fileobj=io.BytesIO(s3_object(moto_server, model_url))) as tar:
        assert tar.getnames() == ["model.npz"]  # the local model directory, packed as SageMaker would
    report_url = described["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    assert json.loads(s3_object(moto_server, report_url))["value"] == evaluation["value"]

    recorded = first_run.variable_after
    assert recorded["tuning_job_name"] == tuning["tuning_job_name"] and recorded["backend"] == "local"
    assert (Path(recorded["state_uri"]) / "state.json").is_file()
    assert first_run.xcom("summary")["registration"] == registration


def test_retraining_warm_starts_and_keeps_a_better_production_model(
    first_run: DagResult, airflow_home: AirflowHome, environment: Any, moto_server: str
) -> None:
    assert first_run.state == "success"
    production = seed_approved(moto_server, "mlp-first", 0.999)
    result = run_dag_file(airflow_home, "scheduled_retraining", TINY, environment("mlp-first"),
                          label="retraining-not-better")
    assert result.state == "success", result.log[-3000:]
    assert result.tasks == {**{task: "success" for task in PIPELINE_TASKS}, "register": "skipped"}

    parent = result.variable_before["tuning_job_name"]
    assert result.xcom("configure", "warm_start_parent") == parent
    request = result.xcom("configure", "tuning_request")
    assert request["WarmStartConfig"] == {"ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": parent}],
                                          "WarmStartType": "TransferLearning"}
    assert request["HyperParameterTuningJobConfig"]["StrategyConfig"]["HyperbandStrategyConfig"]["Sampler"] == "MultiFidelityGP"
    tuning = result.xcom("tune", "summary")
    assert tuning["status"] == "Completed" and tuning["tuning_job_name"] != parent
    assert tuning["best_hyperparameters"] != first_run.xcom("tune", "summary")["best_hyperparameters"]  # own seed

    decision = result.xcom("compare")
    assert not decision["register"] and decision["champion"]["arn"] == production
    assert "does not beat the approved version" in decision["reason"]
    assert decision["reason"] in result.log  # the skipped task says why
    assert [v["ModelPackageArn"] for v in versions(moto_server, "mlp-first")][-1] == production  # nothing new
    assert result.xcom("summary")["registration"] is None
    assert result.variable_after["tuning_job_name"] == tuning["tuning_job_name"]  # the next run's parent


def test_pipeline_registers_a_better_model_pending_review_below_the_threshold(
    airflow_home: AirflowHome, environment: Any, moto_server: str
) -> None:
    production = seed_approved(moto_server, "mlp-pending", 0.1)
    result = run_dag_file(airflow_home, "hyperband_tuning_pipeline", {**TINY, "approval_threshold": 0.99},
                          environment("mlp-pending"), label="pipeline-pending")
    assert result.state == "success", result.log[-3000:]
    assert result.tasks == {task: "success" for task in PIPELINE_TASKS}
    decision = result.xcom("compare")
    assert decision["register"] and decision["approval_status"] == "PendingManualApproval"
    assert decision["champion"]["arn"] == production and "misses the approval threshold 0.99" in decision["reason"]
    seeded, registered = versions(moto_server, "mlp-pending")
    assert seeded["ModelPackageArn"] == production
    assert registered["ModelPackageArn"] == result.xcom("register")["model_package_arn"]
    assert registered["ModelApprovalStatus"] == "PendingManualApproval"  # production keeps its model
