"""The S3 state store: ``state.json`` written with a conditional put, decisions as numbered objects.

Layout under ``s3://<bucket>/<prefix>/``:

- ``state.json``: the latest :class:`~hb_core.state.TuningState`.
- ``decisions/<revision:010d>.<count>.jsonl``: the ``count`` decisions of the
  round that saved ``revision``, one JSON object per line. Each is written
  once, never read back and rewritten, so appending costs one PUT whatever the
  log's length; the count in the key lets a reader (the dashboard) total and
  page the log from a listing alone. Keys without the count
  (``<revision:010d>.jsonl``) are read too.

The compare-and-set of :meth:`S3Store.save` is S3's conditional write: the
first save puts with ``If-None-Match: *`` (it fails when any state exists),
every later one with ``If-Match: <ETag>`` of the object this store last
loaded or saved (it fails when anyone wrote in between). A failed
precondition (HTTP 412 ``PreconditionFailed``, or 409
``ConditionalRequestConflict`` for concurrent writes) raises
:class:`~hb_core.backends.stores.StateConflict`. A save asked to build on a
revision this store has not seen itself (another store instance, or a
restarted controller) first reads the current ETag, and refuses when the
stored revision is not the expected one.

Checked on moto 5.2.5's server: PutObject honours both ``IfNoneMatch`` and
``IfMatch`` (412 on mismatch). Moto checks and writes in two steps without a
lock, so two writes arriving at exactly the same time could both pass there
(S3 itself decides atomically); 300 racing pairs in a row never did on this
machine, and the racing tests here rely on the check, not on luck in timing.

Throttling and 5xx errors are retried with backoff (:mod:`hb_core.backends.aws`);
a conditional put retried after a lost response may find its own write: it
compares the stored body with its own before calling it a conflict.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from hb_core.backends.aws import MAX_PAGES, AwsCallError, AwsClients, ClientPool, RetryPolicy
from hb_core.backends.clock import RealClock
from hb_core.backends.stores import StateConflict
from hb_core.errors import ConfigError, StateError
from hb_core.protocols import Clock
from hb_core.state import Decision, TuningState

__all__ = ["S3Store", "decision_key", "one_key_per_revision", "parse_decision_key", "parse_s3_uri"]

_DECISION_KEY = re.compile(r"(\d{10})(?:\.(\d+))?\.jsonl")


def decision_key(revision: int, count: int) -> str:
    """The name, under ``decisions/``, of the object holding revision ``revision``'s ``count`` decisions."""
    return f"{revision:010d}.{count}.jsonl"


def parse_decision_key(name: str) -> tuple[int, int | None] | None:
    """(revision, count or None when the key does not say) of a name under ``decisions/``; None if not one."""
    match = _DECISION_KEY.fullmatch(name)
    if match is None:
        return None
    return int(match[1]), int(match[2]) if match[2] is not None else None


