"""Warm start: parent observations, seeded rungs, and samplers whose model starts from the parents."""

from __future__ import annotations

import asyncio
import copy
import json
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

import hb_core
from hb_core.backends.clock import VirtualClock
from hb_core.backends.simulated import SimulatedBackend
from hb_core.backends.stores import MemoryStore
from hb_core.config import Objective, ObjectiveType, TuningConfig, WarmStartType
from hb_core.controller import decide, new_state
from hb_core.curves import make_curve
from hb_core.errors import StateError
from hb_core.events import Event, MetricReported, Stop, TrialStarted
from hb_core.runner import Tuner
from hb_core.state import Trial, TrialStatus, TuningState
from hb_core.strategies import BayesianSampler, JointGPSampler, RandomSampler, RungGPSampler, make_sampler
from hb_core.strategies.warm_start import SEEDED_KEY, PriorObservation, prior_observations, seed_rungs, warm_prior
from tests.helpers import DEFAULT_RANGES, request

OPTIMUM = np.array([0.3, 0.3, 0.3, 0.3])


def quality(cfg: TuningConfig, hps: Any) -> float:
    return -float(np.sum((cfg.space.encode(hps)[:4] - OPTIMUM) ** 2))


def child_config(strategy: str = "Bayesian", warm: str = "IdenticalDataAndAlgorithm", **hb: Any) -> TuningConfig:
    body = request(strategy, name="child", parallel=4, max_jobs=40)
    body["WarmStartConfig"] = {"ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "parent"}],
                               "WarmStartType": warm}
    if hb:
        body["HyperParameterTuningJobConfig"]["StrategyConfig"]["HyperbandStrategyConfig"].update(hb)
    return TuningConfig.from_dict(body)


def parent_state(n: int = 20, *, reach: int = 27, ranges: dict[str, Any] | None = None,
                 objective: tuple[str, str] = ("Maximize", "score"), seed: int = 5) -> TuningState:
    """A finished parent: n trials that reported every epoch up to ``reach`` (value: quality, rising)."""
    cfg = TuningConfig.from_dict(request("Hyperband", name="parent", ranges=ranges, objective=objective))
    rng = np.random.default_rng(seed)
    trials = []
    for i in range(n):
        hps = cfg.space.sample(rng)
        value = quality(cfg, hps)
        points = tuple((r, value - 0.01 * (reach - r), float(r)) for r in range(1, reach + 1))
        trials.append(Trial(f"{i:04d}", hps, 0, TrialStatus.COMPLETED, 27, 0.0, points=points))
    return new_state(cfg, now=0.0).with_changes(trials=tuple(trials))


# --- prior_observations ---------------------------------------------------------------------------------


def test_prior_observations_are_the_last_points_of_counted_trials() -> None:
    parent = parent_state(5)
    trials = list(parent.trials)
    trials[1] = Trial("0001", trials[1].hyperparameters, 0, TrialStatus.FAILED, 27, 0.0, points=((1, 9.0, 1.0),))
    trials[2] = Trial("0002", trials[2].hyperparameters, 0, TrialStatus.STOPPED, 27, 0.0)  # reported nothing
    parent = parent.with_changes(trials=tuple(trials))
    prior = prior_observations([parent], parent.config.space)
    assert [dict(p.hyperparameters) for p in prior] == [dict(parent.trials[i].hyperparameters) for i in (0, 3, 4)]
    assert all(p.resource == 27 and p.value == parent.trials[i].points[-1][1] for p, i in zip(prior, (0, 3, 4)))
    _hps, _value, resource = prior[0]  # a plain (hyperparameters, value, resource) triple
    assert resource == 27


def test_prior_observations_per_rung_level() -> None:
    parent = parent_state(3, reach=9)
    prior = prior_observations([parent], parent.config.space, levels=(1, 3, 9, 27))
    assert [p.resource for p in prior] == [1, 3, 9] * 3
    assert prior[1].value == parent.trials[0].points[2][1]  # the value at resource 3


