"""``python -m hb_core.emulator --moto-endpoint http://127.0.0.1:PORT --work-dir DIR [--port 0]``.

Prints the endpoint URL (one line) once it serves, then runs until SIGTERM or
SIGINT, and kills the jobs still running on the way out.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from hb_core.emulator.faults import Faults
from hb_core.emulator.server import Emulator


def _rates(items: Sequence[str], flag: str) -> dict[str, float]:
    rates: dict[str, float] = {}
    for item in items:
        operation, _, rate = item.partition("=")
        try:
            rates[operation] = float(rate)
        except ValueError:
            raise SystemExit(f"{flag} takes OPERATION=RATE (e.g. DescribeTrainingJob=0.3 or *=0.1), got {item!r}")
    return rates


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hb_core.emulator", description=__doc__.splitlines()[0])
    parser.add_argument("--moto-endpoint", required=True, help="the moto server, e.g. http://127.0.0.1:5000")
    parser.add_argument("--work-dir", required=True, help="where the jobs' directories go")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--tick", type=float, default=0.05, help="seconds between two looks at a running job")
    parser.add_argument("--stage-seconds", type=float, default=0.0, help="how long Starting and Downloading last")
    parser.add_argument("--hold", action="store_true", help="run no processes: every job is a fake")
    parser.add_argument("--throttle", action="append", default=[], metavar="OP=RATE")
    parser.add_argument("--server-errors", action="append", default=[], metavar="OP=RATE")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    faults = Faults(throttle=_rates(args.throttle, "--throttle"),
                    server_errors=_rates(args.server_errors, "--server-errors"))
    emulator = Emulator(args.moto_endpoint, args.work_dir, host=args.host, port=args.port, region=args.region,
                        tick=args.tick, stage_seconds=args.stage_seconds, run_processes=not args.hold, faults=faults)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    with emulator as url:
        print(url, flush=True)
        while not done.wait(1.0):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
