"""The emulator's CloudWatch Logs Live Tail (``StartLiveTail``), decoded by botocore's own event-stream parser.

boto3 over real HTTP; every wait is bounded; no assertion depends on how long anything took.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer
from botocore.exceptions import ClientError, EventStreamError

from hb_emulator import Emulator, Faults
from hb_emulator.live_tail import encode_message, event_message
from tests.aws_fixtures import REGION, client, wait_for

GROUP = "/aws/sagemaker/TrainingJobs"


def logs_client(endpoint: str) -> Any:
    """A boto3 Logs client on the emulator; no ``stream-`` host prefix (the endpoint names the host)."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "logs", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing",
        aws_secret_access_key="testing", config=Config(retries={"total_max_attempts": 1}, inject_host_prefix=False),
    )


def group_arn(endpoint: str) -> str:
    logs = client("logs", endpoint)
    logs.create_log_group(logGroupName=GROUP)
    return str(logs.describe_log_groups(logGroupNamePrefix=GROUP)["logGroups"][0]["logGroupArn"])


def test_botocore_decodes_the_encoder_s_messages() -> None:
    buffer = EventStreamBuffer()
    buffer.add_data(event_message("sessionUpdate", {"sessionResults": []}) + encode_message({"a": "b"}, b"\x00\xff"))
    first, second = list(buffer)
    assert first.headers == {":message-type": "event", ":event-type": "sessionUpdate",
                             ":content-type": "application/json"}
    assert first.payload == b'{"sessionResults": []}'
    assert (second.headers, second.payload) == ({"a": "b"}, b"\x00\xff")
    corrupt = bytearray(encode_message({"a": "b"}, b"payload"))
    corrupt[-6] ^= 1  # a payload bit: the message CRC no longer matches
    buffer = EventStreamBuffer()
    buffer.add_data(bytes(corrupt))
    with pytest.raises(ChecksumMismatch):
        list(buffer)


def test_a_session_streams_the_matching_events_then_times_out(emulator: Callable[..., Emulator], aws: str) -> None:
    emu = emulator(live_tail_update_seconds=0.1, live_tail_session_seconds=1.0)
    arn = group_arn(aws)
    logs = client("logs", emu.endpoint)
    for stream in ("job-1/algo-1-1", "other/algo-1-1"):
        logs.create_log_stream(logGroupName=GROUP, logStreamName=stream)
    response = logs_client(emu.endpoint).start_live_tail(logGroupIdentifiers=[arn], logStreamNamePrefixes=["job-"])
    events = iter(response["responseStream"])
    start = next(events)["sessionStart"]
    assert start["logGroupIdentifiers"] == [arn] and start["logStreamNamePrefixes"] == ["job-"]
    now = int(time.time() * 1000)
    for stream in ("job-1/algo-1-1", "other/algo-1-1"):  # through the emulator, which proxies them to moto
        logs.put_log_events(logGroupName=GROUP, logStreamName=stream,
                            logEvents=[{"timestamp": now, "message": f"{stream} score=0.5"}])
    seen: list[dict[str, Any]] = []
    with pytest.raises(EventStreamError, match="SessionTimeoutException"):
        for event in events:
            update = event["sessionUpdate"]
            assert update["sessionMetadata"] == {"sampled": False}
            seen += update["sessionResults"]
    assert [(e["logStreamName"], e["message"], e["timestamp"], e["logGroupIdentifier"]) for e in seen] == [
        ("job-1/algo-1-1", "job-1/algo-1-1 score=0.5", now, arn)]
    assert emu.live_tail.sessions == 1
    wait_for(lambda: emu.live_tail.open == 0, what="the session to close")
    assert client("logs", aws).get_log_events(logGroupName=GROUP, logStreamName="job-1/algo-1-1")["events"]


@pytest.mark.parametrize(("params", "code"), [
    ({"logGroupIdentifiers": [GROUP]}, "InvalidParameterException"),  # a name, not an ARN
    ({"logGroupIdentifiers": ["ARN", "ARN"], "logStreamNamePrefixes": ["a"]}, "InvalidParameterException"),
    ({"logGroupIdentifiers": ["ARN"], "logStreamNamePrefixes": ["a"], "logStreamNames": ["b"]},
     "InvalidParameterException"),
])
def test_a_request_is_checked_as_aws_checks_it(emulator: Callable[..., Emulator], aws: str, params: dict[str, Any],
                                               code: str) -> None:
    emu = emulator()
    arn = group_arn(aws)
    params = {k: [arn if v == "ARN" else v for v in values] for k, values in params.items()}
    with pytest.raises(ClientError) as raised:
        logs_client(emu.endpoint).start_live_tail(**params)
    assert raised.value.response["Error"]["Code"] == code


@pytest.mark.parametrize(("faults", "code"), [
    (Faults(live_tail_error="AccessDeniedException"), "AccessDeniedException"),
    (Faults(throttle={"StartLiveTail": 1.0}), "ThrottlingException"),
])
def test_faults_refuse_the_session(emulator: Callable[..., Emulator], aws: str, faults: Faults, code: str) -> None:
    emu = emulator(faults=faults)
    with pytest.raises(ClientError) as raised:
        logs_client(emu.endpoint).start_live_tail(logGroupIdentifiers=[group_arn(aws)])
    assert raised.value.response["Error"]["Code"] == code
    assert emu.live_tail.sessions == 0
