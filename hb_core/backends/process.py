"""Supervised training processes that outlive the controller that started them.

The local backend starts every training job through this module, so that a
controller may die (or be SIGKILLed) and a new one find each job again, follow
its log and learn how it ended. Terms:

- *attempt directory*: one training job's directory; everything below is
  written into it.
- *launcher*: a short-lived ``python process.py supervise DIR CWD -- CMD...``
  started with ``asyncio.create_subprocess_exec(start_new_session=True)``. It
  claims the directory, forks the supervisor, writes ``pid.json`` and exits,
  so the supervisor is never the controller's child (nothing to reap, nothing
  killed when the controller's process objects are garbage-collected).
- *claim*: the exclusive creation (``O_EXCL``) of ``pid.json``. Of two
  launchers of one attempt (a controller cancelled while its launcher was
  starting, and the controller that took over) only the one that claims it
  starts a supervisor; the other reports the winner's record. A controller
  that gives up an attempt with no record claims it too
  (:meth:`Supervised.abandon`), so a late launcher starts nothing.
- *supervisor*: the forked process; it calls ``setsid`` (so it leads a new
  session and process group, away from the controller's terminal and its
  Ctrl-C) and runs the training command in that group with stdout and stderr
  both appended to ``output.log``. It survives SIGTERM (a no-op handler, so
  the command gets the default action) to write ``exit.json`` with the
  command's exit status, then SIGKILLs its own process group, as SageMaker
  tears down the container when the entry point exits: nothing of a job
  outlives it.
- *adoption marker*: ``pid.json`` holds the supervisor's pid, its start time
  in clock ticks since boot (``/proc/<pid>/stat`` field 22) and the boot id. A
  pid only names our supervisor while all three match, so a recycled pid is
  never mistaken for, or signalled as, one of our jobs.
- ``stop.json`` is written by the controller before it signals a job, so the
  reason a job ended survives the controller too.

This file uses the standard library only: the launcher runs it as a script
(``python -I -S``) without importing ``hb_core``. Process probing reads
``/proc`` (Linux); elsewhere it falls back to ``os.kill(pid, 0)``.

Size: about 550 lines in one file on purpose: the launcher runs this file as a
script with ``-I -S`` (no ``hb_core`` on the path), so it cannot import a
sibling module; the script-mode environment it builds is part of that contract.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "COMPLETED",
    "EXIT_FILE",
    "FAILED",
    "LOG_FILE",
    "PID_FILE",
    "STOP_FILE",
    "SUPERVISOR_LOG",
    "LaunchError",
    "Outcome",
    "STOPPED",
    "Supervised",
    "probe",
    "read_json",
    "script_mode",
    "signal_group",
    "spawn",
    "tail",
    "write_json",
]

PID_FILE = "pid.json"
EXIT_FILE = "exit.json"
STOP_FILE = "stop.json"
LOG_FILE = "output.log"
SUPERVISOR_LOG = "supervisor.log"

RUNNING, ZOMBIE, GONE = "running", "zombie", "gone"  # what probe() finds
COMPLETED, FAILED, STOPPED = "Completed", "Failed", "Stopped"  # how a job ended (Outcome.status)
TAIL_LINES = 20
MAX_LINE = 1 << 16  # a line longer than this is cut, and its pieces read as lines
EXIT_CANNOT_START = 127  # the shell's "command not found"
CLAIM_TIMEOUT = 10.0  # seconds a launcher that lost the claim waits for the winner's record


class LaunchError(OSError):
    """The launcher could not start a supervisor (the training command itself never ran)."""


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` atomically: a reader sees the old file, or the whole new one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(dict(data), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_json(path: Path) -> dict[str, Any] | None:
    """The object in ``path``, or None when it is missing or not a JSON object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return None


def _stat(pid: int) -> tuple[str, int]:
    """(state, start ticks) of ``pid`` from ``/proc``; FileNotFoundError when there is no such process."""
    text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
    return fields[0], int(fields[19])  # fields 3 (state) and 22 (starttime), 1-based


def probe(record: Mapping[str, Any]) -> str:
    """``running``, ``zombie`` (exited, not yet reaped: its pid is still reserved) or ``gone``.

    ``record`` is the content of ``pid.json`` (``gone`` for one without a pid: nothing was started).
    """
    if "pid" not in record:
        return GONE
    pid = int(record["pid"])
    if record.get("boot_id") and _boot_id() not in (None, record["boot_id"]):
        return GONE
    try:
        stat = _stat(pid)
    except FileNotFoundError:
        return GONE
    except (OSError, ValueError, IndexError):  # no /proc: the best we can do
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return GONE
        except PermissionError:
            return RUNNING
        return RUNNING
    if record.get("start_ticks") is not None and stat[1] != record["start_ticks"]:
        return GONE
    return ZOMBIE if stat[0] in ("Z", "X") else RUNNING


