"""The long variants of the reliability suite: `make test-long` (pytest -m long), not part of `make test`."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hb_core.backends.clock import VirtualClock
from hb_core.backends.simulated import SimulatedBackend
from hb_core.backends.stores import MemoryStore
from hb_core.curves import mlp_accuracy, mlp_epoch_seconds
from hb_core.runner import Tuner
from tests.hb_core import test_config
from tests.helpers import config
from tests.reliability import test_bad_input, test_simulated
from tests.reliability.faults import CRASH_POINTS, check_invariants

pytestmark = pytest.mark.long
LONG = settings(max_examples=5000, deadline=None, suppress_health_check=list(HealthCheck))


@LONG
@given(st.dictionaries(test_config.keys, test_config.json_values, max_size=6) | test_config.json_values)
def test_arbitrary_requests_long(request: Any) -> None:
    test_config._parses_or_config_error(request)


@LONG
@given(st.lists(st.tuples(st.sampled_from(test_config.VALID_PATHS),
                          st.just(test_config.DELETE) | test_config.json_values), min_size=1, max_size=4))
def test_mutated_requests_long(mutations: list[tuple[tuple[Any, ...], Any]]) -> None:
    # the ignores: Hypothesis adds `.hypothesis` to a @given test at run time; its types do not say so
    inner = test_config.test_mutated_valid_request_parses_or_raises_config_error.hypothesis  # type: ignore[attr-defined]
    inner.inner_test(mutations)


@settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
@given(path=st.lists(st.integers(0, 50), max_size=6), value=test_bad_input.json_values)
def test_corrupted_states_long(tmp_path_factory: pytest.TempPathFactory, path: list[int], value: Any) -> None:
    inner = test_bad_input.test_a_corrupted_state_is_a_clear_error_or_a_valid_state.hypothesis  # type: ignore[attr-defined]
    inner.inner_test(tmp_path_factory, path, value)


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_crash_at_every_pass_long(point: str) -> None:
    cfg = config("Hyperband", parallel=3, max_jobs=20, max_resource=9, brackets=2)
    for at in range(1, 16):
        state, cloud, _ = asyncio.run(test_simulated.run_with_crash(cfg, test_simulated.plan_for(point, at)))
        check_invariants(state, cloud.launches, cloud.running())


def test_one_controller_1000_concurrent_10000_trials() -> None:
    cfg = config("Hyperband", parallel=1_000, max_jobs=10_000, max_resource=27)  # past AMT's quotas: hb_core.amt
    clock = VirtualClock()
    cloud = SimulatedBackend(mlp_accuracy, clock, cost=mlp_epoch_seconds)
    state = asyncio.run(Tuner(cfg, cloud, MemoryStore(), clock, job_name="load", poll_interval=math.inf).run())
    check_invariants(state, cloud.launches, cloud.running())
    assert cloud.peak_running == 1_000 and len(state.trials) == 10_000
