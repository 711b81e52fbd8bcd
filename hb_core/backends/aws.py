"""AWS plumbing shared by the SageMaker backend and the S3 state store: clients, backoff, CloudWatch batching.

Terms:

- *clients*: an :class:`AwsClients` hands out aiobotocore clients as async
  context managers, one per service. :class:`AioSessionClients` builds them
  from an aiobotocore session (credentials from the environment, per-service
  ``endpoint_urls``); the Airflow layer builds them from an Airflow connection
  instead (``hb_airflow.aws``). A :class:`ClientPool` opens each service's
  client once, on first use, and keeps it for its owner's life.
- *transient error*: a throttling error (:data:`THROTTLING_CODES`), an HTTP
  5xx, a connection error, or an object body that arrives cut short or fails
  its checksum (S3's advice for a checksum mismatch is to fetch the object
  again). :meth:`ClientPool.call` and :meth:`ClientPool.get_object` retry it with
  exponential backoff and full jitter (a delay drawn uniformly from
  ``[0, min(max_delay, base_delay * 2**n)]`` before retry n+1), sleeping on the
  owner's clock so tests can run it on a fast one, at most
  ``RetryPolicy.max_attempts`` attempts in all. botocore's own retries are
  turned off in :func:`default_client_config` so that this backoff is the one
  that runs (and the one tested).
- Every other ``ClientError``, and a transient one that outlasts the attempts,
  becomes an :class:`AwsCallError` (a ``BackendError``) naming the operation,
  its subject (a job name, an S3 key) and the AWS error code.
- *metric cursor*: how far one training job's metrics have been read
  (:class:`MetricCursor`). :class:`CloudWatchMetrics` reads many jobs at once,
  500 ``GetMetricData`` queries per call, and hands out a period only when it
  is one epoch's value (else :class:`Inexact`); :class:`LogLines` reads one
  job's CloudWatch Logs stream forward. Both hand out each point or line once.

No airflow here: this module sits in ``hb_core.backends``.

Size: about 570 lines, over the project's 400: the clients, the one backoff
they all go through, and the two readers built on it (CloudWatch batching,
log paging) are the AWS plumbing the backend and the store share; each part is
small and they change together when AWS's calls do.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from botocore import xform_name
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    FlexibleChecksumError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from hb_core.errors import BackendError
from hb_core.protocols import Clock

__all__ = [
    "MAX_METRIC_QUERIES",
    "THROTTLING_CODES",
    "AioSessionClients",
    "AwsCallError",
    "AwsClients",
    "ClientPool",
    "CloudWatchMetrics",
    "Inexact",
    "LogLines",
    "MetricCursor",
    "RetryPolicy",
    "default_client_config",
    "epoch",
    "get_metric_data",
    "without_host_prefix",
]

log = logging.getLogger(__name__)

#: Error codes AWS services use for "slow down" (SageMaker, CloudWatch, Logs, S3, EC2-style APIs).
THROTTLING_CODES = frozenset({
    "ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded",
    "SlowDown", "RequestThrottled", "RequestThrottledException", "ProvisionedThroughputExceededException",
})
#: GetMetricData takes at most this many MetricDataQueries per call.
MAX_METRIC_QUERIES = 500
MAX_PAGES = 100  # a bound on every pagination loop
NOT_FOUND = ("ResourceNotFound", "ResourceNotFoundException")


class AwsClients(Protocol):
    """Hands out aiobotocore clients: ``async with clients.client("sagemaker") as sm: ...``."""

    def client(self, service_name: str) -> AbstractAsyncContextManager[Any]: ...


def default_client_config(**overrides: Any) -> Any:
    """An ``AioConfig`` with botocore's retries off (one attempt: our backoff retries) and moderate timeouts."""
    from aiobotocore.config import AioConfig

    options: dict[str, Any] = {
        "retries": {"total_max_attempts": 1, "mode": "standard"},
        "connect_timeout": 10,
        "read_timeout": 60,
        "max_pool_connections": 50,
    }
    options.update(overrides)
    return AioConfig(**options)


