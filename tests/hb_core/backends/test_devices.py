"""GPUs for local trials (hb_core.backends.devices), without GPUs: the devices are named explicitly.

The allocation is tested on its own, then through the local backend with real
processes: each trial process claims the devices of its ``CUDA_VISIBLE_DEVICES``
with an exclusive file create, so two running trials sharing a device would
fail the trial at once, and each records when it held them.
"""

from __future__ import annotations

import asyncio
import doctest
import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from hb_core.backends import devices
from hb_core.backends.clock import RealClock
from hb_core.backends.devices import GpuPool, detect_devices, environment, parse_visible_devices
from hb_core.backends.local import LocalBackend
from hb_core.backends.stores import MemoryStore
from hb_core.cli import main as hb_tune
from hb_core.config import TuningConfig
from hb_core.errors import BackendError, ConfigError
from hb_core.events import Launch
from hb_core.runner import Tuner
from hb_core.state import TrialStatus, TuningStatus
from tests.hb_core.backends import test_local
from tests.helpers import collect

no_process_left = test_local.no_process_left  # autouse: kills whatever a failing test left running
MAX_PARALLEL = "HyperParameterTuningJobConfig.ResourceLimits.MaxParallelTrainingJobs"

# A training job that holds its GPUs: an exclusive claim file per device while it runs.
CLAIMING_SCRIPT = textwrap.dedent('''
    import argparse, json, os, signal, sys, time

    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("-x", "--x", type=float, default=0.5)
    parser.add_argument("--sleep", type=float, default=0.05)
    args, _ = parser.parse_known_args()
    claims = os.environ["HB_TEST_CLAIMS"]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    record = {"visible": visible, "sm_num_gpus": os.environ.get("SM_NUM_GPUS"),
              "training_env_gpus": json.loads(os.environ["SM_TRAINING_ENV"])["num_gpus"], "start": time.time()}
    held = []

    def release(signum=None, frame=None):
        while held:
            os.unlink(held.pop())
        record["end"] = time.time()
        with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "gpus.json"), "w") as handle:
            json.dump(record, handle)
        sys.exit(143 if signum else 0)

    signal.signal(signal.SIGTERM, release)
    for device in (visible or "").split(","):
        try:
            os.close(os.open(os.path.join(claims, device), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            held.append(os.path.join(claims, device))
        except FileExistsError:
            open(os.path.join(claims, "CONFLICT-" + os.environ["TRAINING_JOB_NAME"]), "w").close()
            print("device", device, "is held by another running job", file=sys.stderr)
            sys.exit(3)
    checkpoint = os.path.join(os.environ["SM_CHECKPOINT_DIR"], "epoch.txt")
    start = int(open(checkpoint).read()) if os.path.exists(checkpoint) else 0
    for epoch in range(start + 1, args.epochs + 1):
        time.sleep(args.sleep)
        print(f"epoch={epoch} score={(1 - (args.x - 0.3) ** 2) * (1 - 0.5 ** epoch):.6f}", flush=True)
        with open(checkpoint, "w") as handle:
            handle.write(str(epoch))
    release()
''')


def request(code: Path, *, parallel: int, jobs: int = 8, max_resource: int = 9, sleep: float = 0.05,
            variant: str = "Stopping") -> dict[str, Any]:
    return {
        "HyperParameterTuningJobName": "gpu-test",
        "HyperParameterTuningJobConfig": {
            "Strategy": "Hyperband",
            "StrategyConfig": {"HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": max_resource,
                                                           "Variant": variant}},
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "score"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": jobs, "MaxParallelTrainingJobs": parallel},
            "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "1"}]},
            "TrainingJobEarlyStoppingType": "Off",
            "RandomSeed": 3,
        },
        "TrainingJobDefinition": {
            "StaticHyperParameters": {"sagemaker_program": "claim.py", "sagemaker_submit_directory": str(code),
                                      "epochs": str(max_resource), "sleep": str(sleep)},
            "AlgorithmSpecification": {"TrainingImage": "local", "TrainingInputMode": "File",
                                       "MetricDefinitions": [{"Name": "score", "Regex": r"score=([0-9.]+)"}]},
        },
    }


