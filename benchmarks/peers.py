"""The open-source peers, driven step by step on the harness's virtual clock (:func:`harness.run_policy`).

How each is driven (one :class:`harness.Policy` per run, seeded with the run's seed):

- **Optuna** (``optuna.create_study(direction="maximize", sampler=TPESampler(seed),
  pruner=...)``, in-memory storage). ``ask`` is ``study.ask(distributions)``
  (the search space as Optuna distributions, so every trial draws its
  configuration from the sampler while the other slots' trials are still
  running, as with ``n_jobs`` workers). Each epoch is ``trial.report(value,
  epoch)`` followed by ``trial.should_prune()``; a pruned trial is
  ``study.tell(trial, state=PRUNED)``, a trial reaching MaxResource is
  ``study.tell(trial, value)``. Pruners:
  ``HyperbandPruner(min_resource, max_resource, reduction_factor=eta)`` (its
  default brackets: every bracket, trials assigned by hash) and
  ``SuccessiveHalvingPruner(min_resource, reduction_factor=eta,
  min_early_stopping_rate=0)`` (asynchronous SH, one bracket: the same rule
  as our stopping variant). Optuna's default sampler, TPE, is what users
  get; ``optuna-SHA-random`` swaps in ``RandomSampler(seed)`` to compare
  the schedulers alone.
- **Syne Tune** (``syne_tune.optimizer.baselines.ASHA(config_space, metric,
  time_attr="epoch", max_t=max_resource, grace_period=min_resource,
  reduction_factor=eta, do_minimize=False, random_seed=seed)``: stopping-type
  ASHA with random search, one bracket). ``ask`` is ``scheduler.suggest()``,
  then ``on_trial_add(Trial(...))``; each epoch is
  ``scheduler.on_trial_result(trial, {metric: value, "epoch": epoch})``,
  whose ``"STOP"`` stops the trial; at MaxResource ``on_trial_complete``.
  This is the scheduler interface Syne Tune's own ``Tuner`` calls. Syne
  Tune 0.16's ``RandomSearcher`` draws from numpy's *global* generator
  (``Domain.sample()`` without its ``random_state``), so ``random_seed`` alone
  does not make a run reproducible: the policy also calls
  ``numpy.random.seed(seed)`` when it is created (runs never interleave within
  a process). Its
  simulator backend is not used because it wants a blackbox from the
  repository, which downloads its data.
- **Ray Tune** (``ray.tune.schedulers.ASHAScheduler(time_attr="epoch",
  metric, mode="max", max_t=max_resource, grace_period=min_resource,
  reduction_factor=eta, brackets=1)``: stopping-type ASHA, one bracket).
  Configurations are drawn from Ray Tune's own search-space domains
  (``tune.uniform``/``loguniform``, ``tune.randint``/``lograndint`` with the
  exclusive upper bound moved past AMT's inclusive ``MaxValue``,
  ``tune.choice``) with ``Domain.sample(random_state=Generator(seed))``, i.e.
  random search as its ``BasicVariantGenerator`` does. Each trial is a
  ``ray.tune.experiment.Trial(..., stub=True)`` added with
  ``on_trial_add``; each epoch is ``on_trial_result(None, trial, {metric:
  value, "epoch": epoch})``, whose ``STOP`` stops the trial; a trial that
  ends (stopped, or at MaxResource) gets ``on_trial_complete`` with its last
  result, as ``TuneController.stop_trial`` does. That is the scheduler interface Ray Tune's
  ``TuneController`` calls; no Ray cluster is started (``ray.init`` is never
  called). Ray's rung rule differs slightly from AMT's: the cutoff is the
  interpolated ``(1 - 1/eta)`` quantile of the values recorded at the rung
  (``numpy.nanpercentile``), not the value of rank ``ceil(n/eta)``.
- **Syne Tune 0.14's model-based and progressive schedulers** (in their own
  virtualenv, :data:`LEGACY`): ``MOBSTER`` and ``HyperTune`` (stopping type,
  see :class:`SyneTuneLegacyPolicy`), and ``PASHA(config_space, metric,
  resource_attr="epoch", max_t=max_resource, grace_period=min_resource,
  reduction_factor=eta, mode="max", random_seed=seed)``: progressive ASHA,
  promotion type with random search, whose maximum resource starts at the
  second rung and grows while the ranking of the top two rungs is unstable.
  It is driven as Syne Tune's ``Tuner`` drives a pause-and-resume scheduler:
  ``suggest`` returns a new trial (``on_trial_add``) or a paused one to resume
  from its checkpoint; ``on_trial_result`` answers ``PAUSE`` at a milestone
  (then ``on_trial_remove``, and the harness frees the slot, see
  :data:`harness.PAUSE`). At the trial limit the harness asks only for
  resumes (the scheduler's own ``_promote_trial``, the first step of its
  ``suggest``), as our controller keeps promoting after
  ``MaxNumberOfTrainingJobs`` trials started. PASHA stops raising its maximum
  resource once the ranking of its top two rungs is stable, so on these curves
  its search ends with no trial trained to MaxResource; its pick (the best
  trial at its top rung) is then trained on from its checkpoint, and its time
  is search plus that training (``harness.run_policy``'s ``pick``).

Size: a little over 400 lines: one adapter per peer scheduler (Optuna, Syne Tune's ASHA, its legacy
MOBSTER and Hyper-Tune, PASHA, Ray Tune), each a few dozen lines of the same shape; split, the shared
search-space translation and step loop would be passed around.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness import METRIC, PAUSE, Hyperparameters, RunResult, Task, run_policy

from hb_core.latency import Latency

__all__ = ["PEERS", "OptunaPolicy", "RayTunePolicy", "SyneTunePolicy", "run_peer"]

log = logging.getLogger(__name__)

#: Syne Tune's ``opt_skip_init_length`` and ``opt_skip_period`` for MOBSTER and Hyper-Tune (see their policy).
SKIP_INIT, SKIP_PERIOD = 50, 10


def _optuna_distributions(ranges: Mapping[str, Any]) -> dict[str, Any]:
    """AMT ``ParameterRanges`` as Optuna distributions (Logarithmic -> log=True)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for r in ranges.get("ContinuousParameterRanges", []):
        out[r["Name"]] = FloatDistribution(float(r["MinValue"]), float(r["MaxValue"]),
                                           log=r.get("ScalingType") == "Logarithmic")
    for r in ranges.get("IntegerParameterRanges", []):
        out[r["Name"]] = IntDistribution(int(r["MinValue"]), int(r["MaxValue"]),
                                         log=r.get("ScalingType") == "Logarithmic")
    for r in ranges.get("CategoricalParameterRanges", []):
        out[r["Name"]] = CategoricalDistribution(list(r["Values"]))
    return out


