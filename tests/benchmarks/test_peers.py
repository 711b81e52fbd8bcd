"""The peer adapters on a tiny problem: Optuna's pruners, Syne Tune's ASHA and Ray Tune's ASHA, step by step."""

from __future__ import annotations

import importlib.metadata

import harness
import pytest

from tests.benchmarks.tiny import task

pytest.importorskip("optuna", reason="optuna (the bench extra) is not installed")
pytest.importorskip("syne_tune", reason="syne-tune (the bench extra) is not installed")
pytest.importorskip("ray.tune", reason="ray[tune] (the bench extra) is not installed")

import peers


@pytest.mark.parametrize("peer", sorted(set(peers.PEERS) - peers.LEGACY))
def test_each_peer_tunes_the_tiny_task(peer: str) -> None:
    run = peers.run_peer(task(target=0.86), peer, seed=0, workers=3, cap=10_000)
    assert run.method == peer and run.trials >= 1
    values = [v for _, v in run.trace]
    assert values == sorted(values)
    assert run.trials <= harness.MAX_TRIALS


@pytest.mark.parametrize("peer", ["optuna-SHA", "optuna-SHA-random", "optuna-HB", "synetune-ASHA", "raytune-ASHA"])
def test_multi_fidelity_peers_stop_some_trials_early(peer: str) -> None:
    run = peers.run_peer(task(target=2.0), peer, seed=1, workers=2, cap=600)  # unreachable target: run to the cap
    assert run.epochs < run.trials * 9


@pytest.mark.parametrize("peer", ["synetune-ASHA", "raytune-ASHA"])
def test_a_peer_run_is_reproducible_for_a_seed(peer: str) -> None:
    a = peers.run_peer(task(target=2.0), peer, seed=5, workers=2, cap=300)
    b = peers.run_peer(task(target=2.0), peer, seed=5, workers=2, cap=300)
    c = peers.run_peer(task(target=2.0), peer, seed=6, workers=2, cap=300)
    assert a.trace == b.trace and a.trials == b.trials
    assert c.trace != a.trace


def test_ray_tune_asha_stops_the_worse_two_thirds_at_a_rung() -> None:
    policy = peers.RayTunePolicy(task(), seed=0)
    trials = [policy.ask()[0] for _ in range(6)]
    go_on = [policy.report(trial, 1, 1.0 - 0.1 * i) for i, trial in enumerate(trials)]  # best first
    assert go_on == [True, False, False, False, False, False]
    for i, trial in enumerate(trials):
        policy.finish(trial, 1, 1.0 - 0.1 * i, completed=False)


def test_search_spaces_translate_scaling() -> None:
    ranges = {
        "ContinuousParameterRanges": [{"Name": "lr", "MinValue": "0.0001", "MaxValue": "0.1",
                                       "ScalingType": "Logarithmic"}],
        "IntegerParameterRanges": [{"Name": "units", "MinValue": "10", "MaxValue": "1000", "ScalingType": "Linear"}],
        "CategoricalParameterRanges": [{"Name": "op", "Values": ["a", "b"]}],
    }
    optuna_space = peers._optuna_distributions(ranges)
    assert optuna_space["lr"].log and not optuna_space["units"].log
    assert optuna_space["op"].choices == ("a", "b")
    syne = peers._syne_tune_space(ranges)
    assert syne["lr"].lower == pytest.approx(1e-4) and syne["units"].upper == 1000
    ray = peers._ray_tune_space(ranges)
    assert ray["lr"].lower == pytest.approx(1e-4) and ray["units"].upper == 1001  # Ray's upper bound is exclusive
    assert ray["op"].categories == ["a", "b"]


def test_an_unknown_pruner_is_refused() -> None:
    with pytest.raises(ValueError, match="pruner in"):
        peers.OptunaPolicy(task(), 0, "median")


@pytest.mark.skipif(not peers.LEGACY_PYTHON.exists(), reason="the legacy-peer virtualenv (make .venv-legacy) is absent")
@pytest.mark.parametrize("peer", sorted(peers.LEGACY))
def test_syne_tune_model_based_peers_run_in_their_own_virtualenv(peer: str) -> None:
    """MOBSTER and Hyper-Tune (Syne Tune 0.14) run in .venv-legacy, one process a run, and come back as RunResults."""
    import nasbench

    task = nasbench.task("cifar10", (0.01,))
    run = peers.run_peer(task, peer, seed=3, workers=4, cap=600.0, source=("cifar10", (0.01,)))
    assert run.method == peer and run.seed == 3 and run.workers == 4
    assert 4 <= run.trials <= harness.MAX_TRIALS and run.elapsed <= 600.0
    assert run.epochs < run.trials * 200  # stopping-type: some trials were stopped before MaxResource


def test_a_legacy_peer_needs_the_task_source_to_run_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.16.0")  # the module peers asks
    with pytest.raises(ValueError, match="source"):
        peers.run_peer(task(), "synetune-MOBSTER", seed=0, workers=2, cap=10.0)
