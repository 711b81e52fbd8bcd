"""The example MLP tuned on the SageMaker emulator with ``hb-tune run --backend sagemaker``, as a user runs it.

For each metric source (``logs``, the default, and ``cloudwatch``), a fresh
tuning job of ``examples/mlp/sagemaker.json`` (20 trials, 5 in parallel,
rungs 1, 3, 9) runs with the command's default options (only
``--endpoint-url``, ``--name`` and ``--metric-source`` given), against moto
and the emulator started here on 127.0.0.1, the code and channels uploaded by
:func:`hb_core.backends.package.package`. Then the tuning job's state and
decision log (S3) are compared with what the trials printed (each job's
CloudWatch Logs stream, whose event times are when the emulator read each
line) and what SageMaker billed (DescribeTrainingJob):

- trials at each rung; whether every recorded value is the value printed at
  its epoch; the best objective against the best trial's last printed value;
- resource: the summary's (the epochs recorded) against the epochs printed;
  billing: the summary's billable seconds against the jobs' BillableTimeInSeconds;
- decision delay: for each rung decision, its time minus the time its
  trial's line for that epoch was printed; the median over the trials'
  first rung decisions, and over all rung decisions.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/sagemaker_emulator.py [--sources logs cloudwatch]
        [--metric-period 1] [--out benchmarks/results/SAGEMAKER_EMULATOR.md]

No real AWS endpoint is ever contacted: every client has an explicit
127.0.0.1 endpoint and dummy credentials.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hb_core.backends.package import package  # noqa: E402
from hb_emulator import Emulator  # noqa: E402
from hb_emulator.__main__ import moto_server  # noqa: E402

BUCKET, REGION = "bench-bucket", "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/bench"
GROUP = "/aws/sagemaker/TrainingJobs"


def client(service: str, endpoint: str) -> Any:
    import boto3

    assert endpoint.startswith("http://127.0.0.1:"), endpoint
    return boto3.session.Session().client(service, endpoint_url=endpoint, region_name=REGION,
                                          aws_access_key_id="testing", aws_secret_access_key="testing")


def printed_lines(endpoint: str, job: str) -> list[tuple[float, int, float]]:
    """(time, epoch, accuracy) of every objective line the job printed, from its CloudWatch Logs stream."""
    logs = client("logs", endpoint)
    streams = logs.describe_log_streams(logGroupName=GROUP, logStreamNamePrefix=f"{job}/algo-1-")["logStreams"]
    lines: list[tuple[float, int, float]] = []
    if not streams:
        return lines
    token = None
    for _ in range(100):
        params: dict[str, Any] = {"logGroupName": GROUP, "logStreamName": streams[0]["logStreamName"],
                                  "startFromHead": True}
        if token:
            params["nextToken"] = token
        page = logs.get_log_events(**params)
        for event in page["events"]:
            fields = dict(p.split("=", 1) for p in event["message"].split() if "=" in p)
            if "epoch" in fields and "validation:accuracy" in fields:
                lines.append((event["timestamp"] / 1000.0, int(fields["epoch"]), float(fields["validation:accuracy"])))
        if not page["events"] or page.get("nextForwardToken") == token:
            break
        token = page.get("nextForwardToken")
    return lines


def run_one(endpoint: str, request: Path, source: str, work: Path, period: int | None = None) -> dict[str, Any]:
    name = f"mlp-{source}" + (f"-{period}s" if period else "")
    command = [sys.executable, "-m", "hb_core.cli", "run", str(request), "--backend", "sagemaker",
               "--endpoint-url", endpoint, "--name", name, "--metric-source", source]
    if period:
        command += ["--metric-period", str(period)]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": REGION, "OPENBLAS_NUM_THREADS": "1"}
    started = time.time()
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, env=env, cwd=work, check=False)
    wall = time.time() - started
    if done.returncode != 0:
        raise SystemExit(f"hb-tune run ({source}) exited {done.returncode}:\n{done.stderr[-3000:]}")
    s3 = client("s3", endpoint)
    prefix = f"mlp/output/{name}/hyperband"
    state = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{prefix}/state.json")["Body"].read())
    decisions = _decisions(s3, prefix)
    sm = client("sagemaker", endpoint)
    trials = state["trials"]
    lines = {t["trial_id"]: printed_lines(endpoint, f"{name}-{t['trial_id']}-1") for t in trials}
    billed = sum(sm.describe_training_job(TrainingJobName=f"{name}-{t['trial_id']}-1").get("BillableTimeInSeconds", 0)
                 for t in trials)
    exact = all([(p[0], p[1]) for p in t["points"]] == [(e, v) for _, e, v in lines[t["trial_id"]]][:len(t["points"])]
                for t in trials)
    rung_decisions = [d for d in decisions if d.get("rung") is not None and d["action"] in ("continue", "stop", "record")]
    delays: dict[str, list[float]] = {}
    for d in rung_decisions:
        stamp = next((ts for ts, e, _ in lines[d["trial_id"]] if e == d["rung"]), None)
        if stamp is not None:
            delays.setdefault(d["trial_id"], []).append(d["time"] - stamp)
    finish = state["finish"] or {}
    best = next(t for t in trials if t["trial_id"] == finish.get("best_trial_id"))
    rungs: dict[int, set[str]] = {}  # rung (resource) -> trial ids decided there
    for d in rung_decisions:
        rungs.setdefault(d["rung"], set()).add(d["trial_id"])
    return {
        "source": source + (f", {period} s periods" if period else ""),
        "wall_seconds": round(wall, 1),
        "summary": done.stdout[:done.stdout.index("  best job")] if "  best job" in done.stdout else done.stdout,
        "trials_at_rung": {r: len(ids) for r, ids in sorted(rungs.items())},
        "every_value_exact": exact,
        "best_objective": finish.get("best_objective"),
        "best_last_printed": lines[best["trial_id"]][-1][2],
        "resource_recorded": sum(t["points"][-1][0] for t in trials if t["points"]),
        "resource_printed": sum(len(v) for v in lines.values()),
        "billable_summary": state["ended_billable_seconds"],
        "billable_describe": billed,
        "delay_first_rung_median": statistics.median(v[0] for v in delays.values()),
        "delay_all_rungs_median": statistics.median(x for v in delays.values() for x in v),
        "decisions_timed": sum(len(v) for v in delays.values()),
    }


def _decisions(s3: Any, prefix: str) -> list[dict[str, Any]]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{prefix}/decisions/")
    keys = sorted(o["Key"] for page in pages for o in page.get("Contents", []))
    out: list[dict[str, Any]] = []
    for key in keys:
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
        out += [json.loads(line) for line in body.splitlines() if line.strip()]
    return out


def report(result: dict[str, Any]) -> str:
    r = result
    return "\n".join([
        f"### metric source: {r['source']} (wall {r['wall_seconds']} s)", "", "```", r["summary"].rstrip(), "```", "",
        f"- trials at each rung (rung decisions): {r['trials_at_rung']}",
        f"- every recorded value is the one printed at its epoch: {r['every_value_exact']}",
        f"- best objective {r['best_objective']} vs the best trial's last printed value {r['best_last_printed']}",
        f"- resource: recorded {r['resource_recorded']} vs printed {r['resource_printed']} epochs "
        f"(ratio {r['resource_recorded'] / r['resource_printed']:.3f})",
        f"- billing: summary {r['billable_summary']:.0f} s vs DescribeTrainingJob {r['billable_describe']:.0f} s "
        f"(ratio {r['billable_summary'] / max(r['billable_describe'], 1):.3f})",
        f"- decision delay (decision time - time the line was printed): median over trials' first rung decision "
        f"{r['delay_first_rung_median']:.1f} s; over all {r['decisions_timed']} rung decisions "
        f"{r['delay_all_rungs_median']:.1f} s",
        "",
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", nargs="+", default=["logs", "cloudwatch"], choices=["logs", "cloudwatch"])
    parser.add_argument("--metric-period", type=int, default=None,
                        help="cloudwatch: seconds per period (default: the command's, 60); 1 shows the exact path")
    parser.add_argument("--out", default=None, help="also write the report (markdown) here")
    args = parser.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    results = []
    with tempfile.TemporaryDirectory(prefix="hb-bench-sm-") as tmp, moto_server("127.0.0.1") as moto, \
            Emulator(moto, Path(tmp) / "emulator") as endpoint:
        work = Path(tmp)
        subprocess.run([sys.executable, str(ROOT / "examples/mlp/train.py"), "--write-data", str(work / "data")],
                       check=True, capture_output=True)
        package(ROOT / "examples" / "mlp", f"s3://{BUCKET}/mlp", {c: work / "data" / c for c in ("train", "validation")},
                create_bucket=True, region=REGION, client=client("s3", endpoint))
        template = (ROOT / "examples" / "mlp" / "sagemaker.json").read_text()
        request = work / "request.json"
        request.write_text(template.replace("<bucket>", BUCKET).replace("<role-arn>", ROLE))
        for source in args.sources:
            period = args.metric_period if source == "cloudwatch" else None
            results.append(run_one(endpoint, request, source, work, period))
            print(report(results[-1]), flush=True)
    if args.out:
        Path(args.out).write_text("\n".join(report(r) for r in results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