def _syne_tune_space(ranges: Mapping[str, Any]) -> dict[str, Any]:
    """AMT ``ParameterRanges`` as a Syne Tune config space."""
    from syne_tune.config_space import choice, lograndint, loguniform, randint, uniform

    out: dict[str, Any] = {}
    for r in ranges.get("ContinuousParameterRanges", []):
        lo, hi = float(r["MinValue"]), float(r["MaxValue"])
        out[r["Name"]] = loguniform(lo, hi) if r.get("ScalingType") == "Logarithmic" else uniform(lo, hi)
    for r in ranges.get("IntegerParameterRanges", []):
        lo, hi = int(r["MinValue"]), int(r["MaxValue"])
        out[r["Name"]] = lograndint(lo, hi) if r.get("ScalingType") == "Logarithmic" else randint(lo, hi)
    for r in ranges.get("CategoricalParameterRanges", []):
        out[r["Name"]] = choice(list(r["Values"]))
    return out


def _ray_tune_space(ranges: Mapping[str, Any]) -> dict[str, Any]:
    """AMT ``ParameterRanges`` as Ray Tune domains (AMT's integer bounds are inclusive, Ray's upper is not)."""
    from ray import tune

    out: dict[str, Any] = {}
    for r in ranges.get("ContinuousParameterRanges", []):
        lo, hi = float(r["MinValue"]), float(r["MaxValue"])
        out[r["Name"]] = tune.loguniform(lo, hi) if r.get("ScalingType") == "Logarithmic" else tune.uniform(lo, hi)
    for r in ranges.get("IntegerParameterRanges", []):
        lo, hi = int(r["MinValue"]), int(r["MaxValue"]) + 1
        out[r["Name"]] = tune.lograndint(lo, hi) if r.get("ScalingType") == "Logarithmic" else tune.randint(lo, hi)
    for r in ranges.get("CategoricalParameterRanges", []):
        out[r["Name"]] = tune.choice(list(r["Values"]))
    return out


