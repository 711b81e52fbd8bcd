"""Prints 30 numbered lines (and one score), writes SageMaker's failure file, exits 3."""

import os
import sys

print("epoch=1 score=0.25")
for i in range(1, 31):
    print(f"line {i}", file=sys.stderr if i % 2 else sys.stdout)
with open(os.path.join(os.environ["SM_OUTPUT_DIR"], "failure"), "w") as handle:
    handle.write("ValueError: bad hyperparameter")
sys.exit(3)