def without_host_prefix(config: Any) -> Any:
    """``config`` with botocore's host prefixes off: an explicit endpoint URL names the whole host, and an
    operation's ``hostPrefix`` (``StartLiveTail``'s ``stream-``) would turn ``127.0.0.1`` into an unknown host."""
    from aiobotocore.config import AioConfig

    return config.merge(AioConfig(inject_host_prefix=False))


class AioSessionClients:
    """:class:`AwsClients` on an aiobotocore session.

    ``endpoint_urls`` maps a boto service name (``sagemaker``, ``cloudwatch``,
    ``logs``, ``s3``) to its endpoint; a ``"*"`` entry applies to the services
    not listed. A service with an endpoint gets no host prefix
    (:func:`without_host_prefix`). ``config`` defaults to :func:`default_client_config`.
    """

    def __init__(
        self,
        session: Any = None,
        region_name: str | None = None,
        endpoint_urls: Mapping[str, str] | None = None,
        config: Any = None,
    ) -> None:
        if session is None:
            from aiobotocore.session import get_session

            session = get_session()
        self.session = session
        self.region_name = region_name
        self.endpoint_urls = dict(endpoint_urls or {})
        self.config = config if config is not None else default_client_config()

    def endpoint_url(self, service_name: str) -> str | None:
        return self.endpoint_urls.get(service_name, self.endpoint_urls.get("*"))

    def client(self, service_name: str) -> AbstractAsyncContextManager[Any]:
        endpoint = self.endpoint_url(service_name)
        cm: AbstractAsyncContextManager[Any] = self.session.create_client(
            service_name, region_name=self.region_name, endpoint_url=endpoint,
            config=self.config if endpoint is None else without_host_prefix(self.config),
        )
        return cm


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter for transient errors (module docstring)."""

    max_attempts: int = 8
    base_delay: float = 0.2
    max_delay: float = 20.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"`max_attempts >= 1` must hold, but got max_attempts={self.max_attempts}")
        if not (0 <= self.base_delay <= self.max_delay):
            raise ValueError(f"`0 <= base_delay <= max_delay` must hold, but got {self.base_delay}, {self.max_delay}")

    def delay(self, retry: int, rng: random.Random) -> float:
        """The sleep before retry ``retry`` (0-based): uniform in [0, min(max_delay, base_delay * 2**retry)]."""
        return rng.uniform(0.0, min(self.max_delay, self.base_delay * 2.0 ** min(retry, 60)))


class AwsCallError(BackendError):
    """An AWS call that failed for good: ``operation`` on ``subject`` ended with error ``code``."""

    def __init__(self, operation: str, subject: str, code: str, message: str, status: int | None = None) -> None:
        self.operation = operation
        self.subject = subject
        self.code = code
        self.aws_message = message
        self.status = status
        where = f"{operation} {subject}" if subject else operation
        super().__init__(f"{where}: {code}: {message}")


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or "")


def error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message") or "")


def http_status(exc: ClientError) -> int | None:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None


#: Raised while a response body is read: its bytes were cut short or damaged on the way (fetch it again).
DAMAGED_BODY_ERRORS: tuple[type[BaseException], ...] = (
    FlexibleChecksumError, IncompleteReadError, ResponseStreamingError,
)
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    EndpointConnectionError, ConnectionClosedError, ReadTimeoutError, ConnectTimeoutError, asyncio.TimeoutError,
    *DAMAGED_BODY_ERRORS,
)
try:  # aiobotocore wraps most aiohttp errors, but not every one
    import aiohttp

    _CONNECTION_ERRORS += (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)
except ImportError:  # pragma: no cover - aiobotocore depends on aiohttp
    pass


def transient(exc: BaseException) -> str | None:
    """Why ``exc`` is worth retrying (its code), or None when it is not."""
    if isinstance(exc, ClientError):
        code, status = error_code(exc), http_status(exc)
        if code in THROTTLING_CODES or (status is not None and status >= 500):
            return code or str(status)
        return None
    if isinstance(exc, _CONNECTION_ERRORS):
        return type(exc).__name__
    return None


class ClientPool:
    """Open clients by service, and the one place AWS calls are made (with backoff).

    ``calls`` counts attempts by operation (retries included), ``retries`` the
    retried attempts, ``sleeps`` every backoff delay slept.
    """

    def __init__(
        self, clients: AwsClients, *, clock: Clock, retry: RetryPolicy | None = None, rng: random.Random | None = None
    ) -> None:
        self.clients = clients
        self.clock = clock
        self.retry = retry or RetryPolicy()
        self.rng = rng or random.Random()
        self.calls: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()
        self.sleeps: list[float] = []
        self._open: dict[str, Any] = {}
        self._stack = contextlib.AsyncExitStack()
        self._lock: asyncio.Lock | None = None

    async def client(self, service_name: str) -> Any:
        client = self._open.get(service_name)
        if client is not None:
            return client
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if service_name not in self._open:
                self._open[service_name] = await self._stack.enter_async_context(self.clients.client(service_name))
            return self._open[service_name]

    async def call(self, service_name: str, operation: str, *, subject: str = "", **params: Any) -> dict[str, Any]:
        """``operation`` (e.g. ``DescribeTrainingJob``) with backoff; AwsCallError when it fails for good."""
        client = await self.client(service_name)
        method = getattr(client, xform_name(operation))
        return await self._with_backoff(operation, subject, lambda: method(**params))

    async def get_object(self, bucket: str, key: str, *, subject: str = "") -> tuple[bytes, str]:
        """An S3 object's bytes and ETag, fetched again (with backoff) when its body arrives damaged."""
        client = await self.client("s3")

        async def fetch() -> dict[str, Any]:
            response = await client.get_object(Bucket=bucket, Key=key)
            async with response["Body"] as stream:
                body: bytes = await stream.read()
            return {"Body": body, "ETag": str(response["ETag"])}

        response = await self._with_backoff("GetObject", subject or f"s3://{bucket}/{key}", fetch)
        return response["Body"], response["ETag"]

    async def _with_backoff(
        self, operation: str, subject: str, attempt_once: Callable[[], Awaitable[dict[str, Any]]],
    ) -> dict[str, Any]:
        last = ""
        for attempt in range(self.retry.max_attempts):
            if attempt:
                delay = self.retry.delay(attempt - 1, self.rng)
                self.sleeps.append(delay)
                self.retries[operation] += 1
                await self.clock.sleep_until(self.clock.now() + delay)
            self.calls[operation] += 1
            try:
                return await attempt_once()
            except (ClientError, *_CONNECTION_ERRORS) as exc:
                reason = transient(exc)
                if reason is None:
                    assert isinstance(exc, ClientError)
                    raise AwsCallError(operation, subject, error_code(exc), error_message(exc), http_status(exc)) from exc
                last = reason
        raise AwsCallError(
            operation, subject, last, f"still failing after {self.retry.max_attempts} attempts with backoff"
        )

    async def close(self) -> None:
        self._open.clear()
        await self._stack.aclose()
        self._stack = contextlib.AsyncExitStack()


