"""The rung barrier: a training script waits at a rung for the controller's verdict.

Without it, a Hyperband stop lands whenever the controller has seen the rung's
value and the stop call has reached the job: meanwhile the job trains on (and
is billed) past the rung. A script that opts in calls :meth:`RungBarrier.reached`
once per epoch, after printing its objective line and saving its checkpoint.
At a rung level of its bracket it waits, at most ``RungBarrierTimeoutSeconds``
(``HyperbandStrategyConfig``), for the verdict:

- *stop*: end training now, cleanly (its checkpoint is saved; write the model
  and exit 0). Stopping variant: the trial lost at this rung, or the tuning
  job is stopping. Promotion variant: the trial pauses here (a later
  ``Resume`` continues it from its checkpoint in a new job).
- *go on* to ``budget``: continue training in the same process. Stopping
  variant: the trial was kept at this rung. Promotion variant: the trial was
  promoted in place (no new job, no checkpoint reload) to the next rung.
- no verdict within the timeout: carry on as without the barrier.

Given the rung's value, the script also *publishes* it next to the verdicts
before it waits (``<level>.value.json``), so a backend whose metric source
lags (CloudWatch metrics: a minute or more) can read the value there and the
verdict comes as soon as the controller has judged it, not a metric delay later.

Terms and the wire format (the backends write verdicts, this module reads them):

- ``HB_RUNG_BARRIER``, an environment variable the backend sets for the job:
  JSON ``{"levels": [...], "timeout": seconds, "verdicts": LOCATION,
  "attempt": n}``. ``levels`` are the rung levels of the trial's bracket below
  MaxResource. Unset: the barrier is off and :meth:`RungBarrier.reached` returns
  at once (scripts behave as without it).
- ``LOCATION``: a directory (local backend: ``JOB_DIR/trials/<trial>/verdicts``)
  or an ``s3://bucket/prefix`` URI (SageMaker backend), per trial.
- ``<level>.json`` in it: ``{"verdict": "continue" | "stop", "budget": n}``, the
  verdict at that rung; ``stop.json``: ``{"verdict": "stop", "attempt": n,
  "reason": ...}``, a stop of that attempt wherever it waits;
  ``<level>.value.json``: ``{"level": n, "value": x, "attempt": n, "time":
  epoch seconds}``, written by the script on arrival at the rung.

This file uses the standard library only (boto3 is imported only for an S3
location: SageMaker's framework containers have it). It works as a standalone
file: copy it next to a training script that runs where ``hb_core`` is not
installed (a SageMaker container) and ``import barrier``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence

__all__ = [
    "ENV",
    "STOP_FILE",
    "RungBarrier",
    "Verdict",
    "environment",
    "stop_body",
    "value_file",
    "verdict_body",
    "verdict_file",
]

ENV = "HB_RUNG_BARRIER"
STOP_FILE = "stop.json"
CONTINUE, STOP = "continue", "stop"
FILE_POLL_SECONDS = 0.05
S3_POLL_SECONDS = 1.0


def verdict_file(level: int) -> str:
    """The name of the verdict at rung ``level`` (a file name, or the last part of an S3 key)."""
    return f"{int(level)}.json"


def value_file(level: int) -> str:
    """The name under which a script publishes its value at rung ``level``."""
    return f"{int(level)}.value.json"


def verdict_body(budget: int, level: int) -> dict[str, Any]:
    """The verdict at ``level``: go on to ``budget``, or stop when ``budget <= level``."""
    return {"verdict": CONTINUE if budget > level else STOP, "budget": int(budget), "level": int(level)}


def stop_body(attempt: int, reason: str) -> dict[str, Any]:
    """The content of ``stop.json``: stop ``attempt`` wherever it waits."""
    return {"verdict": STOP, "attempt": int(attempt), "reason": reason}


def environment(levels: Sequence[int], timeout: float, location: str, attempt: int) -> dict[str, str]:
    """The environment a backend gives a job whose trial waits at ``levels``."""
    body = {"levels": sorted(int(x) for x in levels), "timeout": float(timeout), "verdicts": location,
            "attempt": int(attempt)}
    return {ENV: json.dumps(body)}


@dataclass(frozen=True)
class Verdict:
    """What the script does after a call to :meth:`RungBarrier.reached`.

    ``stop``: end training now. ``budget``: the resource to train to (None:
    unchanged). ``waited``: seconds spent waiting; ``timed_out``: no verdict came.
    """

    stop: bool = False
    budget: Optional[int] = None
    reason: str = ""
    waited: float = 0.0
    timed_out: bool = False


GO_ON = Verdict()


class RungBarrier:
    """Waits at rung levels for the controller's verdict (module docstring).

    ``read(name)`` returns the JSON object stored under ``name`` at the
    location, or None, and ``write(name, body)`` stores one; other stores
    (and tests) may pass their own, else the location's are used.
    """

    def __init__(
        self,
        levels: Sequence[int] = (),
        timeout: float = 0.0,
        location: str = "",
        attempt: int = 1,
        *,
        read: Optional[Callable[[str], Optional[Mapping[str, Any]]]] = None,
        write: Optional[Callable[[str, Mapping[str, Any]], None]] = None,
        poll_seconds: Optional[float] = None,
    ) -> None:
        self.levels = frozenset(int(x) for x in levels)
        self.timeout = float(timeout)
        self.location = location
        self.attempt = int(attempt)
        s3 = location.startswith("s3://")
        self.poll_seconds = poll_seconds if poll_seconds is not None else (S3_POLL_SECONDS if s3 else FILE_POLL_SECONDS)
        store = (_s3_store(location) if s3 else _file_store(location)) if read is None else None
        self._read = read if read is not None else (store[0] if store else None)
        self._write = write if store is None else store[1]
        if self._read is None:  # S3 without boto3: no way to hear a verdict
            self.levels = frozenset()

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> RungBarrier:
        """The barrier ``HB_RUNG_BARRIER`` describes; an inactive one when it is unset or unreadable."""
        raw = (os.environ if environ is None else environ).get(ENV)
        if not raw:
            return cls()
        try:
            spec = json.loads(raw)
            return cls(spec["levels"], float(spec["timeout"]), str(spec["verdicts"]), int(spec.get("attempt", 1)))
        except (ValueError, KeyError, TypeError) as exc:
            _log(f"{ENV} is not a rung barrier ({exc}): training without it")
            return cls()

    @property
    def active(self) -> bool:
        return bool(self.levels) and self.timeout > 0

    def reached(self, resource: int, value: Optional[float] = None, *,
                should_stop: Optional[Callable[[], bool]] = None) -> Verdict:
        """Call once per epoch with the resource just completed and its objective value; waits only at a rung.

        ``value``, when given, is published for the controller (module
        docstring). ``should_stop`` (e.g. "SIGTERM was received") ends a wait
        with a stop.
        """
        if not self.active or int(resource) not in self.levels:
            return GO_ON
        level = int(resource)
        if value is not None and self._write is not None:
            body = {"level": level, "value": float(value), "attempt": self.attempt, "time": time.time()}
            try:
                self._write(value_file(level), body)
            except Exception as exc:  # noqa: BLE001 - the printed line still carries the value
                _log(f"publishing the value at rung {level} failed: {exc!r}")
        start = time.monotonic()
        deadline = start + self.timeout
        while True:
            verdict = self._verdict(level)
            if verdict is None and should_stop is not None and should_stop():
                verdict = Verdict(stop=True, reason="stop requested while waiting at the rung")
            waited = time.monotonic() - start
            if verdict is not None:
                _log(f"rung {level}: {'stop' if verdict.stop else 'go on'} after {waited:.2f} s"
                     + (f" ({verdict.reason})" if verdict.reason else ""))
                return Verdict(verdict.stop, verdict.budget, verdict.reason, waited)
            if time.monotonic() >= deadline:
                _log(f"rung {level}: no verdict within {self.timeout:g} s, going on")
                return Verdict(waited=waited, timed_out=True)
            time.sleep(min(self.poll_seconds, max(0.0, deadline - time.monotonic())))

    def _verdict(self, level: int) -> Optional[Verdict]:
        stop = self._safe_read(STOP_FILE)
        if stop is not None and int(stop.get("attempt", self.attempt)) == self.attempt:
            return Verdict(stop=True, reason=str(stop.get("reason", "")))
        body = self._safe_read(verdict_file(level))
        if body is None:
            return None
        if body.get("verdict") == STOP:
            return Verdict(stop=True, reason=str(body.get("reason", "")))
        budget = body.get("budget")
        return Verdict(budget=int(budget) if budget is not None else None)

    def _safe_read(self, name: str) -> Optional[Mapping[str, Any]]:
        try:
            body = self._read(name)  # type: ignore[misc]
        except Exception as exc:  # noqa: BLE001 - a flaky store must not end training: retry at the next poll
            _log(f"reading verdict {name} failed: {exc!r}")
            return None
        return body if isinstance(body, Mapping) else None


Reader = Callable[[str], Optional[Mapping[str, Any]]]
Writer = Callable[[str, Mapping[str, Any]], None]


def _file_store(directory: str) -> tuple[Reader, Writer]:
    def read(name: str) -> Optional[Mapping[str, Any]]:
        try:
            with open(os.path.join(directory, name), encoding="utf-8") as handle:
                return json.load(handle)  # type: ignore[no-any-return]
        except (OSError, ValueError):  # absent, or written as we read (writers replace atomically)
            return None

    def write(name: str, body: Mapping[str, Any]) -> None:
        path = os.path.join(directory, name)
        with open(f"{path}.tmp", "w", encoding="utf-8") as handle:
            json.dump(dict(body), handle)
        os.replace(f"{path}.tmp", path)

    return read, write


def _s3_store(uri: str) -> Optional[tuple[Reader, Writer]]:
    try:
        import boto3  # SageMaker's framework containers have it; endpoint and region come from the environment
    except ImportError:
        _log(f"boto3 is not installed: cannot read verdicts from {uri}; training without the rung barrier")
        return None
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    prefix = prefix.rstrip("/")
    client = boto3.client("s3")

    def key(name: str) -> str:
        return f"{prefix}/{name}" if prefix else name

    def read(name: str) -> Optional[Mapping[str, Any]]:
        try:
            body = client.get_object(Bucket=bucket, Key=key(name))["Body"].read()
        except client.exceptions.NoSuchKey:
            return None
        return json.loads(body)  # type: ignore[no-any-return]

    def write(name: str, body: Mapping[str, Any]) -> None:
        client.put_object(Bucket=bucket, Key=key(name), Body=json.dumps(dict(body)).encode())

    return read, write


def _log(message: str) -> None:
    print(f"[rung barrier] {message}", file=sys.stderr, flush=True)
