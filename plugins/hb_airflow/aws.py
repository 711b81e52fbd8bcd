"""AWS for the Airflow layer: the clients of the SageMaker backend and the S3 state store, on an Airflow AWS
connection (:mod:`hb_airflow.spec` hands them to the core's builder, :mod:`hb_core.wiring`).

Clients come from the Amazon provider's ``AwsBaseHook`` (``aws_conn_id``,
``region_name``), exactly as its deferrable operators get theirs
(``get_client_type(..., deferrable=True)``, which ``get_async_conn`` wraps):
credentials, assumed roles and region from the connection, and endpoints
from its extra through ``AwsConnectionWrapper.get_service_endpoint_url`` —
``service_config.<service>.endpoint_url`` for one service, else the
connection's ``endpoint_url``. The service names are boto's: ``sagemaker``,
``cloudwatch``, ``logs`` and ``s3``. For example a connection whose extra is
``{"endpoint_url": "http://127.0.0.1:5000", "service_config": {"sagemaker":
{"endpoint_url": "http://127.0.0.1:5001"}}}`` sends SageMaker calls to the
emulator and the rest to moto. The connection's botocore config is kept;
retries are turned off on top of it, so the backend's own backoff is the one
that runs. On a custom endpoint the operations' host prefixes are off (as in
:class:`hb_core.backends.aws.AioSessionClients`): ``StartLiveTail`` would
otherwise call ``stream-<endpoint host>``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

from hb_core.backends.aws import default_client_config, without_host_prefix
from hb_core.backends.s3_store import S3Store

__all__ = ["AwsTarget", "HookClients", "s3_store"]


class AwsTarget(Protocol):
    """What this module reads of a :class:`hb_airflow.spec.TuningSpec` (which builds through it, so
    this module does not import it): the connection, the region and where its state lives."""

    @property
    def aws_conn_id(self) -> str | None: ...
    @property
    def region_name(self) -> str | None: ...
    @property
    def state_uri(self) -> str: ...


class HookClients:
    """:class:`hb_core.backends.aws.AwsClients` on an Airflow AWS connection (module docstring)."""

    def __init__(self, aws_conn_id: str | None, region_name: str | None = None, config: Any = None) -> None:
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.config = config if config is not None else default_client_config()

    def client(self, service_name: str) -> AbstractAsyncContextManager[Any]:
        return self._client(service_name)

    @asynccontextmanager
    async def _client(self, service_name: str) -> AsyncIterator[Any]:
        creator = await asyncio.to_thread(self._creator, service_name)  # the connection lookup is blocking
        async with creator as client:
            yield client

    def _creator(self, service_name: str) -> Any:
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        hook = AwsBaseHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name, client_type=service_name)
        config = hook.config.merge(self.config)  # the connection's botocore config, our retries and timeouts on top
        if hook.conn_config.get_service_endpoint_url(service_name) is not None:
            config = without_host_prefix(config)  # a custom endpoint (an emulator) has no stream-<host> for Live Tail
        return hook.get_client_type(region_name=hook.region_name, config=config, deferrable=True)


def s3_store(spec: AwsTarget) -> S3Store:
    """The S3 store at ``spec.state_uri`` (``s3://bucket/prefix``)."""
    return S3Store.from_uri(spec.state_uri, HookClients(spec.aws_conn_id, spec.region_name))
