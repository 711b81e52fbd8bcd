"""Fixtures for tests that speak AWS over real HTTP: a moto server and the SageMaker emulator, all on 127.0.0.1.

Nothing here reaches a real AWS endpoint: every client gets an explicit
``endpoint_url`` on 127.0.0.1 and dummy credentials (``testing``), and the
environment is stripped of profiles. A conftest.py imports the fixtures a
folder needs (``from tests.aws_fixtures import aws, emulator, moto_server``);
a test module can bind them instead, so that pyflakes does not read the test
parameters as redefinitions::

    from tests import aws_fixtures

    moto_server, aws, emulator = aws_fixtures.moto_server, aws_fixtures.aws, aws_fixtures.emulator

``moto_server`` is one ThreadedMotoServer per test module; ``aws`` resets it
before each test and sets the dummy credentials; ``emulator`` is a factory
of started emulators, closed (their jobs killed) at the end of the test.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hb_core.backends.aws import AioSessionClients, default_client_config
from hb_emulator import Emulator

REGION = "us-east-1"
SCRIPTS = Path(__file__).resolve().parent / "hb_core" / "backends" / "scripts"
ROLE = "arn:aws:iam::123456789012:role/hb-test"


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 (a free port); its URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """The moto server, reset, with dummy credentials in the environment; its URL."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN",
                 "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    request = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
    return moto_server


@pytest.fixture
def emulator(aws: str, tmp_path: Path) -> Iterator[Callable[..., Emulator]]:
    """``emulator(**kwargs)``: a started Emulator in front of the moto server (closed after the test)."""
    started: list[Emulator] = []

    def make(**kwargs: Any) -> Emulator:
        kwargs.setdefault("tick", 0.02)
        kwargs.setdefault("stop_grace_seconds", 2.0)
        instance = Emulator(aws, tmp_path / f"emulator{len(started)}", **kwargs)
        instance.start()
        started.append(instance)
        return instance

    yield make
    for instance in started:
        instance.close()


def client(service: str, endpoint: str) -> Any:
    """A boto3 client on ``endpoint`` (127.0.0.1) with dummy credentials and botocore retries off."""
    import boto3
    from botocore.config import Config

    assert endpoint.startswith("http://127.0.0.1:"), endpoint
    return boto3.session.Session().client(
        service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing",
        aws_secret_access_key="testing", config=Config(retries={"total_max_attempts": 1}),
    )


def aio_clients(endpoint: str, **endpoints: str) -> AioSessionClients:
    """aiobotocore clients: every service on ``endpoint``, except those named in ``endpoints``."""
    from aiobotocore.session import get_session

    urls = {"*": endpoint, **endpoints}
    assert all(url.startswith("http://127.0.0.1:") for url in urls.values()), urls
    return AioSessionClients(get_session(), region_name=REGION, endpoint_urls=urls, config=default_client_config())


def make_bucket(endpoint: str, name: str) -> str:
    client("s3", endpoint).create_bucket(Bucket=name)
    return name


class FastClock:
    """The wall clock, whose sleeps do not sleep (the backoff's delays are recorded in ``slept``)."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    def now(self) -> float:
        return time.time()

    async def sleep_until(self, when: float) -> None:
        self.slept.append(max(0.0, when - time.time()))
        await asyncio.sleep(0)


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, what: str = "the condition") -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
