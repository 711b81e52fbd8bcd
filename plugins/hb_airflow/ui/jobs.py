"""Where the dashboard finds tuning jobs: a state root, read safely and cheaply.

A tuning job is a directory ``<state root>/<job name>`` written by
:class:`~hb_core.backends.stores.LocalFileStore`: ``state.json`` and the
append-only ``decisions.jsonl``. The dashboard only ever reads.

Safety: a job name comes from a URL. It must match
:data:`hb_core.naming.JOB_NAME_PATTERN` (letters, digits and inner hyphens,
so no ``.``, ``/``, ``\\``, ``%`` or NUL can get through), and the resolved
directory must be a direct child of the resolved state root (a symlink that
points elsewhere is refused).

Cost: a parsed state is cached per job and reused while ``state.json`` keeps
its (mtime, size); the decision log is paged newest first by reading blocks
from the end of the file, so page 1 of a long log costs one block read.

An S3 state root (``s3://bucket/prefix``, where the SageMaker backend keeps
its state) is read by :class:`~hb_airflow.ui.s3_jobs.S3StateRoot`, which has
the same methods.

Reconciling: a local job left ``Stopping`` (its controller was cancelled or
died mid-abort) is finished on read once every training job of it has ended
(:func:`hb_core.backends.local.settle_local`), so the list and the job page
never show a job running that nothing runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from hb_core.backends.local import settle_local
from hb_core.backends.stores import LocalFileStore
from hb_core.errors import StateError
from hb_core.naming import JOB_NAME_PATTERN
from hb_core.state import Decision, TuningState, TuningStatus

__all__ = ["BadJobName", "DecisionPage", "JobSource", "LoadedJob", "StateRoot", "StateRootUnavailable", "UnknownJob",
           "check_job_name", "stopping"]

log = logging.getLogger(__name__)

#: Tuning-job names are at most 32 characters in SageMaker; a training job (name + "-0007-1") at most 63.
MAX_JOB_NAME = 63
_BLOCK = 64 * 1024


class BadJobName(ValueError):
    """A job name that is not a tuning-job name (it could name a path outside the state root)."""


class UnknownJob(LookupError):
    """No tuning job of that name under the state root."""


class StateRootUnavailable(RuntimeError):
    """The state root could not be read (S3 refused or failed); the message says where and why."""


def check_job_name(name: str) -> str:
    """``name`` when it is a valid tuning-job name, else :class:`BadJobName`."""
    if not (0 < len(name) <= MAX_JOB_NAME) or not JOB_NAME_PATTERN.fullmatch(name):
        raise BadJobName(
            f"`a 1-{MAX_JOB_NAME} character name matching [a-zA-Z0-9](-*[a-zA-Z0-9])*` must hold, "
            f"but got {name[:80]!r}"
        )
    return name


@dataclass(frozen=True)
class LoadedJob:
    """A job's state and when its files last changed (seconds since the epoch).

    ``state`` is None when ``state.json`` could not be read; ``error`` then says why.
    """

    name: str
    state: TuningState | None
    updated_time: float
    error: str | None = None


@dataclass(frozen=True)
class DecisionPage:
    """Decisions newest first: ``decisions[0]`` is the ``offset``-th newest of ``total``."""

    total: int
    offset: int
    limit: int
    decisions: tuple[Decision, ...]


class JobSource:
    """What the dashboard reads: job names, a job's state, a page of its decisions (local or S3)."""

    def names(self) -> list[str]:
        raise NotImplementedError

    def load(self, name: str) -> LoadedJob:
        raise NotImplementedError

    def decisions(self, name: str, *, offset: int = 0, limit: int = 50) -> DecisionPage:
        raise NotImplementedError

    def jobs(self) -> list[LoadedJob]:
        """Every job, newest first (by creation time, then name)."""
        loaded = []
        for name in self.names():
            try:
                loaded.append(self.load(name))
            except UnknownJob:  # removed between the listing and the read
                continue
        return sorted(loaded, key=lambda j: (-(j.state.created_time if j.state else j.updated_time), j.name))


