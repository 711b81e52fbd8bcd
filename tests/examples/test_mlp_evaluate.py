"""examples/mlp/evaluate.py: the held-out set is the training data's problem, never its points."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mlp"


@pytest.fixture(scope="module")
def evaluate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mlp_evaluate_under_test", EXAMPLE / "evaluate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small MLP trained by the real train.py on the built-in data, with its metrics."""
    root = tmp_path_factory.mktemp("mlp")
    env = {**os.environ, "SM_MODEL_DIR": str(root / "model"), "SM_OUTPUT_DATA_DIR": str(root / "out"),
           "OPENBLAS_NUM_THREADS": "1"}
    env.pop("SM_CHANNEL_TRAIN", None)
    env.pop("SM_CHANNEL_VALIDATION", None)
    (root / "out").mkdir()
    done = subprocess.run([sys.executable, str(EXAMPLE / "train.py"), "--units", "64", "--batch_size", "32",
                           "--learning_rate", "0.005", "--l2", "0.0001", "--epochs", "6"],
                          env=env, check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return {"model": root / "model", "metrics": root / "out" / "metrics.json"}


def test_the_replay_rebuilds_the_training_data_bit_for_bit(evaluate: ModuleType) -> None:
    train = evaluate._train_module()
    X, y, problem = evaluate.replay()
    X_ref, y_ref = train.make_classification(seed=train.DATA_SEED, **train.DATA_PARAMS)
    assert np.array_equal(X, X_ref) and np.array_equal(y, y_ref)
    assert len(problem.covariances) == 64 and problem.columns.shape == (20,)


def test_the_held_out_set_is_deterministic_and_disjoint_from_train_and_validation(evaluate: ModuleType) -> None:
    X, y = evaluate.held_out()
    X_again, y_again = evaluate.held_out()
    assert np.array_equal(X, X_again) and np.array_equal(y, y_again)
    assert X.shape == (2000, 20) and X.dtype == np.float32 and set(np.unique(y)) == {0, 1}
    assert 0.45 < y.mean() < 0.55
    X_tr, _, X_va, _ = evaluate._train_module().builtin_data()
    seen = {row.tobytes() for row in np.concatenate([X_tr, X_va])}
    assert not any(row.tobytes() in seen for row in X)
    other, _ = evaluate.held_out(seed=1)
    assert not np.array_equal(X, other)
    with pytest.raises(ValueError, match="seed != train.DATA_SEED"):
        evaluate.held_out(seed=evaluate._train_module().DATA_SEED)


def test_held_out_accuracy_matches_validation_accuracy(evaluate: ModuleType, trained: dict[str, Path]) -> None:
    """Same problem, unseen points: a model scores on the held-out set about what it scored on validation."""
    metrics = evaluate.evaluate(trained["model"])
    validation = json.loads(trained["metrics"].read_text())
    final = validation["final_validation_accuracy"]
    assert abs(metrics["accuracy"] - final) < 0.05
    assert 0.7 < metrics["accuracy"] <= 1 and 0 < metrics["log_loss"] < 1 and metrics["n"] == 2000
    assert evaluate.evaluate(trained["model"] / "model.npz") == metrics  # the file or its directory


def test_cli_evaluates_and_writes_channels(evaluate: ModuleType, trained: dict[str, Path], tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(EXAMPLE / "evaluate.py"), str(trained["model"]), "--n", "500"],
                          check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["n"] == 500
    done = subprocess.run([sys.executable, str(EXAMPLE / "evaluate.py"), "--write-channels", str(tmp_path)],
                          check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    paths = json.loads(done.stdout)
    assert set(paths) == {"train", "validation", "full"}
    with np.load(Path(paths["train"]) / "train.npz") as tr, np.load(Path(paths["validation"]) / "validation.npz") as va, \
            np.load(Path(paths["full"]) / "train.npz") as full:
        assert np.array_equal(full["X"], np.concatenate([tr["X"], va["X"]]))
        assert np.array_equal(full["y"], np.concatenate([tr["y"], va["y"]]))
    missing = subprocess.run([sys.executable, str(EXAMPLE / "evaluate.py")], check=False, capture_output=True, text=True,
                             timeout=60)
    assert missing.returncode == 2 and "a MODEL or --write-channels DIR is required" in missing.stderr