def signal_group(record: Mapping[str, Any], sig: int) -> bool:
    """Send ``sig`` to the job's process group; False when the supervisor is gone.

    A zombie supervisor still reserves its pid, so its group id cannot have
    been recycled: members left in the group (orphans of a killed supervisor)
    are signalled too.
    """
    if probe(record) == GONE:
        return False
    try:
        os.killpg(int(record["pid"]), sig)
    except ProcessLookupError:
        return False
    return True


async def spawn(directory: Path, command: Sequence[str], cwd: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """Start ``command`` in ``cwd`` under a detached supervisor; return the ``pid.json`` record.

    ``env`` is the command's whole environment. Raises :class:`LaunchError`
    when no supervisor could be started.
    """
    with (directory / SUPERVISOR_LOG).open("ab") as log:
        launcher = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-S", __file__, "supervise", str(directory), str(cwd), "--", *command,
            env=dict(env), stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        )
        returncode = await launcher.wait()
    record = read_json(directory / PID_FILE)
    if returncode != 0 or record is None:
        detail = (directory / SUPERVISOR_LOG).read_text(encoding="utf-8", errors="replace")[-2000:]
        raise LaunchError(f"the launcher exited with status {returncode} and no {PID_FILE}: {detail.strip()}")
    return record


@dataclass(frozen=True)
class Outcome:
    """How a job ended.

    ``status`` is Completed, Failed or Stopped; ``kind`` is the kind of the
    stop request that ended a Stopped job; ``description`` is the stop reason,
    or for a failure its exit status, SageMaker's ``output/failure`` file and
    the last log lines; ``billable_seconds`` is the job's wall time.
    """

    status: str
    billable_seconds: float
    kind: str | None = None
    description: str = ""


@dataclass
class Supervised:
    """The process side of one training job: its markers in ``directory``, its log, its signals.

    ``record`` is the content of ``pid.json``. Built by :func:`spawn`'s caller
    from the record, or from the directory alone by :meth:`find` after a restart.
    """

    directory: Path
    record: Mapping[str, Any]
    offset: int = 0
    partial: bytes = b""
    term_sent: float | None = None  # time.monotonic() of our first SIGTERM
    killed: bool = False

    @classmethod
    def find(cls, directory: Path) -> Supervised | None:
        """The job started in ``directory`` before, or None when none was (yet).

        None also for a directory left by a launch that crashed before its
        supervisor started, or whose launcher is still starting: launching
        into it again is safe, as the ``pid.json`` claim admits one supervisor.
        """
        record = read_json(directory / PID_FILE)
        if record is None:
            ended = read_json(directory / EXIT_FILE)
            if ended is None:
                return None
            record = {"start_time": ended.get("start_time")}
        return cls(directory, record)

    @classmethod
    def abandon(cls, directory: Path, reason: str) -> Supervised | None:
        """Make sure no supervisor ever starts in ``directory``, unless one already has.

        For an attempt directory without a record (a launch that crashed, or
        whose launcher is still starting) whose job is to be given up: claims
        ``pid.json`` with a record holding no pid. Returns None when that
        claim won; else the job a launcher did start, to be stopped.
        """
        try:
            fd = os.open(directory / PID_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            record = _await_record(directory) or {}
            return cls(directory, record) if "pid" in record else None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"abandoned": reason, "start_time": time.time()}, handle)
        return None

    @property
    def start_time(self) -> float:
        return float(self.record.get("start_time") or time.time())

    def finished(self) -> bool:
        """Whether the job has ended: its supervisor has (the job's group was SIGKILLed as it did).

        Check it *before* the last :meth:`read_lines`, so no line is missed.
        """
        status = probe(self.record)
        if status == ZOMBIE:  # the supervisor has ended: end whatever it left in its group
            signal_group(self.record, signal.SIGKILL)
        return status != RUNNING

    def read_lines(self, *, final: bool = False) -> list[str]:
        """The log lines written since the last call; ``final`` also returns an unterminated last line."""
        try:
            with (self.directory / LOG_FILE).open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            data = b""
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        if final or len(self.partial) > MAX_LINE:
            lines.append(self.partial)
            self.partial = b""
        return [line.decode("utf-8", errors="replace").rstrip("\r") for line in lines if line]

    def request_stop(self, kind: str, reason: str) -> None:
        """Record why (``stop.json``, the first request wins) and send SIGTERM to the group."""
        if (self.directory / EXIT_FILE).exists():
            return  # it ended by itself: its outcome is its own
        if not (self.directory / STOP_FILE).exists():
            write_json(self.directory / STOP_FILE, {"kind": kind, "reason": reason, "time": time.time()})
        signal_group(self.record, signal.SIGTERM)
        if self.term_sent is None:  # SIGKILL follows after the grace period, whether SIGTERM reached it or not
            self.term_sent = time.monotonic()

    def kill_if_overdue(self, grace_seconds: float) -> bool:
        """SIGKILL the group once ``grace_seconds`` have passed since the SIGTERM; True when sent now."""
        if self.term_sent is None or self.killed or time.monotonic() - self.term_sent < grace_seconds:
            return False
        signal_group(self.record, signal.SIGKILL)
        self.killed = True
        return True

    def outcome(self) -> Outcome:
        """How the job ended (call once :meth:`finished` is True).

        Stopped when a stop was requested before it ended; else Completed on
        exit status 0; else Failed (also when the supervisor died without
        recording a status).
        """
        if "abandoned" in self.record:  # given up before any supervisor started
            return Outcome(STOPPED, 0.0, kind="stop", description=str(self.record["abandoned"]))
        exit_record = read_json(self.directory / EXIT_FILE)
        stop = read_json(self.directory / STOP_FILE)
        end = float(exit_record["end_time"]) if exit_record and "end_time" in exit_record else time.time()
        billable = max(0.0, end - self.start_time)
        if stop is not None and (exit_record is None or end >= float(stop.get("time", 0.0))):
            return Outcome(STOPPED, billable, kind=str(stop.get("kind")), description=str(stop.get("reason", "")))
        if exit_record is not None and exit_record.get("returncode") == 0:
            return Outcome(COMPLETED, billable)
        if exit_record is None:
            what = f"its supervisor (pid {self.record.get('pid')}) ended without recording an exit status"
        else:
            what = _describe_exit(exit_record)
        failure = self.directory / "output" / "failure"  # SageMaker's FailureReason file
        if failure.is_file():
            what += f"; failure: {failure.read_text(encoding='utf-8', errors='replace')[:1000].strip()}"
        log = self.directory / LOG_FILE
        return Outcome(FAILED, billable, description=f"{what}; last lines of {log}:\n{tail(log)}")


