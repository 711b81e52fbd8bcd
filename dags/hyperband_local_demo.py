"""Hyperband on your laptop: the seed article's MLP experiment, tuned with local trial processes.

The request in ``examples/mlp/tuning.json`` is the same ``CreateHyperParameterTuningJob``
body you would send to SageMaker; ``backend="local"`` runs each trial as a local process
with SageMaker script mode's environment. ``make demo`` runs this DAG with
``airflow dags test``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from hb_airflow.operators import HyperbandTuningOperator
from hb_core.report import format_summary

REQUEST = Path(__file__).resolve().parent.parent / "examples" / "mlp" / "tuning.json"

with DAG(
    dag_id="hyperband_local_demo",
    description="Tune the seed MLP with Hyperband on local trial processes",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["hyperband", "demo"],
    doc_md=__doc__,
) as dag:
    tune = HyperbandTuningOperator(
        task_id="tune",
        tuning_request=str(REQUEST),
        backend="local",
        poll_interval=1.0,
        deferrable=True,
    )

    @task
    def report(summary: dict[str, Any]) -> str:
        """Print the tuning job's result where the task log (and `make demo`) shows it."""
        text = format_summary(summary)
        print(text)
        return text

    report(tune.output["summary"])
