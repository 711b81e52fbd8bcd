"""Hostile input never crashes the controller and never executes anything: state files, log lines, names."""

from __future__ import annotations

import asyncio
import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hb_core.backends.stores import LocalFileStore
from hb_core.controller import decide, new_state
from hb_core.errors import ConfigError, StateError
from hb_core.events import MetricReported, TrialStarted
from hb_core.naming import training_job_name
from tests.helpers import config

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


def a_state_dict() -> dict[str, Any]:
    state, _ = decide(new_state(config("Hyperband", parallel=2, max_jobs=4), now=0.0), [], 0.0)
    state, _ = decide(state, [TrialStarted("0000", 1, 1.0), MetricReported("0000", 1, 2.0, 0.5)], 2.0)
    plain: dict[str, Any] = json.loads(json.dumps(state.to_dict()))
    return plain


STATE = a_state_dict()


def mutate(data: Any, path: list[Any], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(data, dict) and data:
        key = sorted(data)[head % len(data)]
        return {**data, key: mutate(data[key], rest, value)}
    if isinstance(data, list) and data:
        index = head % len(data)
        return [*data[:index], mutate(data[index], rest, value), *data[index + 1 :]]
    return value


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.lists(st.integers(0, 50), max_size=5), value=json_values)
def test_a_corrupted_state_is_a_clear_error_or_a_valid_state(tmp_path_factory: pytest.TempPathFactory,
                                                             path: list[int], value: Any) -> None:
    directory = tmp_path_factory.mktemp("state")
    (directory / LocalFileStore.STATE).write_text(json.dumps(mutate(STATE, path, value)))
    try:
        state = asyncio.run(LocalFileStore(directory).load())
    except StateError as exc:
        assert str(exc).startswith(str(directory / LocalFileStore.STATE))  # names the file, then the field
        return
    assert state is not None
    decide(state, [], 3.0)  # a state that loads is one the controller can work with


@pytest.mark.parametrize(
    "text",
    ["", "{", '{"schema_version": 1', "null", "[]", '"x"', "\x00\x01", '{"schema_version": 99}',
     '{"schema_version": 1, "job_name": {"__class__": "os.system"}}', "__import__('os').system('touch pwned')"],
)
def test_truncated_or_hostile_state_files(tmp_path: Path, text: str) -> None:
    (tmp_path / LocalFileStore.STATE).write_text(text)
    with pytest.raises(StateError):
        asyncio.run(LocalFileStore(tmp_path).load())
    assert not (Path(os.getcwd()) / "pwned").exists()


@pytest.mark.parametrize(
    "name", ["../escape", "a/b", "/abs", "x" * 40, "with space", "", "-lead", "nul\x00byte", "%2e%2e", "ok\n"],
)
def test_bad_tuning_job_names_are_rejected_before_any_io(tmp_path: Path, name: str) -> None:
    from hb_airflow.spec import TuningSpec

    with pytest.raises(ConfigError, match="job_name"):
        TuningSpec(request={}, job_name=name, backend="local", state_uri=str(tmp_path / "never"))
    if len(name) <= 32:  # the training-job name is built from it and fails the same pattern
        with pytest.raises(ConfigError):
            training_job_name(name, "0000", 1)
    assert not (tmp_path / "never").exists()


lines = st.one_of(
    st.text(max_size=300),
    st.binary(max_size=300).map(lambda b: b.decode("utf-8", errors="replace")),
    st.sampled_from(["score=nan", "score=inf", "score=-inf", "score=1e999", "score=.", "score=1.2.3",
                     "score=" + "9" * 5000, "x" * 100_000, "score=0.5\rscore=0.9", "epoch=3 score=NaN"]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line=lines)
def test_metric_lines_never_crash_and_never_stop_a_trial_on_garbage(line: str) -> None:
    """The local backend's parser on any line gives a value or nothing; fed to the controller, a
    non-finite value ranks last and never pushes a good trial out of its rung."""
    event = FUZZ_BACKEND._parse(FUZZ_JOB, line)  # the real parsing path of every log line
    FUZZ_JOB.ordinal = 0
    state, _ = decide(new_state(FUZZ_CONFIG, now=0.0), [], 0.0)
    state, _ = decide(state, [MetricReported("0000", 1, 1.0, 0.9)], 1.0)  # a good first trial at rung 1
    if event is None:
        return
    assert isinstance(event, MetricReported)
    state, _ = decide(state, [MetricReported("0001", 1, 2.0, event.value)], 2.0)
    assert state.trials[0].status.value in ("Pending", "InProgress"), "the good trial was stopped"
    if not math.isfinite(event.value):
        assert state.trials[1].status.value == "Stopping"


def _fuzz_backend() -> tuple[Any, Any, Any]:
    import tempfile

    from hb_core.backends.local import LocalBackend, _Job
    from hb_core.config import TuningConfig
    from tests.hb_airflow.conftest import tiny_request

    cfg = TuningConfig.from_dict(tiny_request())
    backend = LocalBackend(cfg, Path(tempfile.mkdtemp(prefix="hb-fuzz-")), job_name="fuzz")
    job = _Job("0001", 1, "fuzz-0001-1", 0, process=None)  # type: ignore[arg-type]  # parsing needs no process
    return cfg, backend, job


FUZZ_CONFIG, FUZZ_BACKEND, FUZZ_JOB = _fuzz_backend()
