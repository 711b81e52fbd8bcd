"""The dashboard's reading side, in process: safe job names, the decision log pages, the views and the SVG charts."""

from __future__ import annotations

import json
import math
import os
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import cast

import pytest

from hb_airflow.ui import charts, views
from hb_airflow.ui.jobs import BadJobName, StateRoot, UnknownJob, check_job_name
from hb_core.backends.stores import LocalFileStore
from hb_core.state import Decision, TrialStatus
from tests.hb_airflow.ui.jobs import save_job

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("state_root")
    save_job(path, "done-job")
    save_job(path, "live-job", rounds=60, seed=3)
    return path


# ---- names and containment -----------------------------------------------------------------------


@pytest.mark.parametrize("name", [
    "..", ".", "../etc", "a/../b", "/etc/passwd", "a/b", "a\\b", "..\\..", "job\x00", "\x00", "%2e%2e",
    "%2F", "job%00", "-job", "job-", "", "a" * 64, "jöb", "job name", "~root",
])
def test_a_name_that_could_leave_the_state_root_is_refused(root: Path, name: str) -> None:
    with pytest.raises(BadJobName, match="must hold"):
        StateRoot(root).job_dir(name)
    with pytest.raises(BadJobName):
        StateRoot(root).load(name)
    with pytest.raises(BadJobName):
        StateRoot(root).decisions(name)


def test_a_symlink_out_of_the_state_root_is_refused(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / LocalFileStore.STATE).write_text((root / "done-job" / LocalFileStore.STATE).read_text())
    link = root / "escape"
    link.symlink_to(outside, target_is_directory=True)
    try:
        with pytest.raises(BadJobName, match="outside the state root"):
            StateRoot(root).load("escape")
        assert "escape" not in StateRoot(root).names()
    finally:
        link.unlink()


def test_valid_names_pass() -> None:
    for name in ("a", "mnist-hb-0a1b2c3d", "A--b", "x" * 63):
        assert check_job_name(name) == name


def test_jobs_are_listed_newest_first_and_unknown_ones_raise(root: Path, tmp_path: Path) -> None:
    reader = StateRoot(root)
    assert reader.names() == ["done-job", "live-job"]
    assert [j.name for j in reader.jobs()] == ["live-job", "done-job"]  # live-job was created later
    with pytest.raises(UnknownJob):
        reader.load("no-such-job")
    assert StateRoot(tmp_path / "missing").jobs() == []
    (tmp_path / "not-a-job").mkdir()  # a directory without state.json is not a job
    (tmp_path / "stray.txt").write_text("x")
    assert StateRoot(tmp_path).names() == []


def test_an_unreadable_state_is_listed_with_its_error(tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / LocalFileStore.STATE).write_text('{"schema_version": 99}')
    (job,) = StateRoot(tmp_path).jobs()
    assert job.state is None and "schema_version" in (job.error or "")
    assert views.job_row(job, None)["status"] == views.UNREADABLE


def test_a_parsed_state_is_reused_until_the_file_changes(root: Path, tmp_path: Path) -> None:
    reader = StateRoot(tmp_path)
    save_job(tmp_path, "cached", rounds=5)
    first = reader.load("cached")
    assert reader.load("cached") is first
    path = tmp_path / "cached" / LocalFileStore.STATE
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert reader.load("cached") is not first


# ---- the decision log ----------------------------------------------------------------------------


def test_decisions_are_paged_newest_first(root: Path) -> None:
    reader = StateRoot(root)
    everything = LocalFileStore(root / "done-job").read_decisions()
    page = reader.decisions("done-job", offset=0, limit=10)
    assert page.total == len(everything) > 30
    assert list(page.decisions) == everything[::-1][:10]
    assert page.decisions[0].action == "finish"
    later = reader.decisions("done-job", offset=25, limit=7)
    assert list(later.decisions) == everything[::-1][25:32]
    tail = reader.decisions("done-job", offset=len(everything) - 3, limit=50)
    assert list(tail.decisions) == everything[:3][::-1]
    assert reader.decisions("done-job", offset=len(everything) + 5).decisions == ()


def test_a_line_being_appended_is_not_read_and_a_long_log_spans_blocks(tmp_path: Path) -> None:
    save_job(tmp_path, "appending", rounds=3)
    log = tmp_path / "appending" / LocalFileStore.DECISIONS
    before = len(log.read_text().splitlines())
    long_message = "m" * 5000  # 100 decisions of 5 kB: several 64 kB blocks
    with log.open("a") as handle:
        for i in range(100):
            handle.write(json.dumps(Decision(1.0 + i, "ignore", f"{i:04d}", long_message).to_dict()) + "\n")
        handle.write('{"time": 2.0, "action": "sto')  # a concurrent append, half written
    page = StateRoot(tmp_path).decisions("appending", offset=0, limit=150)
    assert page.decisions[0].trial_id == "0099" and page.decisions[99].trial_id == "0000"
    assert page.total == before + 100
    assert StateRoot(tmp_path).decisions("appending", offset=99, limit=1).decisions[0].trial_id == "0000"


def test_a_job_without_a_decision_log_has_an_empty_one(tmp_path: Path) -> None:
    save_job(tmp_path, "quiet", rounds=1)
    (tmp_path / "quiet" / LocalFileStore.DECISIONS).unlink()
    assert StateRoot(tmp_path).decisions("quiet").total == 0
    with pytest.raises(UnknownJob):
        StateRoot(tmp_path).decisions("absent")


# ---- views -------------------------------------------------------------------------------------


