"""The Bayesian strategy: the GP, expected improvement, pending trials, fallbacks and end-to-end runs."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest

import hb_core
from hb_core.backends.clock import VirtualClock
from hb_core.backends.simulated import SimulatedBackend
from hb_core.backends.stores import MemoryStore
from hb_core.config import TuningConfig
from hb_core.controller import decide, new_state
from hb_core.curves import make_curve
from hb_core.events import Launch, MetricReported, TrialCompleted, TrialStarted
from hb_core.runner import Tuner
from hb_core.space import ContinuousParameter, SearchSpace
from hb_core.state import Trial, TrialStatus, TuningState
from hb_core.strategies import BayesianSampler, JointGPSampler, RandomSampler, RungGPSampler, make_sampler, trial_rng
from hb_core.strategies.gp import GPProposer, Layout, _factor, _neg_log_likelihood, _sqdist, capped, fit_gp, folded
from tests.helpers import config

UNIT_1D = SearchSpace((ContinuousParameter("x", 0.0, 1.0),))
MIXED_RANGES: dict[str, Any] = {
    "ContinuousParameterRanges": [
        {"Name": "learning_rate", "MinValue": "0.0001", "MaxValue": "0.1", "ScalingType": "Logarithmic"},
    ],
    "IntegerParameterRanges": [{"Name": "units", "MinValue": "1", "MaxValue": "6", "ScalingType": "Linear"}],
    "CategoricalParameterRanges": [{"Name": "optimizer", "Values": ["sgd", "adam", "rmsprop"]}],
}


def smooth(x: np.ndarray) -> np.ndarray:
    return np.sin(6.0 * x[:, 0]) + 0.5 * x[:, 0]


def state_with(
    cfg: TuningConfig,
    observed: Sequence[tuple[Mapping[str, Any], float]],
    pending: Sequence[Mapping[str, Any]] = (),
    *,
    seed: int = 0,
) -> TuningState:
    """A state whose first trials completed with the given values and whose last ones are running."""
    trials = [
        Trial(f"{i:04d}", dict(hps), 0, TrialStatus.COMPLETED, 1, 0.0, points=((1, value, 1.0),))
        for i, (hps, value) in enumerate(observed)
    ]
    start = len(trials)
    trials += [Trial(f"{start + i:04d}", dict(hps), 0, TrialStatus.IN_PROGRESS, 1, 0.0) for i, hps in enumerate(pending)]
    state = new_state(cfg, now=0.0, seed=seed)
    return state.with_changes(trials=tuple(trials), active=tuple(range(start, len(trials))))


def observed_on(cfg: TuningConfig, n: int, fn: Any, seed: int = 1) -> list[tuple[dict[str, Any], float]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        hps = cfg.space.sample(rng)
        out.append((hps, float(fn(cfg.space.encode(hps)))))
    return out


def bowl(u: np.ndarray) -> float:
    return -float(np.sum((u - 0.3) ** 2))


# --- the Gaussian process -------------------------------------------------------------------------


def test_gp_recovers_a_smooth_1d_function() -> None:
    x = np.linspace(0.0, 0.5, 7)[:, None]
    fit = fit_gp(x, smooth(x), Layout.of(UNIT_1D), np.random.default_rng(0))
    assert not isinstance(fit, str)
    mean, sd = fit.predict(x)
    assert np.max(np.abs(mean - smooth(x))) < 1e-2  # interpolates the training points
    inside = np.linspace(0.0, 0.5, 51)[:, None]
    mean_in, sd_in = fit.predict(inside)
    assert np.max(np.abs(mean_in - smooth(inside))) < 0.1  # and the function between them
    _, sd_far = fit.predict(np.array([[1.0]]))
    prior_sd = math.sqrt(fit.signal) * fit.y_scale
    assert np.max(sd) < 0.02 * prior_sd
    assert sd_far[0] > 10 * np.max(sd_in) and sd_far[0] <= prior_sd * (1 + 1e-9)  # uncertain away, bounded by the prior


def test_ei_is_zero_at_the_observed_max_and_positive_elsewhere() -> None:
    x = np.linspace(0.0, 0.5, 7)[:, None]
    y = smooth(x)
    fit = fit_gp(x, y, Layout.of(UNIT_1D), np.random.default_rng(0))
    assert not isinstance(fit, str)
    grid = np.linspace(0.0, 1.0, 201)[:, None]
    ei_grid = fit.expected_improvement(grid, 0.0)
    at_max = fit.expected_improvement(x[[int(np.argmax(y))]], 0.0)[0]
    assert at_max < 1e-3 and at_max < 0.02 * ei_grid.max()  # only the noise floor's sd (~1e-3) is left there
    assert np.all(fit.expected_improvement(np.array([[0.95], [1.0]]), 0.0) > 0.1 * ei_grid.max())
    assert np.all(ei_grid >= 0.0)


def test_gradients_match_finite_differences() -> None:
    rng = np.random.default_rng(3)
    layout = Layout(np.array([0, 1, 1]), (), np.arange(3))
    x, y = rng.random((25, 3)), rng.normal(size=25)
    sq = [_sqdist(x[:, layout.groups == g], x[:, layout.groups == g]) for g in range(2)]
    theta, h = np.array([-1.0, -0.5, 0.2, -3.0]), 1e-6
    _, grad = _neg_log_likelihood(theta, sq, y)
    numeric = [(_neg_log_likelihood(theta + h * e, sq, y)[0] - _neg_log_likelihood(theta - h * e, sq, y)[0]) / (2 * h)
               for e in np.eye(4)]
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6)
    fit = fit_gp(x, np.sin(3 * x.sum(axis=1)), layout, rng)
    assert not isinstance(fit, str)
    z = np.array([[0.2, 0.9, 0.4]])
    _, ei_grad = fit.ei_and_gradient(z, 0.01)
    ei_numeric = [(fit.ei_and_gradient(z + h * e, 0.01)[0][0] - fit.ei_and_gradient(z - h * e, 0.01)[0][0]) / (2 * h)
                  for e in np.eye(3)]
    np.testing.assert_allclose(ei_grad[0], ei_numeric, rtol=1e-3, atol=1e-9)


def test_cholesky_jitter_escalates_on_a_singular_matrix() -> None:
    k = np.ones((4, 4))  # rank one: plain Cholesky fails
    chol = _factor(k)
    assert chol is not None and np.allclose(chol @ chol.T, k, atol=1e-3)
    assert _factor(np.full((3, 3), np.nan)) is None


def test_fit_reports_degenerate_data() -> None:
    layout = Layout.of(UNIT_1D)
    x = np.linspace(0, 1, 5)[:, None]
    assert fit_gp(x, np.full(5, 2.5), layout, np.random.default_rng(0)) == "all observed values are equal"
    assert fit_gp(x[:1], np.ones(1), layout, np.random.default_rng(0)) == "fewer than 2 observations"


@pytest.mark.parametrize(
    ("values", "sign", "expected"),
    [([1.0, math.nan, 3.0], 1.0, [1.0, 1.0, 3.0]), ([1.0, math.inf, 3.0], -1.0, [-1.0, -3.0, -3.0])],
)
def test_non_finite_values_count_as_the_worst(values: list[float], sign: float, expected: list[float]) -> None:
    np.testing.assert_array_equal(folded(values, sign), expected)


def test_training_set_cap_keeps_the_best_half_and_the_most_recent() -> None:
    y = np.array([5.0, 0.0, 0.0, 9.0, 0.0, 0.0, 1.0, 2.0])
    np.testing.assert_array_equal(capped(8, y, 4), [0, 3, 6, 7])
    np.testing.assert_array_equal(capped(3, y[:3], 4), [0, 1, 2])


# --- the sampler ----------------------------------------------------------------------------------


def test_make_sampler_dispatches_on_strategy_and_sampler() -> None:
    assert isinstance(make_sampler(config("Bayesian")), BayesianSampler)
    assert isinstance(make_sampler(config("Random")), RandomSampler)
    assert isinstance(make_sampler(config("Hyperband")), RandomSampler)
    for sampler, kind in (("MultiFidelityGP", JointGPSampler), ("Bayesian", RungGPSampler)):
        cfg = TuningConfig.from_dict(_with_sampler(sampler))
        assert isinstance(make_sampler(cfg), kind) and make_sampler(cfg).uses_history


def _with_sampler(sampler: str, **extra: Any) -> dict[str, Any]:
    from tests.helpers import request

    body = request("Hyperband")
    body["HyperParameterTuningJobConfig"]["StrategyConfig"]["HyperbandStrategyConfig"].update(Sampler=sampler, **extra)
    return body


def test_initial_proposals_are_the_random_strategys() -> None:
    cfg = config("Bayesian", parallel=5)
    sampler, random = BayesianSampler(cfg.space, 1.0), RandomSampler(cfg.space)
    assert sampler.n_initial == 5  # four hyperparameters + 1
    state = state_with(cfg, observed_on(cfg, 4, bowl))
    assert all(sampler.propose(state, i) == random.propose(state, i) for i in range(4, 9))


def test_model_proposals_leave_the_random_draw_and_improve() -> None:
    cfg = config("Bayesian", parallel=5)
    state = state_with(cfg, observed_on(cfg, 12, bowl))
    sampler = BayesianSampler(cfg.space, 1.0)
    proposal = sampler.propose(state, 12)
    assert proposal is not None and cfg.space.contains(proposal)
    assert proposal != RandomSampler(cfg.space).propose(state, 12)
    assert bowl(cfg.space.encode(proposal)) > np.median([v for _, v in observed_on(cfg, 12, bowl)])


def test_five_simultaneous_launches_are_distinct() -> None:
    """The proposals of one round see the earlier ones as pending (kriging believer)."""
    cfg = config("Bayesian", parallel=5, max_jobs=30)
    state = state_with(cfg, observed_on(cfg, 10, bowl))
    state, actions = decide(state, [], 1.0)
    launches = [a for a in actions if isinstance(a, Launch)]
    assert len(launches) == 5
    points = np.array([cfg.space.encode(a.hyperparameters) for a in launches])
    distances = _sqdist(points, points) + np.eye(5)
    assert np.min(distances) > 1e-4
    # Without the pending trials, the same five indices would crowd far more tightly.
    sampler, alone = BayesianSampler(cfg.space, 1.0), state_with(cfg, observed_on(cfg, 10, bowl))
    crowd = np.array([cfg.space.encode(sampler.propose(alone, i)) for i in range(10, 15)])  # type: ignore[arg-type]
    assert np.min(distances) > np.min(_sqdist(crowd, crowd) + np.eye(5))


def test_same_state_and_index_give_the_same_proposal() -> None:
    cfg = config("Bayesian", parallel=5)
    state = state_with(cfg, observed_on(cfg, 9, bowl), pending=[cfg.space.sample(np.random.default_rng(7))])
    first = BayesianSampler(cfg.space, 1.0).propose(state, 10)
    again = BayesianSampler(cfg.space, 1.0, proposer=GPProposer(cfg.space)).propose(state, 10)
    assert first == again
    assert BayesianSampler(cfg.space, 1.0).propose(state, 11) != first  # another index draws anew
    other_seed = state_with(cfg, observed_on(cfg, 9, bowl), pending=[cfg.space.sample(np.random.default_rng(7))],
                            seed=5)
    assert BayesianSampler(cfg.space, 1.0).propose(other_seed, 10) != first


@pytest.mark.parametrize("value", [2.0, math.nan])
def test_degenerate_values_fall_back_to_random_with_one_note(value: float) -> None:
    cfg = config("Bayesian", name=f"degenerate-{'nan' if math.isnan(value) else 'equal'}")
    observed = [(hps, value) for hps, _ in observed_on(cfg, 8, bowl)]
    state = state_with(cfg, observed)
    sampler = BayesianSampler(cfg.space, 1.0)
    proposals = [sampler.propose(state, i) for i in range(8, 11)]
    assert proposals == [RandomSampler(cfg.space).propose(state, i) for i in range(8, 11)]
    reason = "no observed value is a finite number" if math.isnan(value) else "all observed values are equal"
    assert sampler.fallbacks.take() == [reason]  # once, though three proposals fell back
    assert sampler.fallbacks.take() == []


def test_some_nan_values_are_the_worst_and_the_model_still_runs() -> None:
    cfg = config("Bayesian")
    observed = observed_on(cfg, 10, bowl)
    observed[3] = (observed[3][0], math.nan)
    _x, y, pending = BayesianSampler(cfg.space, 1.0).observations(state_with(cfg, observed))
    assert y[3] == np.min(y) and np.all(np.isfinite(y)) and pending.shape == (0, 4)
    proposal = BayesianSampler(cfg.space, 1.0).propose(state_with(cfg, observed), 10)
    assert proposal is not None and cfg.space.contains(proposal)


def test_failed_and_running_trials_are_not_observations() -> None:
    cfg = config("Bayesian")
    observed = observed_on(cfg, 4, bowl)
    state = state_with(cfg, observed, pending=[observed[0][0]])
    trials = list(state.trials)
    trials[1] = Trial("0001", trials[1].hyperparameters, 0, TrialStatus.FAILED, 1, 0.0, points=((1, 9.0, 1.0),))
    _x, y, pending = BayesianSampler(cfg.space, 1.0).observations(state.with_changes(trials=tuple(trials)))
    assert len(y) == 3 and 9.0 not in y and len(pending) == 1


def test_minimize_is_folded_so_the_model_seeks_low_values() -> None:
    cfg = config("Bayesian", objective=("Minimize", "loss"))
    state = state_with(cfg, [(h, -v) for h, v in observed_on(cfg, 12, bowl)])
    proposals = [BayesianSampler(cfg.space, -1.0).propose(state, i) for i in range(12, 15)]
    assert np.mean([bowl(cfg.space.encode(p)) for p in proposals]) > np.median([v for _, v in observed_on(cfg, 12, bowl)])  # type: ignore[arg-type]


def test_integer_and_categorical_spaces() -> None:
    cfg = config("Bayesian", ranges=MIXED_RANGES, parallel=4)
    best = {"learning_rate": 0.01, "units": 4, "optimizer": "adam"}

    def score(u: np.ndarray) -> float:
        return bowl(u[:2]) + (1.0 if u[3] == 1.0 else 0.0)

    state = state_with(cfg, observed_on(cfg, 10, score), pending=[best])
    sampler = BayesianSampler(cfg.space, 1.0)
    proposals = [sampler.propose(state, i) for i in range(11, 16)]
    for proposal in proposals:
        assert proposal is not None and cfg.space.contains(proposal)
        assert isinstance(proposal["units"], int) and proposal["optimizer"] in ("sgd", "adam", "rmsprop")
        assert proposal != best  # the pending configuration is not proposed again


def test_a_tiny_discrete_space_once_exhausted_falls_back_to_random() -> None:
    ranges = {"CategoricalParameterRanges": [{"Name": "c", "Values": ["a", "b"]}]}
    cfg = config("Bayesian", ranges=ranges, name="tiny-space")
    space = cfg.space
    state = state_with(cfg, [({"c": "a"}, 1.0), ({"c": "b"}, 2.0), ({"c": "a"}, 1.5)])
    sampler = BayesianSampler(space, 1.0)
    proposal = sampler.propose(state, 3)
    assert proposal == space.sample(trial_rng(state.seed, 3))
    assert any("already tried or pending" in reason for reason in sampler.fallbacks.take())


# --- end to end -----------------------------------------------------------------------------------


def test_the_runner_logs_each_fallback_reason_once(caplog: pytest.LogCaptureFixture) -> None:
    """The sampler only notes why it proposed at random; the runner, its adapter, logs each reason once per job."""
    cfg = config("Bayesian", parallel=2, max_jobs=12, name="flat")
    clock = VirtualClock()
    backend = SimulatedBackend(lambda hps, resource: 0.5, clock, default_budget=3)
    with caplog.at_level(logging.WARNING, logger="hb_core.runner"):
        state = asyncio.run(Tuner(cfg, backend, MemoryStore(), clock, poll_interval=math.inf).run())
    assert state.done and len(state.trials) == 12  # every proposal past n_initial fell back: one warning
    assert [r.getMessage() for r in caplog.records if "instead" in r.getMessage()] == [
        "tuning job flat: all observed values are equal; proposing a random configuration instead"]


def test_simulated_bayesian_run_beats_random_on_a_smooth_curve() -> None:
    """Deterministic under the seed: the same run twice gives the same trials."""
    bests = {}
    for strategy in ("Random", "Bayesian"):
        cfg = config(strategy, parallel=3, max_jobs=24, max_resource=3)
        curve, _ = make_curve("quadratic", cfg.space, seed=1)
        result = hb_core.simulate(cfg, curve)
        assert len(result.trials) == 24 and all(cfg.space.contains(t.hyperparameters) for t in result.trials)
        assert all(t.status == "Completed" and t.resource == 3 for t in result.trials)
        bests[strategy] = result.best_objective
        if strategy == "Bayesian":
            again = hb_core.simulate(cfg, curve)
            assert [t.hyperparameters for t in again.trials] == [t.hyperparameters for t in result.trials]
    assert bests["Bayesian"] > bests["Random"]  # type: ignore[operator]


def test_bayesian_contract_with_events_through_decide() -> None:
    """Launch, report, complete in rounds of the pure controller until the job finishes."""
    state, _ = decide(new_state(config("Bayesian", parallel=3, max_jobs=12, max_resource=2), now=0.0), [], 0.0)
    now = 0.0
    for _ in range(30):
        if state.done:
            break
        now += 1.0
        events: list[Any] = []
        for index in state.active:
            trial = state.trials[index]
            value = bowl(state.config.space.encode(trial.hyperparameters))
            events += [TrialStarted(trial.trial_id, 1, now), MetricReported(trial.trial_id, 1, now, value, seq=1),
                       MetricReported(trial.trial_id, 1, now, value, seq=2), TrialCompleted(trial.trial_id, 1, now)]
        state, _actions = decide(state, events, now)
    assert state.done and len(state.trials) == 12
    assert len({tuple(sorted(t.hyperparameters.items())) for t in state.trials}) == 12
