"""Subprocess tests of examples/resnet/train.py (ResNet-20, PyTorch, SageMaker script mode) on the CPU.

Every test runs the real script on a small synthetic CIFAR-format set made by
``prepare_data.py`` (10 classes of coloured stripes, 32 x 32), one torch
thread, a few epochs: seconds each. Runs are deterministic on the CPU, so the
resume test compares printed values and weights for equality, not closeness.
"""

from __future__ import annotations

import functools
import io
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is missing: install the resnet extra (pip install -e '.[resnet]')")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "resnet"
SCRIPT = EXAMPLE / "train.py"
PREPARE = EXAMPLE / "prepare_data.py"
TUNING = EXAMPLE / "tuning.json"

LINE_RE = re.compile(r"^epoch=(\d+) validation:accuracy=([0-9.]+) train:loss=([0-9.]+|nan)$")
FAST = ["--batch_size", "16", "--learning_rate", "0.02", "--momentum", "0.9", "--weight_decay", "0.0005"]
N_TRAIN, N_VALIDATION = 160, 80  # enough to learn something in a few epochs
N_TINY = 48, 24  # enough to exercise checkpoints and signals


@functools.cache
def load_example(name: str) -> Any:
    """A module of examples/resnet, imported by path (the examples are not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"resnet_{name}", EXAMPLE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def clean_env(**extra: Any) -> dict[str, str]:
    """The environment of one training process: no SM_* from the test runner, one thread everywhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SM_") and k != "CUDA_VISIBLE_DEVICES"}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.update({k: str(v) for k, v in extra.items()})
    return env


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """SM_CHANNEL_TRAINING / SM_CHANNEL_VALIDATION of a small synthetic set."""
    dirs = load_example("prepare_data").write_synthetic(str(tmp_path_factory.mktemp("resnet-data")),
                                                        N_TRAIN, N_VALIDATION, seed=0)
    return {"SM_CHANNEL_TRAINING": dirs["training"], "SM_CHANNEL_VALIDATION": dirs["validation"]}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    dirs = load_example("prepare_data").write_synthetic(str(tmp_path_factory.mktemp("resnet-tiny")), *N_TINY, seed=1)
    return {"SM_CHANNEL_TRAINING": dirs["training"], "SM_CHANNEL_VALIDATION": dirs["validation"]}


def run(args: list[Any], cwd: Path, data: dict[str, str] | None, timeout: float = 120, **env: Any
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], cwd=str(cwd),
                          env=clean_env(**(data or {}), **env), capture_output=True, text=True, timeout=timeout)


def parse(stdout: str) -> list[tuple[int, str, str]]:
    out = []
    for line in stdout.splitlines():
        m = LINE_RE.match(line)
        assert m, f"unparseable stdout line: {line!r}"
        out.append((int(m.group(1)), m.group(2), m.group(3)))
    return out


def weights(path: Path) -> dict[str, Any]:
    state_dict: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    return state_dict


# ---------------------------------------------------------------- training


def test_learns_prints_one_line_per_epoch_and_saves_the_model(tmp_path: Path, data: dict[str, str]) -> None:
    model_dir, out = tmp_path / "model", tmp_path / "output" / "data"
    r = run(FAST + ["--epochs", "3"], tmp_path, data, SM_MODEL_DIR=model_dir, SM_OUTPUT_DATA_DIR=out)
    assert r.returncode == 0, r.stderr
    rows = parse(r.stdout)
    assert [e for e, _, _ in rows] == [1, 2, 3]
    accuracies = [float(a) for _, a, _ in rows]
    assert max(accuracies) >= 0.3, accuracies  # chance is 0.1 on 10 classes
    assert "device cpu" in r.stderr and "threads 1" in r.stderr
    # the request's metric regexes pick the values out of every line
    definitions = json.loads(TUNING.read_text())["TrainingJobDefinition"]["AlgorithmSpecification"][
        "MetricDefinitions"]
    regex = {d["Name"]: re.compile(d["Regex"]) for d in definitions}
    for line, (epoch, acc, loss) in zip(r.stdout.splitlines(), rows):
        assert cast("re.Match[str]", regex["validation:accuracy"].search(line)).group(1) == acc
        assert cast("re.Match[str]", regex["epoch"].search(line)).group(1) == str(epoch)
        assert cast("re.Match[str]", regex["train:loss"].search(line)).group(1) == loss
    # the saved model predicts what the last epoch reported
    train = load_example("train")
    model, record = train.load_model(str(model_dir))
    with np.load(Path(data["SM_CHANNEL_VALIDATION"]) / "validation.npz") as z:
        predicted = train.predict(model, record, z["images"])
        assert round(float(np.mean(predicted == z["labels"])), 4) == accuracies[-1]
    assert train.count_parameters(model) == 269_722  # ResNet-20 with option-A shortcuts: "0.27M"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["final_epoch"] == 3 and metrics["device"] == "cpu"
    assert metrics["best_validation_accuracy"] == pytest.approx(max(accuracies), abs=5e-5)


