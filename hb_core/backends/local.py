"""The local backend: every trial attempt is a process on this machine, in SageMaker script mode.

A user with no AWS account tunes a real model with the same training script
and ``TrainingJobDefinition`` they will later run on SageMaker. Terms:

- *training job*: one attempt of one trial. Its name is derived from (tuning
  job, trial id, attempt) (:meth:`LocalBackend.training_job_name`) and its
  *attempt directory* is ``JOB_DIR/trials/<trial id>/<attempt>/``, holding
  ``job.json`` (name, hyperparameters, command, start time), ``output.log``
  (stdout and stderr interleaved, raw), ``model/`` (``SM_MODEL_DIR``),
  ``output/`` (``SM_OUTPUT_DIR``; ``output/data`` is ``SM_OUTPUT_DATA_DIR``)
  and the supervisor's markers (``hb_core.backends.process``).
  ``JOB_DIR/trials/<trial id>/checkpoints/`` is ``SM_CHECKPOINT_DIR``, shared
  by the trial's attempts so that a resumed attempt continues from it.
- *script mode*: what the SageMaker training toolkit gives the entry point.
  The hyperparameters (static ones, the trial's, and the resource
  hyperparameter, the first of ``epochs``, ``numepochs``, ``n-epochs``,
  ``n_epochs``, ``num_epochs`` among the static ones, else ``epochs``, set to
  the attempt's budget) minus every ``sagemaker_*`` key, JSON-decoded as the
  toolkit decodes them, arrive as ``--name value`` arguments (sorted), in
  ``SM_HPS`` and as ``SM_HP_<NAME>``; also ``SM_CHANNEL_<NAME>`` for every
  ``InputDataConfig`` channel whose ``S3Uri`` is a local path or ``file://``
  URI (other channels are skipped with a warning), ``SM_CHANNELS``,
  ``SM_CURRENT_HOST=algo-1``, ``SM_HOSTS``, ``SM_NUM_CPUS``, ``SM_NUM_GPUS=0`` (with
  ``gpus_per_trial``: the job's own devices in ``CUDA_VISIBLE_DEVICES`` and
  their count, :mod:`hb_core.backends.devices`),
  ``SM_TRAINING_ENV``, ``TRAINING_JOB_NAME``, the definition's
  ``Environment``, and ``PYTHONUNBUFFERED=1`` as in SageMaker's framework
  images. ``sagemaker_program`` runs from ``sagemaker_submit_directory`` (a
  local directory, relative to ``base_dir``) as its working directory: a
  ``.py`` with ``python``, a ``.sh`` with ``/bin/sh``, anything else directly.
- *metrics*: each ``MetricDefinitions`` regex is applied to every log line
  (group 1 is the value). Each objective line is one ``MetricReported`` with
  ``seq = from_resource + n`` (n counts the attempt's objective lines;
  ``from_resource`` is 0 for a Launch). With ``ResourceMetricName``, the
  latest value of that metric seen on or before the objective line is the
  point's explicit ``resource``. The other metrics' latest values per trial
  are kept for the summary (:meth:`LocalBackend.metrics`).
- *ending*: exit status 0 is ``TrialCompleted``; any other is ``TrialFailed``
  with the status, SageMaker's ``output/failure`` file if the script wrote
  one, and the last 20 log lines. A stop sends SIGTERM to the job's process
  group and SIGKILL after ``stop_grace_seconds``, then reports
  ``TrialStopped``. ``StoppingCondition.MaxRuntimeInSeconds`` stops the job
  the same way but reports ``TrialFailed`` with a reason starting
  ``MaxRuntimeExceeded`` and ``retriable=False`` (SageMaker reports such a
  job as Stopped with SecondaryStatus MaxRuntimeExceeded; for the tuner it is
  a configuration that cannot finish within its limit, not a decision of
  ours, and must not count as a clean stop). Every terminal event carries the
  attempt's wall time as ``billable_seconds``.
- *rung barrier* (``RungBarrierTimeoutSeconds``; :mod:`hb_core.barrier`): a
  job launched with ``rung_levels`` gets ``HB_RUNG_BARRIER`` naming the
  trial's verdict directory ``JOB_DIR/trials/<trial id>/verdicts/``;
  :meth:`LocalBackend.verdict` writes ``<level>.json`` there and a stop
  writes ``stop.json`` (then signals the job as always), atomically.
- *events*: the monitor reads the running jobs' logs every ``tail_interval``
  and wakes a waiting runner (:meth:`LocalBackend.wait_for_event`) when it
  has queued events, so rounds follow the trials' lines.

Jobs outlive the controller: :meth:`LocalBackend.close` stops following them
but never kills them, so a controller that dies or is restarted finds them
again (:meth:`LocalBackend.reconcile`). :meth:`LocalBackend.stop_all` kills
every running job (Ctrl-C, ``on_kill``). Log files are read on the event
loop in small increments (local disk). Timestamps come from the injected
clock; runtime limits and billable seconds use the wall clock.

Size: about 700 lines, one class and the script-mode inputs it resolves
(channels, entry point, environment). Every method reads or writes the same
table of followed jobs (``_Job``), which a split would have to expose; the
process supervision itself is already its own module (``process``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from hb_core import barrier, naming
from hb_core.backends import devices
from hb_core.backends import process as proc
from hb_core.backends.clock import RealClock, wait_event
from hb_core.config import TuningConfig, resource_hyperparameter
from hb_core.errors import BackendError, ConfigError
from hb_core.events import (
    Event,
    Launch,
    MetricReported,
    Resume,
    RungVerdict,
    TrialCompleted,
    TrialFailed,
    TrialStarted,
    TrialStopped,
)
from hb_core.protocols import Clock
from hb_core.state import TrialStatus, TuningState

__all__ = ["LocalBackend", "attempt_dir", "model_dir", "settle_local"]

log = logging.getLogger(__name__)

DEFINITION = "TrainingJobDefinition"
STATIC = f"{DEFINITION}.StaticHyperParameters"
TRIAL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
CHANNEL_NAME = re.compile(r"[A-Za-z0-9.\-_]{1,64}")
JOB_FILE = "job.json"
STOP, MAX_RUNTIME = "stop", "MaxRuntimeExceeded"


@dataclass
class _Job:
    """One training job the backend follows: its process and what its log said so far."""

    trial_id: str
    attempt: int
    name: str
    from_resource: int
    process: proc.Supervised
    orphan: bool = False  # running, but its trial is not active in the tuning state: stopped, never reported
    ordinal: int = 0  # objective lines read
    resource: int | None = None  # latest value of ResourceMetricName
    ended: bool = False


class LocalBackend:
    """Runs trials as supervised local processes (module docstring).

    ``job_dir`` holds the trials (and, in ``hb-tune run``, the state store);
    ``job_name`` is the tuning job's name; ``base_dir`` is the directory that
    relative ``sagemaker_submit_directory`` and channel paths resolve against
    (default: the working directory); ``python`` runs ``.py`` entry points;
    ``env`` is added to every job's environment; ``tail_interval`` is how
    often (seconds) running jobs' logs and limits are checked;
    ``gpus_per_trial`` gives each running job that many GPUs of its own
    through ``CUDA_VISIBLE_DEVICES``, from ``gpu_devices`` or the devices
    detected (:mod:`hb_core.backends.devices`; None: jobs inherit the
    environment's GPUs).
    """

    def __init__(
        self,
        config: TuningConfig,
        job_dir: str | os.PathLike[str],
        *,
        job_name: str,
        base_dir: str | os.PathLike[str] | None = None,
        clock: Clock | None = None,
        stop_grace_seconds: float = 10.0,
        python: str = sys.executable,
        env: Mapping[str, str] | None = None,
        tail_interval: float = 0.2,
        gpus_per_trial: int | None = None,
        gpu_devices: list[str] | None = None,
    ) -> None:
        definition = config.training_job_definition
        if definition is None:
            rule = "`TrainingJobDefinition is given (the local backend runs its entry point)` must hold"
            raise ConfigError(DEFINITION, rule, None)
        resource_metric = config.hyperband.resource_metric_name if config.hyperband is not None else None
        definition.require_local_fields(config.objective.metric_name, resource_metric=resource_metric)
        naming.training_job_name(job_name, "0000", 1)  # a ConfigError now rather than at the first launch
        self.config = config
        self.job_dir = Path(job_dir).resolve()
        self.job_name = job_name
        self.base_dir = Path(base_dir if base_dir is not None else os.getcwd()).resolve()
        self.clock: Clock = clock or RealClock()
        self.stop_grace_seconds = stop_grace_seconds
        self.python = python
        self.env = dict(env or {})
        self.tail_interval = tail_interval
        self._objective = config.objective.metric_name
        self._resource_metric = resource_metric
        self._regexes = _compiled(definition.metric_definitions)
        self._static = dict(definition.static_hyperparameters)
        self._resource_key = resource_hyperparameter(self._static)
        self._submit_dir = self._submit_directory()
        self._program = self._entry_point()
        self._channels = self._local_channels(definition.raw.get("InputDataConfig"))
        self._container_env = _environment(definition.raw.get("Environment"))
        self._max_runtime = definition.max_runtime_in_seconds
        self._max_parallel = config.resource_limits.max_parallel_training_jobs
        self._gpus = devices.GpuPool.configure(gpus_per_trial, gpu_devices, self._max_parallel)
        self._jobs: dict[tuple[str, int], _Job] = {}
        self._events: list[Event] = []
        self._ready: asyncio.Event | None = None  # set when events are queued for poll (wait_for_event)
        self._latest: dict[str, dict[str, float]] = {}
        self._monitor: asyncio.Task[None] | None = None
        self._launching: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------ names and places

    def training_job_name(self, trial_id: str, attempt: int) -> str:
        """``<tuning job>-<trial id>-<attempt>`` (:func:`hb_core.naming.training_job_name`), e.g. ``mlp-0007-1``."""
        attempt_dir(self.job_dir, trial_id, attempt)  # validates both
        return naming.training_job_name(self.job_name, trial_id, attempt)

    def attempt_dir(self, trial_id: str, attempt: int) -> Path:
        return attempt_dir(self.job_dir, trial_id, attempt)

    def model_dir(self, trial_id: str, attempt: int) -> Path:
        return model_dir(self.job_dir, trial_id, attempt)

    async def model_uri(self, trial_id: str, attempt: int) -> str:
        """The attempt's ``SM_MODEL_DIR`` (:meth:`model_dir`), as a path string."""
        return str(self.model_dir(trial_id, attempt))

    def price_per_second(self) -> float | None:
        """None: a local process has no price (``MaxCost`` needs one)."""
        return None

    def checkpoint_dir(self, trial_id: str) -> Path:
        return self.attempt_dir(trial_id, 1).parent / "checkpoints"

    def verdict_dir(self, trial_id: str) -> Path:
        """Where the trial's jobs read the rung barrier's verdicts (:mod:`hb_core.barrier`)."""
        return self.attempt_dir(trial_id, 1).parent / "verdicts"

    def metrics(self, trial_id: str) -> dict[str, float]:
        """The latest value of every metric the trial's jobs printed (objective included)."""
        return dict(self._latest.get(trial_id, {}))

    def final_metrics(self, trial_id: str, attempt: int) -> dict[str, float]:
        """The last value of every metric in an attempt's log, as SageMaker's ``FinalMetricDataList``.

        Read from the log file, so it works for any attempt, also one this backend object never followed.
        """
        path = self.attempt_dir(trial_id, attempt) / proc.LOG_FILE
        values: dict[str, float] = {}
        if not path.exists():
            return values
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                for name, regex in self._regexes:
                    match = regex.search(line)
                    if match is not None:
                        with contextlib.suppress(TypeError, ValueError):
                            values[name] = float(match.group(1))
        return values

    def running(self) -> list[tuple[str, int]]:
        """(trial id, attempt) of the jobs not known to have ended."""
        return [key for key, job in self._jobs.items() if not job.ended]

    def hyperparameters(self, action: Launch | Resume) -> dict[str, str]:
        """The strings a job receives (``sagemaker_*`` keys included): static, the trial's, the budget."""
        values = dict(self._static)
        values.update(self.config.space.render(action.hyperparameters))
        if action.budget is not None:
            values[self._resource_key] = str(action.budget)
        return values

    # ------------------------------------------------------------ the protocol

    async def launch(self, action: Launch | Resume) -> None:
        key = (action.trial_id, action.attempt)
        directory = self.attempt_dir(*key)
        if key in self._jobs:
            return
        self._ensure_monitor()
        found = self._find(*key)
        if found is not None:  # launched before (by us or by a controller that died): adopt, never relaunch
            log.info("training job %s: already launched, adopting it", found.name)
            self._jobs[key] = found
            self._queue([TrialStarted(found.trial_id, found.attempt, self.clock.now(), job_name=found.name)])
            return
        running = sum(1 for job in self._jobs.values() if not job.ended and not job.orphan)
        if running >= self._max_parallel:
            raise BackendError(
                f"`running training jobs < MaxParallelTrainingJobs={self._max_parallel}` must hold to launch "
                f"trial {action.trial_id} attempt {action.attempt}, but {running} are running"
            )
        name = self.training_job_name(*key)
        hyperparameters = self.hyperparameters(action)
        from_resource = action.from_resource if isinstance(action, Resume) else 0
        command, sm_env = proc.script_mode(
            job_name=name, directory=directory, hyperparameters=hyperparameters, program=self._program,
            user_entry_point=self._static["sagemaker_program"], submit_dir=self._submit_dir,
            channels=self._channels, python=self.python,
        )
        directory.mkdir(parents=True, exist_ok=True)  # it may be left by a launch that never started
        for sub in (directory / "model", directory / "output" / "data", self.checkpoint_dir(action.trial_id)):
            sub.mkdir(parents=True, exist_ok=True)
        (directory / proc.LOG_FILE).touch()
        gpus = self._gpus.acquire(key)  # before any await: a concurrent launch sees them taken
        sm_env.update(devices.environment(gpus, sm_env))
        spec = {
            "job_name": name,
            "tuning_job_name": self.job_name,
            "trial_id": action.trial_id,
            "attempt": action.attempt,
            "hyperparameters": hyperparameters,
            "budget": action.budget,
            "from_resource": from_resource,
            "command": command,
            "cwd": str(self._submit_dir),
            "start_time": time.time(),
            "max_runtime_in_seconds": self._max_runtime,
            "environment": sm_env,
            "gpu_devices": list(gpus),
        }
        proc.write_json(directory / JOB_FILE, spec)
        env = {"PYTHONUNBUFFERED": "1", **os.environ, **self._container_env, **self.env, **sm_env,
               **self._barrier_env(action)}
        job = _Job(action.trial_id, action.attempt, name, from_resource, proc.Supervised(directory, {}))
        task = asyncio.get_running_loop().create_task(self._start(job, command, env))
        self._launching.add(task)
        task.add_done_callback(self._launching.discard)
        await asyncio.shield(task)  # cancelled or not, a launcher that runs ends with its job registered
        log.info("training job %s: started (pid %s), budget %s", name, job.process.record.get("pid"), action.budget)

    async def _start(self, job: _Job, command: list[str], env: Mapping[str, str]) -> None:
        try:
            job.process.record = await proc.spawn(job.process.directory, command, self._submit_dir, env)
        except proc.LaunchError as exc:
            self._gpus.release((job.trial_id, job.attempt))
            raise BackendError(f"training job {job.name}: {exc}") from exc
        self._jobs[(job.trial_id, job.attempt)] = job
        self._queue([TrialStarted(job.trial_id, job.attempt, self.clock.now(), job_name=job.name)])

    def _barrier_env(self, action: Launch | Resume) -> dict[str, str]:
        timeout = self.config.hyperband.rung_barrier_timeout if self.config.hyperband is not None else None
        if not action.rung_levels or timeout is None:
            return {}
        verdicts = self.verdict_dir(action.trial_id)
        verdicts.mkdir(parents=True, exist_ok=True)
        return barrier.environment(action.rung_levels, timeout, str(verdicts), action.attempt)

    async def verdict(self, action: RungVerdict) -> None:
        """Write the verdict the trial's job waits for at ``action.level``."""
        verdicts = self.verdict_dir(action.trial_id)
        verdicts.mkdir(parents=True, exist_ok=True)
        proc.write_json(verdicts / barrier.verdict_file(action.level), barrier.verdict_body(action.budget, action.level))

    async def stop(self, trial_id: str, attempt: int, reason: str) -> None:
        verdicts = self.verdict_dir(trial_id)
        if verdicts.is_dir():  # a job of this trial may be waiting at a rung: let it end there by itself
            proc.write_json(verdicts / barrier.STOP_FILE, barrier.stop_body(attempt, reason))
        key = (trial_id, attempt)
        job = self._jobs.get(key)
        if job is None:
            job = self._find(trial_id, attempt) or self._abandon(trial_id, attempt, reason)
            if job is None:  # never started, and now never will: it has ended as far as anyone can tell
                self._queue([TrialStopped(trial_id, attempt, self.clock.now(), billable_seconds=0.0)])
                return
            self._jobs[key] = job
            self._ensure_monitor()
        if not job.ended:
            log.info("training job %s: stopping (%s)", job.name, reason)
            job.process.request_stop(STOP, reason)

    async def poll(self) -> list[Event]:
        self._events.extend(self._scan_all())
        events, self._events = self._events, []
        return events

    async def reconcile(self, state: TuningState) -> list[Event]:
        """Adopt the jobs of the trials active in ``state``; return what happened while nobody watched.

        Per active trial (its current attempt): a running job is adopted and
        its log re-read from the start (values the state already holds are
        dropped by ``seq``); an ended one is read and reported. No directory:
        a Pending trial is left to the runner's reissued launch, a Stopping
        one is reported stopped, an InProgress one failed (retriable: its job
        is lost). A directory without a pid file (a launch that crashed, or
        whose launcher is still starting) counts as not launched: the
        reissued launch goes into it, and the launcher's exclusive claim on
        ``pid.json`` lets one supervisor start, never two. A running job under
        ``JOB_DIR/trials`` whose trial is not active is an orphan: stopped.
        """
        self._ensure_monitor()
        events: list[Event] = []
        now = self.clock.now()
        for index in state.active:
            trial = state.trials[index]
            key = (trial.trial_id, trial.attempt)
            if key in self._jobs:
                continue
            job = self._find(*key)
            if job is None and trial.status is TrialStatus.STOPPING:
                job = self._abandon(*key, trial.stop_reason or "stop requested")
            if job is None:
                if trial.status is TrialStatus.STOPPING:
                    events.append(TrialStopped(trial.trial_id, trial.attempt, now, billable_seconds=0.0))
                elif trial.status is TrialStatus.IN_PROGRESS:
                    reason = f"training job {self.training_job_name(*key)} is lost: its directory is gone"
                    events.append(TrialFailed(trial.trial_id, trial.attempt, now, reason, retriable=True))
                continue
            self._jobs[key] = job
            log.info("training job %s: reattached", job.name)
            events.append(TrialStarted(job.trial_id, job.attempt, now, job_name=job.name))
            seen = len(trial.points)
            events.extend(e for e in self._scan(job) if not (isinstance(e, MetricReported) and (e.seq or 0) <= seen))
        self._stop_orphans()
        return events

    def next_event_time(self) -> float | None:
        return None

    async def wait_for_event(self, timeout: float) -> None:
        """Return once events are queued for :meth:`poll` (a log line, a start, an end), or after ``timeout`` s.

        The monitor reads the running jobs' logs every ``tail_interval``, so a
        line is seen within about that long after it is written.
        """
        if self._events:
            return
        if self._ready is None:
            self._ready = asyncio.Event()
        self._ready.clear()
        await wait_event(self._ready, timeout)

    def _queue(self, events: list[Event]) -> None:
        self._events.extend(events)
        if events and self._ready is not None:
            self._ready.set()

    async def close(self) -> None:
        """Stop following the jobs. They keep running: a new controller reattaches to them."""
        await asyncio.gather(*self._launching, return_exceptions=True)
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
            self._monitor = None

    async def stop_all(self, reason: str) -> None:
        """Stop every running job and wait (bounded) until each has ended.

        Waits at most ``stop_grace_seconds`` plus 5 s (jobs still alive then
        have been sent SIGKILL). The jobs' events stay queued for the next
        :meth:`poll`, so a controller that goes on sees how they ended.
        """
        await asyncio.gather(*self._launching, return_exceptions=True)  # a launch cancelled mid-way included
        live = [job for job in self._jobs.values() if not job.ended]
        for job in live:
            log.info("training job %s: stopping (%s)", job.name, reason)
            job.process.request_stop(STOP, reason)
        deadline = time.monotonic() + self.stop_grace_seconds + 5.0
        while any(not job.ended for job in live) and time.monotonic() < deadline:
            self._queue(self._scan_all())
            if any(not job.ended for job in live):
                await asyncio.sleep(0.05)
        for job in live:
            if not job.ended:
                log.warning("training job %s: still running after SIGKILL", job.name)

    # ------------------------------------------------------------ following jobs

    def _ensure_monitor(self) -> None:
        if self._monitor is None or self._monitor.done():
            self._monitor = asyncio.get_running_loop().create_task(self._follow(), name="local-backend-monitor")

    async def _follow(self) -> None:
        while True:
            try:
                self._queue(self._scan_all())
            except Exception:  # a bug here must not silently stop every job from being followed
                log.exception("local backend: scanning the training jobs failed")
            await asyncio.sleep(self.tail_interval)

    def _scan_all(self) -> list[Event]:
        events: list[Event] = []
        for job in list(self._jobs.values()):
            events.extend(self._scan(job))
        return events

    def _scan(self, job: _Job) -> list[Event]:
        """New metric events of ``job``, then its terminal event once it has ended; enforce its limits."""
        if job.ended:
            return []
        finished = job.process.finished()  # before reading, so that no line written before the end is missed
        lines = [] if job.orphan else job.process.read_lines(final=finished)
        events: list[Event] = [e for e in map(partial(self._parse, job), lines) if e is not None]
        if finished:
            job.ended = True
            self._gpus.release((job.trial_id, job.attempt))
            if not job.orphan:
                events.append(self._terminal(job))
            return events
        runtime = time.time() - job.process.start_time
        if self._max_runtime is not None and job.process.term_sent is None and runtime >= self._max_runtime:
            log.info("training job %s: MaxRuntimeInSeconds=%s exceeded, stopping it", job.name, self._max_runtime)
            job.process.request_stop(MAX_RUNTIME, f"MaxRuntimeInSeconds={self._max_runtime} exceeded")
        if job.process.kill_if_overdue(self.stop_grace_seconds):
            log.warning("training job %s: still running %.3g s after SIGTERM, sent SIGKILL", job.name,
                        self.stop_grace_seconds)
        return events

    def _parse(self, job: _Job, line: str) -> MetricReported | None:
        values: dict[str, float] = {}
        for name, regex in self._regexes:
            match = regex.search(line)
            if match is not None:
                with contextlib.suppress(TypeError, ValueError):
                    values[name] = float(match.group(1))
        if not values:
            return None
        self._latest.setdefault(job.trial_id, {}).update(values)
        resource = values.get(self._resource_metric) if self._resource_metric else None
        if resource is not None and math.isfinite(resource):
            job.resource = int(resource)
        if self._objective not in values:
            return None
        job.ordinal += 1
        seq = job.from_resource + job.ordinal
        return MetricReported(job.trial_id, job.attempt, self.clock.now(), values[self._objective], seq, job.resource)

    def _terminal(self, job: _Job) -> Event:
        outcome = job.process.outcome()
        now, trial_id, attempt, billable = self.clock.now(), job.trial_id, job.attempt, outcome.billable_seconds
        log.info("training job %s: %s%s", job.name, outcome.status.lower(),
                 f" ({outcome.description.splitlines()[0]})" if outcome.description else "")
        if outcome.status == proc.COMPLETED:
            return TrialCompleted(trial_id, attempt, now, billable_seconds=billable)
        if outcome.status == proc.STOPPED and outcome.kind != MAX_RUNTIME:
            return TrialStopped(trial_id, attempt, now, billable_seconds=billable)
        reason = outcome.description
        if outcome.kind == MAX_RUNTIME:
            reason = (f"{MAX_RUNTIME}: the job ran longer than StoppingCondition.MaxRuntimeInSeconds="
                      f"{self._max_runtime} and was stopped")
        return TrialFailed(trial_id, attempt, now, reason, retriable=False, billable_seconds=billable)

    # ------------------------------------------------------------ finding jobs on disk

    def _find(self, trial_id: str, attempt: int) -> _Job | None:
        """The job launched before for this attempt, from its directory; None when there is none."""
        directory = self.attempt_dir(trial_id, attempt)
        found = proc.Supervised.find(directory)
        if found is None:
            return None
        spec = proc.read_json(directory / JOB_FILE) or {}
        name = str(spec.get("job_name") or self.training_job_name(trial_id, attempt))
        self._gpus.hold((trial_id, attempt), spec.get("gpu_devices"))  # an adopted job keeps its devices
        return _Job(trial_id, attempt, name, int(spec.get("from_resource") or 0), found)

    def _abandon(self, trial_id: str, attempt: int, reason: str) -> _Job | None:
        """Give up an attempt that has no job: None, unless a launcher still in flight started one."""
        directory = self.attempt_dir(trial_id, attempt)
        if not directory.is_dir():  # the directory is made before any launcher starts: none is in flight
            return None
        found = proc.Supervised.abandon(directory, reason)
        return None if found is None else _Job(trial_id, attempt, self.training_job_name(trial_id, attempt), 0, found)

    def _stop_orphans(self) -> None:
        trials = self.job_dir / "trials"
        if not trials.is_dir():
            return
        for directory in sorted(trials.glob("*/*")):
            if not directory.name.isdigit() or not TRIAL_ID.fullmatch(directory.parent.name):
                continue
            key = (directory.parent.name, int(directory.name))
            record = proc.read_json(directory / proc.PID_FILE)
            if key in self._jobs or record is None or proc.probe(record) != proc.RUNNING:
                continue
            log.warning("training job in %s runs, but its trial is not active in the tuning state: stopping it",
                        directory)
            job = _Job(key[0], key[1], directory.name, 0, proc.Supervised(directory, record), orphan=True)
            self._gpus.hold(key, (proc.read_json(directory / JOB_FILE) or {}).get("gpu_devices"))
            self._jobs[key] = job
            job.process.request_stop(STOP, "orphan: its trial is not active in the tuning state")

    # ------------------------------------------------------------ script mode

    def _submit_directory(self) -> Path:
        where = f"{STATIC}.sagemaker_submit_directory"
        raw = self._static.get("sagemaker_submit_directory")
        if raw is None:
            return self.base_dir
        local = _local_path(raw, self.base_dir)
        if local is None or raw.endswith((".tar.gz", ".tgz")):
            hint = "the local backend runs the code where it is: give its directory, relative to the request file"
            raise ConfigError(where, "`sagemaker_submit_directory is a local directory` must hold", raw, hint=hint)
        if not local.is_dir():
            raise ConfigError(where, "`sagemaker_submit_directory is an existing directory` must hold", str(local))
        return local

    def _entry_point(self) -> Path:
        program = self._static["sagemaker_program"]
        path = (self._submit_dir / program).resolve()
        if not path.is_file():
            rule = "`sagemaker_program names a file in sagemaker_submit_directory` must hold"
            raise ConfigError(f"{STATIC}.sagemaker_program", rule, program, hint=f"{path} is not a file")
        return path

    def _local_channels(self, raw: object) -> dict[str, Path]:
        path = f"{DEFINITION}.InputDataConfig"
        if raw is None:
            return {}
        if not isinstance(raw, list):
            raise ConfigError(path, "`InputDataConfig is a list of channels` must hold", type(raw).__name__)
        channels: dict[str, Path] = {}
        for i, channel in enumerate(raw):
            name = channel.get("ChannelName") if isinstance(channel, Mapping) else None
            if not isinstance(name, str) or not CHANNEL_NAME.fullmatch(name):
                rule = "`ChannelName matches [A-Za-z0-9.\\-_]{1,64}` must hold"
                raise ConfigError(f"{path}[{i}].ChannelName", rule, name)
            source = channel.get("DataSource")
            s3 = source.get("S3DataSource") if isinstance(source, Mapping) else None
            uri = s3.get("S3Uri") if isinstance(s3, Mapping) else None
            where = f"{path}[{i}].DataSource.S3DataSource.S3Uri"
            local = _local_path(uri, self.base_dir) if isinstance(uri, str) else None
            if local is None:
                log.warning("channel %s: %s is not a local path; the local backend does not download it", name, uri)
                continue
            if not local.exists():
                raise ConfigError(where, "`a local channel path exists` must hold", str(local))
            channels[name] = local
        return channels


# ---------------------------------------------------------------- places


def attempt_dir(job_dir: str | os.PathLike[str], trial_id: str, attempt: int) -> Path:
    """``JOB_DIR/trials/<trial_id>/<attempt>``; BackendError for ids that could leave ``JOB_DIR/trials``."""
    if not isinstance(trial_id, str) or not TRIAL_ID.fullmatch(trial_id):
        raise BackendError(
            f"`trial_id is 1-128 characters of [A-Za-z0-9._-] starting with a letter or digit` must hold, "
            f"but got {trial_id!r}"
        )
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise BackendError(f"`attempt is an int >= 1` must hold, but got {attempt!r}")
    trials = Path(job_dir).resolve() / "trials"
    path = trials / trial_id / str(attempt)
    if path.resolve().parent.parent != trials:  # a symlink pointing elsewhere
        raise BackendError(f"`{path} stays inside {trials}` must hold, but it resolves to {path.resolve()}")
    return path


def model_dir(job_dir: str | os.PathLike[str], trial_id: str, attempt: int) -> Path:
    """The attempt's ``SM_MODEL_DIR``: where its script saved the model."""
    return attempt_dir(job_dir, trial_id, attempt) / "model"


# ---------------------------------------------------------------- helpers


def _compiled(definitions: Any) -> list[tuple[str, re.Pattern[str]]]:
    compiled = []
    for i, definition in enumerate(definitions):
        where = f"{DEFINITION}.AlgorithmSpecification.MetricDefinitions[{i}].Regex"
        try:
            regex = re.compile(definition.regex)
        except re.error as exc:
            raise ConfigError(where, "`Regex compiles` must hold", definition.regex, hint=str(exc)) from None
        if regex.groups < 1:
            raise ConfigError(where, "`Regex has a capturing group for the value` must hold", definition.regex)
        compiled.append((definition.name, regex))
    return compiled


def _environment(raw: object) -> dict[str, str]:
    """The definition's ``Environment``: a string-to-string map, added to every job's environment."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise ConfigError(f"{DEFINITION}.Environment", "`Environment maps strings to strings` must hold", raw)
    return dict(raw)


def _local_path(uri: str, base: Path) -> Path | None:
    """The local path of ``uri`` (a path, relative to ``base``, or a ``file://`` URI); None for other schemes."""
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    elif re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", uri):
        return None
    return (base / uri).resolve()



async def settle_local(job_dir: str | os.PathLike[str]) -> TuningState | None:
    """The state in ``job_dir``, after finishing it if it was left Stopping with every training job ended.

    For readers (the dashboard, ``hb-tune show``): a job whose controller was
    cancelled or died mid-abort is reconciled with its attempt directories and,
    when no training job of it is still running, its end is checkpointed
    (:func:`hb_core.runner.settle_stored`: compare-and-set, nothing launched or
    stopped). Any other state is returned as stored.
    """
    from hb_core.backends.stores import LocalFileStore
    from hb_core.runner import settle_stored

    def backend_for(state: TuningState) -> LocalBackend | None:
        if state.config.training_job_definition is None:
            return None
        return LocalBackend(state.config, job_dir, job_name=state.job_name)

    return await settle_stored(LocalFileStore(job_dir), backend_for, RealClock())
