"""``python -m hb_emulator [--port 0] [--moto-endpoint URL] [--work-dir DIR]`` (also ``hb-tune emulator``).

Without ``--moto-endpoint`` it starts a moto server of its own on 127.0.0.1
(a free port; moto's server comes with the ``emulator`` extra) and stops it on
the way out; without ``--work-dir`` the jobs' directories go to a temporary
directory, removed on the way out. Once it serves it prints the endpoint URL
(the first line of stdout, alone), then the environment that points AWS
clients at it (``export AWS_ENDPOINT_URL=...`` with dummy credentials), and
runs until SIGTERM or SIGINT (Ctrl-C), killing the jobs still running, then
stopping moto.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence

from hb_emulator.faults import Faults
from hb_emulator.server import Emulator

#: What AWS clients need to talk to the emulator (the dummy credentials moto accepts).
CLIENT_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def _rates(items: Sequence[str], flag: str) -> dict[str, float]:
    rates: dict[str, float] = {}
    for item in items:
        operation, _, rate = item.partition("=")
        try:
            rates[operation] = float(rate)
        except ValueError:
            raise SystemExit(f"{flag} takes OPERATION=RATE (e.g. DescribeTrainingJob=0.3 or *=0.1), got {item!r}")
    return rates


@contextlib.contextmanager
def moto_server(host: str) -> Iterator[str]:
    """A moto server on ``host`` (a free port) for as long as the block runs; its URL."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        raise SystemExit("the emulator needs moto's server, which the emulator extra installs (pip install "
                         f"'airflow-hyperband[emulator]'), or --moto-endpoint URL of a running one: {exc}") from exc
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address=host, port=0, verbose=False)
    server.start()
    try:
        bound, port = server.get_host_and_port()
        yield f"http://{bound}:{port}"
    finally:
        server.stop()


def parser(prog: str = "python -m hb_emulator") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--moto-endpoint", default=None,
                        help="a running moto server, e.g. http://127.0.0.1:5000 (default: start one on 127.0.0.1)")
    parser.add_argument("--work-dir", default=None, help="where the jobs' directories go (default: a temporary one)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--tick", type=float, default=0.05, help="seconds between two looks at a running job")
    parser.add_argument("--stage-seconds", type=float, default=0.0, help="how long Starting and Downloading last")
    parser.add_argument("--hold", action="store_true", help="run no processes: every job is a fake")
    parser.add_argument("--throttle", action="append", default=[], metavar="OP=RATE")
    parser.add_argument("--server-errors", action="append", default=[], metavar="OP=RATE")
    parser.add_argument("--verbose", action="store_true")


def serve(args: argparse.Namespace) -> int:
    """Run the emulator (and moto, unless given) until SIGTERM or SIGINT."""
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    faults = Faults(throttle=_rates(args.throttle, "--throttle"),
                    server_errors=_rates(args.server_errors, "--server-errors"))
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    with contextlib.ExitStack() as stack:
        moto = args.moto_endpoint or stack.enter_context(moto_server(args.host))
        work_dir = args.work_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="hb-emulator-"))
        emulator = Emulator(moto, work_dir, host=args.host, port=args.port, region=args.region, tick=args.tick,
                            stage_seconds=args.stage_seconds, run_processes=not args.hold, faults=faults)
        url = stack.enter_context(emulator)
        print(url, flush=True)
        env = {"AWS_ENDPOINT_URL": url, **CLIENT_ENV, "AWS_DEFAULT_REGION": args.region}
        print("export " + " ".join(f"{k}={v}" for k, v in env.items()), flush=True)
        print(f"# SageMaker emulator on {url} (moto at {moto}, jobs in {work_dir}); Ctrl-C stops it", file=sys.stderr,
              flush=True)
        while not done.wait(1.0):
            pass
        print("# stopping: killing the running jobs, then moto", file=sys.stderr, flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return serve(parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
