"""CloudWatch Logs Live Tail for the emulator: ``StartLiveTail`` sessions, over an AWS event stream.

moto does not implement ``StartLiveTail``; the emulator serves it. Every log
event the emulator's jobs publish, and every ``PutLogEvents`` proxied to
moto, is handed to the :class:`LiveTailHub`, which fans it out to the open
sessions whose filter it matches. A session answers as CloudWatch Logs does
(API reference, ``StartLiveTail``): HTTP 200 with
``Content-Type: application/vnd.amazon.eventstream``, then messages: the
``initial-response`` every ``awsJson`` event stream opens with (``{}``), one
``sessionStart``, a ``sessionUpdate`` every ``update_seconds`` (AWS: about
one a second, empty when nothing was ingested) with at most ``max_events``
events (AWS: 500; above that the update is *sampled*: the first ones are
kept and ``sessionMetadata.sampled`` is true), and after ``session_seconds``
(AWS: 3 hours) a ``SessionTimeoutException`` exception message, which ends
the stream. A request is checked as AWS checks it: 1 to 10 log groups given
by ARN (not ending in ``*``), ``logStreamNames`` or ``logStreamNamePrefixes``
(not both, 1 to 100, only with exactly one group).

The wire format (:func:`encode_message`) is the AWS event stream encoding
botocore decodes (``botocore.eventstream``): a 12-byte prelude (total
length, headers length, CRC32 of those 8 bytes; big-endian), the headers
(name length byte, name, type byte 7 = string, 2-byte value length, value),
the payload, and the CRC32 of everything before it. Messages go out as HTTP
chunks.
"""

from __future__ import annotations

import json
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LiveTailHub", "SessionRequest", "encode_message", "event_message", "exception_message"]

CONTENT_TYPE = "application/vnd.amazon.eventstream"
_STRING = 7


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude, string headers, payload, CRCs (module docstring)."""
    encoded = b""
    for name, value in headers.items():
        key, data = name.encode(), value.encode()
        encoded += struct.pack("!B", len(key)) + key + struct.pack("!BH", _STRING, len(data)) + data
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack("!II", total, len(encoded))
    prelude += struct.pack("!I", zlib.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + encoded + payload
    return message + struct.pack("!I", zlib.crc32(message) & 0xFFFFFFFF)


def event_message(event_type: str, body: Mapping[str, Any]) -> bytes:
    headers = {":message-type": "event", ":event-type": event_type, ":content-type": "application/json"}
    return encode_message(headers, json.dumps(body).encode())


def exception_message(exception_type: str, message: str) -> bytes:
    headers = {":message-type": "exception", ":exception-type": exception_type, ":content-type": "application/json"}
    return encode_message(headers, json.dumps({"message": message}).encode())


class RequestError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class SessionRequest:
    """A checked ``StartLiveTail`` request (module docstring): groups by name, stream filter."""

    arns: tuple[str, ...]
    names: tuple[str, ...]
    prefixes: tuple[str, ...]

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> SessionRequest:
        arns = tuple(str(a) for a in body.get("logGroupIdentifiers") or [])
        names = tuple(str(n) for n in body.get("logStreamNames") or [])
        prefixes = tuple(str(p) for p in body.get("logStreamNamePrefixes") or [])
        if not 1 <= len(arns) <= 10:
            raise RequestError("InvalidParameterException", "logGroupIdentifiers must hold 1 to 10 log groups")
        for arn in arns:
            if not arn.startswith("arn:") or ":log-group:" not in arn or arn.endswith("*"):
                raise RequestError("InvalidParameterException", f"{arn!r} is not a log group ARN (without a "
                                   "trailing *): StartLiveTail takes log groups by ARN")
        if names and prefixes:
            raise RequestError("InvalidParameterException",
                               "logStreamNames and logStreamNamePrefixes cannot both be given")
        if (names or prefixes) and len(arns) != 1:
            raise RequestError("InvalidParameterException", "logStreamNames and logStreamNamePrefixes need exactly "
                               "one log group in logGroupIdentifiers")
        if len(names) > 100 or len(prefixes) > 100:
            raise RequestError("InvalidParameterException", "at most 100 log stream names or prefixes")
        return cls(arns, names, prefixes)

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(arn.split(":log-group:", 1)[1] for arn in self.arns)

    def matches(self, group: str, stream: str) -> bool:
        if group not in self.groups:
            return False
        if self.names:
            return stream in self.names
        return not self.prefixes or stream.startswith(self.prefixes)


@dataclass
class _Session:
    request: SessionRequest
    pending: list[dict[str, Any]] = field(default_factory=list)


class LiveTailHub:
    """Log events as they are ingested, fanned out to the open sessions (module docstring).

    ``update_seconds``, ``max_events`` and ``session_seconds`` shape the
    sessions; ``sessions`` counts those opened, ``open`` is how many run.
    """

    def __init__(self, *, update_seconds: float = 1.0, max_events: int = 500,
                 session_seconds: float = 3 * 3600.0) -> None:
        self.update_seconds = update_seconds
        self.max_events = max_events
        self.session_seconds = session_seconds
        self.sessions = 0
        self._open: list[_Session] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()

    @property
    def open(self) -> int:
        with self._lock:
            return len(self._open)

    def publish(self, group: str, stream: str, events: Sequence[Mapping[str, Any]]) -> None:
        """``events`` ({timestamp, message}) were just ingested into ``group``/``stream``."""
        ingested = int(time.time() * 1000)
        with self._lock:
            for session in self._open:
                if session.request.matches(group, stream):
                    arn = next(a for a in session.request.arns if a.endswith(f":log-group:{group}"))
                    session.pending.extend({"logStreamName": stream, "logGroupIdentifier": arn,
                                            "message": str(e["message"]), "timestamp": int(e["timestamp"]),
                                            "ingestionTime": ingested} for e in events)

    def close(self) -> None:
        """End every session (the emulator is closing)."""
        self._closed.set()

    def serve(self, request: SessionRequest, write: Callable[[bytes], None]) -> None:
        """Run one session, writing its messages with ``write``, until it times out, the client goes away
        (``write`` raises OSError) or the hub closes."""
        session = _Session(request)
        with self._lock:
            self._open.append(session)
            self.sessions += 1
        started = time.monotonic()
        try:
            write(event_message("initial-response", {}))
            start = {"requestId": str(uuid.uuid4()), "sessionId": str(uuid.uuid4()),
                     "logGroupIdentifiers": list(request.arns)}
            if request.names:
                start["logStreamNames"] = list(request.names)
            if request.prefixes:
                start["logStreamNamePrefixes"] = list(request.prefixes)
            write(event_message("sessionStart", start))
            while not self._closed.wait(self.update_seconds):
                with self._lock:
                    results, session.pending = session.pending, []
                sampled = len(results) > self.max_events
                write(event_message("sessionUpdate", {"sessionMetadata": {"sampled": sampled},
                                                      "sessionResults": results[:self.max_events]}))
                if time.monotonic() - started >= self.session_seconds:
                    write(exception_message("SessionTimeoutException",
                                            f"The session timed out after {self.session_seconds:g} seconds."))
                    return
        except OSError:
            return  # the client went away
        finally:
            with self._lock:
                self._open.remove(session)
