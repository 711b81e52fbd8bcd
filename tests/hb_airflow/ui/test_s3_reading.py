"""The dashboard's S3 reader against a real moto server over HTTP: jobs the S3Store wrote, read back as the
dashboard does, page by page, and through the Amazon provider's connection the API server would use."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hb_airflow.ui.jobs import BadJobName, StateRootUnavailable, UnknownJob
from hb_airflow.ui.s3_jobs import BODY_ATTEMPTS, S3StateRoot
from hb_core.backends.s3_store import S3Store
from hb_core.errors import ConfigError
from hb_core.state import Decision, TuningState
from hb_emulator import Emulator, Faults
from tests import aws_fixtures
from tests.aws_fixtures import REGION, aio_clients, client
from tests.hb_airflow.ui.jobs import save_job

moto_server = aws_fixtures.moto_server
BUCKET = "hb-output"
ROOT = f"s3://{BUCKET}/tuning"
DONE, LIVE = "done-job", "live-job"


class Jobs:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def store(self, prefix: str) -> S3Store:
        return S3Store(BUCKET, prefix, aio_clients(self.endpoint))

    def state(self, prefix: str) -> TuningState:
        async def load() -> TuningState:
            store = self.store(prefix)
            try:
                state = await store.load()
                assert state is not None
                return state
            finally:
                await store.close()
        return asyncio.run(load())

    def decisions(self, prefix: str) -> list[Decision]:
        async def read() -> list[Decision]:
            store = self.store(prefix)
            try:
                return await store.read_decisions()
            finally:
                await store.close()
        return asyncio.run(read())

    def root(self, **kwargs: Any) -> S3StateRoot:
        return S3StateRoot(ROOT, client("s3", self.endpoint), **kwargs)


@pytest.fixture(scope="module")
def jobs(moto_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jobs]:
    """A finished job in the SageMaker backend's default layout, a running one at a custom state_uri."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", REGION)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            env.delenv(name, raising=False)
        client("s3", moto_server).create_bucket(Bucket=BUCKET)
        made = Jobs(moto_server)
        unused = tmp_path_factory.mktemp("unused")
        save_job(unused, DONE, store=made.store(f"tuning/{DONE}/hyperband"))
        save_job(unused, LIVE, rounds=40, seed=3, store=made.store(f"tuning/{LIVE}"))
        s3 = client("s3", moto_server)
        s3.put_object(Bucket=BUCKET, Key="tuning/model-artifacts/model.tar.gz", Body=b"not a tuning job")
        s3.put_object(Bucket=BUCKET, Key="tuning/Not_A_Job!/state.json", Body=b"{}")
        yield made


def test_the_jobs_of_both_layouts_are_listed_and_loaded_as_the_store_saved_them(jobs: Jobs) -> None:
    root = jobs.root()
    assert root.names() == [DONE, LIVE, "model-artifacts"]  # a folder that is not a job is listed, not loaded
    listed = root.jobs()
    assert [j.name for j in listed] == sorted([DONE, LIVE], key=lambda n: -jobs.state(_prefix(n)).created_time)
    for job in listed:
        assert job.error is None and job.state is not None
        assert job.state.to_dict() == jobs.state(_prefix(job.name)).to_dict()
    with pytest.raises(UnknownJob, match="model-artifacts"):
        root.load("model-artifacts")


@pytest.mark.parametrize("name", ["..", "../tuning", "a/b", "%2F", "", "job\x00", "Not_A_Job!"])
def test_a_name_that_could_address_another_key_is_refused(jobs: Jobs, name: str) -> None:
    with pytest.raises(BadJobName, match="must hold"):
        jobs.root().load(name)
    with pytest.raises(BadJobName):
        jobs.root().decisions(name)


@pytest.mark.parametrize("job", [DONE, LIVE])
def test_decision_pages_are_the_logged_decisions_newest_first(jobs: Jobs, job: str) -> None:
    logged = list(reversed(jobs.decisions(_prefix(job))))
    assert len(logged) > 15  # more than one page at the limits below, across rounds of several decisions
    root = jobs.root()
    for offset, limit in [(0, 50), (7, 13), (len(logged) - 5, 50), (len(logged), 10), (len(logged) + 3, 10),
                          (0, 1000)]:
        page = root.decisions(job, offset=offset, limit=limit)
        assert page.total == len(logged)
        assert [d.to_dict() for d in page.decisions] == [d.to_dict() for d in logged[offset:offset + limit]]


