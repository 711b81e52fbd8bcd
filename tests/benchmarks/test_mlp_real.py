"""The MLP harness: in-process curves equal train.py's, the cache, the wall-clock requests."""

from __future__ import annotations

import json
import math
from pathlib import Path

import harness
import mlp_real
import pytest

from hb_core.config import HyperbandVariant, SamplerType, Strategy, TuningConfig

SMALL = {"units": 12, "batch_size": 150, "learning_rate": 0.01, "l2": 1e-4}


def test_in_process_curve_is_what_train_py_prints(tmp_path: Path) -> None:
    mlp = mlp_real._mlp_module()
    x_tr, y_tr, x_va, y_va, _ = mlp.load_data({})
    x_tr_s, x_va_s, _, _ = mlp.standardize(x_tr, x_va)
    hps = {**SMALL, "seed": 0, "epochs": 3}
    _, history = mlp.train(hps, (x_tr_s, y_tr, x_va_s, y_va), checkpoint_path=str(tmp_path / "c.npz"))
    cache = mlp_real.CurveCache(None)
    try:
        for epoch, (acc, _) in enumerate(history, start=1):
            value, cpu = cache.point(SMALL, epoch)
            assert value == float(mlp.format_line(epoch, acc, 0.0).split("=")[2].split()[0])
            assert cpu >= 0.0
    finally:
        cache.close()


def test_a_curve_is_extended_lazily_and_retrained_identically_without_its_trainer(tmp_path: Path) -> None:
    cache = mlp_real.CurveCache(tmp_path, max_live=1)
    try:
        first = [cache.point(SMALL, e)[0] for e in (1, 2)]
        cache.point({**SMALL, "units": 11}, 1)  # evicts SMALL's trainer
        fresh = mlp_real.CurveCache(None)
        assert cache.point(SMALL, 3)[0] == fresh.point(SMALL, 3)[0]  # retrained from scratch: the same value
        fresh.close()
        assert [cache.point(SMALL, e)[0] for e in (1, 2)] == first
        cache.save()
        again = mlp_real.CurveCache(tmp_path, tag="other")
        assert again.curves[mlp_real.config_key(SMALL)]["acc"][:3] == cache.curves[mlp_real.config_key(SMALL)]["acc"]
        again.close()
    finally:
        cache.close()


def test_merging_cache_files_keeps_the_longer_curve(tmp_path: Path) -> None:
    key = mlp_real.config_key(SMALL)
    short = {"version": mlp_real.CACHE_VERSION, "startup_cpu": 0.2, "curves": {key: {"acc": [0.6], "cpu": [0.1]}}}
    long = {"version": mlp_real.CACHE_VERSION, "startup_cpu": 0.3,
            "curves": {key: {"acc": [0.6, 0.7], "cpu": [0.1, 0.1]}}}
    (tmp_path / "mlp_curves.a.json").write_text(json.dumps(short))
    (tmp_path / "mlp_curves.b.json").write_text(json.dumps(long))
    (tmp_path / "mlp_curves.c.json").write_text(json.dumps({"version": 0, "curves": {key: {"acc": [0] * 9}}}))
    cache = mlp_real.CurveCache(tmp_path)
    assert cache.curves[key]["acc"] == [0.6, 0.7] and cache.startup == 0.2
    assert cache.oracle(0.65) == (pytest.approx(0.4), key)  # type: ignore[comparison-overlap]  # approx: typed Approx
    assert cache.oracle(0.9)[0] == math.inf
    cache.close()


@pytest.mark.parametrize("method", sorted(harness.OURS))
def test_wall_clock_requests_are_the_example_with_method_seed_target_and_cap(method: str) -> None:
    config = TuningConfig.from_dict(mlp_real.real_request(method, seed=4, cap=150.0))
    assert config.resource_limits.max_parallel_training_jobs == 5
    assert config.resource_limits.max_runtime_in_seconds == 150
    assert config.completion.target_objective_metric_value == mlp_real.HARD
    assert config.strategy is Strategy(harness.OURS[method]["Strategy"])
    if method == "HB-promo":
        assert config.hyperband is not None
        assert config.hyperband.variant is HyperbandVariant.PROMOTION
    if method == "HB-MFGP":
        assert config.hyperband is not None
        assert config.hyperband.sampler is SamplerType.MULTI_FIDELITY_GP
    assert config.training_job_definition is not None
    assert config.training_job_definition.static_hyperparameters["sagemaker_program"] == "train.py"


def test_curve_check_compares_reported_values_with_the_cache(tmp_path: Path) -> None:
    cache = mlp_real.CurveCache(None)
    key = mlp_real.config_key(SMALL)
    cache.curves[key] = {"acc": [0.6, 0.7], "cpu": [0.1, 0.1]}
    run = harness.RunResult("Random", 0, 5, [], 1.0, 1, 3, {"curves": {key: [0.6, 0.71, 0.8], "other": [0.5]}})
    assert mlp_real.check_curves([run], cache) == (1, 2)
    cache.close()
