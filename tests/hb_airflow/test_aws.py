"""hb_airflow.aws on a real Airflow AWS connection: SageMaker to the emulator, the rest to moto (by service_config)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from hb_airflow.aws import HookClients, s3_store
from hb_airflow.spec import TuningSpec, build_backend, build_store
from hb_core.backends.s3_store import S3Store
from hb_core.backends.sagemaker import SageMakerBackend
from hb_core.controller import decide, new_state
from hb_core.errors import ConfigError
from hb_core.events import TrialStarted
from hb_emulator import Emulator
from tests.aws_fixtures import ROLE, SCRIPTS, aws, client, emulator, make_bucket, moto_server  # noqa: F401


def spec(state_uri: str) -> TuningSpec:
    request = {
        "HyperParameterTuningJobName": "hooked",
        "HyperParameterTuningJobConfig": {
            "Strategy": "Hyperband",
            "StrategyConfig": {"HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 3}},
            "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "score"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 1},
            "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "1"}]},
            "TrainingJobEarlyStoppingType": "Off",
        },
        "TrainingJobDefinition": {
            "StaticHyperParameters": {"sagemaker_program": "epochs.py", "sagemaker_submit_directory": str(SCRIPTS)},
            "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File",
                                       "MetricDefinitions": [{"Name": "score", "Regex": "score=([0-9.]+)"}]},
            "RoleArn": ROLE, "OutputDataConfig": {"S3OutputPath": "s3://hooked/output"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        },
    }
    return TuningSpec(request=request, job_name="hooked", backend="sagemaker", state_uri=state_uri,
                      aws_conn_id="aws_hb_test", region_name="us-east-1", poll_interval=0.1)


async def test_the_connection_routes_sagemaker_to_the_emulator_and_the_rest_to_moto(
    emulator: Callable[..., Emulator], aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = emulator(run_processes=False)
    extra = {"endpoint_url": aws, "service_config": {"sagemaker": {"endpoint_url": emu.endpoint}}}
    monkeypatch.setenv("AIRFLOW_CONN_AWS_HB_TEST", json.dumps(
        {"conn_type": "aws", "login": "testing", "password": "testing", "extra": extra}))
    make_bucket(aws, "hooked")
    tuning = spec("s3://hooked/runs/hooked")
    config = tuning.config()
    backend = build_backend(tuning, config)
    store = build_store(tuning)
    assert isinstance(backend, SageMakerBackend) and isinstance(store, S3Store)
    assert (store.bucket, store.prefix) == ("hooked", "runs/hooked")
    state, actions = decide(new_state(config, now=0.0, job_name="hooked"), [], 0.0)
    await store.save(state, None)
    await backend.launch(actions[0])  # type: ignore[arg-type]
    events = await backend.poll()
    assert [type(e) for e in events] == [TrialStarted] and emu.created == ["hooked-0000-1"]
    assert backend.pool.calls["CreateTrainingJob"] == 1 and emu.calls["CreateTrainingJob"] == 1
    assert client("s3", aws).head_object(Bucket="hooked", Key="runs/hooked/state.json")["ContentLength"] > 0
    assert emu.calls.get("PutObject", 0) == 0  # S3 went to moto directly, not through the emulator
    await backend.close()
    await store.close()


def test_s3_store_needs_an_s3_uri() -> None:
    with pytest.raises(ConfigError, match="state_uri"):
        s3_store(spec("/local/dir"))
    assert HookClients("aws_default").config.retries == {"total_max_attempts": 1, "mode": "standard"}


async def test_live_tail_reaches_a_custom_logs_endpoint_without_the_stream_host_prefix(
    emulator: Callable[..., Emulator], aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """StartLiveTail's ``stream-`` host prefix would send the call to ``stream-127.0.0.1``: on a connection with
    an endpoint (an emulator, a VPC endpoint) the operation must reach that endpoint as it is."""
    emu = emulator(run_processes=False)
    extra = {"endpoint_url": aws, "service_config": {"logs": {"endpoint_url": emu.endpoint}}}
    monkeypatch.setenv("AIRFLOW_CONN_AWS_HB_TEST", json.dumps(
        {"conn_type": "aws", "login": "testing", "password": "testing", "extra": extra}))
    group = "/aws/sagemaker/TrainingJobs"
    async with HookClients("aws_hb_test", "us-east-1").client("logs") as logs:
        await logs.create_log_group(logGroupName=group)
        arn = (await logs.describe_log_groups(logGroupNamePrefix=group))["logGroups"][0]["logGroupArn"]
        response = await logs.start_live_tail(logGroupIdentifiers=[arn], logStreamNamePrefixes=["hooked-"])
        async for event in response["responseStream"]:
            assert event["sessionStart"]["logStreamNamePrefixes"] == ["hooked-"]
            break
        response["responseStream"].close()
    assert emu.live_tail.sessions == 1
