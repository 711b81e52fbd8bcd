"""The SageMaker backend's default metric source, a CloudWatch Logs Live Tail stream, over real HTTP.

aiobotocore -> the emulator's ``StartLiveTail`` (an AWS event stream) and moto
(Logs, S3). The trials run ``scripts/epochs.py`` as real processes, or are
fake jobs whose lines a test puts into the log stream. No assertion depends
on how long anything took.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import pytest

from hb_core.backends.clock import RealClock
from hb_core.backends.live_tail import LogEvent, Mark
from hb_core.backends.s3_store import S3Store
from hb_core.backends.sagemaker import SageMakerBackend
from hb_core.config import TuningConfig
from hb_core.errors import ConfigError
from hb_core.events import Launch, MetricReported, TrialStopped
from hb_core.protocols import EventSource
from hb_core.runner import Tuner
from hb_core.state import TrialStatus, TuningState, TuningStatus
from hb_emulator import Emulator, Faults
from tests import aws_fixtures
from tests.aws_fixtures import aio_clients, client, make_bucket
from tests.hb_core.backends.test_sagemaker import BUCKET, request, score

moto_server, aws, emulator = aws_fixtures.moto_server, aws_fixtures.aws, aws_fixtures.emulator  # shared fixtures

GROUP = "/aws/sagemaker/TrainingJobs"


def live_backend(emu: Emulator, aws: str, body: dict[str, Any], **kwargs: Any) -> SageMakerBackend:
    """The backend with its default metric source; SageMaker and Logs through the emulator, S3 on moto."""
    config = TuningConfig.from_dict(body)
    return SageMakerBackend(config, job_name=config.name or "sm-test",
                            clients=aio_clients(aws, sagemaker=emu.endpoint, logs=emu.endpoint), **kwargs)


async def run(emu: Emulator, aws: str, body: dict[str, Any], **kwargs: Any) -> tuple[TuningState, SageMakerBackend]:
    make_bucket(aws, BUCKET)
    client("logs", aws).create_log_group(logGroupName=GROUP)  # as on AWS after a first training job
    config = TuningConfig.from_dict(body)
    b = live_backend(emu, aws, body, **kwargs)
    store = S3Store(BUCKET, f"state/{config.name}", aio_clients(aws))
    tuner = Tuner(config, b, store, RealClock(), job_name=config.name, poll_interval=2.0)
    try:
        state = await asyncio.wait_for(tuner.run(), 120)
    finally:
        await b.close()
        await store.close()
    return state, b


def assert_exact(state: TuningState) -> None:
    """Every trial recorded each epoch it trained once, with the value it printed."""
    for trial in state.trials:
        x = float(trial.hyperparameters["x"])
        assert [(r, v) for r, v, _ in trial.points] == [(r, score(x, r)) for r in range(1, len(trial.points) + 1)]


# ---------------------------------------------------------------- the mark


@pytest.mark.parametrize(("events", "taken"), [
    ([(1, "a", 1), (2, "b", 1), (2, "c", 1)], ["a", "b", "c"]),  # one source: everything, in order
    ([(1, "a", -1), (2, "b", -1), (1, "a", 5), (2, "b", 5), (3, "c", 5)], ["a", "b", "c"]),  # overlap dropped
    ([(2, "b", 1), (2, "b", 1), (2, "b", -1), (2, "b", -1), (2, "b", -1)], ["b", "b", "b"]),  # copies counted
    ([(5, "x", 1), (4, "late", -2), (5, "x", -2), (6, "y", -2)], ["x", "y"]),  # older than the mark: taken before
])
def test_the_mark_takes_each_event_once_across_sources(events: list[tuple[int, str, int]], taken: list[str]) -> None:
    mark = Mark()
    assert [m for t, m, s in events if mark.take(LogEvent(t, m, s))] == taken


# ---------------------------------------------------------------- end to end


async def test_live_tail_is_the_default_and_its_values_drive_the_rungs(
    emulator: Callable[..., Emulator], aws: str,
) -> None:
    emu = emulator(live_tail_update_seconds=0.2)
    body = request(name="live", jobs=5, parallel=3, max_resource=9, sleep=0.3)
    b = live_backend(emu, aws, body)
    assert b.metric_source == "live" and isinstance(b, EventSource)
    await b.close()
    state, b = await run(emu, aws, body)
    assert state.status is TuningStatus.COMPLETED
    assert_exact(state)
    assert any(t.status is TrialStatus.STOPPED for t in state.trials)  # the rungs decided on streamed values
    live = b.live_tail
    assert live is not None and live.sessions >= 1 and live.refused is None and b.notes == []
    # the values came through the stream; GetLogEvents only caught up (a job's last lines, at most once each)
    assert live.streamed > live.caught_up
    polled = live_backend(emu, aws, body, metric_source="logs")
    assert not isinstance(polled, EventSource)  # polled sources keep the runner's rung-due polling
    await polled.close()


async def test_a_metric_line_wakes_the_runner(emulator: Callable[..., Emulator], aws: str) -> None:
    emu = emulator(run_processes=False, live_tail_update_seconds=0.1)
    b = live_backend(emu, aws, request(name="wake"))
    await b.launch(Launch("0000", 1, {"x": 0.5}, 9))
    stream = await _stream(aws, b.training_job_name("0000", 1))
    await _until(lambda: emu.live_tail.open == 1 and b.live_tail is not None and b.live_tail.active)
    first = await b.poll()  # a first look at the job (nothing printed yet): the session covers it from now on
    assert [e.kind for e in first] == ["TrialStarted"]
    _put(emu.endpoint, stream, ["epoch=1 score=0.25"])
    started = time.monotonic()
    await b.wait_for_event(60.0)
    assert time.monotonic() - started < 30  # woken by the line, not by the timeout
    events = [e for e in await b.poll() if isinstance(e, MetricReported)]
    assert [(e.seq, e.value) for e in events] == [(1, 0.25)]
    assert b.live_tail is not None and b.live_tail.streamed == 1 and b.live_tail.caught_up == 0
    await b.close()


async def test_a_refused_live_tail_falls_back_to_polling_the_logs_once(
    emulator: Callable[..., Emulator], aws: str, caplog: pytest.LogCaptureFixture,
) -> None:
    emu = emulator(faults=Faults(live_tail_error="AccessDeniedException"))
    body = request(name="refused", jobs=4, parallel=2, max_resource=3, sleep=0.2)
    with caplog.at_level(logging.WARNING, logger="hb_core.backends.sagemaker"):
        state, b = await run(emu, aws, body)
    assert state.status is TuningStatus.COMPLETED
    assert_exact(state)
    assert len(b.notes) == 1 and "Live Tail" in b.notes[0] and "logs:StartLiveTail" in b.notes[0]
    assert [r.message for r in caplog.records].count(b.notes[0]) == 1
    assert b.api_calls["StartLiveTail"] == 1 and b.api_calls["GetLogEvents"] > 0


@pytest.mark.parametrize("sampled", [False, True])
async def test_sessions_that_end_reconnect_without_losing_or_doubling_values(
    emulator: Callable[..., Emulator], aws: str, sampled: bool,
) -> None:
    emu = emulator(live_tail_update_seconds=0.1, live_tail_session_seconds=0.5)  # AWS: 3 hours
    if sampled:
        emu.live_tail.max_events = 0  # every update that has events is sampled (AWS: above 500 events)
    make_bucket(aws, BUCKET)
    body = request(name=f"reconnect{int(sampled)}", jobs=2, parallel=2, max_resource=9, sleep=0.4)
    b = live_backend(emu, aws, body)
    await b.launch(Launch("0000", 1, {"x": 0.2}, 9))
    await b.launch(Launch("0001", 1, {"x": 0.7}, 9))
    metrics: list[MetricReported] = []
    done = 0
    deadline = time.monotonic() + 90
    while done < 2 and time.monotonic() < deadline:
        await b.wait_for_event(0.3)
        for event in await b.poll():
            metrics += [event] if isinstance(event, MetricReported) else []
            done += event.kind == "TrialCompleted"
    await b.close()
    assert done == 2
    for trial, x in (("0000", 0.2), ("0001", 0.7)):
        assert [(m.seq, m.value) for m in metrics if m.trial_id == trial] == [(r, score(x, r)) for r in range(1, 10)]
    live = b.live_tail
    assert live is not None and live.sessions >= 3 and live.refused is None  # several sessions ended and restarted
    assert (live.streamed > 0) != sampled and (live.sampled > 0) == sampled


async def test_a_stopped_job_still_gets_its_end_reported(emulator: Callable[..., Emulator], aws: str) -> None:
    emu = emulator(run_processes=False, live_tail_update_seconds=0.1)
    b = live_backend(emu, aws, request(name="stopped"))
    await b.launch(Launch("0000", 1, {"x": 0.5}, 9))
    await _until(lambda: emu.job(b.training_job_name("0000", 1))["SecondaryStatus"] == "Training")
    await b.stop("0000", 1, "rung 1")
    events: list[Any] = []
    for _ in range(200):
        events += await b.poll()
        if any(isinstance(e, TrialStopped) for e in events):
            break
        await b.wait_for_event(0.1)
    await b.close()
    assert any(isinstance(e, TrialStopped) for e in events)


async def test_the_end_of_a_stopped_job_wakes_the_runner(emulator: Callable[..., Emulator], aws: str) -> None:
    emu = emulator(run_processes=False, live_tail_update_seconds=0.1)
    b = live_backend(emu, aws, request(name="endstop"), end_poll_seconds=0.2)
    await b.launch(Launch("0000", 1, {"x": 0.5}, 9))
    await _until(lambda: emu.job(b.training_job_name("0000", 1))["SecondaryStatus"] == "Training")
    assert [e.kind for e in await b.poll()] == ["TrialStarted"]
    await b.stop("0000", 1, "rung 1")
    await asyncio.wait_for(b.wait_for_event(3600.0), 60)  # nothing is printed: only the job's end can wake it
    assert [e.kind for e in await b.poll()] == ["TrialStopped"]
    await b.close()


async def test_a_poll_does_not_describe_again_a_job_the_end_polling_just_described(
    emulator: Callable[..., Emulator], aws: str,
) -> None:
    emu = emulator(live_tail_update_seconds=0.1, stop_grace_seconds=120)  # it ignores SIGTERM: Stopping a while
    make_bucket(aws, BUCKET)
    body = request(name="endfresh", program="forever.py")
    body["TrainingJobDefinition"]["StaticHyperParameters"]["ignore_term"] = "1"
    b = live_backend(emu, aws, body, end_poll_seconds=0.2)
    name = b.training_job_name("0000", 1)
    await b.launch(Launch("0000", 1, {"x": 0.5}, 9))
    events: list[Any] = []
    for _ in range(200):  # its one value first, so that no line wakes the wait below
        events += await b.poll()
        if any(isinstance(e, MetricReported) for e in events):
            break
        await b.wait_for_event(0.1)
    await b.stop("0000", 1, "rung 1")
    for _ in range(50):  # nothing ends: the end polling describes the Stopping job (a late wake may come first)
        await b.wait_for_event(0.5)
        if b.api_calls["DescribeTrainingJob"]:
            break
    described = b.api_calls["DescribeTrainingJob"]
    assert described >= 1 and emu.job(name)["TrainingJobStatus"] == "Stopping"
    await b.poll()
    assert b.api_calls["DescribeTrainingJob"] == described  # described a moment ago: not again at once
    await asyncio.sleep(1.2)
    await b.poll()
    assert b.api_calls["DescribeTrainingJob"] == described + 1  # but once that is stale
    await b.close()


class FrozenClock:
    """A clock that does not move while the backend waits (a test's, or a virtual one nobody advances)."""

    def now(self) -> float:
        return 1000.0

    async def sleep_until(self, when: float) -> None:
        await asyncio.sleep(0)


async def test_a_wait_on_a_clock_that_does_not_move_takes_one_step(emulator: Callable[..., Emulator], aws: str) -> None:
    b = live_backend(emulator(run_processes=False), aws, request(name="frozen"), clock=FrozenClock())
    await asyncio.wait_for(b.wait_for_event(0.2), 30)  # the timeout passed in real time; the clock says it did not
    await b.close()


async def test_end_polling_off_leaves_the_end_to_the_next_poll(emulator: Callable[..., Emulator], aws: str) -> None:
    emu = emulator(run_processes=False, live_tail_update_seconds=0.1)
    b = live_backend(emu, aws, request(name="endoff"), end_poll_seconds=math.inf)
    await b.launch(Launch("0000", 1, {"x": 0.5}, 9))
    await _until(lambda: emu.job(b.training_job_name("0000", 1))["SecondaryStatus"] == "Training")
    assert [e.kind for e in await b.poll()] == ["TrialStarted"]
    await b.stop("0000", 1, "rung 1")
    await _until(lambda: emu.job(b.training_job_name("0000", 1))["TrainingJobStatus"] == "Stopped")
    described = b.api_calls["DescribeTrainingJob"]
    await b.wait_for_event(0.5)  # sleeps its whole timeout without a Describe
    assert b.api_calls["DescribeTrainingJob"] == described
    assert [e.kind for e in await b.poll()] == ["TrialStopped"]
    await b.close()


async def test_the_end_of_a_job_past_its_budget_wakes_the_runner(emulator: Callable[..., Emulator], aws: str) -> None:
    emu = emulator(run_processes=False, live_tail_update_seconds=0.1)
    b = live_backend(emu, aws, request(name="endbudget"), end_poll_seconds=0.2)
    name = b.training_job_name("0000", 1)
    await b.launch(Launch("0000", 1, {"x": 0.5}, 2))
    stream = await _stream(aws, name)
    await _until(lambda: emu.live_tail.open == 1 and b.live_tail is not None and b.live_tail.active)
    assert [e.kind for e in await b.poll()] == ["TrialStarted"]
    events: list[Any] = []
    for line in ("epoch=1 score=0.25", "epoch=2 score=0.5"):
        _put(emu.endpoint, stream, [line])
        await asyncio.wait_for(b.wait_for_event(3600.0), 60)  # woken by the line
        events += await b.poll()
        if line.startswith("epoch=1"):  # before its budget's last value the job is not due to end: not described
            described = b.api_calls["DescribeTrainingJob"]
            await b.wait_for_event(0.5)
            assert b.api_calls["DescribeTrainingJob"] == described
    emu.complete(name)
    await asyncio.wait_for(b.wait_for_event(3600.0), 60)  # nothing more is printed: only the job's end can wake it
    events += await b.poll()
    assert [(e.kind, getattr(e, "seq", None)) for e in events] == [
        ("MetricReported", 1), ("MetricReported", 2), ("TrialCompleted", None)]
    await b.close()


@pytest.mark.parametrize("value", [0, -1.0, math.nan, "5"])
def test_end_poll_seconds_must_be_a_positive_number(emulator: Callable[..., Emulator], aws: str, value: float) -> None:
    with pytest.raises(ConfigError, match="end_poll_seconds"):
        live_backend(emulator(run_processes=False), aws, request(name="endbad"), end_poll_seconds=value)


# ---------------------------------------------------------------- helpers


async def _until(condition: Callable[[], Any], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def _stream(endpoint: str, job: str) -> str:
    logs = client("logs", endpoint)
    for _ in range(500):
        found = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix=f"{job}/").get("logStreams", []) \
            if logs.describe_log_groups(logGroupNamePrefix=GROUP)["logGroups"] else []
        if found:
            return str(found[0]["logStreamName"])
        await asyncio.sleep(0.02)
    raise AssertionError(f"no log stream for {job}")


def _put(endpoint: str, stream: str, lines: list[str]) -> None:
    """Lines a job printed, put through the emulator (which hands them to its Live Tail sessions)."""
    now = int(time.time() * 1000)
    client("logs", endpoint).put_log_events(logGroupName=GROUP, logStreamName=stream,
                                            logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(lines)])