# ---------------------------------------------------------------- CloudWatch


def epoch(value: Any) -> float:
    """Seconds since the epoch of a botocore timestamp (a datetime, or a number already)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return float(value.timestamp())
    return float(value)


def align_down(t: float, period: int) -> float:
    return math.floor(t / period) * period


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def get_metric_data(
    pool: ClientPool, queries: Sequence[Mapping[str, Any]], start: float, end: float, *, subject: str = ""
) -> dict[str, list[tuple[float, float]]]:
    """Datapoints by query Id, ascending by timestamp: one GetMetricData call per 500 queries (and per page).

    ``start``/``end`` are epoch seconds (the caller aligns them to the period,
    so buckets have the same timestamps in every call).
    """
    results: dict[str, list[tuple[float, float]]] = {str(q["Id"]): [] for q in queries}
    for chunk in chunks(list(queries), MAX_METRIC_QUERIES):
        token: str | None = None
        for _ in range(MAX_PAGES):
            params: dict[str, Any] = {
                "MetricDataQueries": list(chunk),
                "StartTime": dt.datetime.fromtimestamp(start, dt.UTC),
                "EndTime": dt.datetime.fromtimestamp(end, dt.UTC),
                "ScanBy": "TimestampAscending",
            }
            if token:
                params["NextToken"] = token
            response = await pool.call("cloudwatch", "GetMetricData", subject=subject, **params)
            for result in response.get("MetricDataResults", []):
                points = results.setdefault(str(result["Id"]), [])
                points.extend(zip((epoch(t) for t in result.get("Timestamps", [])), result.get("Values", [])))
            token = response.get("NextToken")
            if not token:
                break
    for points in results.values():
        points.sort()
    return results


@dataclass
class MetricCursor:
    """How far one training job's metrics have been read.

    CloudWatch: ``emitted`` holds the bucket timestamps already handed out,
    ``last_ts`` the newest, and ``last_resource`` the resource of the newest
    point handed out (``from_resource`` at first); its window starts a period
    before ``created`` (wall time). Logs: the stream found, and the forward
    token reached in it.
    """

    job_name: str
    created: float
    from_resource: int = 0
    emitted: set[float] = field(default_factory=set)
    last_ts: float | None = None
    last_resource: int | None = None
    log_stream: str | None = None
    log_token: str | None = None


@dataclass(frozen=True)
class Bucket:
    """One period of one job: the objective's ``SampleCount``, ``Minimum`` and ``Maximum``, and the resource
    metric's ``Minimum`` and ``Maximum`` (None when the period holds no resource value)."""

    count: float
    low: float
    high: float
    resource_low: float | None
    resource_high: float | None

    def exact(self) -> bool:
        """Every sample in the period is one epoch's value: one sample, or copies of one (value, epoch) pair."""
        return (self.count >= 1 and self.low == self.high and self.resource_low is not None
                and self.resource_low == self.resource_high and math.isfinite(self.resource_low))