def test_checkpoint_resume_equals_an_uninterrupted_run_bit_for_bit(tmp_path: Path, tiny: dict[str, str]) -> None:
    data = tiny
    args = ["--batch_size", "16", "--learning_rate", "0.05", "--momentum", "0.5", "--weight_decay", "0.001",
            "--seed", "3"]
    ck = tmp_path / "ck"
    first = run(args + ["--epochs", "1"], tmp_path, data, SM_CHECKPOINT_DIR=ck, SM_MODEL_DIR=tmp_path / "m1")
    assert first.returncode == 0, first.stderr
    assert (ck / "checkpoint.pt").exists()
    second = run(args + ["--epochs", "3"], tmp_path, data, SM_CHECKPOINT_DIR=ck, SM_MODEL_DIR=tmp_path / "m3")
    assert second.returncode == 0, second.stderr
    assert "resumed from" in second.stderr
    assert [e for e, _, _ in parse(second.stdout)] == [2, 3]  # only the new epochs, with their true numbers

    fresh = run(args + ["--epochs", "3"], tmp_path, data, SM_MODEL_DIR=tmp_path / "fresh")  # no checkpoints
    assert fresh.returncode == 0, fresh.stderr
    assert parse(first.stdout) + parse(second.stdout) == parse(fresh.stdout)
    resumed, uninterrupted = weights(tmp_path / "m3" / "model.pt"), weights(tmp_path / "fresh" / "model.pt")
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)  # BN statistics included

    ckpt = torch.load(ck / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert ckpt["epoch"] == 3 and len(ckpt["history"]) == 3
    assert {"model", "optimizer", "scaler", "rng_cpu", "fingerprint"} <= set(ckpt)
    assert ckpt["optimizer"]["state"]  # the momentum buffers are saved, not rebuilt
    assert not [p for p in ck.iterdir() if p.name != "checkpoint.pt"]  # no temporary file left

    again = run(args + ["--epochs", "3"], tmp_path, data, SM_CHECKPOINT_DIR=ck)  # nothing left to train
    assert again.returncode == 0 and again.stdout == "", again.stderr
    other = run(args[:-1] + ["4", "--epochs", "4"], tmp_path, data, SM_CHECKPOINT_DIR=ck)  # another seed
    assert other.returncode == 2 and "different run" in other.stderr


def test_sigterm_mid_epoch_exits_143_keeps_the_last_checkpoint_and_a_rerun_resumes(tmp_path: Path,
                                                                                    tiny: dict[str, str]) -> None:
    data = tiny
    ck, model_dir = tmp_path / "ck", tmp_path / "m"
    args = ["--batch_size", "4", "--learning_rate", "0.01", "--momentum", "0.9", "--weight_decay", "0.0005"]
    proc = subprocess.Popen([sys.executable, str(SCRIPT), *args, "--epochs", "50"], cwd=str(tmp_path),
                            env=clean_env(**data, SM_CHECKPOINT_DIR=ck, SM_MODEL_DIR=model_dir),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        first = proc.stdout.readline()  # blocks until epoch 1 is done (12 batches of 4)
        assert LINE_RE.match(first.strip()), first
        time.sleep(0.2)  # into epoch 2
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, err
    assert "SIGTERM received" in err
    printed = [first.strip()] + [line for line in rest.splitlines() if line]
    assert all(LINE_RE.match(line) for line in printed)
    # the checkpoint holds exactly the epochs that were reported: the partial epoch is abandoned
    ckpt = torch.load(ck / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert ckpt["epoch"] == len(printed) < 50
    assert not model_dir.exists()
    assert not [p for p in ck.iterdir() if p.name != "checkpoint.pt"]
    # a new job (a spot retry, a promotion) continues from it
    done = len(printed)
    rerun = run(args + ["--epochs", str(done + 1)], tmp_path, data, SM_CHECKPOINT_DIR=ck, SM_MODEL_DIR=model_dir)
    assert rerun.returncode == 0, rerun.stderr
    assert [e for e, _, _ in parse(rerun.stdout)] == [done + 1]
    assert (model_dir / "model.pt").exists()


# ---------------------------------------------------------------- inputs


def test_cli_hyperparameters_beat_sm_hps_and_unknown_arguments_are_ignored(tmp_path: Path,
                                                                           tiny: dict[str, str]) -> None:
    data = tiny
    hps = {"epochs": "1", "batch_size": 64, "learning_rate": "0.01", "num_classes": 12,
           "sagemaker_program": "train.py"}
    r = run(["--num_classes", "11", "--sagemaker_submit_directory", "s3://b/src.tar.gz", "--seeds", "9"],
            tmp_path, data, SM_HPS=json.dumps(hps), SM_MODEL_DIR=tmp_path / "m")
    assert r.returncode == 0, r.stderr
    assert len(parse(r.stdout)) == 1
    assert '"batch_size": 64' in r.stderr and '"seed": 0' in r.stderr  # --seeds is not --seed
    assert weights(tmp_path / "m" / "model.pt")["fc.weight"].shape == (11, 64)  # the CLI's 11, not SM_HPS's 12


@pytest.mark.parametrize("name,value,desc", [
    ("batch_size", "0", "an integer >= 1"), ("momentum", "1", "a number in [0, 1)"),
    ("epochs", "2.5", "an integer >= 1"), ("weight_decay", "nan", "a number >= 0"),
    ("learning_rate", "-0.1", "a number > 0"), ("num_classes", "1", "an integer >= 2"),
])
def test_a_bad_hyperparameter_is_named_with_its_rule(name: str, value: str, desc: str) -> None:
    train = load_example("train")
    with pytest.raises(train.InputError, match=re.escape(f"invalid hyperparameter {name}={value}: must be {desc}")):
        train.parse_hyperparameters([f"--{name}", value], env={})
    with pytest.raises(train.InputError, match=re.escape(f"{name}={value}")):
        train.parse_hyperparameters([], env={"SM_HPS": json.dumps({name: value})})


def test_a_bad_input_exits_2_with_sagemakers_failure_file(tmp_path: Path, tiny: dict[str, str]) -> None:
    out = tmp_path / "output"
    r = run(["--batch_size", "0"], tmp_path, tiny, SM_OUTPUT_DIR=out)
    assert r.returncode == 2 and r.stdout == ""
    assert "invalid hyperparameter batch_size=0" in r.stderr
    assert "invalid hyperparameter batch_size=0" in (out / "failure").read_text()
    r = run(["--epochs", "1"], tmp_path, {"SM_CHANNEL_VALIDATION": tiny["SM_CHANNEL_VALIDATION"]})
    assert r.returncode == 2 and "SM_CHANNEL_TRAINING is not set" in r.stderr and "prepare_data.py" in r.stderr


def test_bad_channels_are_named(tmp_path: Path, tiny: dict[str, str]) -> None:
    train = load_example("train")
    bad = tmp_path / "bad"
    bad.mkdir()
    env = {**tiny, "SM_CHANNEL_TRAINING": str(bad)}
    with pytest.raises(train.InputError, match="holds no .npz file"):
        train.load_data(10, env)
    np.savez(bad / "part.npz", images=np.zeros((4, 32, 32, 3), np.uint8), labels=np.array([0, 1, 2, 10]))
    with pytest.raises(train.InputError, match=re.escape("labels must lie in [0, num_classes=10), got [0, 10]")):
        train.load_data(10, env)
    np.savez(bad / "part.npz", images=np.zeros((4, 32, 32), np.float32), labels=np.zeros(4, np.int64))
    with pytest.raises(train.InputError, match=re.escape("images must be uint8 N x H x W x 3")):
        train.load_data(10, env)
    np.savez(bad / "part.npz", images=np.zeros((4, 16, 16, 3), np.uint8), labels=np.zeros(4, np.int64))
    with pytest.raises(train.InputError, match="training images are"):
        train.load_data(10, env)
    # several files of a channel are read in name order and concatenated
    np.savez(bad / "part.npz", images=np.zeros((4, 32, 32, 3), np.uint8), labels=np.zeros(4, np.int64))
    np.savez(bad / "another.npz", images=np.ones((2, 32, 32, 3), np.uint8), labels=np.ones(2, np.int64))
    x_tr, y_tr, _, _ = train.load_data(10, env)
    assert y_tr.tolist() == [1, 1, 0, 0, 0, 0] and x_tr.shape == (6, 32, 32, 3)


# ---------------------------------------------------------------- data preparation


def _cifar_archive(path: Path, rng: np.random.Generator) -> dict[str, tuple[np.ndarray, list[int]]]:
    """An archive laid out as cifar-10-python.tar.gz (pickled dicts with bytes keys), 6 images per batch."""
    batches = {}
    with tarfile.open(path, "w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
            if name == "batches.meta":
                body: dict[bytes, Any] = {b"label_names": [b"airplane"] * 10}
            else:
                pixels = rng.integers(0, 256, size=(6, 3072), dtype=np.uint8)
                labels = [int(v) for v in rng.integers(0, 10, size=6)]
                batches[name] = (pixels, labels)
                body = {b"batch_label": name.encode(), b"labels": labels, b"data": pixels,
                        b"filenames": [b"x.png"] * 6}
            raw = pickle.dumps(body, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return batches


def test_prepare_data_converts_the_cifar10_archive(tmp_path: Path) -> None:
    batches = _cifar_archive(tmp_path / "cifar-10-python.tar.gz", np.random.default_rng(1))
    r = subprocess.run([sys.executable, str(PREPARE), "cifar10", str(tmp_path / "cifar-10-python.tar.gz"),
                        str(tmp_path / "out")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"training": str(tmp_path / "out" / "training"),
                                    "validation": str(tmp_path / "out" / "validation")}
    with np.load(tmp_path / "out" / "training" / "training.npz") as z:
        images, labels = z["images"], z["labels"]
    assert images.shape == (30, 32, 32, 3) and images.dtype == np.uint8 and labels.dtype == np.int64
    assert labels.tolist() == sum((batches[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    # a row holds the red, green and blue planes in turn, each 32 x 32 row-major
    pixels = batches["data_batch_2"][0]
    for image, row, col, channel in [(0, 0, 0, 0), (3, 5, 7, 1), (5, 31, 30, 2)]:
        assert images[6 + image, row, col, channel] == pixels[image, channel * 1024 + row * 32 + col]
    with np.load(tmp_path / "out" / "validation" / "validation.npz") as z:
        assert z["labels"].tolist() == batches["test_batch"][1] and z["images"].shape == (6, 32, 32, 3)


def test_prepare_data_refuses_a_pickle_that_is_not_arrays(tmp_path: Path) -> None:
    archive = tmp_path / "evil.tar.gz"
    raw = pickle.dumps({b"data": os.system}, protocol=2)  # what a tampered batch would smuggle in
    with tarfile.open(archive, "w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    r = subprocess.run([sys.executable, str(PREPARE), "cifar10", str(archive), str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "not a numpy array" in r.stderr
    assert not (tmp_path / "out").exists()


def test_synthetic_sets_share_their_classes_and_are_reproducible() -> None:
    prepare = load_example("prepare_data")
    a_images, a_labels = prepare.synthetic(50, seed=0)
    b_images, b_labels = prepare.synthetic(50, seed=0)
    c_images, _ = prepare.synthetic(50, seed=1)
    assert np.array_equal(a_images, b_images) and np.array_equal(a_labels, b_labels)
    assert not np.array_equal(a_images, c_images)
    assert a_images.shape == (50, 32, 32, 3) and a_images.dtype == np.uint8 and set(a_labels) <= set(range(10))
    # a class keeps its colour across draws: per-class mean colours agree between seeds
    big, labels = prepare.synthetic(2000, seed=5)
    other, other_labels = prepare.synthetic(2000, seed=6)
    for k in range(10):
        assert np.allclose(big[labels == k].mean(axis=(0, 1, 2)), other[other_labels == k].mean(axis=(0, 1, 2)),
                           atol=8)


# ---------------------------------------------------------------- the request


def test_tuning_json_is_the_seed_experiment_on_g4dn() -> None:
    req = json.loads(TUNING.read_text())
    cfg = req["HyperParameterTuningJobConfig"]
    definition = req["TrainingJobDefinition"]
    assert cfg["Strategy"] == "Hyperband" and cfg["TrainingJobEarlyStoppingType"] == "Off"
    hb = cfg["StrategyConfig"]["HyperbandStrategyConfig"]
    assert (hb["MinResource"], hb["MaxResource"]) == (10, 100)  # the seed article's sample configuration
    assert int(definition["StaticHyperParameters"]["epochs"]) == hb["MaxResource"]
    assert cfg["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "validation:accuracy"}
    ranges = {r["Name"]: (r["MinValue"], r["MaxValue"]) for kind in cfg["ParameterRanges"].values() for r in kind}
    assert ranges == {"batch_size": ("4", "512"), "learning_rate": ("0.000001", "0.1"),
                      "momentum": ("0.01", "0.99"), "weight_decay": ("0.00001", "1")}
    assert definition["ResourceConfig"]["InstanceType"] == "ml.g4dn.xlarge"
    assert "/pytorch-training:" in definition["AlgorithmSpecification"]["TrainingImage"]
    assert "-gpu-" in definition["AlgorithmSpecification"]["TrainingImage"]
    assert {c["ChannelName"] for c in definition["InputDataConfig"]} == {"training", "validation"}
    static = definition["StaticHyperParameters"]
    assert (TUNING.parent / static["sagemaker_submit_directory"] / static["sagemaker_program"]).is_file()
    train = load_example("train")
    assert set(ranges) <= set(train.HYPERPARAMETERS) and "epochs" in train.HYPERPARAMETERS

    from hb_core.config import TuningConfig

    config = TuningConfig.from_dict(req)
    assert config.hyperband is not None and config.space is not None
