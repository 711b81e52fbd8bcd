"""The DAG author's guide is code: every snippet in it is loaded by Airflow, and the local one is run.

The guide is ``docs/dag-authors.md`` plus the README's "Use it in your DAG" section. Each snippet is a
fenced block preceded by an HTML comment (invisible once rendered) that declares it::

    <!-- snippet: {"file": "tune_my_model_locally.py", "dag_id": "tune_my_model_locally",
                   "tasks": ["tune", "use_best"], "run": true} -->

``file`` is where it goes in a temporary DAG folder (support files such as a training script or a
request carry only ``file``); ``dag_id`` and ``tasks`` are what a DagBag must find in it; ``run``
marks the one snippet that is run with ``dag.test()`` (it needs no AWS). Every ``python`` block of the
guide must be a snippet, so the document is the only source of what is tested.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from hb_core.errors import ConfigError
from tests.dags.conftest import DRIVER, DagResult
from tests.dags.test_dagbag import parse
from tests.hb_airflow.conftest import AirflowHome, airflow_home  # noqa: F401 - a fixture

ROOT = Path(__file__).resolve().parents[2]
GUIDE = "docs/dag-authors.md"
README_SECTION = "## Use it in your DAG"
#: What the guide must show in a snippet (the issue's list).
MUST_SHOW = ("HyperbandTuningOperator", "SageMakerTrialOperator", "HyperbandTuningSensor", "TrialRungSensor",
             "tuning_pipeline", "Param(", "aws_conn_id", 'backend="local"', 'output["best_hyperparameters"]',
             'output["model_artifacts"]')

SNIPPET = re.compile(r"<!-- snippet: (?P<meta>\{.*?\}) -->\n```(?P<lang>\w+)\n(?P<code>.*?)\n```\n", re.S)
PYTHON_FENCE = re.compile(r"^```python\s*$", re.M)


@dataclass(frozen=True)
class Snippet:
    where: str  # document:line, for messages
    file: str
    lang: str
    code: str
    dag_id: str | None = None
    tasks: tuple[str, ...] = ()
    run: bool = False


def readme_section(text: str, heading: str = README_SECTION) -> str:
    """The README section under ``heading``, up to the next second-level heading."""
    start = text.find(f"\n{heading}\n")
    assert start >= 0, f"the README has no {heading!r} section"
    end = text.find("\n## ", start + len(heading) + 2)
    return text[start:] if end < 0 else text[start:end + 1]


def extract(text: str, document: str, offset_line: int = 0) -> list[Snippet]:
    """The snippets of ``text``; a ``python`` block that is not a declared snippet is an error."""
    found = []
    for match in SNIPPET.finditer(text):
        line = offset_line + text.count("\n", 0, match.start()) + 1
        meta = json.loads(match["meta"])
        unknown = set(meta) - {"file", "dag_id", "tasks", "run"}
        assert not unknown, f"{document}:{line}: unknown snippet keys {sorted(unknown)}"
        found.append(Snippet(f"{document}:{line}", meta["file"], match["lang"], match["code"] + "\n",
                             meta.get("dag_id"), tuple(meta.get("tasks", ())), bool(meta.get("run", False))))
    declared = sum(1 for s in found if s.lang == "python")
    fences = len(PYTHON_FENCE.findall(text))
    assert fences == declared, (f"{document}: {fences - declared} python block(s) without a "
                                f"<!-- snippet: {{...}} --> comment right before them (every one must be tested)")
    return found


def guide_snippets() -> list[Snippet]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme_section(readme)
    snippets = extract(section, "README.md", readme[:readme.find(section)].count("\n"))
    snippets += extract((ROOT / GUIDE).read_text(encoding="utf-8"), GUIDE)
    files = [s.file for s in snippets]
    assert len(files) == len(set(files)), f"two snippets write the same file: {files}"
    return snippets


def write_folder(folder: Path, snippets: Iterable[Snippet]) -> None:
    for snippet in snippets:
        path = folder / snippet.file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(snippet.code, encoding="utf-8")


SNIPPETS = guide_snippets()
DAG_SNIPPETS = [s for s in SNIPPETS if s.dag_id]
[RUN] = [s for s in SNIPPETS if s.run]


@pytest.fixture(scope="module")
def dag_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("guide") / "dags"
    write_folder(folder, SNIPPETS)
    return folder


@pytest.fixture(scope="module")
def dagbag(dag_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return parse(dag_folder, tmp_path_factory.mktemp("guide_home"))


def test_the_guide_shows_every_operator_sensor_and_factory() -> None:
    code = "".join(s.code for s in DAG_SNIPPETS)
    assert [name for name in MUST_SHOW if name not in code] == []
    assert any(s.where.startswith("README.md") and s.dag_id for s in SNIPPETS), "the README shows no DAG"


def test_a_python_block_without_its_declaration_is_refused() -> None:
    text = '<!-- snippet: {"file": "a.py"} -->\n```python\nx = 1\n```\n\n```python\ny = 2\n```\n'
    with pytest.raises(AssertionError, match="1 python block"):
        extract(text, "doc.md")


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_guides_links_point_at_existing_files_and_headings() -> None:
    """The README and the guide link into each other's sections; a renamed heading must not strand a reader."""
    for document in ("README.md", GUIDE):
        text = (ROOT / document).read_text(encoding="utf-8")
        if document == "README.md":
            text = readme_section(text)
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]+))?\)", text):
            if target.startswith(("http://", "https://")):
                continue
            path = ((ROOT / document).parent / target).resolve() if target else ROOT / document
            assert path.exists(), f"{document}: link to a missing file {target}"
            if anchor:
                headings = re.findall(r"^#+ (.+)$", path.read_text(encoding="utf-8"), re.M)
                assert anchor in {github_anchor(h) for h in headings}, f"{document}: no heading #{anchor} in {target}"


