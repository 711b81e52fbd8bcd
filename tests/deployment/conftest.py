"""One real Airflow deployment per test module: api-server, scheduler, dag-processor and triggerer.

Started by :class:`deploy.local_airflow.LocalAirflow` (the code ``make airflow``
runs) in a temp home, with the tuning DAGs of :data:`DAGS` (or the test
module's own ``DEPLOYMENT_DAGS``) and every
component's trial launches appended to ``<home>/launches.txt``. Tests drive it
through the public REST API as a user would (:class:`Deployment`); the
teardown stops every component and checks that no process it started (the
components' groups, every trial's supervisor) is left.

``hb_sagemaker`` tunes on SageMaker: its test starts a moto server and the
SageMaker training-job emulator in the test process (both on 127.0.0.1) and
creates, through the REST API, the Airflow AWS connection whose
``endpoint_url`` is the emulator (which serves SageMaker and proxies S3,
CloudWatch and Logs to moto), as a user points a deployment at AWS.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from deploy.local_airflow import LocalAirflow
from tests.aws_fixtures import REGION, ROLE
from tests.hb_airflow.conftest import live_group_members, tiny_request

T = TypeVar("T")

DAG_SOURCE = """
import json
import pendulum
from airflow.sdk import DAG
from hb_airflow.operators import HyperbandTuningOperator

OPTIONS = json.loads({options!r})
for dag_id, request in json.loads({dags!r}).items():
    with DAG(dag_id=dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False) as dag:
        HyperbandTuningOperator(task_id="tune", tuning_request=request, poll_interval=0.5, deferrable=True,
                                **OPTIONS.get(dag_id, {{"backend": "local"}}))
    globals()[dag_id] = dag
