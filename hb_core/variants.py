"""How a decision round schedules trials: one class per way, holding what differs between them.

A :class:`~hb_core.decision_round.Round` applies events, checks completion and
fills slots the same way for every strategy; it asks its variant the questions
whose answers differ (the rules themselves are in :mod:`hb_core.rungs`):

- :class:`FullBudget` (Random, Grid, Bayesian): every trial runs to
  MaxResource in bracket 0; there are no rungs.
- :class:`Stopping` (Hyperband, AMT semantics): a trial runs to MaxResource
  unless a rung it reaches stops it (:func:`~hb_core.rungs.keeps`); with the
  rung barrier a kept trial is told to go on (:class:`~hb_core.events.RungVerdict`).
- :class:`Promotion` (Hyperband): a trial runs to the first rung of its bracket
  and pauses; a freed slot promotes the best promotable paused trial to the
  next rung. With the barrier a trial arriving at its budget is promoted in
  place when a freed slot would promote it, else it pauses.

Both Hyperband variants record a trial's value at every rung level it passes
(:meth:`Hyperband.reached`) and place a new trial in a bracket by a stable hash
(:func:`~hb_core.rungs.bracket_for`). A variant keeps no state of its own: it
reads and changes the round it is given (:class:`Work`), so a round stays a
pure function of the state and its events.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

from hb_core.config import HyperbandConfig, HyperbandVariant, Objective, Strategy, TuningConfig
from hb_core.events import Action, RungVerdict, Stop
from hb_core.pstruct import PVector
from hb_core.rungs import bracket_for, bracket_weights, keeps
from hb_core.state import Rung, Trial, TrialStatus, evolve

__all__ = ["FullBudget", "Hyperband", "Promotion", "Stopping", "Variant", "Work", "variant_for"]


class Work(Protocol):
    """What a variant reads and changes of the round it serves (:class:`hb_core.decision_round.Round`)."""

    objective: Objective
    trials: PVector[Trial]
    active: list[int]
    rungs: list[list[Rung]]
    actions: list[Action]

    def decide_(self, action: str, trial_id: str | None = None, message: str = "", **rung: Any) -> None: ...

    def raw(self, key: float | None) -> float | None: ...

    def launch_action(self, trial: Trial) -> Action: ...

    def job_ended(self, index: int, trial: Trial) -> None: ...


class Variant:
    """The base: what every variant answers. As it stands it is :class:`FullBudget`."""

    def __init__(self, config: TuningConfig) -> None:
        self.config = config

    def place(self, job_name: str, trial_id: str, rungs: Sequence[Sequence[Rung]]) -> tuple[int, int | None]:
        """A new trial's (bracket, budget)."""
        return 0, self.config.max_resource

    def barrier_levels(self, bracket: int) -> tuple[int, ...]:
        """The rung levels where a job of ``bracket`` waits for verdicts (the rung barrier); () without it."""
        return ()

    def reached(self, work: Work, trial: Trial, resource: int, value: float, key: float) -> Trial:
        """A running trial reported ``value`` (its ``key``) at ``resource``: record and judge it; the trial after."""
        return trial

    def completed(self, work: Work, index: int, trial: Trial) -> bool:
        """The running trial's job ran to its budget: True when the variant dealt with it (else it completes)."""
        return False

    def promote(self, work: Work) -> bool:
        """Fill one free slot by promoting a paused trial: True when it did."""
        return False


class FullBudget(Variant):
    """Random, Grid and Bayesian: every trial runs to its full budget."""


