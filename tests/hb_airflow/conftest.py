"""A real Airflow for the tests: a temp AIRFLOW_HOME with SQLite, migrated once per session.

DAG runs go through ``dag.test()`` in a subprocess, so Airflow reads this home's
configuration from the environment at import time, as it would in production.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "hb_core" / "backends" / "scripts"


@dataclass
class AirflowHome:
    home: Path
    dags: Path
    env: dict[str, str]

    def run_dag(self, module: str, source: str, *, timeout: float = 600,
                env: dict[str, str] | None = None) -> tuple[str, dict[str, Any]]:
        """Write a DAG file, run it with ``dag.test()``, return (dag run state, what its dump task wrote).

        ``env`` adds variables for this run only (an ``AIRFLOW_CONN_*`` connection, say)."""
        (self.dags / f"{module}.py").write_text(textwrap.dedent(source))
        out = self.home / f"{module}.out.json"
        out.unlink(missing_ok=True)
        driver = (
            "import importlib, sys\n"
            f"sys.path.insert(0, {str(self.dags)!r})\n"
            f"dag = importlib.import_module({module!r}).dag\n"
            "run = dag.test()\n"
            "print('DAGRUN_STATE', run.state)\n"
        )
        env = {**self.env, **(env or {}), "HB_TEST_OUT": str(out)}
        done = subprocess.run([sys.executable, "-c", driver], env=env, capture_output=True, text=True,
                              timeout=timeout)
        log = done.stdout + done.stderr
        (self.home / f"{module}.log").write_text(log)
        assert done.returncode == 0, log[-5000:]
        state = next((line.split()[-1] for line in done.stdout.splitlines() if line.startswith("DAGRUN_STATE")), "")
        return state, (json.loads(out.read_text()) if out.exists() else {})


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> AirflowHome:
    home = tmp_path_factory.mktemp("airflow_home")
    dags = home / "dags"
    dags.mkdir()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    airflow = Path(sys.executable).with_name("airflow")
    done = subprocess.run([str(airflow), "db", "migrate"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return AirflowHome(home, dags, env)


def tiny_request(*, name: str = "tiny", jobs: int = 8, parallel: int = 2, max_resource: int = 9,
                 sleep: float = 0.05, seed: int = 0, script: str = "epochs.py") -> dict[str, Any]:
    """A small Hyperband request over one parameter x, trained by the test script ``epochs.py``."""
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Hyperband",
            "StrategyConfig": {"HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": max_resource}},
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "score"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": jobs, "MaxParallelTrainingJobs": parallel},
            "ParameterRanges": {
                "ContinuousParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "1", "ScalingType": "Linear"}]
            },
            "TrainingJobEarlyStoppingType": "Off",
            "RandomSeed": seed,
        },
        "TrainingJobDefinition": {
            "StaticHyperParameters": {
                "sagemaker_program": script,
                "sagemaker_submit_directory": str(SCRIPTS),
                "epochs": str(max_resource),
                "sleep": str(sleep),
            },
            "AlgorithmSpecification": {
                "TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/tiny:latest",
                "TrainingInputMode": "File",
                "MetricDefinitions": [{"Name": "score", "Regex": "score=([0-9.]+)"}],
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        },
    }
