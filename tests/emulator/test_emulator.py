"""The SageMaker emulator over real HTTP, driven with boto3 (the SageMaker backend's tests drive it with aiobotocore).

Every wait is bounded; no assertion depends on how long anything took.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from hb_core.backends import process as proc
from hb_emulator import Emulator, Faults
from tests.aws_fixtures import ROLE, SCRIPTS, client, make_bucket, wait_for

METRICS = [{"Name": "score", "Regex": r"score=([0-9.]+)"}, {"Name": "loss", "Regex": r"loss=([0-9.]+)"}]


def request(name: str, *, program: str = "epochs.py", submit: str = str(SCRIPTS), bucket: str = "out",
            hyperparameters: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    """A CreateTrainingJob request running ``program`` from ``submit``."""
    body: dict[str, Any] = {
        "TrainingJobName": name,
        "HyperParameters": {"sagemaker_program": json.dumps(program), "sagemaker_submit_directory": json.dumps(submit),
                            "epochs": "3", "x": "0.3", **(hyperparameters or {})},
        "AlgorithmSpecification": {"TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/tiny:1",
                                   "TrainingInputMode": "File", "MetricDefinitions": METRICS},
        "RoleArn": ROLE,
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "CheckpointConfig": {"S3Uri": f"s3://{bucket}/checkpoints/{name}/"},
        "Tags": [{"Key": "team", "Value": "ml"}],
    }
    body.update(extra)
    return body


def ended(sm: Any, name: str, timeout: float = 20.0) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        described = sm.describe_training_job(TrainingJobName=name)
        return described if described["TrainingJobStatus"] in ("Completed", "Failed", "Stopped") else None

    result: dict[str, Any] = wait_for(done, timeout, f"training job {name} to end")
    return result


def log_lines(endpoint: str, name: str) -> list[str]:
    logs = client("logs", endpoint)
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                        logStreamNamePrefix=f"{name}/algo-1-")["logStreams"]
    assert len(streams) == 1 and streams[0]["logStreamName"].rsplit("-", 1)[1].isdigit()
    events = logs.get_log_events(logGroupName="/aws/sagemaker/TrainingJobs",
                                 logStreamName=streams[0]["logStreamName"], startFromHead=True)["events"]
    return [e["message"] for e in events]


def metric_values(endpoint: str, name: str, metric: str = "score", stat: str = "Sum") -> list[float]:
    now = time.time()
    result = client("cloudwatch", endpoint).get_metric_data(
        MetricDataQueries=[{"Id": "m", "MetricStat": {"Metric": {
            "Namespace": "/aws/sagemaker/TrainingJobs", "MetricName": metric,
            "Dimensions": [{"Name": "Host", "Value": f"{name}/algo-1"}]}, "Period": 1, "Stat": stat}}],
        StartTime=int(now) - 120, EndTime=int(now) + 2, ScanBy="TimestampAscending",
    )["MetricDataResults"][0]
    return list(result["Values"])


def pid_alive(record: dict[str, Any]) -> bool:
    return proc.probe(record) == "running"


# ---------------------------------------------------------------- the lifecycle


def test_a_job_runs_its_entry_point_and_publishes_like_sagemaker(emulator: Callable[..., Emulator], aws: str) -> None:
    make_bucket(aws, "out")
    s3 = client("s3", aws)
    s3.put_object(Bucket="out", Key="checkpoints/job-a/epoch.txt", Body=b"1")  # it resumes from epoch 2
    emu = emulator()
    sm = client("sagemaker", emu.endpoint)
    arn = sm.create_training_job(**request("job-a"))["TrainingJobArn"]
    assert arn == "arn:aws:sagemaker:us-east-1:123456789012:training-job/job-a"
    described = ended(sm, "job-a")

    assert (described["TrainingJobStatus"], described["SecondaryStatus"]) == ("Completed", "Completed")
    steps = [t["Status"] for t in described["SecondaryStatusTransitions"]]
    assert steps == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert described["HyperParameters"]["epochs"] == "3" and described["RoleArn"] == ROLE
    assert described["BillableTimeInSeconds"] >= 1 and described["TrainingEndTime"] >= described["TrainingStartTime"]
    assert {m["MetricName"]: m["Value"] for m in described["FinalMetricDataList"]} == pytest.approx(
        {"score": 0.875, "loss": 0.125})
    model = described["ModelArtifacts"]["S3ModelArtifacts"]
    assert model == "s3://out/output/job-a/output/model.tar.gz"
    data = s3.get_object(Bucket="out", Key="output/job-a/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        assert archive.extractfile("model.txt").read() == b"x=0.3\n"  # type: ignore[union-attr]
    assert s3.get_object(Bucket="out", Key="checkpoints/job-a/epoch.txt")["Body"].read() == b"3"

    lines = log_lines(aws, "job-a")  # CloudWatch Logs on moto: every line, in order
    assert "starting at epoch 2" in lines and lines.index("epoch=2 score=0.750000 loss=0.250000") < lines.index(
        "epoch=3 score=0.875000 loss=0.125000")
    assert sum(metric_values(aws, "job-a", stat="SampleCount")) == 2  # the regex matches, on moto
    assert sum(metric_values(aws, "job-a")) == pytest.approx(0.75 + 0.875)
    received = json.loads((emu.job_dir("job-a") / "job/output/data/received.json").read_text())
    assert received["argv"] == ["--epochs", "3", "-x", "0.3"] and received["env"]["TRAINING_JOB_NAME"] == "job-a"
    assert emu.created == ["job-a"]


def test_code_and_channels_come_from_s3(emulator: Callable[..., Emulator], aws: str, tmp_path: Path) -> None:
    make_bucket(aws, "out")
    s3 = client("s3", aws)
    script = "import os\nprint('score=' + open(os.path.join(os.environ['SM_CHANNEL_TRAIN'], 'a/v.txt')).read())\n"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("train.py")
        info.size = len(script)
        archive.addfile(info, io.BytesIO(script.encode()))
    s3.put_object(Bucket="out", Key="code/sourcedir.tar.gz", Body=buffer.getvalue())
    s3.put_object(Bucket="out", Key="data/train/a/v.txt", Body=b"0.5")
    channel = {"ChannelName": "train", "DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3Uri": "s3://out/data/train/", "S3DataDistributionType": "FullyReplicated"}}}
    emu = emulator()
    sm = client("sagemaker", emu.endpoint)
    sm.create_training_job(**request("from-s3", program="train.py", submit="s3://out/code/sourcedir.tar.gz",
                                     InputDataConfig=[channel]))
    sm.create_training_job(**request("no-data", program="train.py", submit="s3://out/code/sourcedir.tar.gz",
                                     InputDataConfig=[{**channel, "DataSource": {"S3DataSource": {
                                         "S3DataType": "S3Prefix", "S3Uri": "s3://out/nothing/"}}}]))
    sm.create_training_job(**request("no-code", program="missing.py"))
    assert ended(sm, "from-s3")["TrainingJobStatus"] == "Completed"
    assert log_lines(aws, "from-s3") == ["score=0.5"]
    no_data = ended(sm, "no-data")
    assert no_data["TrainingJobStatus"] == "Failed" and no_data["FailureReason"].startswith(
        "ClientError: No S3 objects found under S3 URL \"s3://out/nothing/\"")
    no_code = ended(sm, "no-code")
    assert no_code["TrainingJobStatus"] == "Failed" and "'missing.py' is not in" in no_code["FailureReason"]


def test_a_failing_script_fails_the_job_with_its_failure_file(emulator: Callable[..., Emulator], aws: str) -> None:
    make_bucket(aws, "out")
    emu = emulator()
    sm = client("sagemaker", emu.endpoint)
    sm.create_training_job(**request("fails", program="fail.py"))
    described = ended(sm, "fails")
    assert (described["TrainingJobStatus"], described["SecondaryStatus"]) == ("Failed", "Failed")
    assert described["FailureReason"] == "AlgorithmError: ValueError: bad hyperparameter"
    assert "Uploading" in [t["Status"] for t in described["SecondaryStatusTransitions"]]


# ---------------------------------------------------------------- stopping


def test_stop_ends_the_process_and_stopping_again_is_refused(emulator: Callable[..., Emulator], aws: str) -> None:
    make_bucket(aws, "out")
    emu = emulator()
    sm = client("sagemaker", emu.endpoint)
    sm.create_training_job(**request("forever", program="forever.py"))
    wait_for(lambda: metric_values(aws, "forever"), what="the first metric")
    record = json.loads((emu.job_dir("forever") / "job" / proc.PID_FILE).read_text())
    assert pid_alive(record)
    sm.stop_training_job(TrainingJobName="forever")
    assert sm.describe_training_job(TrainingJobName="forever")["TrainingJobStatus"] in ("Stopping", "Stopped")
    described = ended(sm, "forever")
    assert (described["TrainingJobStatus"], described["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert wait_for(lambda: not pid_alive(record), 5, "the supervisor to end")
    with pytest.raises(ClientError) as error:
        sm.stop_training_job(TrainingJobName="forever")
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert "in status Stopped" in error.value.response["Error"]["Message"]
    assert described["ModelArtifacts"]["S3ModelArtifacts"].endswith("/forever/output/model.tar.gz")


def test_max_runtime_stops_the_job_as_max_runtime_exceeded(emulator: Callable[..., Emulator], aws: str) -> None:
    make_bucket(aws, "out")
    emu = emulator()
    sm = client("sagemaker", emu.endpoint)
    sm.create_training_job(**request("slow", program="forever.py", StoppingCondition={"MaxRuntimeInSeconds": 1}))
    described = ended(sm, "slow")
    assert (described["TrainingJobStatus"], described["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")


@pytest.mark.parametrize("status", ["Failed", "Stopped"])
def test_a_spot_interruption_kills_the_job_at_once(emulator: Callable[..., Emulator], aws: str, status: str) -> None:
    make_bucket(aws, "out")
    emu = emulator()
    sm = client("sagemaker", emu.endpoint)
    sm.create_training_job(**request("spot", program="forever.py", EnableManagedSpotTraining=True,
                                     StoppingCondition={"MaxRuntimeInSeconds": 600, "MaxWaitTimeInSeconds": 1200}))
    wait_for(lambda: metric_values(aws, "spot"), what="the first metric")
    emu.interrupt("spot", status=status)
    described = ended(sm, "spot")
    assert (described["TrainingJobStatus"], described["SecondaryStatus"]) == (status, "Interrupted")
    assert "Uploading" not in [t["Status"] for t in described["SecondaryStatusTransitions"]]


# ---------------------------------------------------------------- the API


def test_the_api_answers_as_sagemaker_does(emulator: Callable[..., Emulator], aws: str) -> None:
    emu = emulator(run_processes=False)
    sm = client("sagemaker", emu.endpoint)
    for i in range(5):
        sm.create_training_job(**request(f"tune-a-000{i}-1"))
    sm.create_training_job(**request("other-0000-1"))
    with pytest.raises(ClientError) as duplicate:
        sm.create_training_job(**request("tune-a-0000-1"))
    assert duplicate.value.response["Error"]["Code"] == "ResourceInUse"
    assert "a training job with this name already exists" in duplicate.value.response["Error"]["Message"]
    assert emu.created == [f"tune-a-000{i}-1" for i in range(5)] + ["other-0000-1"]
    with pytest.raises(ClientError) as missing:
        sm.describe_training_job(TrainingJobName="nope")
    assert missing.value.response["Error"] == {"Code": "ValidationException", "Message": "Requested resource not found."}
    with pytest.raises(ClientError) as invalid:
        sm.create_training_job(**request("bad_name"))
    assert invalid.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as spot:
        sm.create_training_job(**request("spot-1", EnableManagedSpotTraining=True))
    assert "MaxWaitTimeInSeconds" in spot.value.response["Error"]["Message"]

    wait_for(lambda: all(sm.describe_training_job(TrainingJobName=f"tune-a-000{i}-1")["SecondaryStatus"] == "Training"
                         for i in range(5)), what="the fake jobs to train")
    sm.stop_training_job(TrainingJobName="tune-a-0001-1")
    emu.complete("tune-a-0002-1")
    emu.fail("tune-a-0003-1", "CapacityError: Unable to provision requested ML compute capacity.")
    assert ended(sm, "tune-a-0002-1")["TrainingJobStatus"] == "Completed"
    assert ended(sm, "tune-a-0003-1")["FailureReason"].startswith("CapacityError")
    assert ended(sm, "tune-a-0001-1")["TrainingJobStatus"] == "Stopped"

    pages = list(sm.get_paginator("list_training_jobs").paginate(NameContains="tune-a", PaginationConfig={"PageSize": 2}))
    assert len(pages) == 3
    names = [s["TrainingJobName"] for page in pages for s in page["TrainingJobSummaries"]]
    assert names == [f"tune-a-000{i}-1" for i in reversed(range(5))]  # newest first
    running = sm.list_training_jobs(NameContains="TUNE-A", StatusEquals="InProgress", MaxResults=100)
    assert sorted(s["TrainingJobName"] for s in running["TrainingJobSummaries"]) == ["tune-a-0000-1", "tune-a-0004-1"]
    assert "NextToken" not in running

    arn = sm.describe_training_job(TrainingJobName="tune-a-0000-1")["TrainingJobArn"]
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "ml"}]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "team", "Value": "ai"}, {"Key": "x", "Value": "1"}])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "ai"}, {"Key": "x", "Value": "1"}]


def test_sagemaker_calls_it_does_not_emulate_reach_moto(emulator: Callable[..., Emulator], aws: str) -> None:
    """One SageMaker client on the emulator serves a whole pipeline: training jobs here, the Model Registry
    (and tags of anything but a training job) on moto, as one AWS connection reaches every service."""
    emu = emulator(run_processes=False)
    sm = client("sagemaker", emu.endpoint)
    group = sm.create_model_package_group(ModelPackageGroupName="mlp", ModelPackageGroupDescription="d",
                                          Tags=[{"Key": "team", "Value": "ml"}])["ModelPackageGroupArn"]
    assert client("sagemaker", aws).describe_model_package_group(ModelPackageGroupName="mlp")[
        "ModelPackageGroupArn"] == group  # it is on moto
    assert sm.describe_model_package_group(ModelPackageGroupName="mlp")["ModelPackageGroupArn"] == group
    assert sm.list_tags(ResourceArn=group)["Tags"] == [{"Key": "team", "Value": "ml"}]
    sm.create_training_job(**request("tagged-0000-1"))
    job = sm.describe_training_job(TrainingJobName="tagged-0000-1")["TrainingJobArn"]
    assert sm.list_tags(ResourceArn=job)["Tags"] == [{"Key": "team", "Value": "ml"}]  # the emulator's own
    with pytest.raises(ClientError) as unknown_job:  # a training job moto never saw is still the emulator's
        client("sagemaker", aws).describe_training_job(TrainingJobName="tagged-0000-1")
    assert unknown_job.value.response["Error"]["Code"] == "ValidationException"
    assert emu.created == ["tagged-0000-1"]


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_request_cut_short_is_refused_never_forwarded(emulator: Callable[..., Emulator], aws: str,
                                                        framing: str) -> None:
    """A controller killed mid PutObject: S3 keeps the object as it was; the emulator must not store half a body."""
    emu = emulator(run_processes=False)
    make_bucket(aws, "cut-short")
    s3 = client("s3", emu.endpoint)
    s3.put_object(Bucket="cut-short", Key="state.json", Body=b'{"revision": 1}')
    head = (f"PUT /cut-short/state.json HTTP/1.1\r\nHost: {emu.endpoint.removeprefix('http://')}\r\n"
            "Content-Type: application/json\r\n")
    head += ("Content-Length: 100\r\n\r\n" if framing == "content-length" else
             "Transfer-Encoding: chunked\r\n\r\n64\r\n")
    host, port = emu.endpoint.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(head.encode() + b'{"revision": 2')  # 14 of the 100 bytes announced, then the end
        connection.shutdown(socket.SHUT_WR)
        reply = b""
        for _ in range(100):  # the reply, until the emulator closes the connection
            data = connection.recv(4096)
            if not data:
                break
            reply += data
    assert reply.startswith(b"HTTP/1.1 400") and b"IncompleteBody" in reply, reply
    assert client("s3", aws).get_object(Bucket="cut-short", Key="state.json")["Body"].read() == b'{"revision": 1}'
    assert emu.calls["PutObject"] == 1  # the whole one only


def test_faults_are_injected_per_operation_and_other_calls_reach_moto(
    emulator: Callable[..., Emulator], aws: str
) -> None:
    faults = Faults(throttle={"DescribeTrainingJob": 1.0, "GetMetricData": 1.0, "PutObject": 1.0},
                    server_errors={"ListTrainingJobs": 1.0}, max_consecutive=2)
    emu = emulator(run_processes=False, faults=faults)
    sm, cw, s3 = client("sagemaker", emu.endpoint), client("cloudwatch", emu.endpoint), client("s3", emu.endpoint)
    s3.create_bucket(Bucket="via-emulator")  # proxied to moto
    codes = []
    calls: tuple[Callable[[], object], ...] = (
        lambda: sm.describe_training_job(TrainingJobName="x"),
        lambda: sm.list_training_jobs(),
        lambda: cw.get_metric_data(MetricDataQueries=[], StartTime=0, EndTime=60),
        lambda: s3.put_object(Bucket="via-emulator", Key="k", Body=b"v"),
    )
    for call in calls:
        for _ in range(3):  # two faults in a row at most, then the call goes through
            try:
                call()
                codes.append("ok")
            except ClientError as exc:
                codes.append(f"{exc.response['Error']['Code']}/{exc.response['ResponseMetadata']['HTTPStatusCode']}")
    assert codes == [
        "ThrottlingException/400", "ThrottlingException/400", "ValidationException/400",  # then the real answer
        "InternalFailure/500", "InternalFailure/500", "ok",
        "Throttling/400", "Throttling/400", "ok",
        "SlowDown/503", "SlowDown/503", "ok",
    ]
    assert client("s3", aws).get_object(Bucket="via-emulator", Key="k")["Body"].read() == b"v"  # it is on moto
    assert emu.calls["DescribeTrainingJob"] == 3 and emu.calls["PutObject"] == 3
    assert faults.injected["GetMetricData:throttle"] == 2


@pytest.mark.parametrize("program", [["hb_emulator"], ["hb_core.cli", "emulator"]], ids=["python-m", "hb-tune"])
def test_python_m_hb_emulator_serves_until_sigterm(aws: str, tmp_path: Path, program: list[str]) -> None:
    """``python -m hb_emulator`` and ``hb-tune emulator`` (which hands its arguments to it) alike."""
    command = [sys.executable, "-m", *program, "--moto-endpoint", aws, "--work-dir", str(tmp_path / "emu"),
               "--port", "0", "--hold"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        sm = client("sagemaker", url)
        sm.create_training_job(**request("cli-0000-1"))
        assert sm.describe_training_job(TrainingJobName="cli-0000-1")["TrainingJobStatus"] == "InProgress"
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=20)
    assert server.returncode == 0, err


def test_the_emulator_refuses_a_moto_endpoint_that_is_not_local(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="loopback"):
        Emulator("https://s3.amazonaws.com", tmp_path)


def test_the_emulator_and_the_aws_adapters_never_import_airflow() -> None:
    script = ("import sys\n"
              "import hb_emulator, hb_emulator.__main__, hb_core.backends.sagemaker, hb_core.backends.s3_store\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] == 'airflow'))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