class OptunaPolicy:
    """An Optuna study with a pruner, driven by ask / report / should_prune / tell."""

    def __init__(self, task: Task, seed: int, pruner: str, sampler: str = "tpe") -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if pruner == "hyperband":
            chosen: Any = optuna.pruners.HyperbandPruner(min_resource=task.min_resource,
                                                         max_resource=task.max_resource, reduction_factor=task.eta)
        elif pruner == "sha":
            chosen = optuna.pruners.SuccessiveHalvingPruner(min_resource=task.min_resource,
                                                            reduction_factor=task.eta, min_early_stopping_rate=0)
        else:
            raise ValueError(f"`pruner in ('hyperband', 'sha')` must hold, but got pruner={pruner!r}")
        samplers = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}
        self.study = optuna.create_study(direction="maximize", sampler=samplers[sampler](seed=seed), pruner=chosen)
        self.distributions = _optuna_distributions(task.ranges)
        self._pruned = optuna.trial.TrialState.PRUNED

    def ask(self) -> tuple[Any, Hyperparameters]:
        trial = self.study.ask(self.distributions)
        return trial, dict(trial.params)

    def report(self, handle: Any, epoch: int, value: float) -> bool:
        handle.report(value, epoch)
        return not handle.should_prune()

    def finish(self, handle: Any, epoch: int, value: float, completed: bool) -> None:
        if completed:
            handle.report(value, epoch)
            self.study.tell(handle, value)
        else:
            self.study.tell(handle, state=self._pruned)


class SyneTunePolicy:
    """Syne Tune's ASHA scheduler, driven by suggest / on_trial_add / on_trial_result / on_trial_complete."""

    def __init__(self, task: Task, seed: int) -> None:
        import numpy as np
        from syne_tune.optimizer.baselines import ASHA

        np.random.seed(seed)  # its RandomSearcher samples from the global generator (module docstring)
        self.scheduler = ASHA(_syne_tune_space(task.ranges), metric=METRIC, time_attr="epoch",
                              max_t=task.max_resource, grace_period=task.min_resource,
                              reduction_factor=task.eta, do_minimize=False, random_seed=seed)
        self._next_id = 0
        self._epoch0 = datetime.datetime(2024, 1, 1)  # creation times are bookkeeping only

    def ask(self) -> tuple[Any, Hyperparameters] | None:
        from syne_tune.backend.trial_status import Trial

        suggestion = self.scheduler.suggest()
        if suggestion is None:
            return None
        trial = Trial(trial_id=self._next_id, config=dict(suggestion.config), creation_time=self._epoch0)
        self._next_id += 1
        self.scheduler.on_trial_add(trial)
        return trial, dict(trial.config)

    def report(self, handle: Any, epoch: int, value: float) -> bool:
        decision: str = self.scheduler.on_trial_result(handle, {METRIC: value, "epoch": epoch})  # "CONTINUE", ...
        return decision != "STOP"

    def finish(self, handle: Any, epoch: int, value: float, completed: bool) -> None:
        if completed:
            result = {METRIC: value, "epoch": epoch}
            self.scheduler.on_trial_result(handle, result)
            self.scheduler.on_trial_complete(handle, result)


