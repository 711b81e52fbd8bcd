"""``hb-tune``: validate, plan, simulate and run tuning requests from the command line.

    hb-tune validate FILE [--amt]      exit 0, or exit 2 with the error (--amt: also where AMT would refuse it)
    hb-tune plan FILE [--latency PROFILE] [--resource-seconds S]
                                       rung levels, brackets, trials, total resource, latency cost
    hb-tune simulate FILE [--curve mlp|quadratic|constant] [--workers N] [--seed S] [--json]
    hb-tune run FILE [--backend local] [--job-dir DIR] [--poll-interval S] [--name NAME]
                     [--gpus-per-trial N [--gpu-devices 0,1,...]]
    hb-tune run FILE --backend sagemaker [--state-uri S3URI] [--endpoint-url URL] [--region R]
                     [--metric-source live|logs|cloudwatch] [--metric-period S] [--end-poll-seconds S]
                     [--poll-interval S] [--name NAME]
    hb-tune show DIR|S3URI             the summary of the tuning job there (or the newest job under DIR)
    hb-tune package DIR --s3 S3URI [--channel NAME=DIR ...] [--create-bucket]
                                       upload DIR as S3URI/sourcedir.tar.gz and each channel under S3URI/data/NAME/
    hb-tune emulator [--port P]        moto and the SageMaker emulator on 127.0.0.1 until Ctrl-C
                                       (``python -m hb_emulator``; the ``emulator`` extra)

FILE is a ``CreateHyperParameterTuningJob`` request body in JSON. ``run`` tunes
for real. With the local backend, trials are local processes (relative paths
in the request resolve against FILE's directory) and the state lives in the
job directory (default ``./hyperband_runs/<job name>``); ``--gpus-per-trial N``
gives each running trial N GPUs of its own (``CUDA_VISIBLE_DEVICES``, from
``--gpu-devices`` or the GPUs detected; :mod:`hb_core.backends.devices`). With the SageMaker
backend, trials are SageMaker training jobs, rung metrics come from the
training jobs' CloudWatch Logs (default: every printed line, exact, pushed by
a Live Tail stream, a round as soon as one arrives; ``logs`` polls them) or
from CloudWatch metrics (exact periods only, else the logs: see
:mod:`hb_core.backends.sagemaker`), rounds run every 5 s otherwise (a job due
to end is described every ``--end-poll-seconds``, 5, and its end starts a
round; ``inf`` turns that off), and the state lives
in S3 (default ``<S3OutputPath>/<job name>/hyperband``); credentials and
region come from boto's usual chain (environment, profile, instance role,
``AWS_ENDPOINT_URL``), ``--endpoint-url`` sends every AWS call elsewhere (the
project's emulator, say). Either way, running the same command again
reattaches to the tuning job where it was (its running training jobs are
adopted, never started twice), and warm-start parents (``WarmStartConfig``)
are read from their sibling job directories or state prefixes. Ctrl-C (or
SIGTERM) aborts the tuning job: every running trial is stopped, their ends
are awaited (at most a minute), the state ends Failed with the reason, and
the command exits 130 (143).

``plan --latency PROFILE --resource-seconds S`` also says what the platform's
latency costs a trial stopped at its first rung, and warns when the first rung
is shorter than that (``S``: seconds one resource unit trains).

Size: about 450 lines, over the house's ~400, because it is one thing, the
command line: the parser (its help texts are the commands' documentation) and
one short function per command. What the commands compute lives elsewhere:
:mod:`hb_core.plan`, :mod:`hb_core.simulate`, :mod:`hb_core.report`, and the
wiring of ``run`` in :mod:`hb_core.wiring`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hb_core.backends.local import model_dir, settle_local
from hb_core.backends.stores import LocalFileStore
from hb_core.config import TuningConfig
from hb_core.curves import CURVES, make_curve
from hb_core.errors import ConfigError, HyperbandError
from hb_core.latency import DEFAULT_SAGEMAKER_PROFILE, PROFILES
from hb_core.naming import default_s3_state_uri, model_artifacts_uri, parent_state_uris, training_job_name
from hb_core.plan import nominal_resource_per_trial, plan_text
from hb_core.protocols import Backend, Closable
from hb_core.report import rung_table, summary, summary_text
from hb_core.request import load_request
from hb_core.runner import Tuner
from hb_core.simulate import SimulationResult, simulate
from hb_core.state import TuningState, TuningStatus
from hb_core.wiring import BACKENDS, build_store, build_tuner

__all__ = ["main", "nominal_resource_per_trial", "plan_text"]  # the plan's two from hb_core.plan

EXIT_INVALID = 2
#: Seconds between rounds on SageMaker: a rung decision lands about half of it after the line is printed. Each
#: round makes one GetLogEvents call per running job (the Logs read quota is about 25 calls a second per account
#: and region: 100 running jobs at 5 s use 20), one ListTrainingJobs call, and one state write to S3.
SAGEMAKER_POLL_INTERVAL = 5.0
ABORT_TIMEOUT = 60.0  # seconds an interrupted run waits for its stopped trials to end
TABLE_EVERY = 20  # rounds between two rung tables in the log of ``run``
#: What ``hb-tune emulator`` needs beyond the core: the ``hb_emulator`` package and moto's server.
EMULATOR_INSTALL = "pip install 'airflow-hyperband[emulator]'"

log = logging.getLogger(__name__)


def load_config(path: str) -> TuningConfig:
    """The request in the file ``path`` (:func:`hb_core.request.load_request`), validated."""
    return TuningConfig.from_dict(load_request(Path(path), field="<file>"))


def _trace_text(result: SimulationResult, limit: int = 12) -> str:
    trace = result.trace
    step = max(1, len(trace) // limit)
    shown = trace[::step]
    if trace and shown[-1] != trace[-1]:
        shown.append(trace[-1])
    return "\n".join(f"  t={time:10.1f} s  best={value:.6g}" for time, value in shown)


def _simulate(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    objective, cost = make_curve(args.curve, config.space, seed=args.seed or 0)
    result = simulate(config, objective, cost=cost, n_workers=args.workers, seed=args.seed)
    if args.json:
        body = summary(result.state)
        body["elapsed_seconds"] = result.elapsed
        body["trace"] = result.trace
        print(json.dumps(body, indent=2))
        return 0
    print(summary_text(result.state))
    print(f"  virtual time    {result.elapsed:.1f} s on {result.state.config.resource_limits.max_parallel_training_jobs}"
          f" workers ({args.curve} curve)")
    if result.state.rungs:
        print("Rungs:")
        print(rung_table(result.state))
    print("Best so far:")
    print(_trace_text(result))
    return 0


def _run(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    name = args.name or config.name
    if not name:
        rule = "`a tuning job name is given (in FILE or with --name)` must hold"
        raise ConfigError("HyperParameterTuningJobName", rule, None)
    misplaced = ("--state-uri", args.state_uri) if args.backend == "local" else ("--job-dir", args.job_dir)
    if args.backend != "local" and args.gpus_per_trial is not None:
        misplaced = ("--gpus-per-trial", args.gpus_per_trial)
    if misplaced[1] is not None:
        raise ConfigError(misplaced[0], f"`{misplaced[0]} is not given with --backend {args.backend}` must hold",
                          misplaced[1],
                          hint="--job-dir and --gpus-per-trial are for the local backend, --state-uri for sagemaker")
    base_dir: Path | None = None
    if args.backend == "local":
        job_dir = Path(args.job_dir) if args.job_dir else Path("hyperband_runs") / name
        where = str(job_dir)
        names = config.warm_start.parent_tuning_job_names if config.warm_start else ()
        parents = [str(job_dir.parent / parent) for parent in names]  # sibling job directories
        options = {"gpus_per_trial": args.gpus_per_trial,
                   "gpu_devices": args.gpu_devices.split(",") if args.gpu_devices is not None else None}
        base_dir = Path(args.file).resolve().parent
    else:
        from hb_core.backends.s3_store import parse_s3_uri
        from hb_core.backends.sagemaker import METRIC_SOURCES, check_end_poll_seconds

        if args.metric_source not in METRIC_SOURCES:
            raise ConfigError("--metric-source", f"`--metric-source in {METRIC_SOURCES}` must hold",
                              args.metric_source)
        check_end_poll_seconds(args.end_poll_seconds, "--end-poll-seconds")

        where = args.state_uri or default_s3_state_uri(config, name)
        parse_s3_uri(where, "--state-uri")  # the SageMaker backend's state is in S3
        default = None if args.state_uri else (lambda parent: default_s3_state_uri(config, parent))
        parents = parent_state_uris(config, where, default)
        options = {"metric_source": args.metric_source, "metric_period": args.metric_period,
                   "end_poll_seconds": args.end_poll_seconds}

    def build() -> Tuner:  # in the event loop: the backend's tasks and clients belong to it
        return build_tuner(config, args.backend, job_name=name, state_uri=where, parent_state_uris=parents,
                           base_dir=base_dir, clients=lambda: _aws_clients(args), poll_interval=args.poll_interval,
                           table_every=TABLE_EVERY, state_field="--state-uri", backend_options=options)

    try:
        return asyncio.run(_drive(build, where))
    except (Interrupted, KeyboardInterrupt) as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        print(f"interrupted: the running trials were stopped and the tuning job ended Failed; its state is in "
              f"{where}", file=sys.stderr)
        return 128 + int(signum)


def _aws_clients(args: argparse.Namespace) -> Any:
    """aiobotocore clients from boto's credential chain, ``--region`` and ``--endpoint-url`` (for every service)."""
    from hb_core.backends.aws import AioSessionClients

    return AioSessionClients(region_name=args.region,
                             endpoint_urls={"*": args.endpoint_url} if args.endpoint_url else None)