def test_a_parent_with_other_ranges_contributes_what_fits() -> None:
    narrow = copy.deepcopy(DEFAULT_RANGES)
    narrow["IntegerParameterRanges"][0]["MaxValue"] = "100"  # units in [10, 100] instead of [10, 1000]
    child = TuningConfig.from_dict(request("Hyperband", ranges=narrow))
    parent = parent_state(30)
    prior = prior_observations([parent], child.space)
    expected = [t for t in parent.trials if int(t.hyperparameters["units"]) <= 100]
    assert 0 < len(prior) == len(expected) < 30


def test_transfer_learning_drops_hyperparameters_no_longer_tuned() -> None:
    wider = copy.deepcopy(DEFAULT_RANGES)
    wider["CategoricalParameterRanges"] = [{"Name": "activation", "Values": ["relu", "tanh"]}]
    parent = parent_state(6, ranges=wider)
    child = TuningConfig.from_dict(request("Hyperband"))  # no activation any more
    assert prior_observations([parent], child.space) == []
    prior = prior_observations([parent], child.space, warm_start_type=WarmStartType.TRANSFER_LEARNING)
    assert len(prior) == 6 and all(set(p.hyperparameters) == set(child.space.names) for p in prior)


def test_parents_with_another_objective_are_skipped() -> None:
    parent = parent_state(4, objective=("Minimize", "loss"))
    space = parent.config.space
    assert len(prior_observations([parent], space)) == 4
    assert prior_observations([parent], space, objective=Objective("score", ObjectiveType.MAXIMIZE)) == []


# --- seed_rungs ------------------------------------------------------------------------------------------


def test_seed_rungs_inserts_parent_values_once() -> None:
    child = new_state(child_config("Hyperband", NumberOfBrackets=2), now=0.0)
    parent = parent_state(6, reach=9)
    seeded = seed_rungs(child, [parent])
    levels = [[r.level for r in bracket] for bracket in seeded.rungs]
    assert levels == [[1, 3, 9, 27], [3, 9, 27]]
    for bracket in seeded.rungs:
        for rung in bracket:
            assert len(rung.keys) == (6 if rung.level <= 9 else 0)
            assert list(rung.keys) == sorted(rung.keys)
    assert seeded.extra[SEEDED_KEY] == 6 * 3 + 6 * 2
    assert seed_rungs(seeded, [parent]) is seeded  # a restart does not insert twice
    assert TuningState.from_dict(seeded.to_dict()) == seeded


def test_seed_rungs_leaves_transfer_learning_and_rungless_jobs_alone() -> None:
    parent = parent_state(4)
    transfer = new_state(child_config("Hyperband", warm="TransferLearning"), now=0.0)
    assert seed_rungs(transfer, [parent]) is transfer
    bayesian = new_state(child_config("Bayesian"), now=0.0)
    assert seed_rungs(bayesian, [parent]) is bayesian


def test_seeded_rungs_judge_the_first_trials() -> None:
    """Unseeded, the first trial passes the empty rung; seeded, a poor first value is stopped there."""
    parent = parent_state(12)
    cfg = child_config("Hyperband")
    for seeded, stopped in ((False, False), (True, True)):
        state = new_state(cfg, now=0.0)
        state = seed_rungs(state, [parent]) if seeded else state
        state, _ = decide(state, [], 0.0, sampler=RandomSampler(cfg.space))
        events: list[Event] = [TrialStarted("0000", 1, 1.0), MetricReported("0000", 1, 1.0, -5.0, seq=1)]
        state, actions = decide(state, events, 1.0, sampler=RandomSampler(cfg.space))
        assert any(isinstance(a, Stop) and a.trial_id == "0000" for a in actions) is stopped


