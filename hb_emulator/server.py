"""The emulator's HTTP front: the SageMaker JSON API, and a fault-injecting proxy to the moto server.

One endpoint serves two things:

- requests with ``X-Amz-Target: SageMaker.<Operation>``
  (``application/x-amz-json-1.1``): ``CreateTrainingJob``,
  ``DescribeTrainingJob``, ``StopTrainingJob``, ``ListTrainingJobs``
  (``NameContains``, ``StatusEquals``, creation/modification time filters,
  ``SortBy``/``SortOrder``, ``MaxResults``/``NextToken``), ``ListTags`` and
  ``AddTags``. Errors are SageMaker's: a duplicate name is ``ResourceInUse``
  ("Training job names must be unique within an AWS account and region, and
  a training job with this name already exists (<arn>)"); an unknown job is
  a ``ValidationException`` "Requested resource not found." (what
  DescribeTrainingJob really answers, although botocore's model lists
  ``ResourceNotFound``); stopping an ended job is a ``ValidationException``
  naming its status.
- ``Logs_20140328.StartLiveTail``: a CloudWatch Logs Live Tail session
  (:mod:`hb_emulator.live_tail`; moto has none), streaming the log events
  the jobs publish and the ``PutLogEvents`` proxied to moto.
- every other request (S3, CloudWatch, CloudWatch Logs, and the SageMaker
  operations it does not emulate, such as the Model Registry's, or tags of a
  resource that is not a training job) is forwarded unchanged to the moto
  server, so one client pointed at the emulator reaches moto through it, as
  one AWS connection reaches every service in production, and every call
  type can be throttled.

Before either, :class:`~hb_emulator.faults.Faults` may answer the call
with a throttling error or a 500 in the caller's protocol (JSON for
SageMaker and Logs, CBOR for CloudWatch, XML for S3), and
``Faults.live_tail_error`` refuses every ``StartLiveTail``. A request whose
client is gone before its whole body arrived (a killed controller mid
``PutObject``) is refused, as S3 refuses it, never forwarded cut short.

Size: about 550 lines, over the project's 400: the SageMaker API, the proxy
and the HTTP handler share one request path; the job lifecycle
(:mod:`hb_emulator.jobs`) and the Live Tail sessions
(:mod:`hb_emulator.live_tail`) live apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import logging
import re
import signal
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import Future
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from hb_core.backends import process as proc
from hb_emulator.faults import Faults, error_response
from hb_emulator.jobs import INTERRUPTED, EmulatedJob, JobRunner, MotoClients, Settings
from hb_emulator.live_tail import CONTENT_TYPE, LiveTailHub, RequestError, SessionRequest

__all__ = ["Emulator"]

log = logging.getLogger(__name__)

NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "expect",
              "proxy-authorization", "proxy-authenticate", "content-length"}
TRAINING_OPERATIONS = ("CreateTrainingJob", "DescribeTrainingJob", "StopTrainingJob", "ListTrainingJobs")
CBOR_PATH = re.compile(r"^/service/[^/]+/operation/([A-Za-z]+)")


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class IncompleteBody(Exception):
    """The client sent less of a request's body than it announced: the request is refused, never forwarded."""


