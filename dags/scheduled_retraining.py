"""
### Scheduled retraining: re-tune with a warm start when the data changes, or weekly

Runs every Monday at 04:00 UTC **or** as soon as the training-data asset
`<HYPERBAND_S3_OUTPUT>/incoming/` is updated (by an ingestion DAG whose task has
`outlets=[Asset("s3://.../incoming/")]`, or an asset event posted through the REST API),
whichever comes first. A real `prepare_data` reads that prefix; the MLP's data is
synthetic, so here it is regenerated.

Each run is the pipeline of `hyperband_tuning_pipeline` with three differences:

- **warm start**: the tuning request gets a `WarmStartConfig` whose parent is the
  tuning job of the last successful run of either DAG (recorded in the Variable
  `hyperband_mlp_last_run` by their `summary` task). `TransferLearning` by default, since
  the data has usually changed. The parent's trials feed the MultiFidelityGP sampler, so
  the new job proposes from what the last one learned; each run draws its own seed. With no
  previous run (or one on another backend) the job starts cold.
- **a smaller budget**: 20 training jobs instead of 60.
- **compare with production**: the new model is registered only when its held-out
  accuracy beats the approved version in the model package group (the model in
  production); otherwise `register` is skipped and production keeps its model.

Configured from the same environment variables as `hyperband_tuning_pipeline`.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, AssetOrTimeSchedule, CronTriggerTimetable, task

from hb_airflow.pipeline import load_request, stage_data, tuning_params, tuning_pipeline

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mlp"
S3_OUTPUT = os.environ.get("HYPERBAND_S3_OUTPUT", "s3://my-bucket/hyperband/mlp").rstrip("/")
ROLE_ARN = os.environ.get("HYPERBAND_ROLE_ARN", "arn:aws:iam::123456789012:role/SageMakerRole")
MODEL_PACKAGE_GROUP = os.environ.get("HYPERBAND_MODEL_PACKAGE_GROUP", "hyperband-mlp")
AWS_CONN_ID = os.environ.get("HYPERBAND_AWS_CONN_ID", "aws_default")
REGISTRY_CONN_ID = os.environ.get("HYPERBAND_REGISTRY_CONN_ID", AWS_CONN_ID)
BACKEND = os.environ.get("HYPERBAND_BACKEND", "sagemaker")
POLL_INTERVAL = float(os.environ.get("HYPERBAND_POLL_INTERVAL", "30"))
STATE_VARIABLE = "hyperband_mlp_last_run"  # shared with hyperband_tuning_pipeline
RETRAINING_BUDGET = 20
TRAINING_DATA = Asset(f"{S3_OUTPUT}/incoming/")  # where an ingestion job lands new training data
MODEL = Asset(f"sagemaker://model-package-group/{MODEL_PACKAGE_GROUP}")  # updated when a version is registered


def mlp_request(**limits: int) -> dict[str, Any]:
    """``examples/mlp/tuning.json`` with this deployment's role, output path and resource limits.

    For retraining, configurations come from the MultiFidelityGP sampler, which the warm start feeds
    with the parent's trials (the Random sampler would ignore them), and ``RandomSeed`` is
    dropped, so each run draws its own seed (a stable hash of its tuning job's name) instead of
    re-proposing the parent's configurations.
    """
    request = load_request(EXAMPLE / "tuning.json")
    definition = request["TrainingJobDefinition"]
    definition["RoleArn"] = ROLE_ARN
    definition["OutputDataConfig"]["S3OutputPath"] = S3_OUTPUT
    job = request["HyperParameterTuningJobConfig"]
    job["ResourceLimits"].update(limits)
    job["StrategyConfig"]["HyperbandStrategyConfig"]["Sampler"] = "MultiFidelityGP"
    job.pop("RandomSeed", None)
    return request


def _example(name: str) -> Any:
    """``examples/mlp/<name>.py``, imported when a task needs it (never at parse time)."""
    module = sys.modules.get(f"hb_mlp_{name}")
    if module is None:
        spec = importlib.util.spec_from_file_location(f"hb_mlp_{name}", EXAMPLE / f"{name}.py")
        assert spec is not None and spec.loader is not None, f"no module at {EXAMPLE / f'{name}.py'}"
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


def evaluate_mlp(model_dir: str) -> dict[str, float]:
    """Held-out accuracy and log loss of the MLP in ``model_dir``."""
    scores: dict[str, float] = _example("evaluate").evaluate(model_dir)
    return scores


REQUEST = mlp_request(MaxNumberOfTrainingJobs=RETRAINING_BUDGET)

with DAG(
    dag_id="hyperband_scheduled_retraining",
    description="Re-tune with a warm start from the last tuning job, retrain, register only if better",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 4 * * 1", timezone="UTC"),
        assets=[TRAINING_DATA],
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=1)},
    params=tuning_params(REQUEST, backend=BACKEND, approval_threshold=0.92, warm_start=True),
    tags=["hyperband", "sagemaker", "retraining"],
    doc_md=__doc__,
) as dag:

    @task(multiple_outputs=True)
    def prepare_data(params: dict[str, Any] | None = None, run_id: str | None = None) -> dict[str, str | None]:
        """Materialize the current data as channels (the MLP's data is synthetic: regenerated here)."""
        run = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(run_id)).strip("-")
        home = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))
        channels = _example("evaluate").write_channels(home / "hyperband-data" / "mlp" / run)
        assert params is not None, "Airflow passes the run's params"
        return stage_data(channels, backend=params["backend"], s3_prefix=f"{S3_OUTPUT}/data/{run}",
                          aws_conn_id=AWS_CONN_ID, code_dir=EXAMPLE, code_files=("train.py",))

    data = prepare_data()
    tuning_pipeline(
        REQUEST,
        base_dir=str(EXAMPLE),
        evaluate=evaluate_mlp,
        evaluation_metric="accuracy",
        model_package_group=MODEL_PACKAGE_GROUP,
        approval_threshold=0.92,
        backend=BACKEND,
        channels={"train": data["train"], "validation": data["validation"]},
        retrain_channels={"train": data["full"], "validation": data["validation"]},
        static_hyperparameters={"sagemaker_submit_directory": data["submit_directory"]},
        warm_start=True,
        state_variable=STATE_VARIABLE,
        model_asset=MODEL,
        aws_conn_id=AWS_CONN_ID,
        registry_conn_id=REGISTRY_CONN_ID,
        poll_interval=POLL_INTERVAL,
        group_id="retraining",
    )