async def _drive(build: Callable[[], Tuner], where: str) -> int:
    """Run the tuning job to its end (the one loop of every backend), print the result, return the exit code.

    Ctrl-C (SIGINT) or SIGTERM aborts it through :meth:`Tuner.abort`, the one
    abort path (the Airflow operator's ``on_kill`` takes it too): every running
    trial is stopped, their ends are awaited for at most ``ABORT_TIMEOUT``
    seconds, and the state ends Failed with the reason; then
    :class:`Interrupted` carries the signal to :func:`main` (exit 128 + its
    number).
    """
    async with build() as tuner:
        stored = await tuner.store.load()
        if stored is not None and stored.config != tuner.config:
            rule = f"`FILE holds the request of the tuning job in {where}` must hold"
            raise ConfigError("<file>", rule, stored.job_name, hint="give another --job-dir, --state-uri or --name "
                                                                    "for a new tuning job")
        state = await _run_or_abort(tuner)
        best = _best(state)
        model = await tuner.backend.model_uri(*best) if best else None
    _print_result(state, where, model, _notes(tuner.backend))
    return 0 if state.status is TuningStatus.COMPLETED else 1


async def _run_or_abort(tuner: Tuner) -> TuningState:
    """:meth:`Tuner.run`, or on SIGINT/SIGTERM :meth:`Tuner.abort` and :class:`Interrupted` (:func:`_drive`)."""
    task = asyncio.current_task()
    assert task is not None
    received: list[int] = []

    def on_signal(number: int) -> None:
        received.append(number)
        task.cancel()

    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for number in signals:  # our handlers, so a signal cancels the loop wherever it is waiting
        loop.add_signal_handler(number, on_signal, number)
    try:
        return await tuner.run()
    except asyncio.CancelledError:
        if not received:
            raise
        while task.uncancel():  # abort must run to its end: this cancellation is handled here
            pass
        for number in signals:  # a second Ctrl-C must not cut the abort short: it ends with its own bound
            loop.add_signal_handler(number, _again, number)
        reason = f"the tuning job was interrupted ({'Ctrl-C' if received[0] == signal.SIGINT else 'SIGTERM'})"
        log.warning("interrupted: stopping every running trial (waiting at most %.0f s)", ABORT_TIMEOUT)
        await tuner.abort(reason, timeout=ABORT_TIMEOUT)  # it warns itself when a stop has not landed in time
        raise Interrupted(received[0]) from None
    finally:
        for number in signals:
            loop.remove_signal_handler(number)