# --- samplers with a prior ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["Bayesian", "MultiFidelityGP", "HyperbandBayesian"])
def test_warm_start_changes_the_first_proposals(kind: str) -> None:
    """With enough prior points the model is active from trial 0 and proposes near the parents' best."""
    if kind == "Bayesian":
        cfg = child_config("Bayesian")
    else:
        cfg = child_config("Hyperband", Sampler="MultiFidelityGP" if kind == "MultiFidelityGP" else "Bayesian", RandomFraction=0.0)
    parent = parent_state(30)
    prior = prior_observations([parent], cfg.space)
    cold, warm = make_sampler(cfg), make_sampler(cfg, prior=prior)
    state = new_state(cfg, now=0.0)
    random = RandomSampler(cfg.space)
    cold_first = [cold.propose(state, i) for i in range(4)]
    warm_first = [warm.propose(state, i) for i in range(4)]
    assert cold_first == [random.propose(state, i) for i in range(4)]
    assert all(w != c for w, c in zip(warm_first, cold_first, strict=True))
    assert np.median([quality(cfg, w) for w in warm_first]) > np.median([quality(cfg, c) for c in cold_first])
    assert all(cfg.space.contains(w) for w in warm_first)  # type: ignore[arg-type]


def test_a_small_prior_leaves_the_first_proposals_random() -> None:
    cfg = child_config("Bayesian")
    prior = prior_observations([parent_state(2)], cfg.space)
    state = new_state(cfg, now=0.0)
    sampler = BayesianSampler(cfg.space, 1.0, prior=prior)
    assert sampler.propose(state, 0) == RandomSampler(cfg.space).propose(state, 0)


def test_bayesian_prior_keeps_the_observations_at_the_largest_resource() -> None:
    cfg = child_config("Bayesian")
    hps = [cfg.space.sample(np.random.default_rng(i)) for i in range(3)]
    prior = [PriorObservation(hps[0], 1.0, 27), PriorObservation(hps[1], 5.0, 3), PriorObservation(hps[2], 2.0, 27)]
    _x, y, _ = BayesianSampler(cfg.space, 1.0, prior=prior).observations(new_state(cfg, now=0.0))
    np.testing.assert_array_equal(y, [1.0, 2.0])


def test_rung_samplers_place_prior_observations_at_their_rung() -> None:
    cfg = child_config("Hyperband", Sampler="Bayesian")
    space = cfg.space
    hps = [space.sample(np.random.default_rng(i)) for i in range(8)]
    prior = [PriorObservation(h, float(i), 27 if i < 6 else 5) for i, h in enumerate(hps)]
    for kind in (JointGPSampler, RungGPSampler):
        sampler = kind.from_config(cfg, prior)
        data = sampler.rung_data(new_state(cfg, now=0.0))
        assert data is not None and data.level == 27 and len(data.y) == 6


def test_end_to_end_warm_started_child_starts_where_the_parent_ended() -> None:
    """A parent runs in virtual time; its state seeds a child's sampler and rungs through the runner."""
    parent_cfg = TuningConfig.from_dict(request("Hyperband", name="parent", parallel=4, max_jobs=40))
    curve, _ = make_curve("quadratic", parent_cfg.space, seed=2)
    parent = hb_core.simulate(parent_cfg, curve).state
    cfg = child_config("Hyperband", Sampler="Bayesian")
    prior = prior_observations([parent], cfg.space, objective=cfg.objective, levels=(1, 3, 9, 27))
    firsts: dict[str, list[float]] = {}
    for label, sampler in (("cold", make_sampler(cfg)), ("warm", make_sampler(cfg, prior=prior))):
        clock = VirtualClock()
        store = MemoryStore()
        if label == "warm":
            asyncio.run(store.save(seed_rungs(new_state(cfg, now=0.0, job_name="child"), [parent]), None))
        backend = SimulatedBackend(curve, clock, default_budget=27)
        state = asyncio.run(Tuner(cfg, backend, store, clock, job_name="child", sampler=sampler,
                                  poll_interval=float("inf")).run())
        assert state.done and len(state.trials) == 40
        firsts[label] = [curve(dict(t.hyperparameters), 27) for t in state.trials[:8]]
    assert np.median(firsts["warm"]) > np.median(firsts["cold"])


# --- the parents are read once: the prior lives in the state ------------------------------------------