@pytest.mark.parametrize("snippet", DAG_SNIPPETS, ids=lambda s: s.dag_id)
def test_snippet_loads_in_a_dagbag_with_its_tasks(dagbag: dict[str, Any], snippet: Snippet) -> None:
    errors = {Path(path).name: error for path, error in dagbag["import_errors"].items()}
    assert snippet.file not in errors, f"{snippet.where}: {errors[snippet.file]}"
    assert snippet.dag_id in dagbag["dags"], f"{snippet.where}: no DAG {snippet.dag_id!r} in {sorted(dagbag['dags'])}"
    dag = dagbag["dags"][snippet.dag_id]
    assert Path(dag["fileloc"]).name == Path(snippet.file).name
    assert sorted(dag["tasks"]) == sorted(snippet.tasks), snippet.where


def test_the_guide_folder_has_no_import_errors_or_warnings(dagbag: dict[str, Any]) -> None:
    assert dagbag["import_errors"] == {}
    assert dagbag["warnings"] == {}
    assert set(dagbag["dags"]) == {s.dag_id for s in DAG_SNIPPETS}


#: For every tuning (or trial) task of the folder: render its templates with the DAG's param defaults
#: (the trigger form's values), derive the job's spec and build its backend, as ``execute`` would, without
#: launching anything. A task whose templates need a running DAG (XComs) is reported as such.
PREFLIGHT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from types import SimpleNamespace
    import jinja2
    from airflow.dag_processing.dagbag import DagBag
    from hb_airflow.operators import HyperbandTuningOperator, run_coroutine
    from hb_airflow.spec import build_tuner

    bag = DagBag(dag_folder=sys.argv[1], bundle_path=Path(sys.argv[1]), bundle_name="dags-folder")
    found = {}
    for dag_id, dag in bag.dags.items():
        for task in dag.tasks:
            if not isinstance(task, HyperbandTuningOperator):
                continue
            key = f"{dag_id}.{task.task_id}"
            try:
                task.render_template_fields({"params": {k: dag.params[k] for k in dag.params}})
            except (jinja2.UndefinedError, KeyError) as exc:  # a template on XComs (ti): only a run can check it
                found[key] = f"needs a run: {type(exc).__name__}"
                continue
            ti = SimpleNamespace(dag_id=dag_id, run_id="manual__docs", task_id=task.task_id, map_index=-1)
            try:
                spec = task._spec({"ti": ti})
                tuner = build_tuner(spec, offload=False)
                run_coroutine(tuner.backend.close())
                found[key] = f"valid for {spec.backend}"
            except Exception as exc:
                found[key] = f"invalid: {type(exc).__name__}: {exc}"
    print("PREFLIGHT", json.dumps(found))
