"""GPUs for local trials: each running training job gets its own devices through ``CUDA_VISIBLE_DEVICES``.

On SageMaker every training job has its instance, and so its GPUs, to itself.
On one machine with several GPUs, the local backend must split them, or every
trial process would start on ``cuda:0``. Terms:

- *device*: one entry of ``CUDA_VISIBLE_DEVICES``: an index (``"0"``) or a
  UUID (``"GPU-8f0c..."``, what ``nvidia-smi -L`` prints; a UUID names the
  same card whatever the device order).
- *pool*: the devices the trials share: ``gpu_devices`` when given, else
  detected (:func:`detect_devices`): the controller's own
  ``CUDA_VISIBLE_DEVICES`` when it is set, else every GPU ``nvidia-smi -L``
  lists, else none.
- *assignment*: the ``gpus_per_trial`` devices a running job holds, the
  lowest free ones in pool order. The job's environment gets
  ``CUDA_VISIBLE_DEVICES`` (so it sees them as ``cuda:0``, ``cuda:1``, ...),
  ``SM_NUM_GPUS`` and ``num_gpus`` in ``SM_TRAINING_ENV``, as a SageMaker
  instance with that many GPUs would give. The assignment is recorded in the
  job's ``job.json`` (``gpu_devices``), so a controller that reattaches to
  the job (:meth:`GpuPool.hold`) keeps it off those devices; they return to
  the pool when the job ends (:meth:`GpuPool.release`).
- *rule*: ``MaxParallelTrainingJobs <= len(pool) // gpus_per_trial``,
  checked when the backend is built, before any launch, so no trial ever
  waits for a device or shares one.

Without ``gpus_per_trial`` nothing changes: jobs inherit the controller's
environment, as before. This module holds the allocation and the detection;
the local backend calls it at launch, adoption and end.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence

from hb_core.errors import BackendError, ConfigError

__all__ = ["GPU_ENV", "GpuPool", "detect_devices", "environment"]

log = logging.getLogger(__name__)

GPU_ENV = "CUDA_VISIBLE_DEVICES"
MAX_PARALLEL = "HyperParameterTuningJobConfig.ResourceLimits.MaxParallelTrainingJobs"
NVIDIA_SMI_TIMEOUT = 10.0  # seconds
_SMI_LINE = re.compile(r"^GPU (\d+):.*?(?:\(UUID: (GPU-[0-9A-Za-z-]+)\))?\s*$")


def parse_visible_devices(value: str) -> tuple[str, ...]:
    """The devices of a ``CUDA_VISIBLE_DEVICES`` value, as CUDA reads it: up to the first invalid entry.

    >>> parse_visible_devices("0, 2,3")
    ('0', '2', '3')
    >>> parse_visible_devices("1,-1,2")  # CUDA stops at -1
    ('1',)
    >>> parse_visible_devices("")
    ()
    """
    devices: list[str] = []
    for entry in value.split(","):
        entry = entry.strip()
        if not entry or entry.startswith("-"):
            break
        devices.append(entry)
    return tuple(devices)


def detect_devices(env: Mapping[str, str] | None = None,
                   run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run) -> tuple[tuple[str, ...], str]:
    """(devices, where they came from): ``CUDA_VISIBLE_DEVICES`` if set, else ``nvidia-smi -L``, else none."""
    env = os.environ if env is None else env
    if GPU_ENV in env:
        return parse_visible_devices(env[GPU_ENV]), f"{GPU_ENV}={env[GPU_ENV]!r}"
    try:
        result = run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return (), f"no {GPU_ENV} and no nvidia-smi ({exc.__class__.__name__})"
    if result.returncode != 0:
        return (), f"no {GPU_ENV}, and nvidia-smi -L exited with status {result.returncode}"
    devices = []
    for line in result.stdout.splitlines():
        match = _SMI_LINE.match(line.strip())
        if match:
            devices.append(match.group(2) or match.group(1))
    return tuple(devices), "nvidia-smi -L"


def environment(devices: Sequence[str], sm_env: Mapping[str, str]) -> dict[str, str]:
    """The variables a job with ``devices`` gets on top of its script-mode ``sm_env`` (none without devices)."""
    if not devices:
        return {}
    updates = {GPU_ENV: ",".join(devices), "SM_NUM_GPUS": str(len(devices))}
    with_gpus = dict(json.loads(sm_env.get("SM_TRAINING_ENV") or "{}"), num_gpus=len(devices))
    updates["SM_TRAINING_ENV"] = json.dumps(with_gpus)
    return updates


class GpuPool:
    """The devices local trials share, and who holds which (module docstring).

    Build it with :meth:`configure`. A pool without ``gpus_per_trial`` is
    *off*: :meth:`acquire` gives no device and nothing is recorded. Owners
    are any hashable key; the local backend uses (trial id, attempt).
    """

    def __init__(self, devices: Sequence[str] = (), per_trial: int = 0) -> None:
        self.devices = tuple(devices)
        self.per_trial = per_trial
        self._held: dict[Hashable, tuple[str, ...]] = {}

    @classmethod
    def configure(cls, gpus_per_trial: int | None, gpu_devices: Sequence[str] | None, max_parallel: int, *,
                  detect: Callable[[], tuple[tuple[str, ...], str]] = detect_devices) -> GpuPool:
        """The pool for ``gpus_per_trial`` devices per job; ConfigError when ``max_parallel`` jobs cannot fit."""
        if gpus_per_trial is None:
            if gpu_devices is not None:
                raise ConfigError("gpu_devices", "`gpu_devices is given only with gpus_per_trial` must hold",
                                  list(gpu_devices), hint="set gpus_per_trial (e.g. 1) to assign them to trials")
            return cls()
        if isinstance(gpus_per_trial, bool) or not isinstance(gpus_per_trial, int) or gpus_per_trial < 1:
            raise ConfigError("gpus_per_trial", "`gpus_per_trial is an integer >= 1` must hold", gpus_per_trial)
        if gpu_devices is None:
            devices, source = detect()
        else:
            if isinstance(gpu_devices, str) or not all(isinstance(d, str) for d in gpu_devices):
                raise ConfigError("gpu_devices", "`gpu_devices is a list of strings` must hold", gpu_devices,
                                  hint='e.g. ["0", "1"] or GPU UUIDs')
            devices, source = tuple(d.strip() for d in gpu_devices), "gpu_devices"
            bad = [d for d in devices if not d or "," in d or d.startswith("-")]
            if bad or len(set(devices)) != len(devices):
                raise ConfigError("gpu_devices", "`every device is named once, without commas or a leading -` "
                                  "must hold", list(gpu_devices))
        slots = len(devices) // gpus_per_trial
        if max_parallel > slots:
            rule = (f"`MaxParallelTrainingJobs <= GPU devices // gpus_per_trial = {len(devices)} // {gpus_per_trial}"
                    f" = {slots}` must hold")
            hint = (f"the devices are {list(devices)} (from {source}); lower MaxParallelTrainingJobs or "
                    "gpus_per_trial, or give gpu_devices")
            raise ConfigError(MAX_PARALLEL, rule, max_parallel, hint=hint)
        log.info("GPUs for local trials: %d per trial from %s (%s)", gpus_per_trial, list(devices), source)
        return cls(devices, gpus_per_trial)

    @property
    def enabled(self) -> bool:
        return self.per_trial > 0

    def held(self) -> dict[Hashable, tuple[str, ...]]:
        """Owner -> the devices it holds."""
        return dict(self._held)

    def free(self) -> tuple[str, ...]:
        busy = {d for devices in self._held.values() for d in devices}
        return tuple(d for d in self.devices if d not in busy)

    def acquire(self, owner: Hashable) -> tuple[str, ...]:
        """The devices of a job about to start: the lowest ``per_trial`` free ones (the same again for its owner)."""
        if not self.enabled:
            return ()
        if owner in self._held:
            return self._held[owner]
        free = self.free()
        if len(free) < self.per_trial:
            raise BackendError(f"`free GPU devices >= gpus_per_trial={self.per_trial}` must hold to launch {owner}, "
                               f"but {list(free)} are free and {self._held} are held")
        self._held[owner] = free[: self.per_trial]
        return self._held[owner]

    def hold(self, owner: Hashable, devices: Iterable[str] | None) -> None:
        """Record the devices of a job started before (read from its ``job.json``); None or empty: nothing."""
        if not self.enabled or not devices:
            return
        devices = tuple(devices)
        taken = set(devices) & {d for o, ds in self._held.items() if o != owner for d in ds}
        if taken:
            log.warning("GPU devices %s of %s are held by another job as well", sorted(taken), owner)
        self._held[owner] = devices

    def release(self, owner: Hashable) -> None:
        """The job of ``owner`` has ended: its devices return to the pool."""
        self._held.pop(owner, None)