class RayTunePolicy:
    """Ray Tune's ASHAScheduler on stub trials, driven by on_trial_add / on_trial_result / on_trial_complete."""

    def __init__(self, task: Task, seed: int) -> None:
        import numpy as np
        from ray.tune.schedulers import ASHAScheduler, TrialScheduler

        self.scheduler = ASHAScheduler(time_attr="epoch", metric=METRIC, mode="max", max_t=task.max_resource,
                                       grace_period=task.min_resource, reduction_factor=task.eta, brackets=1)
        self.space = _ray_tune_space(task.ranges)
        self.rng = np.random.default_rng(seed)
        self._stop: str = TrialScheduler.STOP  # "STOP"
        self._next_id = 0

    # Each scheduler hook's first argument is the TuneController: ASHA never reads it, and these stub trials run
    # without one, hence None.
    def ask(self) -> tuple[Any, Hyperparameters]:
        from ray.tune.experiment import Trial

        config = {name: _plain(domain.sample(random_state=self.rng)) for name, domain in self.space.items()}
        trial = Trial("hb-bench", config=config, trial_id=f"{self._next_id:05d}", stub=True)
        self._next_id += 1
        self.scheduler.on_trial_add(None, trial)
        return trial, dict(config)

    def report(self, handle: Any, epoch: int, value: float) -> bool:
        decision: str = self.scheduler.on_trial_result(None, handle, {METRIC: value, "epoch": epoch})
        return decision != self._stop

    def finish(self, handle: Any, epoch: int, value: float, completed: bool) -> None:
        result = {METRIC: value, "epoch": epoch}
        if completed:  # the last epoch's result (STOP at max_t), then what TuneController.stop_trial calls
            self.scheduler.on_trial_result(None, handle, result)
        self.scheduler.on_trial_complete(None, handle, result)


class SyneTuneLegacyPolicy:
    """Syne Tune 0.14's model-based Hyperband schedulers (MOBSTER, Hyper-Tune), stopping type, driven as its Tuner
    drives them: ``suggest(trial_id)``, ``on_trial_add``, ``on_trial_result`` (``STOP`` ends the trial and is
    followed by ``on_trial_remove``), ``on_trial_complete`` at MaxResource (module docstring)."""

    def __init__(self, task: Task, seed: int, kind: str) -> None:
        import numpy as np
        from syne_tune.optimizer.legacy_baselines import MOBSTER, HyperTune

        np.random.seed(seed)
        common = dict(metric=METRIC, resource_attr="epoch", max_t=task.max_resource, grace_period=task.min_resource,
                      reduction_factor=task.eta, mode="max", type="stopping", random_seed=seed)
        # Refit the GP's hyperparameters on every 10th new observation once 50 are in (Syne Tune's own
        # opt_skip_* options; the model is still conditioned on all data every time): its default refits on
        # every proposal, ~4 s each on this machine, 50 min for a 750-trial run (module docstring).
        common["search_options"] = {"opt_skip_init_length": SKIP_INIT, "opt_skip_period": SKIP_PERIOD}
        space = _syne_tune_space(task.ranges)
        if kind == "mobster":
            self.scheduler: Any = MOBSTER(space, **common)  # search_options["model"]: "gp_multitask" (default)
        elif kind == "hypertune":
            # Hyper-Tune as the paper runs it: all brackets, sampled by its model; per-rung GPs (its default).
            n_levels = len(_levels(task))
            self.scheduler = HyperTune(space, brackets=n_levels, **common)
        else:
            raise ValueError(f"`kind in ('mobster', 'hypertune')` must hold, but got kind={kind!r}")
        self._next_id = 0
        self._epoch0 = datetime.datetime(2024, 1, 1)

    def ask(self) -> tuple[Any, Hyperparameters] | None:
        from syne_tune.backend.trial_status import Trial

        suggestion = self.scheduler.suggest(self._next_id)
        if suggestion is None:
            return None
        trial = Trial(trial_id=self._next_id, config=dict(suggestion.config), creation_time=self._epoch0)
        self._next_id += 1
        self.scheduler.on_trial_add(trial)
        return trial, _user_config(trial.config)

    def report(self, handle: Any, epoch: int, value: float) -> bool:
        if self.scheduler.on_trial_result(handle, {METRIC: value, "epoch": epoch}) == "STOP":
            self.scheduler.on_trial_remove(handle)
            return False
        return True

    def finish(self, handle: Any, epoch: int, value: float, completed: bool) -> None:
        if completed:
            result = {METRIC: value, "epoch": epoch}
            self.scheduler.on_trial_result(handle, result)
            self.scheduler.on_trial_complete(handle, result)