def test_rung_rows_count_trials_and_give_the_cutoff(root: Path) -> None:
    state = StateRoot(root).load("done-job").state
    assert state is not None
    rows = views.rung_rows(state)
    assert [(r["bracket"], r["level"]) for r in rows] == [(0, 1), (0, 3), (0, 9), (0, 27), (1, 3), (1, 9), (1, 27)]
    first = rows[0]
    assert first["trials"] == len(state.rungs[0][0].keys) > 1
    assert first["kept"] == math.ceil(first["trials"] / 3)
    assert first["best"] >= first["cutoff"]  # Maximize: the best is the highest
    reached_first_rung = sum(1 for t in state.trials if t.bracket == 0 and t.rung_index >= 1)
    assert first["trials"] == reached_first_rung


def test_job_row_detail_and_trials_agree_with_the_state(root: Path) -> None:
    loaded = StateRoot(root).load("done-job")
    state = loaded.state
    assert state is not None
    link = views.TaskLink("dag", "run", "tune")
    row = views.job_row(loaded, link)
    assert (row["status"], row["dag_id"], row["run_id"], row["running"]) == ("Completed", "dag", "run", False)
    assert row["best_trial_id"] == state.finish["best_trial_id"]  # type: ignore[index]
    assert row["billable_seconds"] == pytest.approx(state.ended_billable_seconds, abs=1e-3)
    trials = views.trial_rows(state)
    assert trials[0]["trial_id"] == row["best_trial_id"] and trials[0]["best"]
    assert sum(t["best"] for t in trials) == 1
    stopped = next(t for t in trials if t["status"] == "Stopped")
    assert "rung" in stopped["stop_reason"]
    assert stopped["training_job_name"] == f"done-job-{stopped['trial_id']}-1"
    detail = views.job_detail(loaded, None)
    assert detail["hyperband"]["reduction_factor"] == 3 and detail["rungs"] == views.rung_rows(state)
    curve = [p["value"] for p in detail["best_so_far"]]
    assert curve == sorted(curve) and curve[-1] == pytest.approx(row["best_objective"])


def test_a_running_job_counts_its_running_training_jobs(root: Path) -> None:
    loaded = StateRoot(root).load("live-job")
    assert loaded.state is not None and views.is_running(loaded.state) and loaded.state.active
    row = views.job_row(loaded, None)
    assert row["running"] and row["billable_seconds"] > loaded.state.ended_billable_seconds


def test_json_safe_replaces_non_finite_numbers() -> None:
    assert views.json_safe({"a": [1.0, math.nan, {"b": math.inf}], "c": (1, "x")}) == {
        "a": [1.0, None, {"b": None}], "c": [1, "x"]}


# ---- charts ------------------------------------------------------------------------------------


def test_learning_curves_are_valid_svg_with_one_line_per_trial(root: Path) -> None:
    state = StateRoot(root).load("done-job").state
    assert state is not None
    svg = ET.fromstring(charts.learning_curves_chart(state))
    curves = [e for e in svg.iter() if "curve" in e.get("class", "") and e.get("data-trial")]
    assert {e.get("data-trial") for e in curves} == {t.trial_id for t in state.trials if t.points}
    stopped = [e for e in curves if "s-stopped" in e.get("class", "")]
    assert len(stopped) == sum(1 for t in state.trials if t.status is TrialStatus.STOPPED)
    assert sum("best" in e.get("class", "").split() for e in curves) == 1
    assert len([e for e in svg.iter(f"{SVG}line") if e.get("class") == "rung"]) == 4


def test_charts_escape_what_they_show_and_skip_non_finite_values(root: Path) -> None:
    state = StateRoot(root).load("done-job").state
    assert state is not None
    first = state.trials[0]
    hostile = replace(first, hyperparameters={"<script>": "</title><b>&"},
                      points=first.points + ((first.resource + 1, math.nan, 0.0),))
    state = replace(state, trials=state.trials.set(0, hostile))
    markup = charts.learning_curves_chart(state)
    assert "<script>" not in markup and "</title><b>" not in markup
    ET.fromstring(markup)  # still well formed
    best = charts.best_so_far_chart(views.best_so_far(state), "acc<1>", until=10_000)
    assert "acc<1>" not in best
    ET.fromstring(best)


def test_charts_before_any_metric_say_so(tmp_path: Path) -> None:
    state = save_job(tmp_path, "fresh", rounds=0)
    assert "No metric reported yet" in charts.learning_curves_chart(state)
    assert "No metric reported yet" in charts.best_so_far_chart([], "acc")


@pytest.mark.parametrize(("lo", "hi", "expected"), [
    (0.0, 1.0, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    (0.12, 0.91, [0.2, 0.4, 0.6, 0.8]),
    (0.0, 7200.0, [0.0, 2000.0, 4000.0, 6000.0]),
    (3.0, 3.0, [3.0]),
])
def test_nice_ticks(lo: float, hi: float, expected: list[float]) -> None:
    assert charts.nice_ticks(lo, hi) == expected


# ---- where the dashboard looks -------------------------------------------------------------------


def test_the_state_root_comes_from_the_airflow_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from airflow.configuration import AIRFLOW_HOME
    from fastapi import HTTPException

    from hb_airflow.ui import app

    monkeypatch.delenv("AIRFLOW__HYPERBAND__STATE_ROOT", raising=False)
    assert app.state_root_setting() == str(Path(AIRFLOW_HOME) / "hyperband")
    monkeypatch.setenv("AIRFLOW__HYPERBAND__STATE_ROOT", str(tmp_path))
    assert app.state_root_setting() == str(tmp_path)
    assert cast(StateRoot, app._root()).root == tmp_path  # a path setting gives a StateRoot
    monkeypatch.setenv("AIRFLOW__HYPERBAND__STATE_ROOT", "gs://bucket/prefix")
    with pytest.raises(HTTPException, match="local directory or s3://bucket/prefix` must hold"):
        app._root()
