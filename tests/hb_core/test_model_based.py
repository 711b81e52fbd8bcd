"""Model-based Hyperband: rung values, the GP samplers, RandomFraction, the removed KDE, and end-to-end runs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import hb_core
from hb_core.config import HyperbandConfig, SamplerType, TuningConfig
from hb_core.controller import decide, new_state
from hb_core.curves import make_curve
from hb_core.errors import ConfigError
from hb_core.events import Launch, TrialCompleted
from hb_core.report import summary_text
from hb_core.state import REMOVED_SAMPLER_KEY, Trial, TrialStatus, TuningState
from hb_core.strategies import RandomSampler, make_sampler
from hb_core.strategies.model_based import DEFAULT_RANDOM_FRACTION, RungGPSampler, rung_value
from hb_core.strategies.multi_fidelity import JointGPSampler, refit_size
from tests.helpers import request

LEVELS = (1, 3, 9, 27)
OPTIMUM = np.array([0.3, 0.3, 0.3, 0.3])


def hb_config(sampler: str = "Bayesian", **extra: Any) -> TuningConfig:
    body = request("Hyperband", parallel=4, max_jobs=60)
    body["HyperParameterTuningJobConfig"]["StrategyConfig"]["HyperbandStrategyConfig"].update(Sampler=sampler, **extra)
    return TuningConfig.from_dict(body)


def quality(cfg: TuningConfig, hps: Any) -> float:
    return -float(np.sum((cfg.space.encode(hps) - OPTIMUM) ** 2))


def rung_state(cfg: TuningConfig, n: int, *, reach: int = 27, running: int = 0, seed: int = 0) -> TuningState:
    """n ended trials that reported every epoch up to ``reach`` (value = quality), and ``running`` more at epoch 1."""
    rng = np.random.default_rng(seed + 100)
    trials = []
    for i in range(n + running):
        hps = cfg.space.sample(rng)
        top = reach if i < n else 1
        points = tuple((r, quality(cfg, hps) - 0.01 * (top - r), float(r)) for r in range(1, top + 1))
        status = TrialStatus.COMPLETED if i < n else TrialStatus.IN_PROGRESS
        trials.append(Trial(f"{i:04d}", hps, 0, status, 27, 0.0, points=points))
    state = new_state(cfg, now=0.0, seed=seed)
    return state.with_changes(trials=tuple(trials), active=tuple(range(n, n + running)))


@pytest.mark.parametrize(("level", "expected"), [(1, 0.1), (3, 0.3), (4, 0.5), (9, 0.5), (10, None)])
def test_rung_value_is_the_first_point_at_or_beyond_the_level(level: int, expected: float | None) -> None:
    trial = Trial("0000", {}, 0, TrialStatus.STOPPED, 27, 0.0, points=((1, 0.1, 1.0), (3, 0.3, 2.0), (9, 0.5, 3.0)))
    assert rung_value(trial, level) == expected


def test_model_level_is_the_highest_with_enough_values() -> None:
    cfg = hb_config()
    sampler = RungGPSampler.from_config(cfg)
    assert sampler.min_points == 6  # four hyperparameters: max(4 + 2, 6)
    assert sampler.rung_data(rung_state(cfg, 5)) is None
    data = sampler.rung_data(rung_state(cfg, 7, reach=9, running=2))
    assert data is not None and data.level == 9
    assert data.x.shape == (7, 4) and data.y.shape == (7,) and data.pending.shape == (2, 4)
    assert data.stopped.shape == (0, 4)
    data = sampler.rung_data(rung_state(cfg, 7))
    assert data is not None and data.level == 27


@pytest.mark.parametrize("kind", ["Bayesian", "MultiFidelityGP"])
def test_too_few_observations_fall_back_to_random(kind: str) -> None:
    cfg = hb_config(kind, RandomFraction=0.0)
    state = rung_state(cfg, 5)
    sampler, random = make_sampler(cfg), RandomSampler(cfg.space)
    assert all(sampler.propose(state, i) == random.propose(state, i) for i in range(5, 25))


@pytest.mark.parametrize(("kind", "fraction"), [("Bayesian", 0.0), ("Bayesian", 1.0), ("Bayesian", 0.25),
                                                   ("MultiFidelityGP", 0.25)])
def test_random_fraction_is_honored(kind: str, fraction: float) -> None:
    cfg = hb_config(kind, RandomFraction=fraction)
    state = rung_state(cfg, 20)
    sampler, random = make_sampler(cfg), RandomSampler(cfg.space)
    n = 60
    share = np.mean([sampler.propose(state, i) == random.propose(state, i) for i in range(20, 20 + n)])
    spread = 3 * math.sqrt(fraction * (1 - fraction) / n)  # three binomial standard deviations
    assert abs(share - fraction) <= spread + 1e-12


@pytest.mark.parametrize("kind", ["Bayesian", "MultiFidelityGP"])
def test_model_proposals_concentrate_near_the_good_region(kind: str) -> None:
    cfg = hb_config(kind, RandomFraction=0.0)
    state = rung_state(cfg, 30)
    sampler, random = make_sampler(cfg), RandomSampler(cfg.space)
    model = [quality(cfg, sampler.propose(state, i)) for i in range(30, 45)]
    uniform = [quality(cfg, random.propose(state, i)) for i in range(30, 45)]
    assert np.median(model) > np.median(uniform)
    assert all(cfg.space.contains(sampler.propose(state, i)) for i in range(30, 35))  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["Bayesian", "MultiFidelityGP"])
def test_same_state_and_index_give_the_same_proposal(kind: str) -> None:
    cfg = hb_config(kind)
    state = rung_state(cfg, 12, running=2)
    proposals = [make_sampler(cfg).propose(state, i) for i in range(14, 20)]
    assert proposals == [make_sampler(cfg).propose(state, i) for i in range(14, 20)]
    assert len({tuple(sorted(p.items())) for p in proposals}) == len(proposals)  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", ["Bayesian", "MultiFidelityGP"])
def test_gp_samplers_spread_simultaneous_launches(kind: str) -> None:
    cfg = hb_config(kind, RandomFraction=0.0)
    body = cfg.to_dict()
    body["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxParallelTrainingJobs"] = 5
    cfg = TuningConfig.from_dict(body)
    _state, actions = decide(rung_state(cfg, 12), [], 30.0)
    points = np.array([cfg.space.encode(a.hyperparameters) for a in actions if isinstance(a, Launch)])
    assert len(points) == 5
    gaps = np.sum((points[:, None, :] - points[None, :, :]) ** 2, axis=2) + np.eye(5)
    assert np.min(gaps) > 1e-4


# --- configuration ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "sampler", "fraction"),
    [({}, SamplerType.RANDOM, 1 / 3), ({"Sampler": "Bayesian"}, SamplerType.BAYESIAN, 1 / 3),
     ({"Sampler": "Bayesian", "RandomFraction": "0.2"}, SamplerType.BAYESIAN, 0.2),
     ({"Sampler": "MultiFidelityGP", "RandomFraction": 0}, SamplerType.MULTI_FIDELITY_GP, 0.0),
     ({"Sampler": "MultiFidelityGP"}, SamplerType.MULTI_FIDELITY_GP, 1 / 3)],
)
def test_sampler_and_random_fraction_round_trip(extra: dict[str, Any], sampler: SamplerType, fraction: float) -> None:
    body = request("Hyperband")
    body["HyperParameterTuningJobConfig"]["StrategyConfig"]["HyperbandStrategyConfig"].update(extra)
    cfg = TuningConfig.from_dict(body)
    assert cfg.hyperband is not None
    assert cfg.hyperband.sampler is sampler and cfg.hyperband.random_fraction == pytest.approx(fraction)
    assert TuningConfig.from_dict(cfg.to_dict()) == cfg
    written = cfg.to_dict()["HyperParameterTuningJobConfig"]["StrategyConfig"]["HyperbandStrategyConfig"]
    assert ("RandomFraction" in written) == (fraction != DEFAULT_RANDOM_FRACTION)
    assert HyperbandConfig(1, 27).random_fraction == DEFAULT_RANDOM_FRACTION


@pytest.mark.parametrize(("value", "rule"), [(1.5, "0.0 <= RandomFraction <= 1.0"), (-0.1, "0.0 <= RandomFraction <= 1.0"), ("many", "number"),
                                           (True, "number")])
def test_random_fraction_is_checked(value: object, rule: str) -> None:
    body = request("Hyperband")
    body["HyperParameterTuningJobConfig"]["StrategyConfig"]["HyperbandStrategyConfig"]["RandomFraction"] = value
    with pytest.raises(ConfigError) as raised:
        TuningConfig.from_dict(body)
    assert "HyperbandStrategyConfig.RandomFraction" in str(raised.value) and rule in str(raised.value)


def test_an_unknown_sampler_names_the_choices() -> None:
    body = request("Hyperband")
    body["HyperParameterTuningJobConfig"]["StrategyConfig"]["HyperbandStrategyConfig"]["Sampler"] = "multifidelitygp"
    with pytest.raises(ConfigError, match="Did you mean 'MultiFidelityGP'"):
        TuningConfig.from_dict(body)


@pytest.mark.parametrize("value", ["KDE", "kde"])
def test_the_removed_kde_sampler_is_refused_with_its_reason_and_the_alternatives(value: str) -> None:
    body = request("Hyperband")
    body["HyperParameterTuningJobConfig"]["StrategyConfig"]["HyperbandStrategyConfig"]["Sampler"] = value
    with pytest.raises(ConfigError) as raised:
        TuningConfig.from_dict(body)
    error = raised.value
    assert error.path.endswith("HyperbandStrategyConfig.Sampler") and error.found == value
    assert error.rule == "`Sampler is one of Random, Bayesian, MultiFidelityGP` must hold"
    assert str(error).startswith(f"{error.path}: {error.rule}, but got {value!r}. Sampler KDE (BOHB) was removed")
    assert "level with Random" in str(error) and "use Random, or MultiFidelityGP" in str(error)


def test_a_checkpoint_saved_with_the_removed_kde_sampler_loads_with_random_and_says_so() -> None:
    state, actions = decide(new_state(TuningConfig.from_dict(request("Hyperband", parallel=2, max_jobs=6)), now=0.0),
                            [], 0.0)
    saved = state.to_dict()
    saved["config"]["HyperParameterTuningJobConfig"]["StrategyConfig"]["HyperbandStrategyConfig"]["Sampler"] = "KDE"
    with pytest.raises(ConfigError, match="KDE"):  # a new request naming it is still refused
        TuningConfig.from_dict(saved["config"])
    loaded = TuningState.from_dict(saved)
    assert loaded.config.hyperband is not None and loaded.config.hyperband.sampler is SamplerType.RANDOM
    assert loaded.extra == {REMOVED_SAMPLER_KEY: "KDE"} and loaded.trials == state.trials
    text = summary_text(loaded)
    assert "note            Sampler KDE (BOHB) was removed" in text and "reads on with Random" in text
    assert TuningState.from_dict(loaded.to_dict()) == loaded  # saved again, it stays readable and noted
    running = [a.trial_id for a in actions if isinstance(a, Launch)]
    after, more = decide(loaded, [TrialCompleted(t, 1, 1.0) for t in running], 1.0)  # and it goes on
    assert after.n_ended == 2 and any(isinstance(a, Launch) for a in more)
    assert "note" not in summary_text(state)


# --- end to end -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["Bayesian", "MultiFidelityGP"])
@pytest.mark.parametrize("extra", [{}, {"NumberOfBrackets": 2, "Variant": "Promotion"}])
def test_simulated_model_based_hyperband(kind: str, extra: dict[str, Any]) -> None:
    cfg = hb_config(kind, **extra)
    curve, _ = make_curve("quadratic", cfg.space, seed=3)
    result = hb_core.simulate(cfg, curve)
    assert len(result.trials) == 60 and result.best is not None
    assert all(cfg.space.contains(t.hyperparameters) for t in result.trials)
    assert result.peak_running == 4
    again = hb_core.simulate(cfg, curve)
    assert [t.hyperparameters for t in again.trials] == [t.hyperparameters for t in result.trials]
    plain = hb_core.simulate(hb_config("Random"), curve)
    assert result.best_objective > plain.best_objective  # type: ignore[operator]


@pytest.mark.parametrize("kind", ["Bayesian", "MultiFidelityGP"])
def test_never_reproposes_a_configuration_already_tried_on_a_categorical_space(kind: str) -> None:
    """On all-categorical spaces a collapsed model kept proposing the same cell (found by benchmarks/)."""
    from hb_core import simulate
    from tests.helpers import config

    ranges = {"CategoricalParameterRanges": [
        {"Name": f"op{i}", "Values": ["a", "b", "c", "d", "e"]} for i in range(4)]}
    cfg = config("Hyperband", parallel=4, max_jobs=120, sampler=kind, ranges=ranges)

    def objective(hps: dict[str, Any], resource: int) -> float:
        return sum(ord(v) for v in hps.values()) / 400 * (1 - 0.5**resource)

    result = simulate(cfg, objective)
    configs = [tuple(sorted(t.hyperparameters.items())) for t in result.trials]
    model_made = len(configs) - len(set(configs))
    # 120 uniform draws from 625 cells repeat about 11 times: allow that, not a collapsed model.
    assert model_made <= 20, f"{model_made} duplicate configurations among {len(configs)}"


# --- the joint (multi-fidelity) GP ------------------------------------------------------------------


def test_joint_data_holds_every_rung_value_and_fantasises_running_trials_at_their_next_rung() -> None:
    cfg = hb_config("MultiFidelityGP")
    sampler = make_sampler(cfg)
    assert isinstance(sampler, JointGPSampler)
    data = sampler.joint_data(rung_state(cfg, 4, reach=9, running=3))
    # 4 trials at rungs 1, 3, 9 and 3 running ones at rung 1: 15 observations; each running one pending at rung 3.
    assert len(data.y) == 15 and sorted(data.levels.tolist()) == [1] * 7 + [3] * 4 + [9] * 4
    assert data.x.shape == (15, 5) and data.pending.shape == (3, 5)
    t = {level: math.log(level) / math.log(27) for level in LEVELS}
    assert np.allclose(data.x[:, -1], [t[level] for level in data.levels])
    assert np.allclose(data.pending[:, -1], t[3])
    assert len(data.tried) == 7


def test_joint_gp_needs_min_points_at_some_rung_only() -> None:
    """One rung with enough values is enough: the model works long before the highest rung has data."""
    cfg = hb_config("MultiFidelityGP", RandomFraction=0.0)
    state = rung_state(cfg, 8, reach=1)
    sampler, random = make_sampler(cfg), RandomSampler(cfg.space)
    assert any(sampler.propose(state, i) != random.propose(state, i) for i in range(8, 12))


@pytest.mark.parametrize(("n", "size"), [(0, 0), (5, 0), (6, 6), (63, 63), (64, 64), (95, 64), (96, 96),
                                         (1000, 729)])
def test_refit_schedule(n: int, size: int) -> None:
    assert refit_size(n, 6) == size
    assert refit_size(n + 1, 6) in (size, n + 1)  # one more observation refits only on the schedule


def test_joint_gp_replays_bit_for_bit_from_a_fresh_memo() -> None:
    """Same state and index give the same proposal whether the fit comes from the memo or is computed anew."""
    cfg = hb_config("MultiFidelityGP", RandomFraction=0.0)
    state = rung_state(cfg, 40, reach=27, running=4)
    sampler = make_sampler(cfg)
    first = [sampler.propose(state, i) for i in range(44, 48)]  # one fit, then three memo hits
    assert len(sampler.memo) == 1  # type: ignore[attr-defined]
    assert [make_sampler(cfg).propose(state, i) for i in range(44, 48)] == first  # each from a fresh memo