class SyneTunePashaPolicy:
    """Syne Tune 0.14's PASHA (promotion type), driven as its Tuner drives a pause-and-resume scheduler: a
    ``suggest`` is a new trial or a paused one resumed from its checkpoint, ``PAUSE`` frees the slot (module
    docstring)."""

    def __init__(self, task: Task, seed: int) -> None:
        import numpy as np
        from syne_tune.optimizer.legacy_baselines import PASHA

        np.random.seed(seed)
        self.scheduler = PASHA(_syne_tune_space(task.ranges), metric=METRIC, resource_attr="epoch",
                               max_t=task.max_resource, grace_period=task.min_resource, reduction_factor=task.eta,
                               mode="max", random_seed=seed)
        self._next_id = 0
        self._paused: dict[int, tuple[Any, int]] = {}  # trial id -> (trial, the epoch it paused at)
        self._last: dict[int, tuple[int, float]] = {}  # trial id -> (its last epoch, value), for pick()
        self._epoch0 = datetime.datetime(2024, 1, 1)

    def _resumed(self, trial_id: int) -> tuple[Any, Hyperparameters, int]:
        trial, epoch = self._paused.pop(trial_id)
        return trial, _user_config(trial.config), epoch

    def ask(self) -> tuple[Any, Hyperparameters] | tuple[Any, Hyperparameters, int] | None:
        from syne_tune.backend.trial_status import Trial

        suggestion = self.scheduler.suggest(self._next_id)
        if suggestion is None:
            return None
        if not suggestion.spawn_new_trial_id:
            return self._resumed(suggestion.checkpoint_trial_id)
        trial = Trial(trial_id=self._next_id, config=dict(suggestion.config), creation_time=self._epoch0)
        self._next_id += 1
        self.scheduler.on_trial_add(trial)
        return trial, _user_config(trial.config)

    def resume(self) -> tuple[Any, Hyperparameters, int] | None:
        trial_id, _ = self.scheduler._promote_trial(new_trial_id=str(self._next_id))
        return None if trial_id is None else self._resumed(int(trial_id))

    def pick(self) -> tuple[Hyperparameters, int] | None:
        """PASHA's answer when its search ends: the best trial at the highest resource reached (its top rung)."""
        if not self._last:
            return None
        trial_id = max(self._last, key=lambda t: self._last[t])
        paused = self._paused.get(trial_id)
        return None if paused is None else (_user_config(paused[0].config), paused[1])

    def report(self, handle: Any, epoch: int, value: float) -> bool | str:
        self._last[handle.trial_id] = (epoch, value)
        decision: str = self.scheduler.on_trial_result(handle, {METRIC: value, "epoch": epoch})
        if decision in ("STOP", "PAUSE"):
            self.scheduler.on_trial_remove(handle)
        if decision == "PAUSE":
            self._paused[handle.trial_id] = (handle, epoch)
            return PAUSE
        return decision != "STOP"

    def finish(self, handle: Any, epoch: int, value: float, completed: bool) -> None:
        if completed:
            result = {METRIC: value, "epoch": epoch}
            self.scheduler.on_trial_result(handle, result)
            self.scheduler.on_trial_complete(handle, result)


def _user_config(config: Mapping[str, Any]) -> Hyperparameters:
    """A Syne Tune trial's configuration without the scheduler's own ``_``-keys, as plain numbers."""
    return {k: _plain(v) for k, v in config.items() if not k.startswith("_")}