class Hyperband(Variant):
    """What both Hyperband variants do: rungs per bracket, recorded as trials reach them."""

    def __init__(self, config: TuningConfig, hb: HyperbandConfig) -> None:
        super().__init__(config)
        self.hb = hb
        self.eta = hb.reduction_factor
        self.barrier = hb.rung_barrier_timeout is not None

    def place(self, job_name: str, trial_id: str, rungs: Sequence[Sequence[Rung]]) -> tuple[int, int | None]:
        bracket = 0
        if len(rungs) > 1:
            bracket = bracket_for(job_name, trial_id, bracket_weights(len(rungs[0]), len(rungs), self.eta))
        return bracket, self.budget(rungs[bracket])

    def budget(self, bracket: Sequence[Rung]) -> int | None:
        """The budget a new trial of ``bracket`` is launched with."""
        return self.config.max_resource

    def barrier_levels(self, bracket: int) -> tuple[int, ...]:
        return self.hb.barrier_levels(bracket)

    def reached(self, work: Work, trial: Trial, resource: int, value: float, key: float) -> Trial:
        bracket = work.rungs[trial.bracket]
        j = trial.rung_index
        while j < len(bracket) and resource >= bracket[j].level:
            rung = bracket[j] = evolve(bracket[j], keys=bracket[j].keys.insert(key))
            position, n = rung.rank(key), len(rung.keys)
            facts: dict[str, Any] = {"rung": rung.level, "value": value, "cutoff": work.raw(rung.cutoff(self.eta)),
                                     "rank": position, "n": n}
            j += 1
            reason = self.judge(work, trial, rung, position, n, facts)
            if reason is not None:
                trial = evolve(trial, rung_index=j, status=TrialStatus.STOPPING, stop_reason=reason,
                               stop_resource=trial.resource)
                work.actions.append(Stop(trial.trial_id, trial.attempt, reason))
                work.decide_("stop", trial.trial_id, **facts)
                return trial
        return self.after_rungs(work, evolve(trial, rung_index=j), resource, key)

    def judge(self, work: Work, trial: Trial, rung: Rung, position: int, n: int, facts: dict[str, Any]) -> str | None:
        """The trial's value ranks ``position`` among the ``n`` at ``rung``: why it stops, or None (it goes on)."""
        work.decide_("record", trial.trial_id, **facts)
        return None

    def after_rungs(self, work: Work, trial: Trial, resource: int, key: float) -> Trial:
        """The trial after its value was recorded at every rung it reached and it was not stopped."""
        return trial


class Stopping(Hyperband):
    """The stopping variant: each rung below MaxResource keeps the top 1/eta and stops the rest."""

    def judge(self, work: Work, trial: Trial, rung: Rung, position: int, n: int, facts: dict[str, Any]) -> str | None:
        if rung.level >= self.hb.max_resource:  # the last rung only records
            return super().judge(work, trial, rung, position, n, facts)
        min_results = self.hb.min_rung_results
        if not keeps(position, n, self.eta, min_results):
            if n < min_results:
                return (f"rung {rung.level} holds {n} of the MinRungResults={min_results} values it needs "
                        "before it keeps a trial")
            return f"rank {position} of {n} at rung {rung.level} is outside the top 1/{self.eta}"
        work.decide_("continue", trial.trial_id, **facts)
        if self.barrier and trial.budget is not None:
            work.actions.append(RungVerdict(trial.trial_id, trial.attempt, rung.level, trial.budget))
        return None