#: (query id prefix, metric role, statistic) of the queries read per job.
BUCKET_QUERIES = (("n", "objective", "SampleCount"), ("lo", "objective", "Minimum"), ("hi", "objective", "Maximum"),
                  ("rlo", "resource", "Minimum"), ("rhi", "resource", "Maximum"))


class Inexact(Exception):
    """CloudWatch cannot give a job's values one epoch at a time (the reason says why)."""


class CloudWatchMetrics:
    """Training-job metrics from CloudWatch, for many jobs at once, handed out only when exact.

    A CloudWatch datapoint is a period's aggregate: when a job prints several
    epochs within one period (standard-resolution metrics have 1-minute
    periods), no statistic of it is one epoch's value. So per job and period
    this reads the objective's ``SampleCount``, ``Minimum`` and ``Maximum`` and
    the resource metric's (``ResourceMetricName``, the printed epoch)
    ``Minimum`` and ``Maximum``: five queries a job, ``ceil(5n / 500)``
    GetMetricData calls for n jobs (more only when a result is paginated). A
    period is *exact* when all its samples are one (value, epoch) pair (one
    sample, or copies of it); its point is that value at that epoch. The
    resource always comes from the printed epoch, never from a count of
    datapoints.

    :meth:`read` raises :class:`Inexact` when a closed period is not exact
    (several epochs in it, an objective value without its epoch), when an
    epoch is skipped (a gap after ``last_resource``), or when a point arrives
    in a period older than the newest handed out (late): the caller then reads
    the training jobs' logs instead. Queries use ``Period=period`` on
    ``dimension`` (``Host=<job>/algo-1``, or ``TrainingJobName=<job>``); the
    window's bounds are aligned to the period, so a bucket has the same
    timestamp in every call. A period is handed out once it is closed
    (``timestamp + period <= now - delay_seconds``, or the job ended), in
    ascending timestamps; a period already handed out is skipped when read
    again.
    """

    def __init__(
        self, pool: ClientPool, *, namespace: str, metric: str, resource_metric: str, period: int, dimension: str,
        delay_seconds: float,
    ) -> None:
        self.pool = pool
        self.namespace = namespace
        self.metric = metric
        self.resource_metric = resource_metric
        self.period = period
        self.dimension = dimension
        self.delay_seconds = delay_seconds

    async def read(self, cursors: Sequence[MetricCursor], final: Sequence[bool], wall: float) -> list[list[tuple[float, int]]]:
        """The new (value, resource) points of each cursor's job; ``final[i]``: job i ended, take every period.

        Raises :class:`Inexact` (nothing is handed out then) when a job's values cannot be told apart."""
        per_call = MAX_METRIC_QUERIES // len(BUCKET_QUERIES)
        order = sorted(range(len(cursors)), key=lambda i: self.window_start(cursors[i]))
        end = align_down(wall, self.period) + self.period
        found: dict[int, dict[float, Bucket]] = {}

        async def batch(indices: Sequence[int]) -> None:
            start = min(self.window_start(cursors[i]) for i in indices)
            queries = [self.query(f"{prefix}{i}", self.metric if role == "objective" else self.resource_metric, stat,
                                  cursors[i].job_name)
                       for i in indices for prefix, role, stat in BUCKET_QUERIES]
            data = await get_metric_data(self.pool, queries, start, max(end, start + self.period),
                                         subject=f"{len(indices)} training jobs")
            for i in indices:
                stats = {prefix: dict(data.get(f"{prefix}{i}", [])) for prefix, _, _ in BUCKET_QUERIES}
                found[i] = {ts: Bucket(count, stats["lo"].get(ts, math.nan), stats["hi"].get(ts, math.nan),
                                       stats["rlo"].get(ts), stats["rhi"].get(ts))
                            for ts, count in stats["n"].items() if count > 0}

        await asyncio.gather(*(batch(chunk) for chunk in chunks(order, per_call)))
        horizon = wall - self.delay_seconds
        new = [self._new_points(cursor, found.get(i, {}), horizon, final[i]) for i, cursor in enumerate(cursors)]
        for cursor, points in zip(cursors, new):  # commit only once every job read exactly
            for ts, _, resource in points:
                cursor.emitted.add(ts)
                cursor.last_ts, cursor.last_resource = ts, resource
        return [[(value, resource) for _, value, resource in points] for points in new]

    def query(self, query_id: str, metric: str, stat: str, job_name: str) -> dict[str, Any]:
        value = f"{job_name}/algo-1" if self.dimension == "Host" else job_name
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {"Namespace": self.namespace, "MetricName": metric,
                           "Dimensions": [{"Name": self.dimension, "Value": value}]},
                "Period": self.period,
                "Stat": stat,
            },
            "ReturnData": True,
        }

    def window_start(self, cursor: MetricCursor) -> float:
        """From the newest bucket handed out (inclusive: a late sample in it is seen), else a period before the
        job's creation."""
        if cursor.last_ts is not None:
            return cursor.last_ts
        return align_down(cursor.created - self.period, self.period)

    def _new_points(
        self, cursor: MetricCursor, buckets: Mapping[float, Bucket], horizon: float, final: bool,
    ) -> list[tuple[float, float, int]]:
        new: list[tuple[float, float, int]] = []
        last = cursor.last_resource if cursor.last_resource is not None else cursor.from_resource
        where = f"training job {cursor.job_name}"
        for ts in sorted(buckets):
            bucket = buckets[ts]
            if ts in cursor.emitted:
                continue  # read again: its point was handed out
            if cursor.last_ts is not None and ts < cursor.last_ts:
                raise Inexact(f"{where}: a {self.metric} value arrived late, in a period older than the newest read")
            if not final and ts + self.period > horizon:
                break  # its period may still fill: hand it out once it is closed
            if not bucket.exact():
                raise Inexact(
                    f"{where}: {bucket.count:g} {self.metric} values (epochs "
                    f"{_span(bucket.resource_low, bucket.resource_high)}) fell in one {self.period} s CloudWatch "
                    f"period, whose statistics are not any one epoch's value")
            resource = int(bucket.resource_high)  # type: ignore[arg-type]  # exact(): not None
            if resource != last + 1:
                raise Inexact(f"{where}: CloudWatch gave epoch {resource} after epoch {last}: the epochs between "
                              "are in no period read")
            new.append((ts, bucket.high, resource))
            last = resource
        return new