def _levels(task: Task) -> list[int]:
    levels, level = [], task.min_resource
    while level < task.max_resource:
        levels.append(level)
        level *= task.eta
    return [*levels, task.max_resource]


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python number it holds (configurations are JSON-like)."""
    return value.item() if hasattr(value, "item") else value


#: Peer name -> factory (task, seed) -> policy.
PEERS: dict[str, Callable[[Task, int], Any]] = {
    "optuna-HB": lambda task, seed: OptunaPolicy(task, seed, "hyperband"),
    "optuna-SHA": lambda task, seed: OptunaPolicy(task, seed, "sha"),
    "optuna-SHA-random": lambda task, seed: OptunaPolicy(task, seed, "sha", sampler="random"),
    "synetune-ASHA": SyneTunePolicy,
    "raytune-ASHA": RayTunePolicy,
    "synetune-MOBSTER": lambda task, seed: SyneTuneLegacyPolicy(task, seed, "mobster"),
    "synetune-HyperTune": lambda task, seed: SyneTuneLegacyPolicy(task, seed, "hypertune"),
    "synetune-PASHA": SyneTunePashaPolicy,
}


#: Peers that need Syne Tune 0.14 (MOBSTER, Hyper-Tune and PASHA were removed in 0.15), whose numpy<1.27 pin
#: conflicts with ours: they run in their own virtualenv (``make .venv-legacy``, :data:`LEGACY_PYTHON`), one
#: process a run.
LEGACY = {"synetune-MOBSTER", "synetune-HyperTune", "synetune-PASHA"}
LEGACY_SYNE_TUNE = "0.14.2"
LEGACY_PYTHON = Path(os.environ.get("HB_BENCH_LEGACY_PYTHON", Path(__file__).resolve().parent.parent
                                    / ".venv-legacy" / "bin" / "python"))


def run_peer(task: Task, peer: str, seed: int, workers: int, cap: float,
             source: tuple[str, tuple[float, ...]] | None = None, latency: Latency | None = None) -> RunResult:
    """One run of ``peer`` (a key of :data:`PEERS`) on ``task`` under ``latency`` (None: the task's start-up
    only); a :data:`LEGACY` peer runs in :data:`LEGACY_PYTHON` unless this interpreter has Syne Tune 0.14
    (``source``: the NAS data set and target fractions the task was built from, to build it there again),
    and there only without a latency."""
    if peer in LEGACY and importlib.metadata.version("syne-tune") != LEGACY_SYNE_TUNE:
        if latency is not None and not latency.ideal:
            raise ValueError(f"{peer} runs in {LEGACY_PYTHON}, which takes no latency: `latency` must be ideal")
        if source is None:
            raise ValueError(f"{peer} runs in {LEGACY_PYTHON}: `source` (data set, target fractions) must be given")
        dataset, tops = source
        args = [str(LEGACY_PYTHON), __file__, dataset, ",".join(map(str, tops)), peer, str(seed), str(workers),
                repr(cap)]
        root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
        out = subprocess.run(args, check=True, capture_output=True, text=True, env=env).stdout
        body = json.loads(out.strip().splitlines()[-1])
        return RunResult(body["method"], body["seed"], body["workers"], [tuple(p) for p in body["trace"]],
                         body["elapsed"], body["trials"], body["epochs"], body.get("extra") or {})
    return run_policy(PEERS[peer](task, seed), task, method=peer, seed=seed, workers=workers, cap=cap,
                      latency=latency)


if __name__ == "__main__":  # one legacy-peer run: dataset tops peer seed workers cap -> RunResult as JSON
    import dataclasses

    logging.basicConfig(level=logging.ERROR)
    import nasbench

    _dataset, _tops, _peer, _seed, _workers, _cap = sys.argv[1:7]
    _task = nasbench.task(_dataset, tuple(float(f) for f in _tops.split(",")))
    _run = run_peer(_task, _peer, int(_seed), int(_workers), float(_cap))
    print(json.dumps(dataclasses.asdict(_run)))
