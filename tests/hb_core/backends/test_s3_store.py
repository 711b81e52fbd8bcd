"""The S3 state store on moto's server: conditional puts as the compare-and-set, racing stores, decision objects."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable

import pytest

from hb_core.backends.aws import AwsCallError, RetryPolicy
from hb_core.backends.clock import RealClock, VirtualClock
from hb_core.backends.s3_store import S3Store
from hb_core.backends.simulated import SimulatedBackend
from hb_core.backends.stores import StateConflict
from hb_core.controller import decide, new_state
from hb_core.errors import BackendError, StateError
from hb_core.runner import Tuner
from hb_core.state import Decision, TuningState
from hb_emulator import Emulator, Faults
from tests import aws_fixtures
from tests.aws_fixtures import FastClock, aio_clients, client, make_bucket
from tests.helpers import config as make_config

moto_server, aws, emulator = aws_fixtures.moto_server, aws_fixtures.aws, aws_fixtures.emulator  # shared fixtures

BUCKET = "states"


def state_at(revision: int, note: str = "") -> TuningState:
    state, _ = decide(new_state(make_config(max_jobs=4, parallel=2), now=0.0, job_name="s3-test"), [], 0.0)
    return dataclasses.replace(state, revision=revision, extra={"note": note})


def store(endpoint: str, prefix: str = "jobs/s3-test", **kwargs: object) -> S3Store:
    return S3Store(BUCKET, prefix, aio_clients(endpoint), **kwargs)  # type: ignore[arg-type]


async def test_save_load_and_the_compare_and_set(aws: str) -> None:
    make_bucket(aws, BUCKET)
    a, b = store(aws), store(aws)
    assert await a.load() is None
    await a.save(state_at(1, "a"), None)  # If-None-Match: *
    with pytest.raises(StateConflict):
        await b.save(state_at(1, "b"), None)  # a state exists already
    loaded = await b.load()
    assert loaded is not None and loaded.revision == 1 and loaded.extra == {"note": "a"}
    await b.save(state_at(2, "b"), 1)  # If-Match: the ETag b loaded
    with pytest.raises(StateConflict):
        await a.save(state_at(2, "a"), 1)  # a's ETag is stale
    with pytest.raises(StateConflict, match="revision 2, expected 5"):
        await store(aws).save(state_at(6), 5)  # a store that never read it checks the revision first
    fresh = store(aws)
    await fresh.save(state_at(3, "fresh"), 2)  # ...and builds on the current ETag when it matches
    assert (await a.load()).extra == {"note": "fresh"}  # type: ignore[union-attr]
    body = client("s3", aws).get_object(Bucket=BUCKET, Key="jobs/s3-test/state.json")["Body"].read()
    assert b'"revision":3' in body
    for each in (a, b, fresh):
        await each.close()


async def test_racing_stores_exactly_one_wins_each_round(aws: str) -> None:
    make_bucket(aws, BUCKET)
    stores = [store(aws) for _ in range(3)]
    reader = store(aws)
    await stores[0].save(state_at(1), None)
    revision = 1
    for _ in range(15):
        for each in stores:
            assert (await each.load()).revision == revision  # type: ignore[union-attr]

        async def attempt(each: S3Store, i: int, revision: int = revision) -> bool:
            try:
                await each.save(state_at(revision + 1, f"store {i}"), revision)
            except StateConflict:
                return False
            return True

        won = await asyncio.gather(*(attempt(each, i) for i, each in enumerate(stores)))
        assert sum(won) == 1, won
        revision += 1
        stored = await reader.load()
        assert stored is not None and stored.extra == {"note": f"store {won.index(True)}"}
    for each in (*stores, reader):
        await each.close()


async def test_decisions_are_numbered_objects_written_once(aws: str) -> None:
    make_bucket(aws, BUCKET)
    s = store(aws, "jobs/decided")
    await s.save(state_at(1), None)
    round_one = [Decision(1.0, "launch", "0000"), Decision(1.0, "launch", "0001")]
    await s.append_decisions(round_one)
    await s.append_decisions(round_one)  # a retry of the same round: already there
    await s.save(state_at(2), 1)
    await s.append_decisions([Decision(2.0, "stop", "0001", rung=1, value=0.5)])
    await s.append_decisions([])
    keys = [o["Key"] for o in client("s3", aws).list_objects_v2(Bucket=BUCKET, Prefix="jobs/decided/")["Contents"]]
    assert keys == ["jobs/decided/decisions/0000000001.2.jsonl", "jobs/decided/decisions/0000000002.1.jsonl",
                    "jobs/decided/state.json"]
    assert [(d.action, d.trial_id) for d in await s.read_decisions()] == [
        ("launch", "0000"), ("launch", "0001"), ("stop", "0001")]
    raw = client("s3", aws)
    line = json.dumps(Decision(3.0, "promote", "0000").to_dict()) + "\n"
    raw.put_object(Bucket=BUCKET, Key="jobs/decided/decisions/0000000003.jsonl", Body=line)  # a key without its count
    raw.put_object(Bucket=BUCKET, Key="jobs/decided/decisions/0000000002.7.jsonl", Body=line)  # a second for one round
    raw.put_object(Bucket=BUCKET, Key="jobs/decided/decisions/notes.txt", Body=b"not a decision object")
    assert [(d.action, d.trial_id) for d in await s.read_decisions()] == [
        ("launch", "0000"), ("launch", "0001"), ("stop", "0001"), ("promote", "0000")]
    await s.close()


async def test_a_tuner_checkpoints_every_round_to_s3(aws: str) -> None:
    make_bucket(aws, BUCKET)
    config = make_config(max_jobs=6, parallel=2, max_resource=9)
    s = store(aws, "jobs/sim")
    clock = VirtualClock()
    backend = SimulatedBackend(lambda hps, r: float(hps["learning_rate"]) * r, clock, cost=lambda hps, r: 1.0 * r)
    final = await Tuner(config, backend, s, clock, job_name="sim", poll_interval=1e6).run()
    stored = await store(aws, "jobs/sim").load()
    assert stored is not None and stored.revision == final.revision and stored.done
    assert len(await s.read_decisions()) == final.decision_count
    await s.close()


async def test_throttled_and_failing_s3_calls(emulator: Callable[..., Emulator], aws: str) -> None:
    make_bucket(aws, BUCKET)
    faults = Faults(throttle={"PutObject": 1.0, "GetObject": 1.0}, max_consecutive=2)
    emu = emulator(run_processes=False, faults=faults)
    clock = FastClock()
    s = store(emu.endpoint, clock=clock)  # through the emulator's faults to moto
    assert await s.load() is None
    await s.save(state_at(1), None)
    assert (await s.load()).revision == 1  # type: ignore[union-attr]
    assert faults.injected["PutObject:throttle"] == 2 and len(clock.slept) >= 4
    faults.max_consecutive = 99
    stubborn = store(emu.endpoint, clock=clock, retry=RetryPolicy(max_attempts=3))
    with pytest.raises(BackendError, match="GetObject s3://states/jobs/s3-test/state.json: SlowDown"):
        await stubborn.load()
    missing = S3Store("no-such-bucket", "x", aio_clients(aws))
    with pytest.raises(AwsCallError) as error:
        await missing.save(state_at(1), None)
    assert error.value.code == "NoSuchBucket"
    for each in (s, stubborn, missing):
        await each.close()


async def test_a_state_whose_body_arrives_damaged_is_fetched_again(
    emulator: Callable[..., Emulator], aws: str,
) -> None:
    """S3 sends the state's checksum; a body cut short on the way fails it, and the store reads the object again."""
    make_bucket(aws, BUCKET)
    faults = Faults(damaged_bodies={"GetObject": 1.0}, max_consecutive=2)
    emu = emulator(run_processes=False, faults=faults)
    clock = FastClock()
    writer, reader = store(aws), store(emu.endpoint, clock=clock)
    await writer.save(state_at(1), None)
    await writer.append_decisions([Decision(1.0, "launch", "0000")])  # a round's decisions object too
    loaded = await reader.load()
    assert loaded is not None and loaded.revision == 1
    assert faults.injected["GetObject:damaged"] == 2 and reader.pool.retries["GetObject"] == 2
    assert await reader.read_decisions() == await writer.read_decisions()
    faults.max_consecutive = 99
    stubborn = store(emu.endpoint, clock=clock, retry=RetryPolicy(max_attempts=3))
    with pytest.raises(BackendError, match="GetObject s3://states/jobs/s3-test/state.json: FlexibleChecksumError"):
        await stubborn.load()
    for each in (writer, reader, stubborn):
        await each.close()


async def test_a_corrupt_state_is_a_state_error(aws: str) -> None:
    make_bucket(aws, BUCKET)
    client("s3", aws).put_object(Bucket=BUCKET, Key="jobs/bad/state.json", Body=b"{not json")
    s = store(aws, "jobs/bad")
    with pytest.raises(StateError, match="not valid JSON"):
        await s.load()
    await s.close()
    with pytest.raises(ValueError, match="bucket"):
        S3Store("a/b", "x", aio_clients(aws))
    assert RealClock  # type: ignore[truthy-function]  # the default clock