def _describe_exit(record: Mapping[str, Any]) -> str:
    if record.get("error"):
        return f"the entry point could not start: {record['error']}"
    code = int(record.get("returncode", 1))
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of a log (each cut at 500 characters)."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(line[:500] for line in text.splitlines()[-lines:])


# ---------------------------------------------------------------- script mode

SAGEMAKER_PREFIX = "sagemaker_"  # the training toolkit keeps these hyperparameters from the script


def script_mode(
    *,
    job_name: str,
    directory: Path,
    hyperparameters: Mapping[str, str],
    program: Path,
    user_entry_point: str,
    submit_dir: Path,
    channels: Mapping[str, Path],
    python: str,
) -> tuple[list[str], dict[str, str]]:
    """The command and the ``SM_*`` environment of one job, as the SageMaker training toolkit builds them.

    ``directory`` is the attempt directory; the checkpoint directory is its
    sibling ``checkpoints``, shared by the trial's attempts. Every
    ``sagemaker_*`` hyperparameter is left out; the others are JSON-decoded
    (``"3"`` -> 3, ``"relu"`` stays a string) and passed as sorted
    ``--name value`` arguments, ``SM_HPS`` and ``SM_HP_<NAME>``.
    """
    user = {k: _decode(v) for k, v in sorted(hyperparameters.items()) if not k.startswith(SAGEMAKER_PREFIX)}
    args = _cmd_args(user)
    if program.suffix == ".py":
        command = [python, str(program), *args]
    elif program.suffix == ".sh":
        command = ["/bin/sh", str(program), *args]
    else:
        command = [str(program), *args]
    model_dir, output_dir, checkpoint_dir = directory / "model", directory / "output", directory.parent / "checkpoints"
    channel_dirs = {name: str(path) for name, path in channels.items()}
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    training_env = {
        "job_name": job_name,
        "hyperparameters": user,
        "channel_input_dirs": channel_dirs,
        "model_dir": str(model_dir),
        "output_dir": str(output_dir),
        "output_data_dir": str(output_dir / "data"),
        "checkpoint_dir": str(checkpoint_dir),
        "current_host": "algo-1",
        "hosts": ["algo-1"],
        "num_cpus": cpus,
        "num_gpus": 0,
        "module_dir": str(submit_dir),
        "module_name": program.stem,
        "user_entry_point": user_entry_point,
        "user_args": args,
    }
    env = {
        "SM_MODEL_DIR": str(model_dir),
        "SM_CHECKPOINT_DIR": str(checkpoint_dir),
        "SM_OUTPUT_DIR": str(output_dir),
        "SM_OUTPUT_DATA_DIR": str(output_dir / "data"),
        "SM_CHANNELS": json.dumps(sorted(channel_dirs)),
        **{f"SM_CHANNEL_{name.upper()}": path for name, path in channel_dirs.items()},
        "SM_HPS": json.dumps(user),
        **{f"SM_HP_{key.upper()}": _env_text(value) for key, value in user.items()},
        "SM_CURRENT_HOST": "algo-1",
        "SM_HOSTS": json.dumps(["algo-1"]),
        "SM_NUM_CPUS": str(cpus),
        "SM_NUM_GPUS": "0",
        "SM_MODULE_DIR": str(submit_dir),
        "SM_MODULE_NAME": program.stem,
        "SM_USER_ENTRY_POINT": user_entry_point,
        "SM_USER_ARGS": json.dumps(args),
        "SM_TRAINING_ENV": json.dumps(training_env),
        "TRAINING_JOB_NAME": job_name,
    }
    return command, env