class Emulator:
    """A SageMaker training-job emulator in front of a moto server (module docstring).

    ``with Emulator(moto_endpoint, work_dir) as url:`` starts it and yields its
    endpoint URL (``http://127.0.0.1:<port>``); ``close()`` kills the jobs
    still running. ``moto_endpoint`` must be a loopback URL. Jobs live under
    ``work_dir/jobs/<name>/``; ``tick`` is how often (seconds) running jobs
    are followed; ``stage_seconds`` how long Starting and Downloading last;
    ``run_processes=False`` makes every job a fake that runs nothing;
    ``env`` is added to every job's environment; ``faults`` is what to break;
    ``live_tail_update_seconds`` and ``live_tail_session_seconds`` pace the
    Live Tail sessions (AWS: an update a second, sessions of 3 hours).

    For tests: ``created`` lists the names of the jobs created, in order;
    ``stop_requests`` the names StopTrainingJob was called with (accepted or
    not), in order; ``calls`` counts the calls per operation; ``live_tail`` is
    the Live Tail hub (``sessions`` opened, ``open`` now); :meth:`interrupt`,
    :meth:`complete` and :meth:`fail` end jobs as SageMaker would.
    """

    def __init__(
        self,
        moto_endpoint: str,
        work_dir: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        python: str = sys.executable,
        tick: float = 0.05,
        stage_seconds: float = 0.0,
        run_processes: bool = True,
        stop_grace_seconds: float = 5.0,
        checkpoint_sync_seconds: float = 1.0,
        env: Mapping[str, str] | None = None,
        faults: Faults | None = None,
        live_tail_update_seconds: float = 1.0,
        live_tail_session_seconds: float = 3 * 3600.0,
    ) -> None:
        parsed = urllib.parse.urlsplit(moto_endpoint)
        if parsed.scheme != "http" or parsed.hostname not in LOOPBACK or parsed.port is None:
            raise ValueError(f"`moto_endpoint is an http:// URL on the loopback interface with a port` must hold, "
                             f"but got {moto_endpoint!r}")
        if host not in LOOPBACK:
            raise ValueError(f"`host is a loopback address` must hold, but got {host!r}")
        self.moto_endpoint = moto_endpoint.rstrip("/")
        self._moto = (parsed.hostname, parsed.port)
        self.work_dir = Path(work_dir).resolve()
        self.host, self.port = host, port
        self.region, self.account_id = region, account_id
        self.faults = faults or Faults()
        self.settings = Settings(python, tick, stage_seconds, run_processes, stop_grace_seconds,
                                 checkpoint_sync_seconds, dict(env or {}))
        self.created: list[str] = []
        self.stop_requests: list[str] = []
        self.calls: Counter[str] = Counter()
        self._jobs: dict[str, EmulatedJob] = {}
        self._lock = threading.Lock()
        self.live_tail = LiveTailHub(update_seconds=live_tail_update_seconds, session_seconds=live_tail_session_seconds)
        self._runner = JobRunner(MotoClients(self.moto_endpoint, region), self.settings, self.faults, self._lock,
                                 self.live_tail)
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[Future[None]] = []

    # ------------------------------------------------------------ running

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> str:
        if self._server is not None:
            return self.endpoint
        (self.work_dir / "jobs").mkdir(parents=True, exist_ok=True)
        self._loop = asyncio.new_event_loop()
        engine = threading.Thread(target=self._loop.run_forever, name="emulator-engine", daemon=True)
        engine.start()
        self._tasks.append(asyncio.run_coroutine_threadsafe(self._flusher(), self._loop))
        handler = type("Handler", (_Handler,), {"emulator": self})
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        server = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="emulator-http",
                                  daemon=True)
        server.start()
        self._threads = [engine, server]
        log.info("SageMaker emulator on %s, moto at %s", self.endpoint, self.moto_endpoint)
        return self.endpoint

    def close(self) -> None:
        """Stop serving, kill every job process still running, stop the engine."""
        if self._server is None:
            return
        self.live_tail.close()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            if job.process is not None and not job.ended:
                proc.signal_group(job.process.record, signal.SIGKILL)
        loop = self._loop
        assert loop is not None
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(_cancel_all(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        for thread in self._threads:
            thread.join(timeout=10)
        loop.close()
        self._server = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    async def _flusher(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self._runner.flush_delayed)
            except Exception:
                log.exception("emulator: publishing delayed metrics failed")
            await asyncio.sleep(self.settings.tick)

    # ------------------------------------------------------------ test knobs

    def job(self, name: str) -> dict[str, Any]:
        """What DescribeTrainingJob would answer (KeyError for an unknown job)."""
        with self._lock:
            return self._jobs[name].describe()

    def job_dir(self, name: str) -> Path:
        return self.work_dir / "jobs" / name

    def interrupt(self, name: str, status: str = "Failed") -> None:
        """A spot interruption: the job's process is killed, the job ends ``status`` / Interrupted."""
        with self._lock:
            job = self._jobs[name]
            if not job.ended and job.stop_kind is None:
                job.stop_kind, job.interrupt_status = INTERRUPTED, status

    def complete(self, name: str) -> None:
        """End a fake job (``run_processes=False``) Completed."""
        with self._lock:
            self._jobs[name].hold_outcome = ("Completed", None)

    def fail(self, name: str, reason: str) -> None:
        """End a fake job Failed with ``reason`` (e.g. ``CapacityError: ...``)."""
        with self._lock:
            self._jobs[name].hold_outcome = ("Failed", reason)

    # ------------------------------------------------------------ requests

    def handle(self, request: _Handler, method: str) -> None:
        try:
            body = request.read_body()
        except IncompleteBody as exc:  # as S3 does: a request cut short is never applied (the client is gone)
            log.warning("emulator: %s %s refused: %s", method, request.path, exc)
            request.close_connection = True
            request.reply(*error_response("s3", "client", "IncompleteBody", str(exc)))
            return
        target = request.headers.get("X-Amz-Target", "")
        if target.startswith("SageMaker."):
            operation = target.split(".", 1)[1]
            self._count(operation)
            fault = self.faults.draw(operation)
            if fault is not None and fault != "damaged":  # a body is only damaged on the way from moto
                request.reply(*error_response("json", fault))
                return
            if not self.emulates(operation, body):
                self._forward(request, method, body)
                return
            try:
                result = self.api(operation, json.loads(body or b"{}"))
            except ApiError as exc:
                request.reply(*error_response("json", "client", exc.code, exc.message))
                return
            except Exception as exc:
                log.exception("emulator: %s failed", operation)
                request.reply(*error_response("json", "5xx", message=repr(exc)))
                return
            request.reply(200, {"Content-Type": "application/x-amz-json-1.1"}, json.dumps(result).encode())
            return
        protocol, operation = _classify(request, method)
        self._count(operation)
        fault = self.faults.draw(operation)
        if fault is not None and fault != "damaged":
            cloudwatch = "GraniteServiceVersion" in target or "GraniteServiceVersion" in request.path
            request.reply(*error_response(protocol, fault, "Throttling" if cloudwatch else None))
            return
        if target.endswith(".StartLiveTail"):
            self._live_tail(request, body)
            return
        status = self._forward(request, method, body, damaged=fault == "damaged")
        if target.endswith(".PutLogEvents") and status == 200:
            sent = json.loads(body or b"{}")
            self.live_tail.publish(str(sent.get("logGroupName")), str(sent.get("logStreamName")),
                                   sent.get("logEvents") or [])

    def _live_tail(self, request: _Handler, body: bytes) -> None:
        """A Live Tail session on this request's connection, until it ends (:mod:`hb_emulator.live_tail`)."""
        if self.faults.live_tail_error:
            code = self.faults.live_tail_error
            request.reply(*error_response("json", "client", code, f"StartLiveTail refused: {code} (injected)"))
            return
        try:
            session = SessionRequest.parse(json.loads(body or b"{}"))
        except RequestError as exc:
            request.reply(*error_response("json", "client", exc.code, exc.message))
            return
        except ValueError as exc:
            request.reply(*error_response("json", "client", "SerializationException", str(exc)))
            return
        request.start_stream({"Content-Type": CONTENT_TYPE})
        self.live_tail.serve(session, request.write_chunk)
        with contextlib.suppress(OSError):
            request.write_chunk(b"")  # the last chunk: the stream is over
        request.close_connection = True

    def _count(self, operation: str) -> None:
        with self._lock:
            self.calls[operation] += 1

    def _forward(self, request: _Handler, method: str, body: bytes, *, damaged: bool = False) -> int:
        """Pass the request to moto and its reply back; ``damaged`` drops a successful reply's body on the way."""
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        if body or method in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        connection = http.client.HTTPConnection(*self._moto, timeout=120)
        try:
            connection.request(method, request.path, body=body or None, headers=headers)
            response = connection.getresponse()
            data = b"" if damaged and response.status == 200 else response.read()
            reply = {k: v for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP}
            length = response.getheader("Content-Length") if method == "HEAD" else None
            request.reply(response.status, reply, data, length=length)
            return response.status
        finally:
            connection.close()

    @staticmethod
    def emulates(operation: str, body: bytes) -> bool:
        """Whether the emulator answers this SageMaker call itself (else moto does): the training-job
        operations, and tags of a training job."""
        if operation in ("ListTags", "AddTags"):
            try:
                arn = str(json.loads(body or b"{}").get("ResourceArn", ""))
            except ValueError:
                return True  # let the emulator's own validation answer
            return ":training-job/" in arn
        return operation in TRAINING_OPERATIONS

    def api(self, operation: str, body: Mapping[str, Any]) -> dict[str, Any]:
        handler = {
            "CreateTrainingJob": self._create,
            "DescribeTrainingJob": self._describe,
            "StopTrainingJob": self._stop,
            "ListTrainingJobs": self._list,
            "ListTags": self._list_tags,
            "AddTags": self._add_tags,
        }.get(operation)
        if handler is None:
            raise ApiError("UnknownOperationException", f"The emulator does not implement {operation}")
        return handler(body)

    def _create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name = str(body.get("TrainingJobName", ""))
        if not NAME.match(name):
            raise ApiError("ValidationException", f"1 validation error detected: Value '{name}' at 'trainingJobName' "
                           "failed to satisfy constraint: Member must satisfy regular expression pattern: "
                           "^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
        _require(body, "AlgorithmSpecification", "RoleArn", "OutputDataConfig", "ResourceConfig", "StoppingCondition")
        algorithm = body["AlgorithmSpecification"]
        if not (algorithm.get("TrainingImage") or algorithm.get("AlgorithmName")):
            raise ApiError("ValidationException", "Either TrainingImage or AlgorithmName must be specified.")
        _require(body["OutputDataConfig"], "S3OutputPath", where="outputDataConfig.")
        _require(body["ResourceConfig"], "InstanceCount", "VolumeSizeInGB", where="resourceConfig.")
        stopping = body["StoppingCondition"]
        if body.get("EnableManagedSpotTraining"):
            wait, runtime = stopping.get("MaxWaitTimeInSeconds"), stopping.get("MaxRuntimeInSeconds", 86400)
            if wait is None or wait < runtime:
                raise ApiError("ValidationException", "Invalid MaxWaitTimeInSeconds. It must be present and be "
                               "greater than or equal to MaxRuntimeInSeconds")
        arn = f"arn:aws:sagemaker:{self.region}:{self.account_id}:training-job/{name.lower()}"
        with self._lock:
            if name in self._jobs:
                raise ApiError("ResourceInUse", "Training job names must be unique within an AWS account and region, "
                               f"and a training job with this name already exists ({arn})")
            job = EmulatedJob(name, arn, json.loads(json.dumps(body)), time.time(), self.job_dir(name),
                              tags=[dict(t) for t in body.get("Tags", [])])
            self._jobs[name] = job
            self.created.append(name)
        assert self._loop is not None
        self._tasks.append(asyncio.run_coroutine_threadsafe(self._runner.run(job), self._loop))
        return {"TrainingJobArn": arn}

    def _find(self, name: str) -> EmulatedJob:
        job = self._jobs.get(name)
        if job is None:
            raise ApiError("ValidationException", "Requested resource not found.")
        return job

    def _describe(self, body: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            return self._find(str(body.get("TrainingJobName"))).describe()

    def _stop(self, body: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.stop_requests.append(str(body.get("TrainingJobName")))
            job = self._find(str(body.get("TrainingJobName")))
            if job.ended:
                raise ApiError("ValidationException", "The request was rejected because the training job is in "
                               f"status {job.status}.")
            if job.stop_kind is None:
                job.stop_kind = "stop"
                job.set_secondary("Stopping", "Stopping")
        return {}

    def _list(self, body: Mapping[str, Any]) -> dict[str, Any]:
        contains = body.get("NameContains")
        status = body.get("StatusEquals")
        bounds = {key: body.get(key) for key in ("CreationTimeAfter", "CreationTimeBefore", "LastModifiedTimeAfter",
                                                 "LastModifiedTimeBefore")}
        with self._lock:
            jobs = [job.summary() for job in self._jobs.values()]
        selected = [
            s for s in jobs
            if (not contains or str(contains).lower() in s["TrainingJobName"].lower())
            and (not status or s["TrainingJobStatus"] == status)
            and (bounds["CreationTimeAfter"] is None or s["CreationTime"] > bounds["CreationTimeAfter"])
            and (bounds["CreationTimeBefore"] is None or s["CreationTime"] < bounds["CreationTimeBefore"])
            and (bounds["LastModifiedTimeAfter"] is None or s["LastModifiedTime"] > bounds["LastModifiedTimeAfter"])
            and (bounds["LastModifiedTimeBefore"] is None or s["LastModifiedTime"] < bounds["LastModifiedTimeBefore"])
        ]
        key = {"Name": "TrainingJobName", "Status": "TrainingJobStatus"}.get(str(body.get("SortBy")), "CreationTime")
        selected.sort(key=lambda s: (s[key], s["TrainingJobName"]), reverse=body.get("SortOrder", "Descending") ==
                      "Descending")
        size = int(body.get("MaxResults") or 10)
        if not 1 <= size <= 100:
            raise ApiError("ValidationException", f"MaxResults must be between 1 and 100, got {size}")
        token = body.get("NextToken")
        try:
            offset = int(str(token).removeprefix("offset-")) if token else 0
        except ValueError:
            raise ApiError("ValidationException", f"Invalid pagination token {token!r}") from None
        page = selected[offset:offset + size]
        result: dict[str, Any] = {"TrainingJobSummaries": page}
        if offset + size < len(selected):
            result["NextToken"] = f"offset-{offset + size}"
        return result

    def _by_arn(self, arn: str) -> EmulatedJob:
        job = next((j for j in self._jobs.values() if j.arn == arn), None)
        if job is None:
            raise ApiError("ValidationException", "Requested resource not found.")
        return job

    def _list_tags(self, body: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"Tags": [dict(t) for t in self._by_arn(str(body.get("ResourceArn"))).tags]}

    def _add_tags(self, body: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            job = self._by_arn(str(body.get("ResourceArn")))
            tags = {t["Key"]: t["Value"] for t in job.tags}
            tags.update({t["Key"]: t["Value"] for t in body.get("Tags", [])})
            job.tags = [{"Key": k, "Value": v} for k, v in tags.items()]
            return {"Tags": [dict(t) for t in job.tags]}


async def _cancel_all() -> None:
    """Cancel the engine's tasks (job lifecycles, the flusher) and wait for them; then its worker threads."""
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_default_executor()


def _require(body: Mapping[str, Any], *keys: str, where: str = "") -> None:
    for key in keys:
        if body.get(key) is None:
            field = where + key[0].lower() + key[1:]
            raise ApiError("ValidationException",
                           f"1 validation error detected: Value null at '{field}' failed to satisfy constraint: "
                           "Member must not be null")


def _classify(request: _Handler, method: str) -> tuple[str, str]:
    """(protocol, operation) of a request for moto: ``json`` (X-Amz-Target), ``cbor`` (RPC v2) or ``s3``."""
    target = request.headers.get("X-Amz-Target")
    if target:
        return "json", target.rsplit(".", 1)[-1]
    path, _, query = request.path.partition("?")
    match = CBOR_PATH.match(path)
    if match:
        return "cbor", match.group(1)
    params = urllib.parse.parse_qs(query, keep_blank_values=True)
    parts = [p for p in path.split("/") if p]
    if method == "GET":
        operation = "ListObjectsV2" if "list-type" in params else "GetObject" if len(parts) > 1 else "ListObjects"
    elif method == "PUT":
        operation = "PutObject" if len(parts) > 1 else "CreateBucket"
    elif method == "HEAD":
        operation = "HeadObject" if len(parts) > 1 else "HeadBucket"
    elif method == "DELETE":
        operation = "DeleteObject" if len(parts) > 1 else "DeleteBucket"
    else:
        operation = "DeleteObjects" if "delete" in params else "PostObject"
    return "s3", operation


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    emulator: Emulator

    def do_POST(self) -> None:
        self.emulator.handle(self, "POST")

    def do_GET(self) -> None:
        self.emulator.handle(self, "GET")

    def do_PUT(self) -> None:
        self.emulator.handle(self, "PUT")

    def do_HEAD(self) -> None:
        self.emulator.handle(self, "HEAD")

    def do_DELETE(self) -> None:
        self.emulator.handle(self, "DELETE")

    def read_body(self) -> bytes:
        """The request's whole body; :class:`IncompleteBody` when the client is gone before sending all of it."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                line = self.rfile.readline()
                if not line.strip():
                    raise IncompleteBody(f"the chunked body ended after {sum(map(len, chunks))} bytes, without its "
                                         "last chunk")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunk = self.rfile.read(size)
                if len(chunk) < size:
                    raise IncompleteBody(f"a chunk of {size} bytes ended after {len(chunk)}")
                chunks.append(chunk)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            raise IncompleteBody(f"Content-Length is {length}, the connection ended after {len(body)} bytes")
        return body

    def reply(self, status: int, headers: Mapping[str, str], body: bytes, *, length: str | None = None) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", length if length is not None else str(len(body)))
        if "x-amzn-requestid" not in {k.lower() for k in headers}:
            self.send_header("x-amzn-RequestId", f"emulator-{time.monotonic_ns()}")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client may be gone (killed)
            self.end_headers()
            if self.command != "HEAD" and body:
                self.wfile.write(body)

    def start_stream(self, headers: Mapping[str, str]) -> None:
        """A 200 whose body follows in HTTP chunks (:meth:`write_chunk`)."""
        self.send_response(200)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-amzn-RequestId", f"emulator-{time.monotonic_ns()}")
        self.end_headers()
        self.wfile.flush()

    def write_chunk(self, data: bytes) -> None:
        """One HTTP chunk (``b""``: the last one); OSError when the client went away."""
        self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("emulator: " + format, *args)
