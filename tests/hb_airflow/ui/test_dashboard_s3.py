"""The dashboard in a real ``airflow api-server`` whose state root is on S3 (a moto server over HTTP).

The jobs are written by the S3Store the SageMaker backend uses, at the backend's
default place (``<S3OutputPath>/<job>/hyperband``, the root being the
S3OutputPath). The API server reads them through the Amazon provider's
connection named by ``[hyperband] aws_conn_id``, given as an
``AIRFLOW_CONN_*`` variable whose extra points at moto.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from hb_core.backends.s3_store import S3Store
from hb_core.state import Decision, TuningState
from tests import aws_fixtures
from tests.aws_fixtures import REGION, aio_clients, client
from tests.hb_airflow.conftest import AirflowHome
from tests.hb_airflow.ui.jobs import save_job
from tests.hb_airflow.ui.server import ApiServer, api_server

moto_server = aws_fixtures.moto_server
BUCKET, OUTPUT = "ml-output", "hyperband-runs"
DONE = "s3-done-job"
PREFIX = f"{OUTPUT}/{DONE}/hyperband"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}


def _read(endpoint: str) -> tuple[TuningState, list[Decision]]:
    async def read() -> tuple[TuningState, list[Decision]]:
        store = S3Store(BUCKET, PREFIX, aio_clients(endpoint))
        try:
            state = await store.load()
            assert state is not None
            return state, await store.read_decisions()
        finally:
            await store.close()
    return asyncio.run(read())


@pytest.fixture(scope="module")
def s3_dashboard(airflow_home: AirflowHome, moto_server: str,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServer, str]]:
    with pytest.MonkeyPatch.context() as env:
        for name, value in CREDENTIALS.items():
            env.setenv(name, value)
        client("s3", moto_server).create_bucket(Bucket=BUCKET)
        save_job(tmp_path_factory.mktemp("unused"), DONE, store=S3Store(BUCKET, PREFIX, aio_clients(moto_server)))
        connection = {"conn_type": "aws", "login": "testing", "password": "testing",
                      "extra": {"endpoint_url": moto_server, "region_name": REGION}}
        server_env = {
            "AIRFLOW__HYPERBAND__STATE_ROOT": f"s3://{BUCKET}/{OUTPUT}",
            "AIRFLOW__HYPERBAND__AWS_CONN_ID": "hb_state",
            "AIRFLOW_CONN_HB_STATE": json.dumps(connection),
        }
        with api_server(airflow_home, "api-server-s3", server_env) as server:
            yield server, moto_server


def test_the_job_list_and_api_read_the_s3_state_root(s3_dashboard: tuple[ApiServer, str]) -> None:
    server, endpoint = s3_dashboard
    token = server.token("viewer")
    state, decisions = _read(endpoint)
    listed = server.json("/hyperband/api/jobs", token)
    assert listed["state_root"] == f"s3://{BUCKET}/{OUTPUT}"
    (row,) = listed["jobs"]
    assert row["tuning_job_name"] == DONE and row["trials"] == len(state.trials)
    assert state.finish is not None and row["best_trial_id"] == state.finish["best_trial_id"]
    job = server.json(f"/hyperband/api/jobs/{DONE}", token)
    assert job["config"] == state.config.to_dict()
    page = server.json(f"/hyperband/api/jobs/{DONE}/decisions?offset=3&limit=7", token)
    newest_first = list(reversed(decisions))
    assert page["total"] == len(decisions)
    assert [(d["action"], d["trial_id"]) for d in page["decisions"]] == [
        (d.action, d.trial_id) for d in newest_first[3:10]]
    status, _, html = server.request(f"/hyperband/jobs/{DONE}", token=token)
    assert status == 200 and b"<svg" in html and DONE.encode() in html


def test_an_s3_failure_is_a_502_naming_the_key_and_the_code(s3_dashboard: tuple[ApiServer, str]) -> None:
    server, endpoint = s3_dashboard
    token = server.token("viewer")
    s3 = client("s3", endpoint)
    body = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/state.json")["Body"].read()
    for key in [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]:
        s3.delete_object(Bucket=BUCKET, Key=key)
    s3.delete_bucket(Bucket=BUCKET)
    try:
        status, _, raw = server.request("/hyperband/api/jobs", token=token)
        assert status == 502, raw[:500]
        assert "NoSuchBucket" in json.loads(raw)["detail"] and f"s3://{BUCKET}/{OUTPUT}/" in json.loads(raw)["detail"]
        status, _, html = server.request("/hyperband/", token=token)
        assert status == 502 and b"NoSuchBucket" in html
    finally:
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/state.json", Body=body)  # the job, for tests after this one
