"""State stores: where a tuning job's state is checkpointed after every decision round.

A store keeps the latest :class:`~hb_core.state.TuningState` and an
append-only decision log. ``save`` is a compare-and-set on the state's
``revision``: it fails with :class:`StateConflict` when the stored revision is
not the one this controller last read or wrote, which is how a second
controller running the same job (an HA failover duplicate) finds out and backs
off instead of doubling jobs. The protocol: :class:`hb_core.protocols.StateStore`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from hb_core.errors import HyperbandError, StateError
from hb_core.state import Decision, TuningState

__all__ = ["LocalFileStore", "MemoryStore", "StateConflict"]


class StateConflict(HyperbandError):
    """Another controller saved this tuning job's state since we last read it."""


class MemoryStore:
    """Keeps the state object in memory (simulations); ``serialize=True`` round-trips it through JSON."""

    def __init__(self, *, serialize: bool = False) -> None:
        self.serialize = serialize
        self._state: TuningState | dict[str, Any] | None = None
        self.decisions: list[Decision] = []
        self.saves = 0

    async def load(self) -> TuningState | None:
        if isinstance(self._state, dict):
            return TuningState.from_dict(self._state)
        return self._state

    async def save(self, state: TuningState, expected_revision: int | None) -> None:
        current = await self.load()
        if current is not None and current.revision != expected_revision:
            raise StateConflict(f"state revision is {current.revision}, expected {expected_revision}")
        self._state = json.loads(json.dumps(state.to_dict())) if self.serialize else state
        self.saves += 1

    async def append_decisions(self, decisions: Sequence[Decision]) -> None:
        self.decisions.extend(decisions)


class LocalFileStore:
    """``state.json`` written atomically (temp file, fsync, rename) and ``decisions.jsonl`` appended.

    A lock file serialises the compare-and-set between processes on one machine.
    """

    STATE = "state.json"
    DECISIONS = "decisions.jsonl"

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    @property
    def state_path(self) -> Path:
        return self.directory / self.STATE

    async def load(self) -> TuningState | None:
        return await asyncio.to_thread(self._load)

    async def save(self, state: TuningState, expected_revision: int | None) -> None:
        await asyncio.to_thread(self._save, state, expected_revision)

    async def append_decisions(self, decisions: Sequence[Decision]) -> None:
        if decisions:
            await asyncio.to_thread(self._append, decisions)

    def read_decisions(self) -> list[Decision]:
        path = self.directory / self.DECISIONS
        if not path.exists():
            return []
        with path.open(encoding="utf-8") as handle:
            return [Decision.from_dict(json.loads(line)) for line in handle if line.strip()]

    def _load(self) -> TuningState | None:
        try:
            text = self.state_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            return TuningState.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise StateError(f"{self.state_path} is not valid JSON: {exc}") from exc
        except StateError as exc:
            raise StateError(f"{self.state_path}: {exc}") from exc

    def _save(self, state: TuningState, expected_revision: int | None) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._locked():
            current = self._load()
            if current is not None and current.revision != expected_revision:
                raise StateConflict(
                    f"{self.state_path} is at revision {current.revision}, expected {expected_revision}: "
                    "another controller is running this tuning job"
                )
            payload = json.dumps(state.to_dict(), separators=(",", ":"))
            fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".tmp", dir=self.directory)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(payload)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, self.state_path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise

    def _append(self, decisions: Sequence[Decision]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        lines = "".join(json.dumps(d.to_dict(), separators=(",", ":")) + "\n" for d in decisions)
        with (self.directory / self.DECISIONS).open("a", encoding="utf-8") as handle:
            handle.write(lines)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.directory / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