@pytest.fixture
def code(tmp_path: Path) -> Path:
    directory = tmp_path / "code"
    directory.mkdir()
    (directory / "claim.py").write_text(CLAIMING_SCRIPT)
    (tmp_path / "claims").mkdir()
    return directory


def local_backend(tmp_path: Path, body: dict[str, Any], **kwargs: Any) -> LocalBackend:
    return LocalBackend(TuningConfig.from_dict(body), tmp_path / "job", job_name="gpu-test",
                        env={"HB_TEST_CLAIMS": str(tmp_path / "claims")}, tail_interval=0.02, **kwargs)


def held_intervals(tmp_path: Path) -> list[tuple[str, float, float, dict[str, Any]]]:
    """(device, start, end, record) of every job that recorded its devices."""
    out = []
    for path in sorted((tmp_path / "job" / "trials").glob("*/*/output/data/gpus.json")):
        record = json.loads(path.read_text())
        job = json.loads((path.parents[2] / "job.json").read_text())
        assert record["visible"] == ",".join(job["gpu_devices"])  # the job holds what job.json says
        out += [(device, record["start"], record["end"], record) for device in job["gpu_devices"]]
    return out


def assert_no_device_shared(intervals: list[tuple[str, float, float, dict[str, Any]]]) -> None:
    by_device: dict[str, list[tuple[float, float]]] = {}
    for device, start, end, _ in intervals:
        by_device.setdefault(device, []).append((start, end))
    for device, spans in by_device.items():
        spans.sort()
        for (_, end), (start, _) in zip(spans, spans[1:]):
            assert end <= start, f"device {device} was held by two running jobs: {spans}"


# ---------------------------------------------------------------- the pool alone


def test_the_pool_gives_the_lowest_free_devices_and_takes_them_back() -> None:
    pool = GpuPool.configure(2, ["0", "1", "2", "3", "4"], 2)
    assert pool.acquire("a") == ("0", "1")
    assert pool.acquire("b") == ("2", "3")
    assert pool.acquire("a") == ("0", "1")  # idempotent for its owner
    assert pool.free() == ("4",)
    with pytest.raises(BackendError, match=r"`free GPU devices >= gpus_per_trial=2` must hold"):
        pool.acquire("c")
    pool.release("a")
    assert pool.acquire("c") == ("0", "1")
    pool.hold("adopted", ["4"])  # a reattached job keeps what it had
    pool.release("b")
    assert pool.free() == ("2", "3") and pool.held() == {"c": ("0", "1"), "adopted": ("4",)}
    pool.release("unknown")  # releasing twice, or what was never held, is harmless


def test_a_pool_without_gpus_per_trial_changes_nothing() -> None:
    pool = GpuPool.configure(None, None, 50, detect=lambda: pytest.fail("no detection without gpus_per_trial"))
    assert not pool.enabled and pool.acquire("a") == () and environment((), {}) == {}
    pool.hold("b", ["0"])
    assert pool.held() == {}


@pytest.mark.parametrize("per_trial,given,parallel,path,rule", [
    (1, ["0", "1"], 3, MAX_PARALLEL, "`MaxParallelTrainingJobs <= GPU devices // gpus_per_trial = 2 // 1 = 2`"),
    (2, ["0", "1", "2"], 2, MAX_PARALLEL, "`MaxParallelTrainingJobs <= GPU devices // gpus_per_trial = 3 // 2 = 1`"),
    (1, [], 1, MAX_PARALLEL, "= 0 // 1 = 0`"),
    (0, ["0"], 1, "gpus_per_trial", "`gpus_per_trial is an integer >= 1`"),
    (True, ["0"], 1, "gpus_per_trial", "`gpus_per_trial is an integer >= 1`"),
    ("1", ["0"], 1, "gpus_per_trial", "`gpus_per_trial is an integer >= 1`"),
    (None, ["0"], 1, "gpu_devices", "`gpu_devices is given only with gpus_per_trial`"),
    (1, "0,1", 1, "gpu_devices", "`gpu_devices is a list of strings`"),
    (1, ["0", "0"], 1, "gpu_devices", "`every device is named once"),
    (1, ["0,1"], 1, "gpu_devices", "`every device is named once"),
])
def test_bad_settings_are_config_errors_naming_field_rule_and_value(per_trial: Any, given: Any, parallel: int,
                                                                    path: str, rule: str) -> None:
    with pytest.raises(ConfigError) as caught:
        GpuPool.configure(per_trial, given, parallel)
    assert caught.value.path == path and rule in str(caught.value)
    if path == MAX_PARALLEL:
        assert caught.value.found == parallel and f"the devices are {list(given)} (from gpu_devices)" in str(caught.value)