""")


@pytest.fixture(scope="module")
def preflight(dag_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("preflight_home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "HYPERBAND_", "AWS_"))}
    env.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(dag_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AWS_DEFAULT_REGION": "us-east-1"})
    done = subprocess.run([sys.executable, "-c", PREFLIGHT, str(dag_folder)], env=env, check=False,
                          capture_output=True, text=True, timeout=300, cwd=str(home))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("PREFLIGHT "))
    return dict(json.loads(line.removeprefix("PREFLIGHT ")))


def test_every_tuning_task_that_needs_no_xcom_is_valid_for_its_backend(preflight: dict[str, str]) -> None:
    """What a DagBag cannot see: a templated request, and what the backend itself requires (SageMaker:
    RoleArn, S3OutputPath, an instance type; local: the entry point on disk)."""
    assert {k: v for k, v in preflight.items() if v.startswith("invalid")} == {}
    checked = {k for k, v in preflight.items() if v.startswith("valid")}
    # the README's SageMaker DAG, and the trigger form's request as its defaults render it
    assert {"tune_my_model.tune", "tune_from_the_trigger_form.tune"} <= checked
    assert preflight["tune_my_model.tune"] == "valid for sagemaker"


def run_snippet(home: AirflowHome, folder: Path, snippet: Snippet) -> DagResult:
    """``dag.test()`` of the snippet's DAG file in a subprocess; its run, tasks and XComs."""
    out = home.home / f"{snippet.dag_id}.result.json"
    env = {**home.env, "AIRFLOW__CORE__DAGS_FOLDER": str(folder), "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", DRIVER, str(folder / snippet.file), "{}", "-", str(out)],
                          env=env, check=False, capture_output=True, text=True, timeout=300, cwd=str(home.home))
    log = done.stdout + done.stderr
    (home.home / f"{snippet.dag_id}.log").write_text(log)
    assert done.returncode == 0 and out.exists(), log[-5000:]
    data = json.loads(out.read_text())
    return DagResult(data["state"], data["tasks"], data["xcoms"], None, None, log)


@pytest.fixture(scope="module")
def local_run(airflow_home: AirflowHome, dag_folder: Path) -> DagResult:
    """The guide's local DAG, run once with ``dag.test()``."""
    return run_snippet(airflow_home, dag_folder, RUN)


def test_the_local_snippet_tunes_and_hands_the_best_model_downstream(local_run: DagResult) -> None:
    request = json.loads(next(s.code for s in SNIPPETS if s.file.endswith("tuning.json")))
    job = request["HyperParameterTuningJobConfig"]
    tuned = {r["Name"] for ranges in job["ParameterRanges"].values() for r in ranges}
    result = local_run

    errors = [line for line in result.log.splitlines() if re.search(r"\w+(Error|Exception|NotFound)\b", line)]
    assert result.state == "success", f"{RUN.where}: tasks {result.tasks}; errors:\n" + "\n".join(errors[-8:])
    assert set(result.tasks) == set(RUN.tasks) and set(result.tasks.values()) == {"success"}
    [tune_id] = [t for t in RUN.tasks if result.xcom(t, "summary")]
    summary = result.xcom(tune_id, "summary")
    assert summary["status"] == "Completed"
    assert summary["trials"] == int(job["ResourceLimits"]["MaxNumberOfTrainingJobs"])
    best = result.xcom(tune_id, "best_hyperparameters")
    assert set(best) == tuned
    [downstream] = [t for t in RUN.tasks if t != tune_id]
    handed = result.xcom(downstream)
    assert handed["best_hyperparameters"] == best
    # the model the best training job saved is the one the downstream task loaded
    assert {k: handed["model"][k] for k in tuned} == best
    assert handed["model"]["validation_accuracy"] == pytest.approx(summary["best_objective"], abs=1e-4)
    assert re.search(r"trial \d{4}: \w+ rung=", result.log), "no decision line in the task log"


def test_the_sensors_behave_as_the_guide_says_on_the_finished_job(local_run: DagResult) -> None:
    """Section 9: the job sensor succeeds on a Completed job; the rung sensor succeeds when the trial
    reached the rung or ended before it (here every trial has ended)."""
    import asyncio
    from types import SimpleNamespace

    from hb_airflow.sensors import HyperbandTuningSensor, TrialRungSensor
    from hb_core.backends.stores import LocalFileStore

    [tune_id] = [t for t in RUN.tasks if local_run.xcom(t, "summary")]
    where = {"tuning_job_name": local_run.xcom(tune_id, "tuning_job_name"),
             "state_uri": local_run.xcom(tune_id, "state_uri")}
    context: Any = {"ti": SimpleNamespace()}  # the name and the store are given: no XCom is read
    assert HyperbandTuningSensor(task_id="done", **where).poke(context) is True
    state = asyncio.run(LocalFileStore(where["state_uri"]).load())
    assert state is not None
    top = cast(int, state.config.max_resource)  # a Hyperband job: set
    for trial in state.trials:
        assert TrialRungSensor(task_id=f"t{trial.trial_id}", trial_id=trial.trial_id, rung=top, **where).poke(context)
    with pytest.raises(ConfigError, match="rung"):
        TrialRungSensor(task_id="bad", trial_id="0000", rung=0, **where)