async def _warm_run(cfg: TuningConfig, curve: Any, parents: MemoryStore, *, restart_after: int | None = None,
                    changed: TuningState | None = None) -> TuningState:
    """The child to its end in virtual time; at ``restart_after`` rounds the parent becomes ``changed`` and a
    new controller takes over from the checkpoint (the backend, the running jobs, carries on)."""
    clock = VirtualClock()
    backend = SimulatedBackend(curve, clock, default_budget=27)
    store = MemoryStore(serialize=True)

    def controller() -> Tuner:
        return Tuner(cfg, backend, store, clock, job_name="child", poll_interval=float("inf"), parents=[parents])

    tuner = controller()
    state = await tuner.start()
    for rounds in range(10_000):
        if state.done:
            break
        if rounds == restart_after and changed is not None:
            await parents.save(changed, (await parents.load()).revision)  # type: ignore[union-attr]
            tuner = controller()
            state = await tuner.start()
        await clock.sleep_until(tuner._wake_time())
        state = await tuner.step()
    return state


@pytest.mark.parametrize(("strategy", "hb"), [("Hyperband", {"Sampler": "MultiFidelityGP"}), ("Bayesian", {})])
def test_a_restart_after_the_parent_changed_replays_the_same_proposals(strategy: str, hb: dict[str, Any]) -> None:
    """``decide`` on a checkpoint is the whole truth: the parents' observations were copied into the state when
    the job was created, so a controller restarted after a parent changed proposes what one that never
    stopped proposes."""
    cfg = child_config(strategy, **hb)
    cfg = replace(cfg, resource_limits=replace(cfg.resource_limits, max_number_of_training_jobs=16))
    curve, _ = make_curve("quadratic", cfg.space, seed=2)
    parent, changed = parent_state(20), parent_state(20, seed=9)

    async def run(restart_after: int | None) -> TuningState:
        parents = MemoryStore(serialize=True)
        await parents.save(parent, None)
        return await _warm_run(cfg, curve, parents, restart_after=restart_after, changed=changed)

    reference, restarted = asyncio.run(run(None)), asyncio.run(run(3))
    assert reference.done and restarted.done and len(reference.trials) == 16
    assert [dict(t.hyperparameters) for t in restarted.trials] == [dict(t.hyperparameters) for t in reference.trials]
    assert restarted.prior == reference.prior == warm_prior(cfg, [parent])
    # The changed parent teaches something else: re-reading it at the restart would have changed the proposals.
    samplers = [make_sampler(cfg, prior=warm_prior(cfg, [p])) for p in (parent, changed)]
    assert any(samplers[0].propose(reference, i) != samplers[1].propose(reference, i) for i in range(16, 20))


def test_the_prior_round_trips_through_a_checkpoint_and_an_older_one_reads_its_parents_once() -> None:
    cfg = child_config("Hyperband", Sampler="MultiFidelityGP")
    parent = parent_state(6)
    prior = warm_prior(cfg, [parent])
    assert len(prior) == 6 * 4 and all(isinstance(p, PriorObservation) for p in prior)
    state = new_state(cfg, now=0.0).with_changes(prior=prior)
    assert TuningState.from_dict(json.loads(json.dumps(state.to_dict()))).prior == prior
    bad = state.to_dict()
    bad["prior"][0]["resource"] = "3"
    with pytest.raises(StateError, match=r"state.prior\[\].resource must be an integer"):
        TuningState.from_dict(bad)

    # A checkpoint written before TuningState.prior existed: no "prior" key. It loads with prior None (a bare
    # decide proposes as without a warm start); the runner copies the parents' observations at its next start.
    older = new_state(cfg, now=0.0, job_name="child").to_dict()
    del older["prior"]
    assert TuningState.from_dict(older).prior is None

    async def restart() -> tuple[TuningState, TuningState | None]:
        clock = VirtualClock()
        store, parents = MemoryStore(serialize=True), MemoryStore()
        await store.save(TuningState.from_dict(older), None)
        await parents.save(parent, None)
        state = await Tuner(cfg, SimulatedBackend(lambda hps, r: 0.5, clock), store, clock, job_name="child",
                            parents=[parents]).start()
        return state, await store.load()

    state, saved = asyncio.run(restart())
    assert state.prior == prior and saved is not None and saved.prior == prior