class StateRoot(JobSource):
    """Read-only view of the tuning jobs kept under one local directory."""

    def __init__(self, root: str | os.PathLike[str], *, cache_size: int = 32) -> None:
        self.root = Path(root)
        self._cache: OrderedDict[Path, tuple[tuple[int, int], LoadedJob]] = OrderedDict()
        self._counts: dict[Path, tuple[tuple[int, int], int, int]] = {}
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def job_dir(self, name: str) -> Path:
        """The directory of job ``name``: a valid name, resolving to a direct child of the root."""
        check_job_name(name)
        root = self.root.resolve()
        path = (root / name).resolve()
        if path.parent != root:  # a symlink pointing out of the root
            raise BadJobName(f"job {name!r} resolves outside the state root")
        return path

    def names(self) -> list[str]:
        """Names of the jobs that have a ``state.json``, sorted."""
        try:
            entries = list(os.scandir(self.root))
        except (FileNotFoundError, NotADirectoryError):
            return []
        found = []
        for entry in entries:
            try:
                directory = self.job_dir(entry.name)
            except BadJobName:
                continue
            if (directory / LocalFileStore.STATE).is_file():
                found.append(entry.name)
        return sorted(found)

    def load(self, name: str) -> LoadedJob:
        """Job ``name``'s state (cached while its file is unchanged); :class:`UnknownJob` when absent."""
        path = self.job_dir(name) / LocalFileStore.STATE
        try:
            stat = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise UnknownJob(f"no tuning job {name!r} under the state root") from None
        signature = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            cached = self._cache.get(path)
            if cached and cached[0] == signature and not stopping(cached[1]):  # a stopping one: settle again
                self._cache.move_to_end(path)
                return cached[1]
        loaded = self._read(name, path, stat.st_mtime)
        if stopping(loaded):
            loaded = self._settled(name, path, loaded)
        with self._lock:
            self._cache[path] = (signature, loaded)
            self._cache.move_to_end(path)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return loaded

    def decisions(self, name: str, *, offset: int = 0, limit: int = 50) -> DecisionPage:
        """A page of job ``name``'s decision log, newest first."""
        directory = self.job_dir(name)
        if not (directory / LocalFileStore.STATE).is_file():
            raise UnknownJob(f"no tuning job {name!r} under the state root")
        path = directory / LocalFileStore.DECISIONS
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            return DecisionPage(0, offset, limit, ())
        with handle:
            stat = os.fstat(handle.fileno())
            end, total = self._complete_lines(path, handle, (stat.st_mtime_ns, stat.st_size))
            page: list[Decision] = []
            index = 0
            for line in _lines_backwards(handle, end):
                if not line.strip():
                    continue
                if index >= offset:
                    decision = parse_decision(line)
                    if decision is not None:
                        page.append(decision)
                    if len(page) >= limit:
                        break
                index += 1
        return DecisionPage(total, offset, limit, tuple(page))

    def _complete_lines(self, path: Path, handle: BinaryIO, signature: tuple[int, int]) -> tuple[int, int]:
        """(end of the last complete line, number of complete lines); a line being appended is left out."""
        with self._lock:
            cached = self._counts.get(path)
        if cached and cached[0] == signature:
            return cached[1], cached[2]
        end = _end_of_last_line(handle, signature[1])
        handle.seek(0)
        count, read = 0, 0
        while read < end:
            block = handle.read(min(_BLOCK, end - read))
            if not block:
                break
            read += len(block)
            count += block.count(b"\n")  # the store writes no blank lines
        with self._lock:
            self._counts[path] = (signature, end, count)
        return end, count

    def _settled(self, name: str, path: Path, loaded: LoadedJob) -> LoadedJob:
        """``loaded`` after :func:`settle_local` (re-read when it recorded the job's end)."""
        try:
            state = asyncio.run(settle_local(path.parent))
        except Exception:  # a reader must still show what is stored
            log.warning("tuning job %s: reconciling its stopping state failed", name, exc_info=True)
            return loaded
        if state is None or state.revision == loaded.state.revision:  # type: ignore[union-attr]
            return loaded
        return self._read(name, path, path.stat().st_mtime)

    @staticmethod
    def _read(name: str, path: Path, mtime: float) -> LoadedJob:
        try:
            body = path.read_bytes()
        except OSError as exc:
            log.warning("tuning job %s: cannot read %s: %s", name, path, exc)
            return LoadedJob(name, None, mtime, f"{type(exc).__name__}: {exc}")
        return parse_state(name, str(path), body, mtime)


def stopping(loaded: LoadedJob) -> bool:
    """Whether ``loaded`` is a job left Stopping, which a reader settles (module docstring)."""
    return loaded.state is not None and loaded.state.status is TuningStatus.STOPPING


def parse_state(name: str, where: str, body: bytes, updated_time: float) -> LoadedJob:
    """Job ``name``'s state from the bytes of its ``state.json`` (at ``where``); an unreadable one says why."""
    try:
        state = TuningState.from_dict(json.loads(body))
    except (ValueError, StateError) as exc:
        log.warning("tuning job %s: cannot read %s: %s", name, where, exc)
        return LoadedJob(name, None, updated_time, f"{type(exc).__name__}: {exc}")
    return LoadedJob(name, state, updated_time)


def _end_of_last_line(handle: BinaryIO, size: int) -> int:
    """The offset just past the file's last newline (0 when it has none)."""
    pos = size
    while pos > 0:
        start = max(0, pos - _BLOCK)
        handle.seek(start)
        block = handle.read(pos - start)
        newline = block.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        pos = start
    return 0


def _lines_backwards(handle: BinaryIO, end: int) -> Iterator[bytes]:
    """The lines of ``handle[:end]`` (which ends with a newline), last first."""
    pos, tail = end, b""
    while pos > 0:
        start = max(0, pos - _BLOCK)
        handle.seek(start)
        lines = (handle.read(pos - start) + tail).split(b"\n")
        tail = lines.pop(0)
        pos = start
        yield from reversed(lines)
    if tail:
        yield tail


def parse_decision(line: bytes) -> Decision | None:
    try:
        return Decision.from_dict(json.loads(line))
    except (ValueError, TypeError) as exc:
        log.warning("skipping an unreadable decision line: %s", exc)
        return None