def _decode(text: str) -> Any:
    """A hyperparameter as the toolkit decodes it: JSON when it parses, else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _cmd_args(hyperparameters: Mapping[str, Any]) -> list[str]:
    """``--name value`` pairs in sorted order (``-n`` for one-letter names), as the toolkit writes them."""
    args: list[str] = []
    for key in sorted(hyperparameters):
        value = hyperparameters[key]
        args.append(f"--{key}" if len(key) > 1 else f"-{key}")
        args.append(",".join(f"{k}={v}" for k, v in sorted(value.items())) if isinstance(value, dict) else str(value))
    return args


def _env_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))


# ---------------------------------------------------------------- the launcher and the supervisor


def _launch(directory: Path, cwd: Path, command: list[str]) -> int:
    """Claim the attempt directory, fork the supervisor, record it in the claim.

    The claim is the exclusive creation of ``pid.json``: of two launchers of
    one attempt (a controller cancelled while its launcher was starting, and
    the controller that took over), exactly one starts a supervisor; the
    other waits for the winner's record and exits 0, so both callers adopt
    the same job.
    """
    try:
        fd = os.open(directory / PID_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:  # another launcher won: the job is launched
        if _await_record(directory) is not None:
            return 0
        print(f"{directory / PID_FILE} was claimed by a launcher that never recorded its supervisor; "
              "remove the attempt directory to launch it again", file=sys.stderr)
        return 1
    ready_read, ready_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the supervisor
        code = 70
        try:
            os.close(fd)
            os.close(ready_read)
            os.setsid()  # its own group before anyone can signal it as one
            received: list[int] = []
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, lambda signum, _frame: received.append(signum))  # survive to record the exit
            os.write(ready_write, b"1")
            os.close(ready_write)
            code = _supervise(directory, cwd, command, received)
        except BaseException:  # noqa: BLE001 - the supervisor reports everything, then ends
            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(ready_write)
    os.read(ready_read, 1)  # pid.json names the supervisor only once it leads its group and survives SIGTERM
    os.close(ready_read)
    ticks = None
    with contextlib.suppress(OSError, ValueError, IndexError):  # no /proc: pid.json holds the pid alone
        ticks = _stat(pid)[1]
    record = {"pid": pid, "start_ticks": ticks, "boot_id": _boot_id(), "start_time": time.time()}
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(record, handle)
        handle.flush()
        os.fsync(handle.fileno())
    return 0


def _await_record(directory: Path, timeout: float = CLAIM_TIMEOUT) -> dict[str, Any] | None:
    """The record the winner of the ``pid.json`` claim writes; None if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = read_json(directory / PID_FILE)
        if record is not None:
            return record
        time.sleep(0.01)
    return None


def _supervise(directory: Path, cwd: Path, command: list[str], received: list[int]) -> int:
    """Run ``command``, record its exit status in ``exit.json``, end the group; ``received`` lists signals."""
    start = time.time()
    record: dict[str, Any]
    with (directory / LOG_FILE).open("ab", buffering=0) as log:
        if received:  # stopped before the entry point started: do not start it
            record = {"returncode": -received[0]}
        else:
            try:
                child = subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
            except OSError as exc:
                log.write(f"[supervisor] cannot start {command[0]!r}: {exc}\n".encode())
                record = {"returncode": EXIT_CANNOT_START, "error": str(exc)}
            else:
                record = {"returncode": child.wait(), "child_pid": child.pid}
    record.update(start_time=start, end_time=time.time(), signals_received=received)
    write_json(directory / EXIT_FILE, record)
    with contextlib.suppress(OSError):
        os.killpg(0, signal.SIGKILL)  # the whole job ends with its entry point (this process included)
    return 0


def main(argv: Sequence[str]) -> int:
    if len(argv) < 5 or argv[0] != "supervise" or argv[3] != "--":
        print("usage: process.py supervise DIR CWD -- COMMAND...", file=sys.stderr)
        return 2
    return _launch(Path(argv[1]), Path(argv[2]), list(argv[4:]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
