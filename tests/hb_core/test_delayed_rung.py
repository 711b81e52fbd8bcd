"""``MinRungResults``: the delayed rung rule (a rung keeps or promotes no trial before it holds that many values)."""

from __future__ import annotations

from typing import Any

import pytest

import hb_core
from hb_core.config import HyperbandConfig, TuningConfig
from hb_core.controller import decide, new_state
from hb_core.curves import mlp_accuracy, mlp_epoch_seconds
from hb_core.errors import ConfigError
from hb_core.events import Event, Launch, MetricReported, Resume, Stop, TrialCompleted, TrialStarted
from hb_core.rungs import keeps
from hb_core.state import TrialStatus, TuningState
from tests.helpers import request

HB = ("HyperParameterTuningJobConfig", "StrategyConfig", "HyperbandStrategyConfig")


def body(min_results: object, **kwargs: Any) -> dict[str, Any]:
    raw = request("Hyperband", **kwargs)
    raw[HB[0]][HB[1]][HB[2]]["MinRungResults"] = min_results
    return raw


def started(min_results: int, **kwargs: Any) -> TuningState:
    state, _ = decide(new_state(TuningConfig.from_dict(body(min_results, **kwargs)), now=0.0), [], 0.0)
    return state


@pytest.mark.parametrize("paused", [False, True])
def test_keeps_is_the_plain_rule_from_min_results_on(paused: bool) -> None:
    for n in range(1, 30):
        for rank in range(1, n + 1):
            plain = keeps(rank, n, 3, paused=paused)
            assert plain == (rank <= (n // 3 if paused else max(1, -(-n // 3))))
            assert keeps(rank, n, 3, 5, paused=paused) == (plain and n >= 5)


def test_stopping_variant_stops_arrivals_before_the_rung_holds_min_results() -> None:
    state = started(3, parallel=4, max_jobs=4)
    state, _ = decide(state, [TrialStarted(f"000{i}", 1, 0.0) for i in range(4)], 0.0)
    # the first two at rung 1 are stopped although each is the best so far: the rung holds 1, then 2, of 3
    for i, (trial_id, value) in enumerate((("0000", 0.5), ("0001", 0.6))):
        state, actions = decide(state, [MetricReported(trial_id, 1, 1.0 + i, value)], 1.0 + i)
        assert [a.trial_id for a in actions if isinstance(a, Stop)] == [trial_id]
        decision = state.decisions[-1]
        assert (decision.action, decision.rank, decision.n) == ("stop", 1, i + 1)
        assert "MinRungResults=3" in (state.trials[i].stop_reason or "")
    # the third, best of three: kept; the fourth, rank 2 of 4 (ceil(4/3) = 2): kept
    state, actions = decide(state, [MetricReported("0002", 1, 3.0, 0.9)], 3.0)
    assert actions == () and state.decisions[-1].action == "continue"
    state, actions = decide(state, [MetricReported("0003", 1, 4.0, 0.7)], 4.0)
    assert actions == () and state.decisions[-1].action == "continue"


def test_promotion_variant_promotes_only_once_the_rung_holds_min_results() -> None:
    state = started(4, variant="Promotion", parallel=3, max_jobs=5)
    events: list[Event] = []
    for trial_id, value in (("0000", 0.3), ("0001", 0.9), ("0002", 0.6)):
        events += [MetricReported(trial_id, 1, 1.0, value), TrialCompleted(trial_id, 1, 1.0)]
    state, actions = decide(state, events, 1.0)
    # floor(3/3) = 1 would promote 0001 (plain ASHA); with 3 of 4 values, new trials take the slots
    assert not [a for a in actions if isinstance(a, Resume)]
    assert [a.trial_id for a in actions if isinstance(a, Launch)] == ["0003", "0004"]
    assert state.trials[1].status is TrialStatus.PAUSED
    state, actions = decide(state, [MetricReported("0003", 1, 2.0, 0.1), TrialCompleted("0003", 1, 2.0)], 2.0)
    assert [(a.trial_id, a.to_resource) for a in actions if isinstance(a, Resume)] == [("0001", 3)]


@pytest.mark.parametrize(("value", "rule"), [(0, "1 <= MinRungResults"), (-3, "1 <= MinRungResults"),
                                             (2.5, "integer"), ("three", "integer"), (True, "integer")])
def test_bad_min_rung_results_names_the_field_the_rule_and_the_value(value: object, rule: str) -> None:
    with pytest.raises(ConfigError) as raised:
        TuningConfig.from_dict(body(value))
    assert raised.value.path == "HyperParameterTuningJobConfig.StrategyConfig.HyperbandStrategyConfig.MinRungResults"
    assert rule in str(raised.value) and repr(value)[:4] in str(raised.value)


def test_min_rung_results_round_trips_and_is_written_only_when_set() -> None:
    cfg = TuningConfig.from_dict(body("9"))
    assert cfg.hyperband is not None and cfg.hyperband.min_rung_results == 9
    assert TuningConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.to_dict()[HB[0]][HB[1]][HB[2]]["MinRungResults"] == 9
    assert "MinRungResults" not in TuningConfig.from_dict(body(1)).to_dict()[HB[0]][HB[1]][HB[2]]
    assert HyperbandConfig(1, 27).min_rung_results == 1
    # AMT has no such key: hb-tune validate --amt names it
    assert any(f.path.endswith("HyperbandStrategyConfig.MinRungResults") for f in cfg.amt_findings())


# With Promotion, MinRungResults <= eta changes nothing (floor(n/eta) >= 1 already needs eta values): 6 does.
@pytest.mark.parametrize(("variant", "min_results"), [("Stopping", 3), ("Promotion", 6)])
def test_a_delayed_run_replays_bit_for_bit_and_differs_from_plain_asha(variant: str, min_results: int) -> None:
    raw = body(min_results, parallel=8, max_jobs=60, variant=variant)
    runs = [hb_core.simulate(TuningConfig.from_dict(raw), mlp_accuracy, cost=mlp_epoch_seconds) for _ in range(2)]
    assert runs[0].trace == runs[1].trace and runs[0].elapsed == runs[1].elapsed
    assert runs[0].trials == runs[1].trials
    plain = hb_core.simulate(TuningConfig.from_dict(request("Hyperband", parallel=8, max_jobs=60, variant=variant)),
                             mlp_accuracy, cost=mlp_epoch_seconds)
    assert plain.trials != runs[0].trials