class Promotion(Hyperband):
    """The promotion variant: trials pause at the rung they were launched or resumed to, and are promoted."""

    def budget(self, bracket: Sequence[Rung]) -> int | None:
        return bracket[0].level

    def after_rungs(self, work: Work, trial: Trial, resource: int, key: float) -> Trial:
        bracket = work.rungs[trial.bracket]
        if self.barrier and trial.budget is not None and resource == trial.budget < bracket[-1].level:
            return self._promote_in_place(work, trial, key)
        return trial

    def _promote_in_place(self, work: Work, trial: Trial, key: float) -> Trial:
        """With the barrier the trial waits at its budget's rung: promote it there, or end it (it will pause)."""
        bracket = work.rungs[trial.bracket]
        j = trial.rung_index - 1
        rung, level = bracket[j], bracket[j].level
        n = len(rung.keys)
        position = rung.rank(key)
        paused = self._best_paused(work)
        promotable = keeps(position, n, self.eta, self.hb.min_rung_results, paused=True)  # as a paused one
        if not promotable or (paused is not None and paused[:2] < (-level, key)):
            work.actions.append(RungVerdict(trial.trial_id, trial.attempt, level, level))  # ends here: it pauses
            return trial
        to_level = bracket[j + 1].level
        work.actions.append(RungVerdict(trial.trial_id, trial.attempt, level, to_level))
        work.decide_("promote", trial.trial_id, f"to rung {to_level} in place", rung=level, value=work.raw(key),
                     cutoff=work.raw(rung.cutoff(self.eta, paused=True)), rank=position, n=n)
        return evolve(trial, budget=to_level)

    def completed(self, work: Work, index: int, trial: Trial) -> bool:
        if self._missed_in_place_promotion(work, trial):
            trial = evolve(trial, status=TrialStatus.PENDING, attempt=trial.attempt + 1, end_time=None)
            work.trials = work.trials.set(index, trial)
            work.job_ended(index, trial)
            work.actions.append(work.launch_action(trial))
            message = f"to rung {trial.budget} as a new job: its job ended before the in-place promotion reached it"
            work.decide_("promote", trial.trial_id, message, rung=trial.resource, value=trial.last_value)
            return True
        pausing = (trial.status is TrialStatus.IN_PROGRESS and trial.budget is not None
                   and trial.budget < self.hb.max_resource and trial.rung_index > 0 and trial.resource >= trial.budget)
        if not pausing:
            return False
        j = trial.rung_index - 1
        rung = work.rungs[trial.bracket][j]
        key = work.objective.key(trial.last_value if trial.last_value is not None else math.nan)
        work.rungs[trial.bracket][j] = evolve(rung, paused=rung.paused.insert((key, index)))
        work.trials = work.trials.set(index, evolve(trial, status=TrialStatus.PAUSED))
        work.active.remove(index)
        work.job_ended(index, trial)
        work.decide_("pause", trial.trial_id, rung=rung.level, value=trial.last_value)
        return True

    def _missed_in_place_promotion(self, work: Work, trial: Trial) -> bool:
        """With the barrier: the job ended waiting at the rung below the budget it was promoted to."""
        if not (self.barrier and trial.status is TrialStatus.IN_PROGRESS) or trial.budget is None:
            return False
        bracket = work.rungs[trial.bracket]
        j = trial.rung_index - 1
        return 0 <= j < len(bracket) - 1 and trial.resource == bracket[j].level and trial.budget == bracket[j + 1].level

    def _best_paused(self, work: Work) -> tuple[int, float, int, int] | None:
        """The paused trial a freed slot promotes: (-level, key, bracket, rung index) of the best, or None."""
        best: tuple[int, float, int, int] | None = None
        for b, bracket in enumerate(work.rungs):
            for j in range(len(bracket) - 1):
                rung = bracket[j]
                if not rung.paused:
                    continue
                key = rung.paused[0][0]
                if keeps(rung.rank(key), len(rung.keys), self.eta, self.hb.min_rung_results, paused=True):
                    candidate = (-rung.level, key, b, j)
                    best = candidate if best is None or candidate < best else best
        return best

    def promote(self, work: Work) -> bool:
        best = self._best_paused(work)
        if best is None:
            return False
        _, key, b, j = best
        rung = work.rungs[b][j]
        first = rung.paused[0]
        index = first[1]
        work.rungs[b][j] = evolve(rung, paused=rung.paused.remove(first))
        to_level = work.rungs[b][j + 1].level
        trial = evolve(work.trials[index], status=TrialStatus.PENDING, attempt=work.trials[index].attempt + 1)
        trial = evolve(trial, budget=to_level, end_time=None)
        work.trials = work.trials.set(index, trial)
        work.active.append(index)
        work.actions.append(work.launch_action(trial))
        work.decide_("promote", trial.trial_id, f"to rung {to_level}", rung=rung.level, value=work.raw(key),
                     cutoff=work.raw(rung.cutoff(self.eta, paused=True)), rank=rung.rank(key), n=len(rung.keys))
        return True


def variant_for(config: TuningConfig) -> Variant:
    """The variant a tuning config asks for."""
    hb = config.hyperband if config.strategy is Strategy.HYPERBAND else None
    if hb is None:
        return FullBudget(config)
    return Promotion(config, hb) if hb.variant is HyperbandVariant.PROMOTION else Stopping(config, hb)
