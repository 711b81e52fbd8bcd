"""The pipeline factory: params, the per-run request, the task graph, its tasks' checks, and the
model artifacts' round trip through S3 (moto's server). Whole DAG runs are in tests/dags/."""

from __future__ import annotations

import json
import math
import tarfile
from pathlib import Path
from typing import Any, cast

import pendulum
import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Asset, TriggerRule
from airflow.sdk.definitions.xcom_arg import PlainXComArg
from airflow.sdk.exceptions import ParamValidationError

from hb_airflow.artifacts import local_model_dir, publish_model, put_json
from hb_airflow.operators import HyperbandTuningOperator
from hb_airflow.pipeline import configure_request, stage_data, tuning_params, tuning_pipeline
from hb_airflow.registry import decide
from hb_airflow.trial import SageMakerTrialOperator
from hb_core import barrier
from hb_core.errors import ConfigError
from tests.aws_fixtures import aws, client, make_bucket, moto_server  # noqa: F401 - fixtures
from tests.hb_airflow.conftest import tiny_request

MLP_REQUEST = Path(__file__).resolve().parents[2] / "examples" / "mlp" / "tuning.json"


def request() -> dict[str, Any]:
    r = tiny_request()
    r["TrainingJobDefinition"].update({
        "RoleArn": "arn:aws:iam::123456789012:role/r", "OutputDataConfig": {"S3OutputPath": "s3://b/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10}})
    return r


# ---------------------------------------------------------------- params and the per-run request


def test_params_take_their_defaults_from_the_request_and_validate_input() -> None:
    params = tuning_params(MLP_REQUEST, backend="local", approval_threshold=0.9)
    assert {k: p.value for k, p in params.items()} == {
        "backend": "local", "instance_type": "ml.g5.xlarge", "max_parallel_jobs": 5, "max_training_jobs": 60,
        "objective_metric": "validation:accuracy", "objective_type": "Maximize", "approval_threshold": 0.9,
        "max_resource": 27}
    for name, bad in [("backend", "ec2"), ("max_parallel_jobs", 0), ("max_training_jobs", 0),
                      ("instance_type", "m5.large"), ("objective_metric", "f1"),
                      ("max_resource", 0), ("approval_threshold", "high")]:
        with pytest.raises(ParamValidationError):
            params[name].resolve(bad)
    assert params["approval_threshold"].resolve(None) is None
    assert "warm_start_type" in tuning_params(MLP_REQUEST, warm_start=True)
    with pytest.raises(ConfigError, match="backend"):
        tuning_params(MLP_REQUEST, backend="ec2")


def test_configure_applies_the_runs_params_channels_and_overrides() -> None:
    params = {"max_training_jobs": 7, "max_parallel_jobs": 3, "max_resource": 4, "instance_type": "ml.c5.xlarge",
              "objective_metric": "score", "objective_type": "Minimize", "backend": "local", "approval_threshold": 1}
    result = configure_request(request(), params, channels={"train": "/d/train", "validation": "/d/val"},
                               retrain_channels={"train": "/d/full", "validation": "/d/val"},
                               static_hyperparameters={"sleep": 0.5, "sagemaker_submit_directory": None})
    job = result["tuning_request"]["HyperParameterTuningJobConfig"]
    assert job["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 7, "MaxParallelTrainingJobs": 3}
    assert job["StrategyConfig"]["HyperbandStrategyConfig"]["MaxResource"] == 4
    assert job["HyperParameterTuningJobObjective"] == {"Type": "Minimize", "MetricName": "score"}
    definition = result["tuning_request"]["TrainingJobDefinition"]
    assert definition["StaticHyperParameters"]["epochs"] == "4" and definition["StaticHyperParameters"]["sleep"] == "0.5"
    assert definition["StaticHyperParameters"]["sagemaker_submit_directory"] == request()[
        "TrainingJobDefinition"]["StaticHyperParameters"]["sagemaker_submit_directory"]  # None keeps the request's
    assert definition["ResourceConfig"]["InstanceType"] == "ml.c5.xlarge"
    assert [c["DataSource"]["S3DataSource"] for c in definition["InputDataConfig"]] == [
        {"S3DataType": "S3Prefix", "S3DataDistributionType": "FullyReplicated", "S3Uri": "/d/train"},
        {"S3DataType": "S3Prefix", "S3DataDistributionType": "FullyReplicated", "S3Uri": "/d/val"}]
    assert result["retrain"] == {"static": {"epochs": "4", "sleep": "0.5",
                                            "sagemaker_submit_directory": definition["StaticHyperParameters"][
                                                "sagemaker_submit_directory"]},
                                 "channels": {"train": "/d/full", "validation": "/d/val"},
                                 "instance_type": "ml.c5.xlarge"}
    assert (result["max_resource"], result["s3_output_path"], result["warm_start_parent"]) == (4, "s3://b/out", None)
    assert "WarmStartConfig" not in result["tuning_request"]


def test_configure_keeps_the_request_where_params_are_missing_and_adds_the_warm_start() -> None:
    result = configure_request(request(), {"max_parallel_jobs": None, "warm_start_type": "IdenticalDataAndAlgorithm"},
                               parent="tiny-1234abcd")
    assert result["tuning_request"]["HyperParameterTuningJobConfig"] == request()["HyperParameterTuningJobConfig"]
    assert result["tuning_request"]["WarmStartConfig"] == {
        "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "tiny-1234abcd"}],
        "WarmStartType": "IdenticalDataAndAlgorithm"}
    assert result["warm_start_parent"] == "tiny-1234abcd" and result["retrain"]["channels"] == {}


@pytest.mark.parametrize(("params", "path"), [
    ({"max_resource": 0}, "HyperbandStrategyConfig"),
    ({"max_parallel_jobs": 0}, "ResourceLimits.MaxParallelTrainingJobs"),
    ({"objective_type": "Sideways"}, "HyperParameterTuningJobObjective.Type"),
])
def test_configure_rejects_a_bad_run_with_the_json_path(params: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError, match=path):
        configure_request(request(), params)


# ---------------------------------------------------------------- the task graph


def build(**options: Any) -> DAG:
    with DAG("factory", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False) as dag:
        tuning_pipeline(request(), **{"evaluate": lambda model_dir: {"score": 1.0}, "evaluation_metric": "score",
                                      "backend": "local", **options})
    return dag


def test_the_group_is_configure_tune_retrain_evaluate_compare_register_summary() -> None:
    model = Asset("sagemaker://model-package-group/tiny")
    dag = build(model_package_group="tiny", channels={"train": "/d/train"}, model_asset=model,
                static_hyperparameters={"sleep": "0"})
    upstream = {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks}
    assert upstream == {
        "configure": [], "tune": ["configure"], "retrain": ["configure", "tune"], "evaluate": ["retrain"],
        "compare": ["configure", "evaluate"], "register": ["compare", "configure", "evaluate"],
        "summary": ["evaluate", "register", "tune"]}
    assert dag.get_task("summary").trigger_rule == TriggerRule.NONE_FAILED  # runs when register is skipped
    assert dag.get_task("register").outlets == [model]
    retrain = cast(SageMakerTrialOperator, dag.get_task("retrain"))
    static = retrain.training_job_definition["StaticHyperParameters"]
    assert static["epochs"] == "{{ ti.xcom_pull(task_ids='configure', key='retrain')['static']['epochs'] }}"
    assert static["sleep"] == "{{ ti.xcom_pull(task_ids='configure', key='retrain')['static']['sleep'] }}"
    assert retrain.training_job_definition["ResourceConfig"]["InstanceType"].startswith("{{ ti.xcom_pull(")
    [channel] = retrain.training_job_definition["InputDataConfig"]
    assert channel["DataSource"]["S3DataSource"]["S3Uri"].endswith("['channels']['train'] }}")
    assert "best_hyperparameters" in retrain.hyperparameters
    tune = cast(HyperbandTuningOperator, dag.get_task("tune"))
    # at parse time both fields hold configure's XComArgs, not the dict | str they are rendered to
    request_arg, backend_arg = cast(PlainXComArg, tune.tuning_request), cast(PlainXComArg, tune.backend)
    assert (request_arg.key, backend_arg.key) == ("tuning_request", "backend")  # configure's XComs


def test_without_a_model_package_group_there_is_no_registry_step() -> None:
    dag = build()
    assert [t.task_id for t in dag.tasks] == ["configure", "tune", "retrain", "evaluate", "summary"]


def test_a_bad_factory_call_fails_when_the_dag_is_parsed() -> None:
    with pytest.raises(ConfigError, match="state_variable"):
        build(warm_start=True)
    broken = request()
    broken["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxParallelTrainingJobs"] = 0
    with pytest.raises(ConfigError, match="MaxParallelTrainingJobs"), DAG("broken", schedule=None):
        tuning_pipeline(broken, evaluate=lambda d: {}, evaluation_metric="score")
    with pytest.raises(ConfigError, match="tuning_request"), DAG("missing", schedule=None):
        tuning_pipeline("/no/such/request.json", evaluate=lambda d: {}, evaluation_metric="score")


@pytest.mark.parametrize("returned", [{"score": math.nan}, {"loss": 0.1}, {"score": "high"}])
def test_evaluate_fails_when_the_callable_returns_no_finite_metric(tmp_path: Path, returned: dict[str, Any]) -> None:
    dag = build(evaluate=lambda model_dir: returned)
    evaluate = cast(PythonOperator, dag.get_task("evaluate")).python_callable
    with pytest.raises(AirflowFailException, match="must return a finite 'score'"):
        evaluate({"model_artifacts": str(tmp_path), "training_job_name": "retrain-1-0000-1"})
    with pytest.raises(AirflowFailException, match="does not exist"):
        evaluate({"model_artifacts": str(tmp_path / "gone"), "training_job_name": "retrain-1-0000-1"})


def test_register_is_skipped_with_the_reason_when_the_model_is_not_better() -> None:
    register = cast(PythonOperator, build(model_package_group="tiny").get_task("register")).python_callable
    decision = decide(0.5, metric="score", champion=None, threshold=None).to_dict() | {
        "register": False, "approval_status": None, "reason": "score=0.5 does not beat the approved version 2"}
    with pytest.raises(AirflowSkipException, match="does not beat the approved version 2"):
        register(decision, {}, "s3://b/out")


# ---------------------------------------------------------------- model artifacts through S3 (moto)


@pytest.fixture
def s3_conn(aws: str, monkeypatch: pytest.MonkeyPatch) -> str:  # noqa: F811
    monkeypatch.setenv("AIRFLOW_CONN_HB_S3", json.dumps(
        {"conn_type": "aws", "extra": {"endpoint_url": aws, "region_name": "us-east-1"}}))
    make_bucket(aws, "artifacts")
    return "hb_s3"


def test_a_local_model_is_published_where_sagemaker_would_put_it_and_comes_back(
    tmp_path: Path, s3_conn: str, aws: str  # noqa: F811
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.npz").write_bytes(b"weights")
    url = publish_model(str(model), "s3://artifacts/out/", "retrain-1-0000-1", s3_conn)
    assert url == "s3://artifacts/out/retrain-1-0000-1/output/model.tar.gz"
    assert publish_model(url, None, "ignored", s3_conn) == url  # already on S3: as it is
    fetched = local_model_dir(url, s3_conn, tmp_path / "fetched")
    assert (fetched / "model.npz").read_bytes() == b"weights"
    assert local_model_dir(str(model), s3_conn, tmp_path) == model
    report = put_json("s3://artifacts/out/retrain-1-0000-1/output/evaluation.json", {"value": 0.9}, s3_conn)
    body = client("s3", aws).get_object(Bucket="artifacts", Key=report.removeprefix("s3://artifacts/"))["Body"]
    assert json.loads(body.read()) == {"value": 0.9}
    with pytest.raises(AirflowFailException, match="S3OutputPath must be an s3:// URI"):
        publish_model(str(model), None, "retrain-1-0000-1", s3_conn)


def test_stage_data_uploads_channels_and_code_for_sagemaker_only(tmp_path: Path, s3_conn: str, aws: str) -> None:  # noqa: F811
    channel = tmp_path / "train"
    (channel / "part").mkdir(parents=True)
    (channel / "part" / "train.npz").write_bytes(b"data")
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text("print('hi')\n")
    assert stage_data({"train": channel}, backend="local", s3_prefix="s3://artifacts/x") == {
        "train": str(channel), "submit_directory": None}
    staged = stage_data({"train": channel}, backend="sagemaker", s3_prefix="s3://artifacts/run-1/",
                        aws_conn_id=s3_conn, code_dir=code, code_files=("train.py",))
    assert staged == {"train": "s3://artifacts/run-1/train/",
                      "submit_directory": "s3://artifacts/run-1/code/sourcedir.tar.gz"}
    s3 = client("s3", aws)
    assert s3.get_object(Bucket="artifacts", Key="run-1/train/part/train.npz")["Body"].read() == b"data"
    archive = tmp_path / "sourcedir.tar.gz"
    archive.write_bytes(s3.get_object(Bucket="artifacts", Key="run-1/code/sourcedir.tar.gz")["Body"].read())
    with tarfile.open(archive) as tar:  # the script and the barrier's helper, which the container lacks
        assert tar.getnames() == ["train.py", "barrier.py"]
        tar.extractall(tmp_path / "unpacked", filter="data")
    assert (tmp_path / "unpacked" / "barrier.py").read_text() == Path(barrier.__file__).read_text()