def _span(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "unknown: no resource value in the period"
    return f"{low:g}" if low == high else f"{low:g} to {high:g}"


class LogLines:
    """A training job's CloudWatch Logs stream (``<job>/algo-1-<epoch seconds>`` in ``group``), read forward.

    The stream is found once (DescribeLogStreams), then each :meth:`read`
    follows ``GetLogEvents`` forward tokens from where the last one stopped:
    every line once, in order. :meth:`since` reads the events from a time on
    (a Live Tail catch-up, :mod:`hb_core.backends.live_tail`).
    """

    def __init__(self, pool: ClientPool, group: str) -> None:
        self.pool = pool
        self.group = group

    async def read(self, cursor: MetricCursor) -> list[str]:
        """The lines after ``cursor``'s forward token (from the stream's head at first); the token moves on."""
        if await self.stream(cursor) is None:
            return []
        lines: list[str] = []
        for events, token in await self._pages(cursor, {"nextToken": cursor.log_token} if cursor.log_token else {}):
            for event in events:
                lines.extend(str(event.get("message", "")).splitlines())
            cursor.log_token = token or cursor.log_token
        return lines

    async def since(self, cursor: MetricCursor, start_ms: int | None) -> list[tuple[int, str]]:
        """(timestamp ms, message) of every event of the stream at or after ``start_ms`` (all when None), in
        order; ``cursor``'s forward token is left alone. [] when the stream does not exist yet."""
        if await self.stream(cursor) is None:
            return []
        found: list[tuple[int, str]] = []
        for events, _ in await self._pages(cursor, {"startTime": start_ms} if start_ms is not None else {}):
            found.extend((int(e.get("timestamp", 0)), str(e.get("message", ""))) for e in events)
        return found

    async def stream(self, cursor: MetricCursor) -> str | None:
        """The job's stream (found once with DescribeLogStreams, the first ``<job>/algo-1-``), or None yet."""
        if cursor.log_stream is None:
            name = cursor.job_name
            try:
                response = await self.pool.call("logs", "DescribeLogStreams", subject=name, logGroupName=self.group,
                                                logStreamNamePrefix=f"{name}/algo-1-")
            except AwsCallError as exc:
                if exc.code in NOT_FOUND:
                    return None  # no log group yet
                raise
            streams = sorted(s["logStreamName"] for s in response.get("logStreams", []))
            if not streams:
                return None
            cursor.log_stream = streams[0]
        return cursor.log_stream

    async def _pages(self, cursor: MetricCursor, first: Mapping[str, Any]) -> list[tuple[list[dict[str, Any]], str]]:
        """GetLogEvents pages forward from ``first`` (a token or a start time) until one brings nothing new."""
        pages: list[tuple[list[dict[str, Any]], str]] = []
        base: dict[str, Any] = {"logGroupName": self.group, "logStreamName": cursor.log_stream,
                                "startFromHead": True, **first}
        params = base
        for _ in range(MAX_PAGES):
            response = await self.pool.call("logs", "GetLogEvents", subject=cursor.job_name, **params)
            events, token = response.get("events", []), str(response.get("nextForwardToken") or "")
            pages.append((events, token))
            if not events or not token or token == params.get("nextToken"):
                break
            params = {**base, "nextToken": token}  # a start time stays: the token is a position among its events
        return pages