def _notes(backend: Backend) -> Sequence[str]:
    """What the SageMaker backend noted about its metrics (:attr:`SageMakerBackend.notes`); others note nothing."""
    if "hb_core.backends.sagemaker" not in sys.modules:  # not loaded: not a SageMaker backend
        return ()
    from hb_core.backends.sagemaker import SageMakerBackend

    return backend.notes if isinstance(backend, SageMakerBackend) else ()


def _again(number: int) -> None:
    log.warning("%s again: the running trials are being stopped; waiting at most %.0f s",
                signal.Signals(number).name, ABORT_TIMEOUT)


class Interrupted(Exception):
    """The tuning job was aborted by a signal (``signum``); its trials were stopped."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _best(state: TuningState) -> tuple[str, int] | None:
    best = state.best_trial()
    return (best.trial_id, best.attempt) if best is not None else None


def _print_result(state: TuningState, where: str, model: object | None, notes: Sequence[str] = ()) -> None:
    """The summary (with the backend's ``notes`` on its metrics), the rung table, and where the best trial's job
    and model are."""
    print(summary_text(state))
    for note in notes:
        print(f"  note            {note}")
    if state.rungs:
        print("Rungs:")
        print(rung_table(state))
    best = _best(state)
    if best is not None:
        print(f"  best job        {training_job_name(state.job_name, *best)}")
        print(f"  model           {model}")
    print(f"  state           {where}")


def _show(args: argparse.Namespace) -> int:
    if args.dir.startswith("s3://"):
        return asyncio.run(_show_s3(args))
    root = Path(args.dir)
    candidates = [root / LocalFileStore.STATE] if (root / LocalFileStore.STATE).exists() else sorted(
        root.glob(f"*/{LocalFileStore.STATE}"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise ConfigError("<dir>", f"`a tuning job directory (holding {LocalFileStore.STATE})` must be given", str(root))
    job_dir = candidates[-1].parent
    state = asyncio.run(settle_local(job_dir))  # a job left Stopping whose trials all ended is finished first
    assert state is not None
    best = _best(state)  # no backend here (the state may be a simulation's): the model's place by its rule
    _print_result(state, str(job_dir), model_dir(job_dir, *best) if best else None)
    return 0 if state.status is not TuningStatus.FAILED else 1


async def _show_s3(args: argparse.Namespace) -> int:
    from hb_core.backends.sagemaker import settle_sagemaker

    clients = _aws_clients(args)
    store = build_store(args.dir, lambda: clients, field="--state-uri")
    try:
        state = await settle_sagemaker(store, clients)  # a job left Stopping whose jobs all ended is finished first
    finally:
        if isinstance(store, Closable):
            await store.close()
    if state is None:
        raise ConfigError("<dir>", f"`a tuning job's state prefix (holding {LocalFileStore.STATE})` must be given",
                          args.dir)
    best = _best(state)
    _print_result(state, args.dir, model_artifacts_uri(state.config, state.job_name, *best) if best else None)
    return 0 if state.status is not TuningStatus.FAILED else 1


def _validate(args: argparse.Namespace) -> int:
    """Exit 0 on a valid request; with ``--amt``, exit 2 naming each place AMT itself would refuse it."""
    config = load_config(args.file)
    print(f"{args.file}: valid {config.strategy.value} tuning request")
    if not args.amt:
        return 0
    findings = config.amt_findings()
    for finding in findings:
        print(f"AMT would refuse it: {finding}", file=sys.stderr)
    if findings:
        return EXIT_INVALID
    print(f"{args.file}: within SageMaker AMT's quotas and API")
    return 0


def _package(args: argparse.Namespace) -> int:
    from hb_core.backends.package import package  # boto3: loaded for this command only

    channels: dict[str, Path] = {}
    for item in args.channel:
        name, _, directory = item.partition("=")
        if not name or not directory:
            raise ConfigError("--channel", "`--channel NAME=DIR` must hold", item)
        channels[name] = Path(directory)
    uploaded = package(Path(args.dir), args.s3, channels, create_bucket=args.create_bucket, region=args.region,
                       endpoint_url=args.endpoint_url)  # an AWS error: a BackendError, which main prints
    for each in uploaded:
        print(f"{each.uri}  {each.files} files, {each.size} bytes  ({each.role})")
    return 0


def _emulate(arguments: list[str]) -> int:
    """``hb-tune emulator ARGS``: ``python -m hb_emulator ARGS``, when the ``emulator`` extra is installed.

    The one place the core reaches for the emulator (a package of its own, a test and demo tool): here, lazily;
    without it, the error names the extra to install.
    """
    try:
        from hb_emulator.__main__ import parser, serve
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] != "hb_emulator":
            raise
        raise HyperbandError(f"`hb-tune emulator` needs the emulator extra, which is not installed ({exc}): "
                             f"{EMULATOR_INSTALL}") from exc
    return serve(parser("hb-tune emulator").parse_args(arguments))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hb-tune", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log every decision")
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="check a CreateHyperParameterTuningJob request")
    validate.add_argument("file")
    validate.add_argument("--amt", action="store_true",
                          help="also report where SageMaker AMT itself would refuse the request (its quotas, "
                               "our extension keys); exit 2 if anywhere")
    plan = commands.add_parser("plan", help="print rung levels, brackets and the resource a job may spend")
    plan.add_argument("file")
    plan.add_argument("--latency", default=None, help=f"a latency profile: {', '.join(PROFILES)} (default: "
                      f"{DEFAULT_SAGEMAKER_PROFILE} for a SageMaker training job definition, else local)")
    plan.add_argument("--resource-seconds", type=float, default=None,
                      help="seconds one resource unit (an epoch) trains, to check MinResource against the latency")
    sim = commands.add_parser("simulate", help="run the tuning job in virtual time on a built-in curve family")
    sim.add_argument("file")
    sim.add_argument("--curve", choices=CURVES, default="mlp")
    sim.add_argument("--workers", type=int, default=None, help="default: MaxParallelTrainingJobs")
    sim.add_argument("--seed", type=int, default=None, help="default: the request's RandomSeed")
    sim.add_argument("--json", action="store_true", help="print the summary as JSON")
    run = commands.add_parser("run", help="run the tuning job for real: local processes or SageMaker training jobs")
    run.add_argument("file")
    run.add_argument("--backend", choices=sorted(BACKENDS), default="local",
                     help="where trials run (default: local)")
    run.add_argument("--job-dir", default=None, help="local: state and trials (default: ./hyperband_runs/<job name>)")
    run.add_argument("--state-uri", default=None,
                     help="sagemaker: s3://bucket/prefix of the state (default: <S3OutputPath>/<job name>/hyperband)")
    run.add_argument("--metric-source", default="live",
                     help="sagemaker: live (default: each printed line, pushed by a CloudWatch Logs Live Tail "
                          "stream; polls the logs when StartLiveTail is refused), logs (each printed line, polled) "
                          "or cloudwatch (exact periods only: needs ResourceMetricName, falls back to the logs)")
    run.add_argument("--metric-period", type=int, default=60,
                     help="sagemaker, cloudwatch: seconds per CloudWatch period (default 60, standard resolution)")
    run.add_argument("--end-poll-seconds", type=float, default=5.0, metavar="S",
                     help="sagemaker, live: describe the jobs due to end every S seconds while waiting, so that an "
                          "end starts a round at once (default 5; inf: ends are seen at the next round)")
    run.add_argument("--poll-interval", type=float, default=None,
                     help="seconds between decision rounds (default: 1 local, 5 sagemaker)")
    run.add_argument("--name", default=None, help="tuning job name (default: HyperParameterTuningJobName)")
    run.add_argument("--gpus-per-trial", type=int, default=None, metavar="N",
                     help="local: N GPUs of its own per running trial (CUDA_VISIBLE_DEVICES)")
    run.add_argument("--gpu-devices", default=None, metavar="LIST",
                     help="local, with --gpus-per-trial: the GPUs to share, e.g. 0,1,2,3 (default: detected)")
    show = commands.add_parser("show", help="print the summary of a tuning job from its state directory or S3 URI")
    show.add_argument("dir")
    pack = commands.add_parser("package", help="upload a script-mode source directory (sourcedir.tar.gz) and its "
                                               "data channels to S3")
    pack.add_argument("dir", help="the source directory (holding the entry point, sagemaker_program)")
    pack.add_argument("--s3", required=True, help="s3://bucket/prefix: gets sourcedir.tar.gz and data/<channel>/")
    pack.add_argument("--channel", action="append", default=[], metavar="NAME=DIR",
                      help="a data channel's local directory, uploaded under <prefix>/data/NAME/ (repeatable)")
    pack.add_argument("--create-bucket", action="store_true", help="create the bucket when it does not exist")
    # Its options are hb_emulator's own (main passes them on): the core does not import the emulator to parse.
    commands.add_parser("emulator", add_help=False,
                        help="serve the SageMaker emulator and moto on 127.0.0.1 until Ctrl-C (the emulator extra)")
    for command in (run, show, pack):
        command.add_argument("--endpoint-url", default=None, help="sagemaker/S3: one endpoint for every AWS call")
        command.add_argument("--region", default=None, help="sagemaker/S3: AWS region (default: boto's chain)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "emulator":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    running = args.command == "run"  # prints one line per decision as the tuning job goes
    if args.command != "emulator":  # the emulator sets up its logging itself (its own --verbose)
        logging.basicConfig(level=logging.INFO if args.verbose or running else logging.WARNING,
                            format="%(asctime)s %(message)s" if running else "%(message)s", datefmt="%H:%M:%S")
    if running and not args.verbose:
        logging.getLogger("hb_core.backends").setLevel(logging.WARNING)
    try:
        if args.command == "validate":
            return _validate(args)
        if args.command == "plan":
            print(plan_text(load_config(args.file), args.latency, args.resource_seconds))
            return 0
        if args.command == "run":
            if args.poll_interval is None:
                args.poll_interval = 1.0 if args.backend == "local" else SAGEMAKER_POLL_INTERVAL
            return _run(args)
        if args.command == "show":
            return _show(args)
        if args.command == "package":
            return _package(args)
        if args.command == "emulator":
            return _emulate(rest)
        return _simulate(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except HyperbandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
