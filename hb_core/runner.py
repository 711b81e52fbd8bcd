"""The one tuning loop: poll -> decide -> checkpoint -> act -> wait.

Every place that runs a tuning job drives this loop: ``hb-tune run`` (real
clock), the Airflow controller trigger (real clock) and
:func:`hb_core.simulate` (virtual clock). It takes a backend, a state store
and a clock, and does no I/O of its own.

The state is checkpointed *before* the round's actions are carried out, so the
store always holds the intent: after a crash, :meth:`Tuner.start` reloads it,
lets the backend reconcile (adopting jobs that did start), and reissues only
what is still outstanding (:func:`hb_core.controller.outstanding_actions`).
Backends make launch and stop idempotent, so nothing is launched twice and
nothing is left running.

When a round runs (:meth:`Tuner.run`): a backend that can push
(:class:`~hb_core.protocols.EventSource`, the local backend) wakes the
runner as soon as an event is ready, so a rung's value is decided on when it
is printed, not at the next tick; ``poll_interval`` is then only the longest
wait. A virtual-time backend names the time of its next event
(``next_event_time``). A backend that must be polled (SageMaker) is polled
every ``poll_interval``, and every ``poll_interval / RUNG_POLL_DIVISOR`` from
the time a running trial is predicted, from its own epoch rate, to reach its
next rung (:func:`rung_due_time`) until the value arrives.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Sequence

from hb_core.backends.stores import StateConflict
from hb_core.config import TuningConfig
from hb_core.controller import abort, decide, new_state, outstanding_actions
from hb_core.errors import ConfigError, HyperbandError
from hb_core.events import Action, Event, Finish, Launch, Resume, RungVerdict, Stop
from hb_core.protocols import Backend, Clock, Closable, EventSource, StateStore, VerdictSink
from hb_core.report import rung_table
from hb_core.state import PRICE_KEY, TrialStatus, TuningState, TuningStatus
from hb_core.strategies import Sampler, make_sampler, seed_rungs, warm_prior
from hb_core.strategies.base import fallbacks_of

__all__ = ["RUNG_POLL_DIVISOR", "Tuner", "rung_due_time"]

log = logging.getLogger(__name__)

#: A polled backend whose trial is due at a rung is polled this many times as often until the value arrives.
RUNG_POLL_DIVISOR = 4


def rung_due_time(state: TuningState) -> float | None:
    """When the first running trial is predicted to report the value of its next rung, or None.

    A trial's prediction is its last point's time plus the resource left to
    the rung times its own last epoch's duration (the gap between its last
    two points); a trial with fewer than two points has no prediction. Pure:
    a function of the state alone. O(running trials).
    """
    if not state.rungs:
        return None
    due: float | None = None
    for index in state.active:
        trial = state.trials[index]
        bracket = state.rungs[trial.bracket]
        if trial.status is not TrialStatus.IN_PROGRESS or len(trial.points) < 2 or trial.rung_index >= len(bracket):
            continue
        (r0, _, t0), (r1, _, t1) = trial.points[-2], trial.points[-1]
        if r1 <= r0 or t1 < t0:
            continue
        when = t1 + (bracket[trial.rung_index].level - r1) * (t1 - t0) / (r1 - r0)
        due = when if due is None else min(due, when)
    return due


class Tuner:
    """Drives one tuning job.

    ``poll_interval`` is the longest wait between rounds (seconds); with a
    virtual-time backend it may be ``math.inf``: the runner then wakes exactly
    at the backend's next event. ``table_every`` is how many rounds pass
    between two rung tables in the log (0: never). ``offload`` runs each
    decision in a worker thread, so that a long decision (a model fit) never
    blocks an event loop shared with others (the Airflow triggerer).
    ``parents`` are the state stores of the ``WarmStartConfig`` parent jobs, in
    its order: their trials seed the sampler's model and, for
    ``IdenticalDataAndAlgorithm``, the new job's rungs. They are read once,
    when the job is created, and what they teach is copied into its state
    (``TuningState.prior``, the seeded rungs): a restart reads the checkpoint
    alone. A checkpoint written before ``TuningState.prior`` existed reads
    them at its next start, once. ``sampler`` (default: the config's, built
    from the state's prior) proposes the configurations; the reasons it falls
    back to random proposals are logged once each.

    ``async with tuner:`` closes the backend and the closable stores on the
    way out (:meth:`close`); the training jobs keep running. Outside the
    simulator, tuners are built by :func:`hb_core.wiring.build_tuner`.
    """

    MAX_CONFLICTS = 5

    def __init__(
        self,
        config: TuningConfig,
        backend: Backend,
        store: StateStore,
        clock: Clock,
        *,
        job_name: str | None = None,
        seed: int | None = None,
        poll_interval: float = 30.0,
        sampler: Sampler | None = None,
        table_every: int = 0,
        offload: bool = False,
        parents: Sequence[StateStore] = (),
    ) -> None:
        self.config = config
        self.backend = backend
        self.store = store
        self.clock = clock
        self.job_name = job_name
        self.seed = seed
        self.poll_interval = poll_interval
        self.sampler = sampler
        self._own_sampler = sampler is None  # then built from the state's prior, and rebuilt when that changes
        self._sampler_prior: object = None
        self.parents = parents
        self.table_every = table_every
        self.offload = offload
        self.state: TuningState | None = None
        self._pushes = isinstance(backend, EventSource)

    async def __aenter__(self) -> Tuner:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Release the backend's and the (:class:`~hb_core.protocols.Closable`) stores' resources (clients,
        tails); ``async with tuner:`` calls it.

        Training jobs keep running: closing is not stopping (:meth:`abort` stops them).
        """
        try:
            await self.backend.close()
        finally:
            for store in (self.store, *self.parents):
                if isinstance(store, Closable):
                    await store.close()

    async def start(self) -> TuningState:
        """Create the tuning job, or reattach to the one in the store; run the first round."""
        stored = await self.store.load()
        if stored is None:
            state = new_state(self.config, now=self.clock.now(), job_name=self.job_name, seed=self.seed)
            parents = await self._load_parents()
            if parents:
                state = seed_rungs(state, parents).with_changes(prior=warm_prior(self.config, parents))
            state = self._with_price(state)
            self._revision: int | None = None
            events: list[Event] = []
            log.info("tuning job %s: created (%s)", state.job_name, self.config.strategy.value)
        else:
            state, self._revision = stored, stored.revision
            if state.prior is None and self.parents and not state.done:  # a checkpoint older than the field
                state = state.with_changes(prior=warm_prior(self.config, await self._load_parents()))
            events = [] if stored.done else await self.backend.reconcile(stored)
            log.info("tuning job %s: reattached at revision %s, %d events while away",
                     state.job_name, stored.revision, len(events))
        self.state = state
        if state.done:
            return state
        return await self._round(events, reissue=True)

    def _with_price(self, state: TuningState) -> TuningState:
        """Record the backend's price per job-second, which ``MaxCost`` and the cost summary need."""
        price = self.backend.price_per_second()
        if price is None:
            if self.config.extensions.max_cost is not None:
                raise ConfigError("TuningJobExtensions.MaxCost", "`the backend knows the instance price (the "
                                  "SageMaker backend's price_table)` must hold", self.config.extensions.max_cost)
            return state
        return state.with_changes(extra={**state.extra, PRICE_KEY: price})

    async def _load_parents(self) -> list[TuningState]:
        states = []
        for position, store in enumerate(self.parents):
            parent = await store.load()
            if parent is None:
                raise ConfigError(f"WarmStartConfig.ParentHyperParameterTuningJobs[{position}]",
                                  "a parent tuning job must have a saved state", store)
            states.append(parent)
        return states

    async def step(self) -> TuningState:
        """One round: poll the backend, decide, checkpoint, act."""
        return await self._round(await self.backend.poll())

    async def run(self) -> TuningState:
        """Run the tuning job to its end and return the final state."""
        state = self.state if self.state is not None else await self.start()
        while not state.done:
            wake = self._wake_time()
            if self._pushes:  # a round as soon as an event is ready; at ``wake`` at the latest
                await self.backend.wait_for_event(max(0.0, wake - self.clock.now()))  # type: ignore[attr-defined]
            else:
                await self.clock.sleep_until(wake)
            state = await self.step()
        return state

    def _wake_time(self) -> float:
        now = self.clock.now()
        wake = now + self.poll_interval
        hint = self.backend.next_event_time()
        if hint is not None:
            wake = min(wake, hint)
        elif not self._pushes and math.isfinite(self.poll_interval) and self.state is not None:
            due = rung_due_time(self.state)
            if due is not None:
                wake = min(wake, max(due, now + self.poll_interval / RUNG_POLL_DIVISOR))
        if math.isinf(wake):
            raise HyperbandError("the backend has no pending event and poll_interval is infinite: nothing would wake")
        return wake

    async def abort(self, reason: str, *, timeout: float = 20.0) -> TuningState | None:
        """Stop every running job (a user killed the task) and wait, at most ``timeout`` seconds, for them to end.

        The first checkpoint records the intent (status Stopping, every active
        trial Stopping with its reason) before any stop is sent, so a controller
        that is cancelled or dies mid-abort leaves a state whose next reader
        finishes the job: a retry (:meth:`start` reissues the stops), another
        ``abort`` (it stops again what has not ended), or :meth:`settle`.
        Safe against a concurrent controller (its checkpoint wins, the abort is
        decided again on top of it) and repeatable: a second abort of a stopping
        job reissues its stops, of an ended job does nothing. Returns the state
        reached (terminal unless a stop has not landed within ``timeout``), or
        None when the store holds no tuning job (nothing ever started).
        """
        for _ in range(self.MAX_CONFLICTS):
            stored = await self.store.load()
            if stored is None:
                return None
            if stored.done:
                self.state, self._revision = stored, stored.revision
                return stored
            if self.state is None or self.state.revision != stored.revision:
                self.state, self._revision = stored, stored.revision
                events = await self.backend.reconcile(stored)  # adopt the jobs, to stop them and see them end
            else:
                events = await self.backend.poll()
            state, actions = abort(stored, reason, self.clock.now(), events)
            try:
                await self._commit(state)
                break
            except StateConflict as exc:
                log.warning("tuning job %s: %s; aborting on top of its state", stored.job_name, exc)
                self.state = None
        else:
            raise HyperbandError(f"tuning job {self.job_name or ''}: state kept changing under the abort "
                                 f"({self.MAX_CONFLICTS} conflicts in a row)")
        self._log_round(state)
        await self._act(actions)
        deadline = self.clock.now() + timeout
        while not state.done and self.clock.now() < deadline:
            await self.clock.sleep_until(min(deadline, self.clock.now() + min(self.poll_interval, 1.0)))
            state = await self.step()
        if not state.done:
            log.warning("tuning job %s: %d training jobs had not ended %.0f s after their stop; the next "
                        "controller or reader of the state finishes the job", state.job_name, len(state.active),
                        timeout)
        return state

    async def settle(self) -> TuningState | None:
        """Finish a stopping job whose training jobs have all ended, without acting: for a reader.

        A job left Stopping (its controller cancelled or dead mid-abort) is
        reconciled with the backend; when every active trial's job has ended,
        the round that records it (the job then ends, Failed or Completed as it
        was stopping) is checkpointed, compare-and-set, so a live controller's
        own checkpoint wins. While a job still runs, its stop is sent again
        (idempotent in every backend): a controller that died between
        checkpointing Stopping and sending its stops would otherwise leave the
        jobs training, and billed, to their end. Nothing is launched. One call
        per Tuner (a reader builds one each time it looks). Returns the state
        (unchanged when not stopping, or a job is still running), None when
        there is none.
        """
        stored = await self.store.load()
        if stored is None or stored.status is not TuningStatus.STOPPING:
            return stored
        self.state, self._revision = stored, stored.revision
        events = await self.backend.reconcile(stored)
        state, _ = await self._decide(events)
        if not state.done:
            await self._act([a for a in outstanding_actions(state) if isinstance(a, Stop)])
            return stored
        try:
            await self._commit(state)
        except StateConflict:
            return await self.store.load()
        self._log_round(state)
        return state

    async def _decide(self, events: Sequence[Event]) -> tuple[TuningState, tuple[Action, ...]]:
        assert self.state is not None, "start() runs the first round"
        if self._own_sampler and (self.sampler is None or self._sampler_prior is not self.state.prior):
            # The state's prior is the truth (a state reloaded after a conflict may carry another one).
            self.sampler = make_sampler(self.config, prior=self.state.prior or ())
            self._sampler_prior = self.state.prior
        if self.offload:
            result = await asyncio.to_thread(decide, self.state, list(events), self.clock.now(), sampler=self.sampler)
        else:
            result = decide(self.state, list(events), self.clock.now(), sampler=self.sampler)
        for reason in fallbacks_of(self.sampler) if self.sampler is not None else ():
            log.warning("tuning job %s: %s; proposing a random configuration instead", self.state.job_name, reason)
        return result

    async def _commit(self, state: TuningState) -> None:
        await self.store.save(state, self._revision)
        self._revision = state.revision
        await self.store.append_decisions(state.decisions)
        self.state = state

    async def _round(self, events: Sequence[Event], *, reissue: bool = False) -> TuningState:
        for _ in range(self.MAX_CONFLICTS):
            state, actions = await self._decide(events)
            try:
                await self._commit(state)
                break
            except StateConflict as exc:
                # Another controller (an HA duplicate) saved first: adopt its state and decide again.
                # Our undone actions are dropped; whatever it decided is reissued below (idempotently).
                log.warning("tuning job %s: %s; reloading its state", state.job_name, exc)
                stored = await self.store.load()
                assert stored is not None
                self.state, self._revision, reissue = stored, stored.revision, True
        else:
            raise HyperbandError(f"tuning job {self.state.job_name if self.state else ''}: state kept changing "
                                 f"under this controller ({self.MAX_CONFLICTS} conflicts in a row)")
        self._log_round(state)
        if self.table_every and state.revision % self.table_every == 0 and state.rungs:
            log.info("%s rungs:\n%s", state.job_name, rung_table(state))
        if reissue:
            actions = outstanding_actions(state) + tuple(a for a in actions if isinstance(a, Finish))
        await self._act(actions)
        return state

    @staticmethod
    def _log_round(state: TuningState) -> None:
        if log.isEnabledFor(logging.INFO):
            for decision in state.decisions:
                log.info("%s %s", state.job_name, decision.line())

    async def _act(self, actions: Sequence[Action]) -> None:
        for action in actions:
            if isinstance(action, (Launch, Resume)):
                await self.backend.launch(action)
            elif isinstance(action, Stop):
                await self.backend.stop(action.trial_id, action.attempt, action.reason)
            elif isinstance(action, RungVerdict) and isinstance(self.backend, VerdictSink):
                await self.backend.verdict(action)


async def settle_stored(store: StateStore, backend_for: Callable[[TuningState], Backend | None],
                        clock: Clock) -> TuningState | None:
    """For a reader (the dashboard, ``hb-tune show``): the state in ``store``, finished first if it was left
    Stopping with every training job ended, its stops sent again while one runs (:meth:`Tuner.settle`).

    ``backend_for(state)`` makes the backend that reconciles a stopping job
    (None when it cannot: the state is returned as stored); it is made only
    for a stopping job and closed after (with ``store``, whose clients reopen if it is used again). Any other
    state is returned as stored.
    The one path of :func:`hb_core.backends.local.settle_local` and
    :func:`hb_core.backends.sagemaker.settle_sagemaker`.
    """
    state = await store.load()
    if state is None or state.status is not TuningStatus.STOPPING:
        return state
    backend = backend_for(state)
    if backend is None:
        return state
    async with Tuner(state.config, backend, store, clock, job_name=state.job_name) as tuner:
        return await tuner.settle()
