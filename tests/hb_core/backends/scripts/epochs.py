"""A tiny script-mode training job: one ``epoch=N score=X loss=Y`` line per epoch.

Hyperparameters (CLI): --epochs N, --x FLOAT (the score rises towards 1 - (x - 0.3)**2),
--sleep SECONDS per epoch, --barrier 1 to wait at rungs (hb_core.barrier, when the tuner
sets HB_RUNG_BARRIER). Resumes from $SM_CHECKPOINT_DIR/epoch.txt. Writes what it
received to $SM_OUTPUT_DATA_DIR/received.json and appends its job name to $HB_TEST_LAUNCHES.
"""

import argparse
import json
import os
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, required=True)
parser.add_argument("-x", "--x", type=float, default=0.5)  # the toolkit passes one-letter names as -x
parser.add_argument("--sleep", type=float, default=0.0)
parser.add_argument("--barrier", type=int, default=0)
args, unknown = parser.parse_known_args()
if args.barrier:
    from hb_core.barrier import RungBarrier

    barrier = RungBarrier.from_env()

if os.environ.get("HB_TEST_LAUNCHES"):
    with open(os.environ["HB_TEST_LAUNCHES"], "a") as handle:
        handle.write(os.environ["TRAINING_JOB_NAME"] + "\n")
wanted = ("SM_", "TRAINING_", "PYTHONUNBUFFERED", "HB_")
env = {k: v for k, v in os.environ.items() if k.startswith(wanted)}
received = {"argv": sys.argv[1:], "cwd": os.getcwd(), "env": env}
with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "received.json"), "w") as handle:
    json.dump(received, handle)

checkpoint = os.path.join(os.environ["SM_CHECKPOINT_DIR"], "epoch.txt")
start = int(open(checkpoint).read()) if os.path.exists(checkpoint) else 0
quality = 1.0 - (args.x - 0.3) ** 2
print("starting at epoch", start + 1, file=sys.stderr)
epoch, last = start, args.epochs
while epoch < last:
    epoch += 1
    time.sleep(args.sleep)
    score = quality * (1 - 0.5**epoch)
    print(f"epoch={epoch} score={score:.6f} loss={1 - score:.6f}")
    with open(checkpoint, "w") as handle:
        handle.write(str(epoch))
    if args.barrier:
        verdict = barrier.reached(epoch, score)
        if verdict.stop:
            break
        last = max(last, verdict.budget or last)
with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.txt"), "w") as handle:
    handle.write(f"x={args.x}\n")
print("done", file=sys.stderr)
