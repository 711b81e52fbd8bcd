"""A training job that saves a checkpoint when stopped: ``epoch=N score=X`` per epoch, as ``epochs.py``.

On SIGTERM (SageMaker's stop, and the local backend's) it takes ``--stop_seconds`` to save
before it exits, as real training scripts do: a stop lands seconds after it is sent. With
``--stop_hold PATH`` (default: $HB_TEST_STOP_HOLD) it saves while that file exists (at most
``--stop_seconds``), so a test decides which stops land late, and when.
Appends its job name to $HB_TEST_LAUNCHES when it starts.
"""

import argparse
import os
import signal
import sys
import time
from types import FrameType

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, required=True)
parser.add_argument("-x", "--x", type=float, default=0.5)
parser.add_argument("--sleep", type=float, default=0.0)
parser.add_argument("--stop_seconds", type=float, default=0.0)
parser.add_argument("--stop_hold", default=os.environ.get("HB_TEST_STOP_HOLD"))
args, _ = parser.parse_known_args()

if os.environ.get("HB_TEST_LAUNCHES"):
    with open(os.environ["HB_TEST_LAUNCHES"], "a") as handle:
        handle.write(os.environ["TRAINING_JOB_NAME"] + "\n")


def stopped(signum: int, frame: FrameType | None) -> None:
    print(f"stopping: saving a checkpoint (at most {args.stop_seconds} s)", file=sys.stderr, flush=True)
    deadline = time.monotonic() + args.stop_seconds
    while time.monotonic() < deadline and (not args.stop_hold or os.path.exists(args.stop_hold)):
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
    sys.exit(143)


signal.signal(signal.SIGTERM, stopped)
quality = 1.0 - (args.x - 0.3) ** 2
for epoch in range(1, args.epochs + 1):
    time.sleep(args.sleep)
    score = quality * (1 - 0.5**epoch)
    print(f"epoch={epoch} score={score:.6f}", flush=True)