def test_detection_reads_cuda_visible_devices_then_nvidia_smi() -> None:
    assert doctest.testmod(devices).failed == 0
    assert parse_visible_devices("GPU-aa,GPU-bb") == ("GPU-aa", "GPU-bb")
    assert detect_devices({"CUDA_VISIBLE_DEVICES": "2,3"}) == (("2", "3"), "CUDA_VISIBLE_DEVICES='2,3'")
    assert detect_devices({"CUDA_VISIBLE_DEVICES": ""})[0] == ()  # set but empty: no GPU for anyone

    listing = ("GPU 0: Tesla T4 (UUID: GPU-5b0b2a3c-1111-2222-3333-444455556666)\n"
               "GPU 1: Tesla T4 (UUID: GPU-9c1d2e3f-1111-2222-3333-444455556666)\n")

    def smi(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        assert command == ["nvidia-smi", "-L"]
        return subprocess.CompletedProcess(command, 0, listing, "")

    assert detect_devices({}, run=smi) == (("GPU-5b0b2a3c-1111-2222-3333-444455556666",
                                            "GPU-9c1d2e3f-1111-2222-3333-444455556666"), "nvidia-smi -L")
    # this machine has no nvidia-smi: no devices, and the reason says why
    found, source = detect_devices({})
    assert found == () and "nvidia-smi" in source
    with pytest.raises(ConfigError, match=r"= 0 // 1 = 0` must hold, but got 1.*from no CUDA_VISIBLE_DEVICES"):
        GpuPool.configure(1, None, 1, detect=lambda: detect_devices({}))


def test_the_environment_of_a_job_with_devices() -> None:
    sm_env = {"SM_TRAINING_ENV": json.dumps({"num_gpus": 0, "job_name": "j"}), "SM_NUM_GPUS": "0"}
    got = environment(("1", "3"), sm_env)
    assert got["CUDA_VISIBLE_DEVICES"] == "1,3" and got["SM_NUM_GPUS"] == "2"
    assert json.loads(got["SM_TRAINING_ENV"]) == {"num_gpus": 2, "job_name": "j"}


# ---------------------------------------------------------------- through the local backend, real processes


async def test_every_running_trial_has_its_own_gpu_and_freed_gpus_are_reused(tmp_path: Path, code: Path) -> None:
    body = request(code, parallel=3, jobs=8)
    b = local_backend(tmp_path, body, gpus_per_trial=1, gpu_devices=["0", "1", "GPU-abc"])
    tuner = Tuner(TuningConfig.from_dict(body), b, MemoryStore(serialize=True), RealClock(), job_name="gpu-test",
                  poll_interval=0.05)
    state = await asyncio.wait_for(tuner.run(), timeout=60)
    await b.close()
    assert state.status is TuningStatus.COMPLETED and len(state.trials) == 8
    assert not [t for t in state.trials if t.status is TrialStatus.FAILED]
    assert not list((tmp_path / "claims").glob("CONFLICT-*")), "two running trials shared a device"
    assert not list((tmp_path / "claims").iterdir())  # every claim was given back
    intervals = held_intervals(tmp_path)
    assert len(intervals) == 8  # one device per job, every job recorded
    assert {device for device, *_ in intervals} == {"0", "1", "GPU-abc"}  # 8 jobs on 3 devices: reused
    assert all(r["sm_num_gpus"] == "1" and r["training_env_gpus"] == 1 for *_, r in intervals)
    assert_no_device_shared(intervals)
    assert b._gpus.held() == {}  # every device is back in the pool


async def test_two_gpus_per_trial(tmp_path: Path, code: Path) -> None:
    body = request(code, parallel=2, jobs=4, max_resource=3, sleep=0.3)
    b = local_backend(tmp_path, body, gpus_per_trial=2, gpu_devices=["0", "1", "2", "3", "4"])
    tuner = Tuner(TuningConfig.from_dict(body), b, MemoryStore(serialize=True), RealClock(), job_name="gpu-test",
                  poll_interval=0.05)
    state = await asyncio.wait_for(tuner.run(), timeout=60)
    await b.close()
    assert state.status is TuningStatus.COMPLETED
    assert not [t for t in state.trials if t.status is TrialStatus.FAILED]
    intervals = held_intervals(tmp_path)
    assert len(intervals) == 2 * len(state.trials)
    assert {r["visible"] for *_, r in intervals} <= {"0,1", "2,3"}  # "4" is left over: 5 // 2 = 2 slots
    assert all(r["sm_num_gpus"] == "2" for *_, r in intervals)
    assert_no_device_shared(intervals)
    assert not list((tmp_path / "claims").glob("CONFLICT-*"))


async def test_an_adopted_job_keeps_its_devices(tmp_path: Path, code: Path) -> None:
    body = request(code, parallel=3, jobs=3, max_resource=200, sleep=0.1)
    first = local_backend(tmp_path, body, gpus_per_trial=1, gpu_devices=["0", "1", "2"])
    await first.launch(Launch("0000", 1, {"x": 0.1}, 200))
    await first.launch(Launch("0001", 1, {"x": 0.2}, 200))
    await first.close()  # the controller goes away; its jobs keep running on devices 0 and 1

    second = local_backend(tmp_path, body, gpus_per_trial=1, gpu_devices=["0", "1", "2"])
    for trial_id, x in (("0000", 0.1), ("0001", 0.2)):  # a new controller reissues them: found running, adopted
        await second.launch(Launch(trial_id, 1, {"x": x}, 200))
    assert second._gpus.held() == {("0000", 1): ("0",), ("0001", 1): ("1",)}
    await second.launch(Launch("0002", 1, {"x": 0.3}, 200))
    job = json.loads((tmp_path / "job" / "trials" / "0002" / "1" / "job.json").read_text())
    assert job["gpu_devices"] == ["2"] and job["environment"]["CUDA_VISIBLE_DEVICES"] == "2"
    await second.stop("0001", 1, "test over")
    await collect(second, lambda events: any(e.kind == "TrialStopped" for e in events), timeout=30)
    assert second._gpus.free() == ("1",)  # the stopped job's device is back in the pool
    await second.stop_all("test over")
    await second.close()
    assert not list((tmp_path / "claims").glob("CONFLICT-*"))
    assert not list((tmp_path / "claims").iterdir())


def test_too_many_parallel_jobs_for_the_gpus_is_an_error_before_any_launch(tmp_path: Path, code: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    body = request(code, parallel=3)
    with pytest.raises(ConfigError) as caught:
        local_backend(tmp_path, body, gpus_per_trial=1, gpu_devices=["0", "1"])
    assert caught.value.path == MAX_PARALLEL and caught.value.found == 3
    assert not (tmp_path / "job").exists()

    tuning = tmp_path / "tuning.json"
    tuning.write_text(json.dumps(body))
    code_ = hb_tune(["run", str(tuning), "--job-dir", str(tmp_path / "cli"), "--gpus-per-trial", "1",
                     "--gpu-devices", "0,1"])
    err = capsys.readouterr().err
    assert code_ == 2 and MAX_PARALLEL in err and "2 // 1 = 2" in err and "got 3" in err
    assert not (tmp_path / "cli" / "trials").exists()
    code_ = hb_tune(["run", str(tuning), "--backend", "sagemaker", "--gpus-per-trial", "1"])
    assert code_ == 2 and "--gpus-per-trial is not given with --backend sagemaker" in capsys.readouterr().err
