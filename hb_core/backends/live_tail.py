"""Training-job log lines from a CloudWatch Logs Live Tail stream (``StartLiveTail``), exact and within a second.

What AWS documents (CloudWatch Logs API reference, ``StartLiveTail``; the
facts are collected in the project's latency reference):

- A session streams the log events *ingested after it started* in up to 10
  log groups, each named by ARN. ``logStreamNamePrefixes`` (1 to 100
  prefixes, botocore's service model) needs exactly one log group.
- The response is an AWS event stream (``application/vnd.amazon.eventstream``,
  on the ``stream-`` host prefix): one ``sessionStart``, then a
  ``sessionUpdate`` about every second, empty when nothing was ingested, with
  at most 500 events; above that the update is sampled
  (``sessionMetadata.sampled``). A slow reader is buffered up to 10 updates
  or 5,000 events, then the oldest are dropped.
- A session ends after 3 hours (``SessionTimeoutException``), or on a server
  error (``SessionStreamingException``).

Compare: CloudWatch metrics of training jobs have 1-minute granularity, and
Logs events are readable with ``GetLogEvents`` within seconds (polled).

Terms:

- *session*: one at a time, on the log group ``/aws/sagemaker/TrainingJobs``
  (its ARN from ``DescribeLogGroups``, once the group exists) and the single
  prefix ``<tuning job>-``, which every training job of the tuning job's
  streams (``<job>/algo-1-<epoch seconds>``) starts with, those launched
  later included. A session's filter is fixed when it starts, so one prefix
  per job would mean a new session (and a catch-up read of every job) at
  every launch, and a limit of 100 jobs; this prefix needs neither. Streams
  of other jobs that share the prefix are dropped here (``route``). When a
  session ends (3 hours, a server error, a dropped connection) the reader
  starts the next one at once.
- *generation*: counts the sessions started and the sampled updates. The
  events received during one generation are every event ingested during it.
- *covered*: a job is covered in generation g when every event of its stream
  ingested before g began has been read: it was created while g ran (its
  stream came later), or a *catch-up* read (``GetLogEvents`` from the job's
  mark on, :meth:`LogLines.since <hb_core.backends.aws.LogLines.since>`)
  began while g ran. A job not covered is caught up at the next
  :meth:`LiveTail.lines`; so is an ended job once (its last lines may still
  be on their way through the stream), and every job while no session runs
  (the reader then degrades to polling).
- *mark*: per job, the newest event timestamp taken, and the messages taken
  at that millisecond. An event older than the mark was taken; one at the
  mark is a duplicate when a different source (another session, a catch-up
  read) already took as many copies of it. So the two sources overlap
  without doubling a line, provided a stream's timestamps do not go back
  (SageMaker stamps lines as its agent reads them).

When ``StartLiveTail`` is refused (no ``logs:StartLiveTail`` permission, an
endpoint that does not serve it, throttling that outlasts the backoff), the
reader stops and says why in :attr:`LiveTail.refused`; the backend then polls
the logs (``metric_source="logs"``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from botocore.exceptions import EventStreamError

from hb_core.backends.aws import AwsCallError, ClientPool, LogLines, MetricCursor, transient
from hb_core.backends.clock import wait_event

__all__ = ["LiveTail", "LogEvent", "Mark"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_sources = itertools.count(1)


class LogEvent(NamedTuple):
    """One log event of a job's stream: its timestamp (ms), message, and the source that brought it."""

    timestamp: int
    message: str
    source: int  # a session number, or a catch-up read's


