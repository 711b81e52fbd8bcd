"""Subprocess tests of examples/mlp/train.py (the SageMaker script-mode MLP).

Every test runs the real script with tiny budgets; the whole file takes a few
seconds on one core.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "mlp"
SCRIPT = EXAMPLE / "train.py"
TUNING = EXAMPLE / "tuning.json"

LINE_RE = re.compile(r"^epoch=(\d+) validation:accuracy=([0-9.]+) train:loss=([0-9.]+)$")
TINY = ["--units", "10", "--batch_size", "200", "--learning_rate", "0.01", "--l2", "0.0001"]


def clean_env(**extra: object) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SM_")}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONUNBUFFERED="1")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run(args: Sequence[object], cwd: Path, timeout: float = 60, **env: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT)] + [str(a) for a in args],
        cwd=str(cwd), env=clean_env(**env), capture_output=True, text=True, timeout=timeout,
    )


def parse(stdout: str) -> list[tuple[int, str, str]]:
    lines = stdout.splitlines()
    out = []
    for line in lines:
        m = LINE_RE.match(line)
        assert m, "unparseable stdout line: %r" % line
        out.append((int(m.group(1)), m.group(2), m.group(3)))
    return out


def model_units(model_dir: Path) -> tuple[int, ...]:
    with np.load(Path(model_dir) / "model.npz") as z:
        shape: tuple[int, ...] = z["W1"].shape
        return shape


def test_one_parseable_line_per_epoch(tmp_path: Path) -> None:
    r = run(TINY + ["--epochs", "3"], tmp_path)
    assert r.returncode == 0, r.stderr
    rows = parse(r.stdout)
    assert [e for e, _, _ in rows] == [1, 2, 3]
    for _, acc, loss in rows:
        assert 0.0 <= float(acc) <= 1.0
        assert float(loss) >= 0.0
        assert len(acc.split(".")[1]) == 4
    # the tuning job's metric regexes pick the values out of every line
    metric_defs = json.loads(TUNING.read_text())["TrainingJobDefinition"]["AlgorithmSpecification"][
        "MetricDefinitions"]
    regex = {d["Name"]: re.compile(d["Regex"]) for d in metric_defs}
    for line, (epoch, acc, loss) in zip(r.stdout.splitlines(), rows):
        assert cast("re.Match[str]", regex["validation:accuracy"].search(line)).group(1) == acc
        assert cast("re.Match[str]", regex["epoch"].search(line)).group(1) == str(epoch)
        assert cast("re.Match[str]", regex["train:loss"].search(line)).group(1) == loss


def test_cli_hyperparameters_and_unknown_arguments(tmp_path: Path) -> None:
    r = run(TINY[2:] + ["--units", "12", "--epochs", "2",
                        "--sagemaker_program", "train.py",
                        "--sagemaker_submit_directory", "s3://bucket/src.tar.gz",
                        "--some_other_hp", "x",
                        "--unit", "999"],  # not a prefix match for --units
            tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(parse(r.stdout)) == 2
    # default SM_MODEL_DIR is ./model
    assert model_units(tmp_path / "model") == (20, 12)


def test_sm_hps_fallback_and_cli_precedence(tmp_path: Path) -> None:
    hps = {"units": 13, "epochs": "2", "batch_size": 200, "learning_rate": "0.01",
           "sagemaker_program": "train.py"}
    r = run([], tmp_path, SM_HPS=json.dumps(hps), SM_MODEL_DIR=tmp_path / "a")
    assert r.returncode == 0, r.stderr
    assert len(parse(r.stdout)) == 2
    assert model_units(tmp_path / "a") == (20, 13)
    # CLI beats SM_HPS
    r = run(["--units", "14"], tmp_path, SM_HPS=json.dumps(hps), SM_MODEL_DIR=tmp_path / "b")
    assert r.returncode == 0, r.stderr
    assert model_units(tmp_path / "b") == (20, 14)


def test_checkpoint_resume_equals_uninterrupted(tmp_path: Path) -> None:
    args = ["--units", "16", "--batch_size", "50", "--learning_rate", "0.005", "--l2", "0.001",
            "--seed", "3"]
    ck = tmp_path / "ck"
    first = run(args + ["--epochs", "2"], tmp_path, SM_CHECKPOINT_DIR=ck)
    assert first.returncode == 0, first.stderr
    assert (ck / "checkpoint.npz").exists()
    second = run(args + ["--epochs", "4"], tmp_path, SM_CHECKPOINT_DIR=ck)
    assert second.returncode == 0, second.stderr
    resumed = parse(first.stdout) + parse(second.stdout)
    assert [e for e, _, _ in parse(second.stdout)] == [3, 4]  # only the new epochs, true numbers

    fresh = run(args + ["--epochs", "4"], tmp_path)  # no checkpointing at all
    assert fresh.returncode == 0, fresh.stderr
    assert parse(fresh.stdout) == resumed

    with np.load(ck / "checkpoint.npz") as z:
        assert int(z["epoch"]) == 4
        assert len(z["val_acc_history"]) == 4
        assert z["rng_state"].dtype == np.uint64

    # same budget again: nothing left to train, no new lines, still succeeds
    again = run(args + ["--epochs", "4"], tmp_path, SM_CHECKPOINT_DIR=ck)
    assert again.returncode == 0, again.stderr
    assert again.stdout == ""


def test_different_seed_changes_results_and_checkpoint_mismatch_is_rejected(tmp_path: Path) -> None:
    ck = tmp_path / "ck"
    a = run(TINY + ["--epochs", "2", "--seed", "0"], tmp_path, SM_CHECKPOINT_DIR=ck)
    b = run(TINY + ["--epochs", "2", "--seed", "1"], tmp_path)
    assert a.returncode == 0 and b.returncode == 0
    assert parse(a.stdout) != parse(b.stdout)
    # resuming the seed-0 checkpoint with other hyperparameters must fail loudly
    bad = run(TINY + ["--epochs", "3", "--seed", "1"], tmp_path, SM_CHECKPOINT_DIR=ck)
    assert bad.returncode == 2
    assert "checkpoint" in bad.stderr and "different run" in bad.stderr


def test_sigterm_stops_promptly(tmp_path: Path) -> None:
    ck = tmp_path / "ck"
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--units", "300", "--batch_size", "10",
         "--learning_rate", "0.001", "--epochs", "500"],
        cwd=str(tmp_path), env=clean_env(SM_CHECKPOINT_DIR=ck, SM_MODEL_DIR=tmp_path / "m"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    try:
        first = proc.stdout.readline()  # blocks until epoch 1 is done
        assert LINE_RE.match(first.strip()), first
        time.sleep(0.05)
        t0 = time.time()
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=10)
        elapsed = time.time() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, err
    assert elapsed < 3.0
    printed = [first.strip()] + [line for line in rest.splitlines() if line]
    for line in printed:
        assert LINE_RE.match(line)
    # the checkpoint holds exactly the epochs that were reported, no partial epoch
    with np.load(ck / "checkpoint.npz") as z:
        assert int(z["epoch"]) == len(printed)
    assert not (tmp_path / "m" / "model.npz").exists()
    assert not [p for p in ck.iterdir() if p.name != "checkpoint.npz"]  # no temp files left


def test_model_and_metrics_saved(tmp_path: Path) -> None:
    model_dir, out_dir = tmp_path / "model_out", tmp_path / "output" / "data"
    r = run(TINY + ["--epochs", "3"], tmp_path, SM_MODEL_DIR=model_dir, SM_OUTPUT_DATA_DIR=out_dir)
    assert r.returncode == 0, r.stderr
    rows = parse(r.stdout)
    with np.load(model_dir / "model.npz") as z:
        assert {"W1", "b1", "W2", "b2", "W3", "b3", "feature_mean", "feature_std"} <= set(z.files)
        assert z["W2"].shape == (10, 10) and z["W3"].shape == (10, 1)
        assert z["W1"].dtype == np.float32
        assert json.loads(str(z["hyperparameters"]))["units"] == 10
    metrics = json.loads((out_dir / "metrics.json").read_text())
    accs = [float(a) for _, a, _ in rows]
    assert metrics["final_validation_accuracy"] == pytest.approx(accs[-1], abs=5e-5)
    assert metrics["best_validation_accuracy"] == pytest.approx(max(accs), abs=5e-5)
    assert metrics["final_epoch"] == 3


def test_write_data_and_channels(tmp_path: Path) -> None:
    r = run(["--write-data", tmp_path / "data"], tmp_path)
    assert r.returncode == 0, r.stderr
    with np.load(tmp_path / "data" / "train" / "train.npz") as z:
        assert z["X"].shape == (4000, 20) and z["y"].shape == (4000,)
    with np.load(tmp_path / "data" / "validation" / "validation.npz") as z:
        assert z["X"].shape == (1000, 20)
    # the written channels are the built-in data: identical results
    builtin = run(TINY + ["--epochs", "2"], tmp_path)
    chan = run(TINY + ["--epochs", "2"], tmp_path,
               SM_CHANNEL_TRAIN=tmp_path / "data" / "train",
               SM_CHANNEL_VALIDATION=tmp_path / "data" / "validation")
    assert chan.returncode == 0, chan.stderr
    assert parse(chan.stdout) == parse(builtin.stdout)

    # other data really is loaded: 7 features, 300 + 100 rows
    rng = np.random.default_rng(5)
    for name, n in (("train", 300), ("validation", 100)):
        d = tmp_path / "custom" / name
        d.mkdir(parents=True)
        X = rng.standard_normal((n, 7)).astype(np.float32)
        np.savez(d / (name + ".npz"), X=X, y=(X[:, 0] > 0).astype(np.int64))
    r = run(TINY + ["--epochs", "2"], tmp_path, SM_MODEL_DIR=tmp_path / "cm",
            SM_CHANNEL_TRAIN=tmp_path / "custom" / "train",
            SM_CHANNEL_VALIDATION=tmp_path / "custom" / "validation")
    assert r.returncode == 0, r.stderr
    assert len(parse(r.stdout)) == 2
    assert model_units(tmp_path / "cm") == (7, 10)

    # a channel without the expected file is a clear error
    (tmp_path / "empty").mkdir()
    r = run(TINY + ["--epochs", "1"], tmp_path, SM_CHANNEL_TRAIN=tmp_path / "empty",
            SM_CHANNEL_VALIDATION=tmp_path / "data" / "validation")
    assert r.returncode == 2 and "train.npz" in r.stderr


@pytest.mark.parametrize("name,value", [
    ("units", "0"), ("batch_size", "abc"), ("learning_rate", "-0.1"), ("epochs", "2.5"), ("l2", "nan"),
])
def test_bad_hyperparameter_fails_clearly(tmp_path: Path, name: str, value: str) -> None:
    out = tmp_path / "output"
    r = run(["--" + name, value], tmp_path, SM_OUTPUT_DIR=out)
    assert r.returncode == 2
    assert r.stdout == ""
    assert "%s=%s" % (name, value) in r.stderr
    assert "%s=%s" % (name, value) in (out / "failure").read_text()


def test_bad_sm_hps_value_fails_clearly(tmp_path: Path) -> None:
    r = run([], tmp_path, SM_HPS=json.dumps({"units": 0}))
    assert r.returncode == 2 and "units=0" in r.stderr


def test_tuning_json_is_a_hyperband_request() -> None:
    req = json.loads(TUNING.read_text())
    cfg = req["HyperParameterTuningJobConfig"]
    assert req["HyperParameterTuningJobName"] == "mlp-hyperband"
    assert cfg["Strategy"] == "Hyperband"
    hb = cfg["StrategyConfig"]["HyperbandStrategyConfig"]
    static = req["TrainingJobDefinition"]["StaticHyperParameters"]
    assert int(static["epochs"]) == hb["MaxResource"]
    assert cfg["HyperParameterTuningJobObjective"] == {"Type": "Maximize",
                                                        "MetricName": "validation:accuracy"}
    assert cfg["TrainingJobEarlyStoppingType"] == "Off"
    ranges = cfg["ParameterRanges"]
    names = {r["Name"] for kind in ranges.values() for r in kind}
    assert names == {"units", "batch_size", "learning_rate", "l2"}
    for kind in ranges.values():
        for r in kind:
            assert isinstance(r["MinValue"], str) and isinstance(r["MaxValue"], str)
    assert (TUNING.parent / static["sagemaker_submit_directory"] / static["sagemaker_program"]).is_file()
