"""Reports one score, starts a grandchild process, then sleeps until killed.

With --ignore_term 1 it ignores SIGTERM (so only SIGKILL ends it). The grandchild's pid
goes to $SM_OUTPUT_DATA_DIR/grandchild.pid, so a test can check that the whole process
group was ended.
"""

import argparse
import os
import signal
import subprocess
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--ignore_term", type=int, default=0)
args, _ = parser.parse_known_args()
if args.ignore_term:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if os.environ.get("HB_TEST_LAUNCHES"):
    with open(os.environ["HB_TEST_LAUNCHES"], "a") as handle:
        handle.write(os.environ["TRAINING_JOB_NAME"] + "\n")
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "grandchild.pid"), "w") as handle:
    handle.write(str(child.pid))
print("epoch=1 score=0.5", flush=True)
while True:
    time.sleep(0.05)