@dataclass
class Mark:
    """How far one job's stream has been taken (module docstring, *mark*)."""

    timestamp: int = -1
    taken: Counter[str] = field(default_factory=Counter)  # messages taken at ``timestamp``
    source: int = 0
    _before: Counter[str] = field(default_factory=Counter)  # ``taken`` when ``source`` began
    _seen: Counter[str] = field(default_factory=Counter)  # messages at ``timestamp`` from ``source``

    def take(self, event: LogEvent) -> bool:
        """Whether ``event`` is new (and now taken)."""
        if event.source != self.source:
            self.source, self._before, self._seen = event.source, Counter(self.taken), Counter()
        if event.timestamp < self.timestamp:
            return False
        if event.timestamp > self.timestamp:
            self.timestamp, self.taken, self._before, self._seen = event.timestamp, Counter(), Counter(), Counter()
        self._seen[event.message] += 1
        if self._seen[event.message] <= self._before[event.message]:
            return False
        self.taken[event.message] += 1
        return True


class LiveTail:
    """One Live Tail session at a time over ``group``'s streams named ``prefix...`` (module docstring).

    ``route`` maps a stream name to the key its events are kept under (the
    training job), or None to drop them; ``wakes`` says whether a line wakes
    :meth:`wait` (a metric line); ``gather`` awaits catch-up reads with
    bounded concurrency. ``sessions`` counts the sessions started, ``updates``
    the updates received, ``sampled`` the sampled ones, ``catch_ups`` the
    catch-up reads; ``streamed`` and ``caught_up`` the events taken from the
    stream and from catch-up reads.
    """

    def __init__(
        self, pool: ClientPool, logs: LogLines, prefix: str, *, route: Callable[[str], str | None],
        wakes: Callable[[str], bool], gather: Callable[[list[Awaitable[Any]]], Awaitable[list[Any]]],
        retry_seconds: float = 5.0,
    ) -> None:
        self.pool, self.logs, self.prefix = pool, logs, prefix
        self.route, self.wakes, self.gather = route, wakes, gather
        self.retry_seconds = retry_seconds
        self.generation = 0
        self.active = False  # a session runs
        self.refused: Exception | None = None  # why the reader stopped (StartLiveTail refused, a bad stream)
        self.sessions = self.updates = self.sampled = self.catch_ups = 0
        self.streamed = self.caught_up = 0  # events taken from the stream, from catch-up reads
        self._buffers: dict[str, list[LogEvent]] = {}
        self._marks: dict[str, Mark] = {}
        self._covered: dict[str, int] = {}
        self._final: set[str] = set()  # ended jobs caught up once
        self._ready: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ what the backend calls

    def start(self) -> None:
        """Start following (on the running loop), unless already started or refused."""
        if self._task is None and self.refused is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"live-tail {self.prefix}")

    def created(self, key: str) -> None:
        """A job was just created: while a session runs, its stream is covered (it comes later)."""
        if self.active:
            self._covered[key] = self.generation

    async def lines(self, jobs: Sequence[tuple[str, MetricCursor, bool]]) -> list[list[str]]:
        """The new lines of each (key, cursor, ended) job, in order: caught up when needed, then streamed."""
        self.start()
        generation = self.generation if self.active else None
        due = [(key, cursor) for key, cursor, ended in jobs
               if generation is None or self._covered.get(key) != generation or (ended and key not in self._final)]
        starts = [self._mark(key).timestamp for key, _ in due]
        reads = await self.gather([self.logs.since(cursor, start if start >= 0 else None)
                                   for (_, cursor), start in zip(due, starts)])
        caught: dict[str, list[LogEvent]] = {}
        for (key, _), events in zip(due, reads):
            self.catch_ups += 1
            source = -next(_sources)
            caught[key] = [LogEvent(t, m, source) for t, m in events]
            if generation is not None:
                self._covered[key] = generation
        for key, _, ended in jobs:
            if ended and key in caught:
                self._final.add(key)
        result: list[list[str]] = []
        for key, _, _ in jobs:
            mark = self._mark(key)
            taken = [e for e in caught.get(key, []) + self._buffers.pop(key, []) if mark.take(e)]
            streamed = sum(e.source > 0 for e in taken)
            self.streamed, self.caught_up = self.streamed + streamed, self.caught_up + len(taken) - streamed
            result.append([line for e in taken for line in e.message.splitlines()])
        return result

    def forget(self, key: str) -> None:
        """The job is no longer followed: drop what is kept for it."""
        for kept in (self._buffers, self._marks, self._covered):
            kept.pop(key, None)
        self._final.discard(key)

    async def wait(self, timeout: float) -> bool:
        """Return once a metric line is buffered (or the reader stopped): True; or after ``timeout`` seconds: False."""
        if self._ready is None:
            self._ready = asyncio.Event()
        if self._ready.is_set():
            self._ready.clear()
            return True
        woken = await wait_event(self._ready, timeout)
        self._ready.clear()
        return woken

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.active = False

    # ------------------------------------------------------------ the sessions

    def _mark(self, key: str) -> Mark:
        return self._marks.setdefault(key, Mark())

    def _wake(self) -> None:
        if self._ready is None:
            self._ready = asyncio.Event()
        self._ready.set()

    async def _run(self) -> None:
        arn: str | None = None
        quick = 0  # sessions in a row that brought no update (or looks for a missing group): back off
        while True:
            try:
                arn = arn or await self._group_arn()
                if arn is None:  # no training job has logged yet: the catch-up reads poll meanwhile
                    quick += 1
                    await asyncio.sleep(min(self.retry_seconds, 0.1 * 2 ** min(quick, 10)))
                    continue
                response = await self.pool.call("logs", "StartLiveTail", subject=self.prefix,
                                                logGroupIdentifiers=[arn], logStreamNamePrefixes=[self.prefix])
            except AwsCallError as exc:
                self.refused = exc
                self._wake()
                return
            updates = self.updates
            try:
                await self._follow(response["responseStream"])
            except EventStreamError as exc:  # SessionTimeoutException (3 h), SessionStreamingException
                log.info("live tail %s: the session ended (%s); starting the next", self.prefix, exc)
            except Exception as exc:
                if transient(exc) is None:  # not a stream we can read: the backend polls instead
                    log.exception("live tail %s: cannot read the stream", self.prefix)
                    self.refused = exc
                    self._wake()
                    return
                log.info("live tail %s: the stream broke (%s); starting the next session", self.prefix, exc)
            finally:
                self.active = False
                with contextlib.suppress(Exception):
                    response["responseStream"].close()
            quick = 0 if self.updates > updates else quick + 1
            if quick:
                await asyncio.sleep(min(self.retry_seconds, 0.1 * 2 ** min(quick, 10)))

    async def _group_arn(self) -> str | None:
        group = self.logs.group
        response = await self.pool.call("logs", "DescribeLogGroups", subject=group, logGroupNamePrefix=group)
        for found in response.get("logGroups", []):
            if found.get("logGroupName") == group:
                return str(found.get("logGroupArn") or str(found["arn"]).removesuffix(":*"))
        return None

    async def _follow(self, stream: Any) -> None:
        session = 0
        async for event in stream:
            if "sessionStart" in event:
                session = next(_sources)
                self.sessions += 1
                self.generation += 1
                self.active = True
                log.info("live tail %s: session %s started", self.prefix, event["sessionStart"].get("sessionId"))
                continue
            update = event.get("sessionUpdate")
            if update is None or not self.active:
                continue
            self.updates += 1
            wake = False
            if (update.get("sessionMetadata") or {}).get("sampled"):
                self.sampled += 1
                self.generation += 1  # events were left out: every job is caught up at the next read
                wake = True
            for item in update.get("sessionResults") or []:
                key = self.route(str(item.get("logStreamName", "")))
                if key is None:
                    continue
                message = str(item.get("message", ""))
                self._buffers.setdefault(key, []).append(LogEvent(int(item.get("timestamp", 0)), message, session))
                wake = wake or self.wakes(message)
            if wake:
                self._wake()
        log.info("live tail %s: the stream ended; starting the next session", self.prefix)