def test_a_page_reads_only_its_rounds_and_an_unchanged_state_is_not_downloaded_again(jobs: Jobs) -> None:
    s3 = client("s3", jobs.endpoint)
    calls: Counter[str] = Counter()
    s3.meta.events.register("before-call.s3.*", lambda model, **_: calls.update([model.name]))
    root = S3StateRoot(ROOT, s3)
    first = root.load(DONE)
    again = root.load(DONE)
    assert again is first  # a 304 on If-None-Match: the cached parse
    calls.clear()
    root.decisions(DONE, offset=0, limit=5)
    rounds = len(jobs.decisions(_prefix(DONE)))
    assert calls["ListObjectsV2"] == 1 and calls["GetObject"] <= 1 + 5, calls  # the state (304) and <= 5 rounds
    assert rounds > 5


def test_an_object_whose_body_arrives_damaged_is_fetched_again(jobs: Jobs, tmp_path: Path) -> None:
    """Bodies cut short on the way fail S3's checksum: the page is read again, and shown when a try gets through."""
    faults = Faults(damaged_bodies={"GetObject": 1.0}, max_consecutive=BODY_ATTEMPTS - 1)
    with Emulator(jobs.endpoint, tmp_path / "emulator", run_processes=False, faults=faults) as endpoint:
        job = S3StateRoot(ROOT, client("s3", endpoint)).load(DONE)
        assert job.state is not None and job.state.to_dict() == jobs.state(_prefix(DONE)).to_dict()
        page = S3StateRoot(ROOT, client("s3", endpoint)).decisions(DONE, offset=0, limit=3)
        assert [d.to_dict() for d in page.decisions] == [d.to_dict() for d in
                                                          list(reversed(jobs.decisions(_prefix(DONE))))[:3]]
        assert faults.injected["GetObject:damaged"] >= 2 * (BODY_ATTEMPTS - 1)
        faults.max_consecutive = BODY_ATTEMPTS  # every try damaged: the page says the root is unavailable
        with pytest.raises(StateRootUnavailable, match="FlexibleChecksumError"):
            S3StateRoot(ROOT, client("s3", endpoint)).load(DONE)


def test_a_state_that_changed_is_read_again(jobs: Jobs, tmp_path: Path) -> None:
    name = "moving-job"
    prefix = f"tuning/{name}/hyperband"
    save_job(tmp_path, name, rounds=5, store=jobs.store(prefix))
    root = jobs.root()
    before = root.load(name)
    assert before.state is not None and not before.state.done
    s3 = client("s3", jobs.endpoint)  # a controller's later checkpoint, as far as a reader can tell
    s3.copy_object(Bucket=BUCKET, Key=f"{prefix}/state.json",
                   CopySource={"Bucket": BUCKET, "Key": f"{_prefix(DONE)}/state.json"})
    after = root.load(name)
    assert after.state is not None and after.state.done
    assert after.state.to_dict() == jobs.state(_prefix(DONE)).to_dict()


def test_an_unreadable_state_is_reported_not_raised(jobs: Jobs) -> None:
    client("s3", jobs.endpoint).put_object(Bucket=BUCKET, Key="tuning/broken-job/state.json", Body=b"{not json")
    loaded = jobs.root().load("broken-job")
    assert loaded.state is None and loaded.error is not None and "JSONDecodeError" in loaded.error


def test_s3_errors_name_the_key_and_the_code(jobs: Jobs) -> None:
    root = S3StateRoot("s3://no-such-bucket/tuning", client("s3", jobs.endpoint))
    with pytest.raises(StateRootUnavailable, match=r"s3://no-such-bucket/tuning/ \(NoSuchBucket\)"):
        root.names()


@pytest.mark.parametrize("uri", ["s3://", "s3:///prefix", "gs://bucket/prefix", "bucket/prefix"])
def test_a_bad_state_root_uri_is_refused(uri: str) -> None:
    with pytest.raises(ConfigError, match=r"\[hyperband\] state_root is s3://bucket\[/prefix\]` must hold"):
        S3StateRoot(uri, client=None)


def test_the_dashboard_reads_an_s3_state_root_through_the_airflow_connection(
    jobs: Jobs, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hb_airflow.ui import app

    connection = {"conn_type": "aws", "extra": {"endpoint_url": jobs.endpoint, "region_name": REGION}}
    monkeypatch.setenv("AIRFLOW_CONN_HB_DASHBOARD_S3", json.dumps(connection))
    monkeypatch.setenv("AIRFLOW__HYPERBAND__STATE_ROOT", ROOT)
    monkeypatch.setenv("AIRFLOW__HYPERBAND__AWS_CONN_ID", "hb_dashboard_s3")
    root = app._root()
    assert isinstance(root, S3StateRoot) and root.root == ROOT
    assert {j.name for j in root.jobs()} >= {DONE, LIVE}
    assert root.client.meta.endpoint_url == jobs.endpoint


def _prefix(name: str) -> str:
    return f"tuning/{name}/hyperband" if name == DONE else f"tuning/{name}"
