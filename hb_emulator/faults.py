"""Fault injection for the emulator: throttling and 5xx per operation, and errors in each wire protocol.

An *operation* is named as in the AWS API (``DescribeTrainingJob``,
``GetMetricData``, ``GetLogEvents``; S3 requests as ``PutObject``,
``GetObject``, ``ListObjectsV2``, ...); ``"*"`` stands for every operation
without its own entry. A rate r in [0, 1] fails that share of the calls,
drawn from a seeded generator; ``max_consecutive`` caps the failures in a
row per operation, so a client that retries a few times always gets through
(the point of a test is that it does, and does so correctly).
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["Faults", "error_response"]


@dataclass
class Faults:
    """What to break, and how often. Mutable: a test may change it while jobs run.

    - ``throttle``: operation -> rate of throttling errors (HTTP 400
      ``ThrottlingException``; CloudWatch ``Throttling``; S3 503 ``SlowDown``).
    - ``server_errors``: operation -> rate of HTTP 500 errors.
    - ``damaged_bodies``: operation -> rate of successful replies whose body
      is dropped on the way from moto (sent empty, the headers, S3's checksum
      included, kept), as a transfer cut short: S3 clients see a checksum
      mismatch. Calls the emulator answers itself are never damaged.
    - ``fail_first``: the first this many calls of every operation fault
      whatever the rates (throttle, then 500, alternating), so a test can
      know that each operation it made met a fault, however timing fell.
    - ``duplicate_metrics``: publish every CloudWatch datapoint twice.
    - ``metric_lag_seconds``: publish every CloudWatch datapoint this long
      after its timestamp (late arrival; the log line is not delayed).
    - ``live_tail_error``: answer every ``StartLiveTail`` with this error
      code (HTTP 400), e.g. ``AccessDeniedException`` (a role without
      ``logs:StartLiveTail``) or ``LimitExceededException`` (too many
      sessions); None serves the sessions.
    """

    throttle: dict[str, float] = field(default_factory=dict)
    server_errors: dict[str, float] = field(default_factory=dict)
    damaged_bodies: dict[str, float] = field(default_factory=dict)
    max_consecutive: int = 2
    fail_first: int = 0
    duplicate_metrics: bool = False
    metric_lag_seconds: float = 0.0
    live_tail_error: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._streak: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()

    def draw(self, operation: str) -> str | None:
        """``"throttle"``, ``"5xx"``, ``"damaged"`` or None (no fault) for one call of ``operation``."""
        throttle = self.throttle.get(operation, self.throttle.get("*", 0.0))
        errors = self.server_errors.get(operation, self.server_errors.get("*", 0.0))
        damaged = self.damaged_bodies.get(operation, self.damaged_bodies.get("*", 0.0))
        with self._lock:
            self.calls[operation] += 1
            if self.calls[operation] <= self.fail_first:
                kind = "throttle" if self.calls[operation] % 2 else "5xx"
                self.injected[f"{operation}:{kind}"] += 1
                return kind
            if not throttle and not errors and not damaged:
                return None
            if self._streak[operation] >= self.max_consecutive:
                self._streak[operation] = 0
                return None
            draw = self._rng.random()
            drawn = ("throttle" if draw < throttle else "5xx" if draw < throttle + errors
                     else "damaged" if draw < throttle + errors + damaged else None)
            if drawn is None:
                self._streak[operation] = 0
                return None
            self._streak[operation] += 1
            self.injected[f"{operation}:{drawn}"] += 1
            return drawn


def error_response(protocol: str, kind: str, code: str | None = None, message: str = "") -> tuple[int, dict[str, str],
                                                                                                    bytes]:
    """(status, headers, body) of an error in ``protocol`` (``json``, ``cbor``, ``s3``).

    ``kind`` is ``throttle`` (``code`` overrides the protocol's usual throttling code), ``5xx``, or
    ``client`` (then ``code`` and a 400).
    """
    if kind == "throttle":
        status = 503 if protocol == "s3" else 400
        code = code or {"s3": "SlowDown", "cbor": "Throttling"}.get(protocol, "ThrottlingException")
        message = message or "Rate exceeded"
    elif kind == "5xx":
        status, code, message = 500, "InternalError" if protocol == "s3" else "InternalFailure", message or "injected"
    else:
        status = 400
    assert code is not None
    if protocol == "s3":
        body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>"
                f"<Message>{message}</Message></Error>").encode()
        return status, {"Content-Type": "application/xml"}, body
    if protocol == "cbor":
        return status, {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"}, _cbor_map(
            {"__type": code, "message": message})
    body = json.dumps({"__type": code, "message": message}).encode()
    return status, {"Content-Type": "application/x-amz-json-1.1"}, body


def _cbor_map(entries: dict[str, str]) -> bytes:
    """A CBOR map of text strings (RFC 8949), enough for an error body."""
    out = bytearray(_cbor_head(5, len(entries)))
    for key, value in entries.items():
        for text in (key, value):
            data = text.encode()
            out += _cbor_head(3, len(data)) + data
    return bytes(out)


def _cbor_head(major: int, length: int) -> bytes:
    if length < 24:
        return bytes([major << 5 | length])
    if length < 256:
        return bytes([major << 5 | 24, length])
    if length < 65536:
        return bytes([major << 5 | 25]) + length.to_bytes(2, "big")
    return bytes([major << 5 | 26]) + length.to_bytes(4, "big")