def parse_s3_uri(uri: str, field: str = "state_uri") -> tuple[str, str]:
    """(bucket, prefix without slashes at its ends) of ``s3://bucket[/prefix]``; ConfigError naming ``field``."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket:
        raise ConfigError(field, f"`{field} is s3://bucket[/prefix]` must hold", uri)
    return bucket, prefix.strip("/")


def one_key_per_revision(keys: Sequence[str]) -> list[str]:
    """The decision objects among ``keys``, in revision order, one per revision (the first written name wins:
    a round's decisions are put once, so a second name for a revision is an anomaly, not more decisions)."""
    chosen: dict[int, str] = {}
    for key in sorted(keys):
        parsed = parse_decision_key(key.rsplit("/", 1)[-1])
        if parsed is not None:
            chosen.setdefault(parsed[0], key)
    return [chosen[revision] for revision in sorted(chosen)]


CONFLICT_CODES = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")
MISSING_CODES = ("NoSuchKey", "404", "NotFound")


class S3Store:
    """A :class:`~hb_core.protocols.StateStore` on S3 (module docstring).

    ``clients`` hands out aiobotocore ``s3`` clients; the one client is opened
    on first use and closed by :meth:`close`.
    """

    STATE = "state.json"
    DECISIONS = "decisions"

    def __init__(
        self, bucket: str, prefix: str, clients: AwsClients, *, clock: Clock | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if not bucket or "/" in bucket:
            raise ValueError(f"`bucket is a bucket name` must hold, but got {bucket!r}")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.pool = ClientPool(clients, clock=clock or RealClock(), retry=retry)
        self._etag: str | None = None  # of the state this store last loaded or saved
        self._revision: int | None = None

    @property
    def state_key(self) -> str:
        return self._key(self.STATE)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    @classmethod
    def from_uri(cls, uri: str, clients: AwsClients, *, field: str = "state_uri", **kwargs: Any) -> S3Store:
        """The store at ``s3://bucket[/prefix]`` (a bad URI is a ConfigError naming ``field``)."""
        bucket, prefix = parse_s3_uri(uri, field)
        return cls(bucket, prefix, clients, **kwargs)

    async def load(self) -> TuningState | None:
        body, etag = await self._get(self.state_key)
        if body is None:
            self._etag, self._revision = None, None
            return None
        try:
            state = TuningState.from_dict(json.loads(body))
        except json.JSONDecodeError as exc:
            raise StateError(f"s3://{self.bucket}/{self.state_key} is not valid JSON: {exc}") from exc
        self._etag, self._revision = etag, state.revision
        return state

    async def save(self, state: TuningState, expected_revision: int | None) -> None:
        """Write ``state`` if the stored revision is ``expected_revision`` (None: no state yet); else StateConflict."""
        condition: dict[str, str]
        if expected_revision is None:
            condition = {"IfNoneMatch": "*"}
        else:
            if self._revision != expected_revision or self._etag is None:
                current = await self.load()
                if current is None or current.revision != expected_revision:
                    found = None if current is None else current.revision
                    raise StateConflict(f"{self.uri}/{self.STATE} is at revision {found}, expected "
                                        f"{expected_revision}: another controller is running this tuning job")
            assert self._etag is not None
            condition = {"IfMatch": self._etag}
        body = json.dumps(state.to_dict(), separators=(",", ":")).encode()
        attempts = self.pool.calls["PutObject"]
        try:
            response = await self.pool.call(
                "s3", "PutObject", subject=f"s3://{self.bucket}/{self.state_key}", Bucket=self.bucket,
                Key=self.state_key, Body=body, ContentType="application/json", **condition,
            )
            etag = str(response["ETag"])
        except AwsCallError as exc:
            if exc.code not in CONFLICT_CODES and not (exc.code in MISSING_CODES and "IfMatch" in condition):
                raise
            retried = self.pool.calls["PutObject"] - attempts > 1
            stored, stored_etag = await self._get(self.state_key) if retried else (None, None)
            if stored != body or stored_etag is None:
                raise StateConflict(f"{self.uri}/{self.STATE} changed since revision {expected_revision} was "
                                    f"read ({exc.code}): another controller is running this tuning job") from exc
            etag = stored_etag  # our own write, whose response was lost and retried
        self._etag, self._revision = etag, state.revision

    async def append_decisions(self, decisions: Sequence[Decision]) -> None:
        """Write the round's decisions as ``decisions/<revision:010d>.<count>.jsonl`` (once; a retry finds it there)."""
        if not decisions:
            return
        revision = self._revision if self._revision is not None else 0
        key = self._key(f"{self.DECISIONS}/{decision_key(revision, len(decisions))}")
        lines = "".join(json.dumps(d.to_dict(), separators=(",", ":")) + "\n" for d in decisions).encode()
        try:
            await self.pool.call("s3", "PutObject", subject=f"s3://{self.bucket}/{key}", Bucket=self.bucket, Key=key,
                                 Body=lines, ContentType="application/x-ndjson", IfNoneMatch="*")
        except AwsCallError as exc:
            if exc.code not in CONFLICT_CODES:
                raise

    async def read_decisions(self) -> list[Decision]:
        """The whole decision log, in revision order."""
        keys: list[str] = []
        token: str | None = None
        for _ in range(MAX_PAGES * 100):
            params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self._key(f"{self.DECISIONS}/")}
            if token:
                params["ContinuationToken"] = token
            response = await self.pool.call("s3", "ListObjectsV2", subject=self.uri, **params)
            keys += [item["Key"] for item in response.get("Contents", [])]
            token = response.get("NextContinuationToken")
            if not token:
                break
        decisions: list[Decision] = []
        for key in one_key_per_revision(keys):
            body, _ = await self._get(key)
            for line in (body or b"").decode().splitlines():
                if line.strip():
                    decisions.append(Decision.from_dict(json.loads(line)))
        return decisions

    async def close(self) -> None:
        await self.pool.close()

    async def _get(self, key: str) -> tuple[bytes | None, str | None]:
        try:
            body, etag = await self.pool.get_object(self.bucket, key)
        except AwsCallError as exc:
            if exc.code in MISSING_CODES:
                return None, None
            raise
        return body, etag
