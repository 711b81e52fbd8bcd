from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hb_core.cli import main, nominal_resource_per_trial
from tests.helpers import request


def write(tmp_path: Path, body: object, name: str = "tuning.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(body) if not isinstance(body, str) else body)
    return str(path)


def test_validate_ok_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", write(tmp_path, request())]) == 0
    assert "valid Hyperband tuning request" in capsys.readouterr().out

    bad = request()
    bad["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxParallelTrainingJobs"] = 0
    assert main(["validate", write(tmp_path, bad)]) == 2
    err = capsys.readouterr().err
    assert "ResourceLimits.MaxParallelTrainingJobs" in err and "0" in err

    assert main(["validate", write(tmp_path, "{not json", "broken.json")]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["validate", str(tmp_path / "missing.json")]) == 2
    assert "missing.json" in capsys.readouterr().err


def test_plan_prints_rungs_brackets_and_resource(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", write(tmp_path, request(max_jobs=60, brackets=2))]) == 0
    out = capsys.readouterr().out
    assert "Rung levels: 1, 3, 9, 27" in out
    assert "bracket 0: rungs 1, 3, 9, 27" in out and "bracket 1: rungs 3, 9, 27" in out
    assert "Worst-case total resource: 60 x 27 = 1620" in out
    assert "Trials: 60, 3 in parallel" in out


def test_plan_warns_when_the_first_rung_is_short_next_to_the_latency(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    file = write(tmp_path, request(max_jobs=60, max_resource=200))
    assert main(["plan", file, "--latency", "sagemaker-logs", "--resource-seconds", "9"]) == 0
    out = capsys.readouterr().out
    # 20 s warm start + 5 s metric delay + 15 s (half a 30 s poll) + 30 s stop delay = 70 s > 1 x 9 s
    assert "Latency (sagemaker-logs): start-up 20 s (warm pools kept 180 s)" in out
    assert "WARNING: training to MinResource=1 takes 9 s, less than the 70 s" in out
    assert "89% of what a trial stopped at the first rung costs is latency" in out
    assert "MinResource=8 would make the first rung outweigh it" in out
    assert main(["plan", file, "--latency", "sagemaker-logs", "--resource-seconds", "120"]) == 0
    out = capsys.readouterr().out
    assert "WARNING" not in out and "the first rung outweighs the latency" in out
    assert main(["plan", file]) == 0  # no SageMaker definition: local processes, and no epoch time to judge
    out = capsys.readouterr().out
    assert "Latency (local)" in out and "give --resource-seconds" in out
    assert "NOTE: the promotion variant" not in out
    promo = write(tmp_path, request(max_jobs=60, max_resource=200, variant="Promotion"), "promo.json")
    assert main(["plan", promo, "--latency", "sagemaker-logs", "--resource-seconds", "9"]) == 0
    assert "each promotion waits about 40 s" in capsys.readouterr().out  # 20 s warm start + 5 s + 15 s
    assert main(["plan", promo, "--latency", "ideal"]) == 0
    assert "NOTE" not in capsys.readouterr().out
    assert main(["plan", file, "--latency", "sagemaker-slow"]) == 2
    assert "profile in" in capsys.readouterr().err
    assert main(["plan", file, "--resource-seconds", "0"]) == 2
    assert "--resource-seconds > 0" in capsys.readouterr().err


@pytest.mark.parametrize(("levels", "eta", "expected"), [((1, 3, 9, 27), 3, 1 + 2 / 3 + 6 / 9 + 18 / 27), ((27,), 3, 27)])
def test_nominal_resource(levels: tuple[int, ...], eta: int, expected: float) -> None:
    assert nominal_resource_per_trial(levels, eta) == pytest.approx(expected)


def test_simulate_prints_best_and_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", write(tmp_path, request(max_jobs=40)), "--workers", "4"]) == 0
    out = capsys.readouterr().out
    assert "best trial" in out and "Best so far:" in out and "Rungs:" in out
    assert main(["simulate", write(tmp_path, request(max_jobs=20)), "--json", "--curve", "quadratic"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["trials"] == 20 and body["best_objective"] is not None and body["trace"]


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).with_name("hb-tune")
    done = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "simulate" in done.stdout


def test_show_prints_the_newest_job_under_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    from hb_core.backends.stores import LocalFileStore
    from hb_core.controller import decide, new_state
    from hb_core.events import MetricReported, TrialCompleted
    from tests.helpers import config

    state, _ = decide(new_state(config("Random", parallel=1, max_jobs=1, name="shown"), now=0.0), [], 0.0)
    state, _ = decide(state, [MetricReported("0000", 1, 1.0, 0.75), TrialCompleted("0000", 1, 2.0)], 2.0)
    asyncio.run(LocalFileStore(tmp_path / "shown").save(state, None))
    assert main(["show", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Tuning job shown: Completed" in out and "shown-0000-1" in out and "score=0.75" in out
    assert main(["show", str(tmp_path / "nothing-here")]) == 2


@pytest.mark.parametrize(("args", "field"), [
    (["--backend", "local", "--state-uri", "s3://bucket/state"], "--state-uri"),
    (["--backend", "sagemaker", "--job-dir", "runs/x"], "--job-dir"),
    (["--backend", "sagemaker", "--state-uri", "bucket/state"], "--state-uri"),
    (["--backend", "sagemaker", "--metric-source", "stdout", "--state-uri", "s3://b/p"], "--metric-source"),
    (["--backend", "sagemaker", "--end-poll-seconds", "0", "--state-uri", "s3://b/p"], "--end-poll-seconds"),
    (["--backend", "sagemaker", "--end-poll-seconds", "nan", "--state-uri", "s3://b/p"], "--end-poll-seconds"),
])
def test_run_refuses_options_of_the_other_backend_or_bad_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], field: str,
) -> None:
    assert main(["run", write(tmp_path, request()), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {field}: ") and "must hold" in err


def test_run_on_sagemaker_needs_an_s3_output_path_for_its_default_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", write(tmp_path, request()), "--backend", "sagemaker"]) == 2
    assert "OutputDataConfig.S3OutputPath" in capsys.readouterr().err


def test_validate_amt_passes_a_request_amt_would_take(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--amt", write(tmp_path, request())]) == 0
    assert "within SageMaker AMT's quotas and API" in capsys.readouterr().out
    ours = request(eta=4, extensions={"MaxCost": 10})
    assert main(["validate", "--amt", write(tmp_path, ours)]) == 2
    err = capsys.readouterr().err
    assert "HyperbandStrategyConfig.ReductionFactor: `the key is part of AMT's API` must hold, but got 4" in err
    assert "TuningJobExtensions.MaxCost" in err


def test_package_builds_the_same_sourcedir_and_names_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import io
    import tarfile

    from hb_core import barrier
    from hb_core.backends.package import build_sourcedir

    source = tmp_path / "src"
    (source / "__pycache__").mkdir(parents=True)
    (source / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"x")
    (source / ".git").mkdir()
    (source / ".git" / "HEAD").write_text("ref")
    (source / "train.py").write_text("print('epoch=1 score=0.5')\n")
    (source / "lib").mkdir()
    (source / "lib" / "util.py").write_text("X = 1\n")
    first, count = build_sourcedir(source)
    assert count == 2 and build_sourcedir(source)[0] == first  # the same bytes every time
    with tarfile.open(fileobj=io.BytesIO(first), mode="r:gz") as archive:
        assert archive.getnames() == ["lib/util.py", "train.py", "barrier.py"]  # the helper, uncounted
        helper = archive.extractfile("barrier.py")
        assert helper is not None and helper.read() == Path(barrier.__file__).read_bytes()
    (source / "barrier.py").write_text("# the script's own copy\n")
    with tarfile.open(fileobj=io.BytesIO(build_sourcedir(source)[0]), mode="r:gz") as archive:
        assert archive.getnames() == ["barrier.py", "lib/util.py", "train.py"]  # its own, not a second one
        own = archive.extractfile("barrier.py")
        assert own is not None and own.read() == b"# the script's own copy\n"
    (source / "barrier.py").unlink()
    for args, field in ([str(source), "--s3", "bucket/prefix"], "--s3"), \
            ([str(tmp_path / "missing"), "--s3", "s3://b/p"], "DIR"), \
            ([str(source), "--s3", "s3://b/p", "--channel", "train"], "--channel"), \
            ([str(source), "--s3", "s3://b/p", "--channel", f"train={tmp_path / 'none'}"], "--channel train"):
        assert main(["package", *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {field}: ") and "must hold" in err, err