"""

SCRIPTS = Path(__file__).parent / "scripts"


def checkpointing_request(name: str, stop_seconds: float, **kwargs: Any) -> dict[str, Any]:
    """A tiny request whose training jobs take ``stop_seconds`` to save a checkpoint when stopped."""
    request = tiny_request(name=name, **kwargs)
    static = request["TrainingJobDefinition"]["StaticHyperParameters"]
    static |= {"sagemaker_program": "checkpointing.py", "sagemaker_submit_directory": str(SCRIPTS),
               "stop_seconds": str(stop_seconds)}
    return request


def sagemaker_request(name: str, stop_seconds: float, **kwargs: Any) -> dict[str, Any]:
    """:func:`checkpointing_request` as SageMaker training jobs (the emulator runs the same script), its
    output (and so its state, ``<S3OutputPath>/<job>/hyperband``) in the bucket :data:`BUCKET`."""
    request = checkpointing_request(name, stop_seconds, **kwargs)
    request["TrainingJobDefinition"].update({
        "RoleArn": ROLE,
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
    })
    return request


#: The bucket of the SageMaker DAG's output and state (in moto), and the Airflow AWS connection it uses.
BUCKET, AWS_CONN_ID = "hb-deployment", "aws_hb"

#: DAG id -> its tuning request. ``hb_fast`` ends in seconds (not less: a trigger that fires before the scheduler
#: has seen the deferring worker exit meets Airflow's stale-success race, apache/airflow#66374/#72716); ``hb_slow`` runs ~20 s; ``hb_long`` a minute or
#: more, and its stops land 4 s after they are sent; ``hb_sagemaker`` is ``hb_long`` on SageMaker (the emulator),
#: with 27 s training jobs, their stops landing 3 s after they are sent; ``hb_sagemaker_held``'s land at once,
#: or, while the file ``HB_TEST_STOP_HOLD`` (in the emulator's environment) names exists, when the test removes it.
DAGS = {
    "hb_fast": tiny_request(name="fast", jobs=6, parallel=2, max_resource=9, sleep=0.3),
    "hb_slow": tiny_request(name="slow", jobs=8, parallel=2, max_resource=9, sleep=0.4),
    "hb_long": checkpointing_request("long", 4.0, jobs=9, parallel=3, max_resource=27, sleep=0.5),
    "hb_sagemaker": sagemaker_request("smlong", 3.0, jobs=9, parallel=3, max_resource=27, sleep=1.0),
    "hb_sagemaker_held": sagemaker_request("smheld", 120.0, jobs=9, parallel=3, max_resource=27, sleep=1.0),
}
#: The operator's arguments by DAG id (default: the local backend).
SAGEMAKER = {"backend": "sagemaker", "aws_conn_id": AWS_CONN_ID, "region_name": REGION,
             "backend_options": {"metric_source": "logs"}}
OPTIONS = {"hb_sagemaker": SAGEMAKER, "hb_sagemaker_held": SAGEMAKER}

ENDED_RUN_STATES = ("success", "failed")


@dataclass
class Deployment:
    airflow: LocalAirflow
    token: str
    #: what the tests left for the dashboard test: tuning job name -> the status its run ended with
    runs: dict[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------ REST

    def api(self, method: str, path: str, body: Any = None, *, expect: int | tuple[int, ...] = 200) -> Any:
        status, raw = self.airflow.request(method, path, body, token=self.token)
        wanted = (expect,) if isinstance(expect, int) else expect
        assert status in wanted, f"{method} {path}: {status} {raw[:500]!r}"
        return json.loads(raw) if raw else None

    def trigger(self, dag_id: str) -> str:
        """Unpause ``dag_id`` and trigger a run, as a user does in the UI; the run id."""
        self.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        run = self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None})
        return str(run["dag_run_id"])

    def trigger_deferred(self, dag_id: str) -> tuple[str, str]:
        """Trigger ``dag_id`` and wait until its tuning task has deferred; (run id, tuning job name)."""
        run_id = self.trigger(dag_id)
        name = self.job_name(dag_id, run_id)
        self.wait(lambda: self.task(dag_id, run_id)["state"] == "deferred", 120, "the task defers")
        return run_id, name

    def task(self, dag_id: str, run_id: str) -> dict[str, Any]:
        quoted = urllib.parse.quote(run_id, safe="")
        return self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances/tune")  # type: ignore[no-any-return]

    def run_state(self, dag_id: str, run_id: str) -> str:
        quoted = urllib.parse.quote(run_id, safe="")
        return str(self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quoted}")["state"])

    def xcom(self, dag_id: str, run_id: str, key: str) -> Any:
        quoted = urllib.parse.quote(run_id, safe="")
        entry = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances/tune/xcomEntries/{key}",
                         expect=(200, 404))
        return None if entry is None or "value" not in entry else entry["value"]

    def task_log(self, dag_id: str, run_id: str, try_number: int = 1) -> str:
        """The task's log as the UI shows it (the worker's part and the triggerer's), as text."""
        quoted = urllib.parse.quote(run_id, safe="")
        body = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances/tune/logs/{try_number}"
                               "?full_content=true")
        return json.dumps(body)

    def job_name(self, dag_id: str, run_id: str, timeout: float = 120.0) -> str:
        """The tuning job's name, from the ``tuning_job_name`` XCom the task pushes first."""
        return str(self.wait(lambda: self.xcom(dag_id, run_id, "tuning_job_name"), timeout,
                             f"{dag_id} {run_id}: tuning_job_name XCom"))

    def job(self, name: str) -> dict[str, Any]:
        """The dashboard's view of one tuning job (its JSON API)."""
        return self.api("GET", f"/hyperband/api/jobs/{name}")  # type: ignore[no-any-return]

    def trials(self, name: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/hyperband/api/jobs/{name}/trials")["trials"]  # type: ignore[no-any-return]

    def wait_run_ended(self, dag_id: str, run_id: str, timeout: float = 180.0) -> str:
        return self.wait(lambda: (s := self.run_state(dag_id, run_id)) in ENDED_RUN_STATES and s, timeout,
                         f"{dag_id} {run_id} ends")

    def aws_connection(self, endpoint: str) -> None:
        """Create (or update) the connection :data:`AWS_CONN_ID`: every AWS call to ``endpoint``, dummy
        credentials."""
        body = {"connection_id": AWS_CONN_ID, "conn_type": "aws", "login": "testing", "password": "testing",
                "extra": json.dumps({"endpoint_url": endpoint, "region_name": REGION})}
        status, raw = self.airflow.request("POST", "/api/v2/connections", body, token=self.token)
        if status == 409:  # an earlier test made it: point it at this endpoint
            self.api("PATCH", f"/api/v2/connections/{AWS_CONN_ID}", body)
        else:
            assert status == 201, f"POST /api/v2/connections: {status} {raw[:500]!r}"

    # ------------------------------------------------------------ the machine

    @property
    def state_root(self) -> Path:
        return self.airflow.home / "hyperband"

    def launches(self, name: str) -> list[str]:
        """Training jobs of tuning job ``name`` launched so far (each process appends its name at start)."""
        path = self.airflow.home / "launches.txt"
        lines = path.read_text().split() if path.exists() else []
        return [line for line in lines if line.startswith(f"{name}-")]

    def live_trials(self, name: str | None = None) -> list[int]:
        """Pids still alive in the process groups of the trials of ``name`` (every job when None)."""
        root = self.state_root / name if name else self.state_root
        live: list[int] = []
        for record in root.rglob("pid.json"):
            try:
                pid = json.loads(record.read_text()).get("pid")
            except (OSError, ValueError):
                continue
            if pid:
                live += live_group_members(int(pid))
        return live

    def wait(self, predicate: Callable[[], T | None | bool], timeout: float, what: str) -> T:
        """Poll ``predicate`` (every 0.5 s, at most ``timeout`` s) until it returns something truthy."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.airflow.check_alive()
            value = predicate()
            if value:
                return value  # type: ignore[return-value]
            time.sleep(0.5)
        raise AssertionError(f"not reached within {timeout:.0f} s: {what}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def deployment(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The deployment of the test module, with the DAGs of its ``DEPLOYMENT_DAGS`` and ``DEPLOYMENT_OPTIONS``
    when it has them, else :data:`DAGS` and :data:`OPTIONS`."""
    dag_requests = getattr(request.module, "DEPLOYMENT_DAGS", DAGS)
    options = getattr(request.module, "DEPLOYMENT_OPTIONS", OPTIONS)
    home = tmp_path_factory.mktemp("deployment")
    dags = home / "dags"
    dags.mkdir()
    (dags / "hb_deployment.py").write_text(DAG_SOURCE.format(dags=json.dumps(dag_requests),
                                                             options=json.dumps(options)))
    airflow = LocalAirflow(home, dags, _free_port(), extra_env={
        "HB_TEST_LAUNCHES": str(home / "launches.txt"),
        # a killed triggerer's triggers move to the next one after this long without a heartbeat
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "8",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
    })
    try:
        airflow.start_all()
        deployment = Deployment(airflow, airflow.token())
        for dag_id in dag_requests:
            def parsed(d: str = dag_id) -> bool:
                return airflow.request("GET", f"/api/v2/dags/{d}", token=deployment.token)[0] == 200

            deployment.wait(parsed, 120, f"DAG {dag_id} parsed")
        yield deployment
    finally:
        airflow.stop()
    components = [pid for group in airflow.groups for pid in live_group_members(group)]
    trials = Deployment(airflow, "").live_trials()
    assert not components and not trials, f"outlived the deployment: components {components}, trials {trials}"
