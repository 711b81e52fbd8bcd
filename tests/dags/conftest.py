"""Run the real DAG files of ``dags/`` with ``dag.test()`` in a subprocess, against moto's server.

``run_dag_file(home, path, conf, env)`` imports the DAG file, runs it with ``run_conf``
(the trigger form's params) and returns the run's state, every task's state, every
XCom and the Variable the pipeline records, as read back from the metadata database.
Every AWS call goes to loopback endpoints with dummy credentials.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.aws_fixtures import moto_server  # noqa: F401 - a fixture
from tests.hb_airflow.conftest import AirflowHome, airflow_home  # noqa: F401 - a fixture

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
REGION = "us-east-1"
STATE_VARIABLE = "hyperband_mlp_last_run"
#: The trigger-form params of a run small enough for a test: 4 MLP configurations of at most 3 epochs.
TINY = {"backend": "local", "max_training_jobs": 4, "max_parallel_jobs": 2, "max_resource": 3,
        "approval_threshold": 0.5}

DRIVER = textwrap.dedent("""
    import importlib.util, json, sys
    from sqlalchemy import select

    path, conf, variable, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]

    def read_variable():
        from airflow.models.variable import Variable
        from airflow.utils.session import create_session
        with create_session() as session:
            row = session.scalar(select(Variable).where(Variable.key == variable))
            return None if row is None else json.loads(row.val)

    before = read_variable()
    spec = importlib.util.spec_from_file_location("dag_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run = module.dag.test(run_conf=conf)

    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    with create_session() as session:
        where = (TaskInstance.run_id == run.run_id, TaskInstance.dag_id == run.dag_id)
        tasks = {ti.task_id: str(ti.state) for ti in session.scalars(select(TaskInstance).where(*where))}
        rows = session.scalars(select(XComModel).where(XComModel.run_id == run.run_id,
                                                       XComModel.dag_id == run.dag_id))
        xcoms = {f"{x.task_id}:{x.key}": XComModel.deserialize_value(x) for x in rows}
    result = {"state": str(run.state), "tasks": tasks, "xcoms": xcoms, "variable_before": before,
              "variable_after": read_variable()}
    with open(out, "w") as handle:
        json.dump(result, handle, default=str)
""")


@dataclass
class DagResult:
    state: str
    tasks: dict[str, str]
    xcoms: dict[str, Any]
    variable_before: Any
    variable_after: Any
    log: str

    def xcom(self, task_id: str, key: str = "return_value") -> Any:
        return self.xcoms.get(f"{task_id}:{key}")


def aws_environment(home: AirflowHome, moto: str, *, training_endpoint: str | None = None,
                    **settings: str) -> dict[str, str]:
    """The DAG run's environment: dummy credentials, the one connection ``aws_default`` on moto (its
    SageMaker calls on ``training_endpoint`` when given: the connection of emulated.env, whose emulator
    passes the registry's calls on to moto), and the DAG templates' ``HYPERBAND_*`` settings."""
    assert moto.startswith("http://127.0.0.1:"), moto
    env = {k: v for k, v in home.env.items()
           if not k.startswith(("AWS_", "HYPERBAND_", "AIRFLOW_CONN_"))}
    extra: dict[str, Any] = {"endpoint_url": moto, "region_name": REGION,
                             "config_kwargs": {"s3": {"addressing_style": "path"}}}
    if training_endpoint:
        assert training_endpoint.startswith("http://127.0.0.1:"), training_endpoint
        extra["service_config"] = {"sagemaker": {"endpoint_url": training_endpoint}}
    connection = {"conn_type": "aws", "extra": extra}
    env.update({
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(home.home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home.home / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(connection),
        "HYPERBAND_REGISTRY_CONN_ID": "aws_default",
        "HYPERBAND_POLL_INTERVAL": "0.5",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),  # dag.test() serializes the DAG from its bundle
        "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
    })
    env.update({f"HYPERBAND_{key.upper()}": value for key, value in settings.items()})
    return env


def run_dag_file(home: AirflowHome, name: str, conf: Mapping[str, Any], env: Mapping[str, str], *,
                 label: str | None = None, timeout: float = 600) -> DagResult:
    """Run ``dags/<name>.py`` with ``dag.test(run_conf=conf)``; the log is kept as ``<home>/<label>.log``."""
    label = label or name
    out = home.home / f"{label}.result.json"
    out.unlink(missing_ok=True)
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(DAGS / f"{name}.py"), json.dumps(dict(conf)), STATE_VARIABLE, str(out)],
        env=dict(env), check=False, capture_output=True, text=True, timeout=timeout,
        cwd=str(home.home))  # not the repo root: its stale *.egg-info would list the plugin entry point twice
    log = done.stdout + done.stderr
    (home.home / f"{label}.log").write_text(log)
    assert done.returncode == 0 and out.exists(), log[-5000:]
    data = json.loads(out.read_text())
    return DagResult(data["state"], data["tasks"], data["xcoms"], data["variable_before"], data["variable_after"],
                     log)
