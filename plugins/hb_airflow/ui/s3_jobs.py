"""The dashboard's reader of an S3 state root: the tuning jobs the SageMaker backend keeps in S3.

``[hyperband] state_root = s3://bucket/prefix`` names the root. A job ``<name>``
is found at either layout (tried in this order, the one found is remembered):

- ``<prefix>/<name>/hyperband/``: the SageMaker backend's default
  ``state_uri`` when ``prefix`` is the tuning request's ``S3OutputPath``;
- ``<prefix>/<name>/``: a ``state_uri`` given as ``s3://bucket/prefix/<name>``.

Under it are the files of :class:`~hb_core.backends.s3_store.S3Store`:
``state.json`` and ``decisions/<revision:010d>.<count>.jsonl``.

Cost per page view, on a client made by the Amazon provider's ``AwsBaseHook``
(``[hyperband] aws_conn_id``): the job list is one ``ListObjectsV2`` (per
1,000 jobs) plus one ``GetObject`` per job, conditional on the ETag last seen
(``If-None-Match``: an unchanged state answers 304 with no body). A decision
page is one listing of ``decisions/`` (per 1,000 rounds: the counts in the
keys give the total) and a ``GetObject`` only for the rounds on the page; a
decision object is never rewritten, so it is parsed once and cached.

Reconciling: given ``clients`` (aiobotocore clients on the same connection),
a job left ``Stopping`` (its controller was cancelled, or its triggerer died,
mid-abort) is finished on read once every training job of it has ended
(:func:`hb_core.backends.sagemaker.settle_sagemaker`: DescribeTrainingJob,
then the state saved compare-and-set), as the local reader does. That takes
what a controller needs to follow a training job (``DescribeTrainingJob``,
``ListTrainingJobs``, ``ListTags``, the CloudWatch Logs reads) and
``s3:PutObject`` under the job's prefix; without them the job is shown as
stored (a warning is logged).

Names are checked as in :class:`~hb_airflow.ui.jobs.StateRoot`, so a name can
never address a key outside ``<prefix>/<name>/``. S3 errors (no bucket, access
denied, no endpoint) raise :class:`~hb_airflow.ui.jobs.StateRootUnavailable`
naming the URI and the error code; an object whose body arrives damaged
(cut short, or failing S3's checksum) is fetched again first.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from hb_airflow.ui.jobs import (
    DecisionPage,
    JobSource,
    LoadedJob,
    StateRootUnavailable,
    UnknownJob,
    check_job_name,
    parse_decision,
    parse_state,
    stopping,
)
from hb_core.backends.aws import DAMAGED_BODY_ERRORS, MAX_PAGES, AwsClients
from hb_core.backends.s3_store import S3Store, one_key_per_revision, parse_decision_key, parse_s3_uri
from hb_core.backends.sagemaker import settle_sagemaker
from hb_core.state import Decision, TuningState

__all__ = ["S3StateRoot"]

log = logging.getLogger(__name__)

#: The layouts of a job under the root, most likely first (module docstring).
LAYOUTS = ("{name}/hyperband/", "{name}/")
_MISSING = ("NoSuchKey", "404", "NotFound")
_NOT_MODIFIED = ("304", "NotModified")
#: GetObject attempts for one object whose body arrives cut short or fails its checksum.
BODY_ATTEMPTS = 3


class S3StateRoot(JobSource):
    """Read-only view of the tuning jobs under ``s3://bucket/prefix`` (module docstring).

    ``client`` is a boto3 S3 client (thread-safe; the app serves pages from a thread pool); ``clients``, when
    given, the aiobotocore clients that finish a job left Stopping (module docstring).
    """

    def __init__(self, uri: str, client: Any, *, clients: AwsClients | None = None, cache_size: int = 32,
                 object_cache_size: int = 4096) -> None:
        self.bucket, prefix = parse_s3_uri(uri, "[hyperband] state_root")
        self.prefix = f"{prefix}/" if prefix else ""
        self.root = uri
        self.client = client
        self.clients = clients
        self._lock = threading.Lock()
        self._layout: dict[str, str] = {}  # job name -> its key prefix
        self._states: OrderedDict[str, tuple[str, LoadedJob]] = OrderedDict()  # key -> (ETag, job)
        self._objects: OrderedDict[str, tuple[Decision, ...]] = OrderedDict()  # decision key -> decisions
        self._cache_size, self._object_cache_size = cache_size, object_cache_size

    # ---- JobSource

    def names(self) -> list[str]:
        """Names of the folders directly under the prefix that are valid job names, sorted (one may hold no job:
        :meth:`load` then raises UnknownJob, which :meth:`jobs` skips)."""
        found = []
        for page in self._pages(Prefix=self.prefix, Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                name = str(common["Prefix"])[len(self.prefix):].rstrip("/")
                try:
                    found.append(check_job_name(name))
                except ValueError:
                    continue
        return sorted(found)

    def load(self, name: str) -> LoadedJob:
        """Job ``name``'s state (re-read only when its ETag changed); :class:`UnknownJob` when absent."""
        check_job_name(name)
        known = self._layout.get(name)
        candidates = [known] if known else [self.prefix + layout.format(name=name) for layout in LAYOUTS]
        for base in candidates:
            loaded = self._load_state(name, base + S3Store.STATE)
            if loaded is not None:
                with self._lock:
                    self._layout[name] = base
                if stopping(loaded):
                    loaded = self._settled(name, base, loaded)
                return loaded
        with self._lock:
            self._layout.pop(name, None)
        if known:  # it moved or was deleted: look again at every layout
            return self.load(name)
        raise UnknownJob(f"no tuning job {name!r} under {self.root}")

    def decisions(self, name: str, *, offset: int = 0, limit: int = 50) -> DecisionPage:
        """A page of job ``name``'s decision log, newest first."""
        self.load(name)
        base = self._layout[name] + S3Store.DECISIONS + "/"
        listed = {str(item["Key"]): item for page in self._pages(Prefix=base) for item in page.get("Contents", [])}
        rounds = []  # (key, count), newest round first
        for key in reversed(one_key_per_revision(list(listed))):
            parsed = parse_decision_key(key[len(base):])
            assert parsed is not None
            rounds.append((key, parsed[1] if parsed[1] is not None else len(self._decisions_in(key))))
        total = sum(count for _, count in rounds)
        page: list[Decision] = []
        skipped = 0
        for key, count in rounds:
            if len(page) >= limit:
                break
            if skipped + count <= offset:
                skipped += count
                continue
            newest_first = list(reversed(self._decisions_in(key)))
            start = max(0, offset - skipped)
            skipped += start
            page += newest_first[start:start + limit - len(page)]
        return DecisionPage(total, offset, limit, tuple(page))

    # ---- S3

    def _settled(self, name: str, base: str, loaded: LoadedJob) -> LoadedJob:
        """``loaded`` after :func:`settle_sagemaker` (re-read when it recorded the job's end)."""
        if self.clients is None:
            return loaded
        clients = self.clients

        async def settle() -> TuningState | None:
            store = S3Store(self.bucket, base.rstrip("/"), clients)
            try:
                return await settle_sagemaker(store, clients)
            finally:
                await store.close()

        try:
            state = asyncio.run(settle())
        except Exception as exc:  # a reader must still show what is stored
            log.warning("tuning job %s: reconciling its stopping state failed: %s", name, exc)
            return loaded
        if state is None or state.revision == loaded.state.revision:  # type: ignore[union-attr]
            return loaded
        return self._load_state(name, base + S3Store.STATE) or loaded

    def _load_state(self, name: str, key: str) -> LoadedJob | None:
        with self._lock:
            cached = self._states.get(key)
        condition = {"IfNoneMatch": cached[0]} if cached else {}
        try:
            response, body = self._get_object(key, **condition)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code"))
            if cached and code in _NOT_MODIFIED:
                with self._lock:
                    self._states.move_to_end(key)
                return cached[1]
            if code in _MISSING:
                return None
            raise self._unavailable(key, exc) from exc
        except BotoCoreError as exc:
            raise self._unavailable(key, exc) from exc
        loaded = parse_state(name, f"s3://{self.bucket}/{key}", body, response["LastModified"].timestamp())
        with self._lock:
            self._states[key] = (str(response["ETag"]), loaded)
            self._states.move_to_end(key)
            while len(self._states) > self._cache_size:
                self._states.popitem(last=False)
        return loaded

    def _decisions_in(self, key: str) -> tuple[Decision, ...]:
        """The decisions of one round's object, oldest first (parsed once: the object is never rewritten)."""
        with self._lock:
            cached = self._objects.get(key)
        if cached is not None:
            return cached
        try:
            _, body = self._get_object(key)
        except (ClientError, BotoCoreError) as exc:
            raise self._unavailable(key, exc) from exc
        parsed = tuple(d for d in (parse_decision(line) for line in body.splitlines() if line.strip()) if d)
        with self._lock:
            self._objects[key] = parsed
            while len(self._objects) > self._object_cache_size:
                self._objects.popitem(last=False)
        return parsed

    def _get_object(self, key: str, **condition: str) -> tuple[dict[str, Any], bytes]:
        """GetObject and its body, fetched again (at most :data:`BODY_ATTEMPTS` times in all) when the body
        arrives damaged; the last damaged body's error, and every ``ClientError``, go to the caller."""
        attempt = 1
        while True:
            response = self.client.get_object(Bucket=self.bucket, Key=key, **condition)
            body = response["Body"]
            try:  # read() checks the length and S3's checksum; ``with body as stream`` reads the raw stream unchecked
                return response, body.read()
            except DAMAGED_BODY_ERRORS:
                if attempt >= BODY_ATTEMPTS:
                    raise
                attempt += 1
            finally:
                body.close()

    def _pages(self, **params: Any) -> Iterator[dict[str, Any]]:
        token: str | None = None
        for _ in range(MAX_PAGES * 100):
            try:
                page = self.client.list_objects_v2(Bucket=self.bucket, **params,
                                                   **({"ContinuationToken": token} if token else {}))
            except (ClientError, BotoCoreError) as exc:
                raise self._unavailable(params.get("Prefix", ""), exc) from exc
            yield page
            token = page.get("NextContinuationToken")
            if not token:
                return

    def _unavailable(self, key: str, exc: Exception) -> StateRootUnavailable:
        code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else type(exc).__name__
        return StateRootUnavailable(f"cannot read s3://{self.bucket}/{key} ({code}): {exc}")
