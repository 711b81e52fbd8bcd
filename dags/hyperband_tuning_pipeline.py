"""
### Hyperband tuning pipeline: the seed MLP from data to the SageMaker Model Registry

`prepare_data` -> **configure -> tune -> retrain -> evaluate -> compare -> register -> summary**

1. **prepare_data** writes the `train`, `validation` and `full` (train + validation)
   channels of `examples/mlp`; for the SageMaker backend it uploads them, and the
   training code as `sourcedir.tar.gz`, to S3.
2. **tune** runs a Hyperband tuning job (`examples/mlp/tuning.json`, an AMT request)
   with this run's params: backend, instance type, max parallel jobs, budget, MaxResource,
   target metric.
3. **retrain** trains the best hyperparameters at MaxResource on `full`.
4. **evaluate** scores the model on a held-out set that no training job saw
   (`examples/mlp/evaluate.py`).
5. **compare / register**: a new version in the model package group only when it beats
   the approved one; `Approved` when held-out accuracy meets `approval_threshold`, else
   `PendingManualApproval`. A skipped `register` means the new model was not better.
6. **summary** records the tuning job in the Variable `hyperband_mlp_last_run`, the warm
   start of `hyperband_scheduled_retraining`.

Configured from the environment (nothing is read at parse time but the request file):
`HYPERBAND_S3_OUTPUT`, `HYPERBAND_ROLE_ARN`, `HYPERBAND_MODEL_PACKAGE_GROUP`,
`HYPERBAND_AWS_CONN_ID` (training jobs and S3), `HYPERBAND_REGISTRY_CONN_ID` (Model
Registry), `HYPERBAND_BACKEND` (the default of the `backend` param) and
`HYPERBAND_POLL_INTERVAL` (seconds between controller rounds).
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
from airflow.sdk import DAG, Asset, task

from hb_airflow.pipeline import load_request, stage_data, tuning_params, tuning_pipeline

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mlp"
S3_OUTPUT = os.environ.get("HYPERBAND_S3_OUTPUT", "s3://my-bucket/hyperband/mlp").rstrip("/")
ROLE_ARN = os.environ.get("HYPERBAND_ROLE_ARN", "arn:aws:iam::123456789012:role/SageMakerRole")
MODEL_PACKAGE_GROUP = os.environ.get("HYPERBAND_MODEL_PACKAGE_GROUP", "hyperband-mlp")
AWS_CONN_ID = os.environ.get("HYPERBAND_AWS_CONN_ID", "aws_default")
REGISTRY_CONN_ID = os.environ.get("HYPERBAND_REGISTRY_CONN_ID", AWS_CONN_ID)
BACKEND = os.environ.get("HYPERBAND_BACKEND", "sagemaker")
POLL_INTERVAL = float(os.environ.get("HYPERBAND_POLL_INTERVAL", "30"))
STATE_VARIABLE = "hyperband_mlp_last_run"
MODEL = Asset(f"sagemaker://model-package-group/{MODEL_PACKAGE_GROUP}")  # updated when a version is registered


def mlp_request(**limits: int) -> dict[str, Any]:
    """``examples/mlp/tuning.json`` with this deployment's role, output path and resource limits."""
    request = load_request(EXAMPLE / "tuning.json")
    definition = request["TrainingJobDefinition"]
    definition["RoleArn"] = ROLE_ARN
    definition["OutputDataConfig"]["S3OutputPath"] = S3_OUTPUT
    request["HyperParameterTuningJobConfig"]["ResourceLimits"].update(limits)
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


REQUEST = mlp_request()

with DAG(
    dag_id="hyperband_tuning_pipeline",
    description="Prepare data, tune with Hyperband, retrain the best, evaluate, register in SageMaker",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=1)},
    params=tuning_params(REQUEST, backend=BACKEND, approval_threshold=0.92),
    tags=["hyperband", "sagemaker", "pipeline"],
    doc_md=__doc__,
) as dag:

    @task(multiple_outputs=True)
    def prepare_data(params: dict[str, Any] | None = None, run_id: str | None = None) -> dict[str, str | None]:
        """Write the channels; upload them and the code to S3 for the SageMaker backend."""
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
        state_variable=STATE_VARIABLE,
        model_asset=MODEL,
        aws_conn_id=AWS_CONN_ID,
        registry_conn_id=REGISTRY_CONN_ID,
        poll_interval=POLL_INTERVAL,
    )
