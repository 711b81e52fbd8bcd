"""The rung barrier on SageMaker, over HTTP: the emulator runs ``scripts/epochs.py``, verdicts travel through moto's S3.

The job reads its verdicts with boto3, as in a SageMaker container; the
definition's ``Environment`` points its S3 client at the moto server (on AWS
the container's default endpoint is S3's).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from hb_core import barrier
from hb_core.backends import process as proc
from hb_core.events import Launch, MetricReported, RungVerdict, TrialStarted, TrialStopped
from hb_core.state import TrialStatus, TuningStatus
from hb_emulator import Emulator
from tests import aws_fixtures
from tests.aws_fixtures import client, make_bucket
from tests.hb_core.backends.test_sagemaker import (  # noqa: F401 - no_process_left: kill leftovers
    BUCKET,
    _assert_ran_once_and_ended,
    _finish,
    _tuner,
    backend,
    collect,
    no_process_left,
    request,
)

moto_server, aws, emulator = aws_fixtures.moto_server, aws_fixtures.aws, aws_fixtures.emulator  # shared fixtures
EPOCH = re.compile(r"^epoch=(\d+) ", re.MULTILINE)


def barrier_request(aws: str, **kwargs: Any) -> dict[str, Any]:
    body = request(Environment={"AWS_ENDPOINT_URL_S3": aws}, **kwargs)
    body["TrainingJobDefinition"]["StaticHyperParameters"]["barrier"] = "1"
    hb = body["HyperParameterTuningJobConfig"]["StrategyConfig"]["HyperbandStrategyConfig"]
    hb.update(ReductionFactor=3, RungBarrierTimeoutSeconds=60)
    return body


def test_the_request_names_the_verdicts_in_the_environment(aws: str) -> None:
    b = backend("http://127.0.0.1:1", aws, barrier_request(aws))
    request = b.create_request(Launch("0003", 2, {"x": 0.5}, 9, (1, 3)))
    spec = json.loads(request["Environment"][barrier.ENV])
    assert spec == {"levels": [1, 3], "timeout": 60.0, "verdicts": f"s3://{BUCKET}/output/sm-test/verdicts/0003/",
                    "attempt": 2}
    assert request["Environment"]["AWS_ENDPOINT_URL_S3"] == aws  # the definition's own entries stay
    assert len(request["Environment"][barrier.ENV]) <= 512  # SageMaker's limit on an Environment value
    assert barrier.ENV not in b.create_request(Launch("0003", 1, {"x": 0.5}, 9)).get("Environment", {})


async def test_a_verdict_is_an_s3_object_the_job_reads(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", aws)  # the script's boto3 talks to moto, as a job's does (below)
    make_bucket(aws, BUCKET)
    b = backend("http://127.0.0.1:1", aws, barrier_request(aws))
    await b.verdict(RungVerdict("0001", 1, 3, 9))
    s3 = client("s3", aws)
    body = json.loads(s3.get_object(Bucket=BUCKET, Key="output/sm-test/verdicts/0001/3.json")["Body"].read())
    assert body == barrier.verdict_body(9, 3)
    gate = barrier.RungBarrier([3], 5, b.verdict_uri("0001"), 1)  # the script's side, boto3 on moto
    assert gate.reached(3, 0.7).budget == 9
    published = s3.get_object(Bucket=BUCKET, Key="output/sm-test/verdicts/0001/3.value.json")["Body"].read()
    assert json.loads(published)["value"] == 0.7
    await b.close()


async def test_stopped_jobs_end_at_their_rung_on_the_emulator(emulator: Callable[..., Emulator], aws: str) -> None:
    make_bucket(aws, BUCKET)
    emu = emulator()
    tuner, b, store = _tuner(emu, aws, barrier_request(aws, jobs=6, parallel=2, max_resource=9, sleep=0.25),
                             "state/barrier")
    state = await _finish(tuner, b, store)
    assert state.status is TuningStatus.COMPLETED and len(state.trials) == 6
    stopped = [t for t in state.trials if t.status is TrialStatus.STOPPED]
    assert stopped
    for trial in stopped:
        log = (emu.job_dir(f"sm-test-{trial.trial_id}-1") / "job" / proc.LOG_FILE).read_text()
        assert max(int(e) for e in EPOCH.findall(log)) == trial.resource, (trial.trial_id, log)
    keys = [o["Key"] for o in client("s3", aws).list_objects_v2(Bucket=BUCKET, Prefix="output/sm-test/verdicts/")
            .get("Contents", [])]
    assert any(k.endswith("/stop.json") for k in keys) and any(k.endswith("/1.json") for k in keys)
    _assert_ran_once_and_ended(emu, state)
    await store.close()


async def test_a_published_rung_value_is_read_ahead_of_the_metrics_and_a_stopped_job_is_not_held(
    emulator: Callable[..., Emulator], aws: str
) -> None:
    """The metric source holds nothing (no job process runs) and ends wait an hour: only the barrier's path reports."""
    make_bucket(aws, BUCKET)
    emu = emulator(run_processes=False)
    b = backend(emu.endpoint, aws, barrier_request(aws), metric_delay_seconds=3600.0)
    await b.launch(Launch("0000", 1, {"x": 0.5}, 9, (1, 3)))
    await collect(b, lambda es: any(isinstance(e, TrialStarted) for e in es))
    s3 = client("s3", aws)
    key = "output/sm-test/verdicts/0000/{}.value.json"
    s3.put_object(Bucket=BUCKET, Key=key.format(1), Body=json.dumps({"level": 1, "value": 0.25, "attempt": 1}))
    events = await collect(b, lambda es: any(isinstance(e, MetricReported) for e in es))
    assert [(e.seq, e.value) for e in events if isinstance(e, MetricReported)] == [(1, 0.25)]
    s3.put_object(Bucket=BUCKET, Key=key.format(3), Body=json.dumps({"level": 3, "value": 0.5, "attempt": 2}))
    assert not [e for e in await b.poll() if isinstance(e, MetricReported)]  # another attempt's value: not ours
    await b.stop("0000", 1, "rank 2 of 2 at rung 1")
    events = await collect(b, lambda es: any(isinstance(e, TrialStopped) for e in es))  # no hour-long hold
    assert isinstance(events[-1], TrialStopped)
    await b.close()
