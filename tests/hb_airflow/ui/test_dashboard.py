"""The dashboard in a real ``airflow api-server`` (SQLite, simple auth manager), over HTTP and in headless Chromium.

One server for the module, on a free loopback port, with two tuning jobs in its
state root (``$AIRFLOW_HOME/hyperband``): one finished, one saved mid-run. The
running one is linked to a real DAG run whose task pushed its name as the
``tuning_job_name`` XCom, as the tuning operator does. The browser signs in
through Airflow's own login page. Screenshots go to ``test-artifacts/ui/``.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hb_core.backends.stores import LocalFileStore
from tests.hb_airflow.conftest import AirflowHome
from tests.hb_airflow.ui.jobs import save_job
from tests.hb_airflow.ui.server import PASSWORDS, ApiServer, api_server

DONE, LIVE = "mnist-hb-done", "mnist-hb-live"
LIVE_ROUNDS, LIVE_STARTED_AGO = 200, 2100.0
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "ui"
LINK_DAG = "hb_dashboard_link"
LINK_DAG_SOURCE = f"""
import json, os
import pendulum
from airflow.sdk import DAG, task

with DAG(dag_id={LINK_DAG!r}, schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False) as dag:
    @task(task_id="tune")
    def tune(ti=None):
        # What HyperbandTuningOperator.execute pushes before it defers.
        ti.xcom_push(key="tuning_job_name", value={LIVE!r})
        with open(os.environ["HB_TEST_OUT"], "w") as handle:
            json.dump({{"run_id": ti.run_id}}, handle)

    @task(task_id="other")
    def other():
        pass

    tune() >> other()
"""


@dataclass(kw_only=True)
class Dashboard(ApiServer):
    home: AirflowHome
    state_root: Path
    run_id: str


@pytest.fixture(scope="module")
def dashboard(airflow_home: AirflowHome) -> Iterator[Dashboard]:
    state_root = airflow_home.home / "hyperband"
    save_job(state_root, DONE)
    save_job(state_root, LIVE, rounds=LIVE_ROUNDS, seed=3, jobs=40, started_ago=LIVE_STARTED_AGO)
    written: dict[str, Any] = {}

    def link_dag() -> None:
        state, out = airflow_home.run_dag(LINK_DAG, LINK_DAG_SOURCE, timeout=300)
        assert state == "success"
        written.update(out)

    with api_server(airflow_home, "api-server", while_starting=link_dag) as server:
        yield Dashboard(url=server.url, port=server.port, log=server.log, home=airflow_home, state_root=state_root,
                        run_id=written["run_id"])


@pytest.fixture(scope="module")
def viewer(dashboard: Dashboard) -> str:
    return dashboard.token("viewer")


# ---- registration, authentication ----------------------------------------------------------------

ROUTES = [
    "/hyperband/",
    f"/hyperband/jobs/{DONE}",
    f"/hyperband/jobs/{DONE}?offset=10&limit=5",
    f"/hyperband/ti/{LINK_DAG}/any-run/tune/-1",
    "/hyperband/static/dashboard.css",
    "/hyperband/static/dashboard.js",
    "/hyperband/static/icon.svg",
    "/hyperband/api/jobs",
    f"/hyperband/api/jobs/{DONE}",
    f"/hyperband/api/jobs/{DONE}/trials",
    f"/hyperband/api/jobs/{DONE}/decisions?offset=0&limit=5",
]


def test_the_plugin_mounts_the_app_and_adds_a_nav_entry_and_a_task_instance_view(dashboard: Dashboard) -> None:
    plugins = dashboard.json("/api/v2/plugins", dashboard.token("admin"))["plugins"]
    (plugin,) = [p for p in plugins if p["name"] == "hyperband"]
    assert [a["url_prefix"] for a in plugin["fastapi_apps"]] == ["/hyperband"]
    views = {v["destination"]: v for v in plugin["external_views"]}
    assert views["nav"]["href"] == "/hyperband/"
    assert views["task_instance"]["href"] == "/hyperband/ti/{DAG_ID}/{RUN_ID}/{TASK_ID}/{MAP_INDEX}"


@pytest.mark.parametrize("route", ROUTES)
def test_every_route_refuses_a_request_without_a_signed_in_user(dashboard: Dashboard, route: str) -> None:
    status, _, body = dashboard.request(route)
    assert status == 401, body[:300]
    assert DONE.encode() not in body or b"Sign in" in body  # the 401 page only echoes the URL to come back to
    assert dashboard.request(route, token="not-a-jwt")[0] == 403
    assert dashboard.request(route, cookie="forged.jwt.value")[0] == 403


def test_an_html_page_explains_and_links_to_the_sign_in_page(dashboard: Dashboard) -> None:
    status, headers, body = dashboard.request("/hyperband/", headers={"Accept": "text/html"})
    assert status == 401 and headers["content-type"].startswith("text/html")
    assert b"/auth/login?next=" in body
    status, headers, body = dashboard.request("/hyperband/api/jobs")
    assert status == 401 and json.loads(body) == {"detail": "Not authenticated"}


# ---- the JSON API ------------------------------------------------------------------------------


def test_api_lists_the_jobs_with_the_dag_run_that_started_them(dashboard: Dashboard, viewer: str) -> None:
    body = dashboard.json("/hyperband/api/jobs", viewer)
    jobs = {j["tuning_job_name"]: j for j in body["jobs"]}
    assert {DONE, LIVE} <= set(jobs)
    assert body["state_root"] == str(dashboard.state_root)
    live, done = jobs[LIVE], jobs[DONE]
    assert (live["status"], live["running"], live["dag_id"], live["run_id"], live["task_id"]) == (
        "InProgress", True, LINK_DAG, dashboard.run_id, "tune")
    assert (done["status"], done["running"], done["dag_id"], done["trials"]) == ("Completed", False, None, 30)
    assert done["objective"] == "validation:accuracy" and 0.5 < done["best_objective"] < 1
    assert done["billable_seconds"] > 0 and done["created_time"] < live["created_time"]


def test_api_job_trials_and_decisions(dashboard: Dashboard, viewer: str) -> None:
    job = dashboard.json(f"/hyperband/api/jobs/{DONE}", viewer)
    assert job["summary"]["status"] == "Completed" and job["config"]["HyperParameterTuningJobConfig"]
    assert [(r["bracket"], r["level"]) for r in job["rungs"]][:4] == [(0, 1), (0, 3), (0, 9), (0, 27)]
    trials = dashboard.json(f"/hyperband/api/jobs/{DONE}/trials", viewer)
    assert trials["total_entries"] == 30 and [t["trial_id"] for t in trials["trials"]][:2] == ["0000", "0001"]
    # trained (billed) beside judged: each trial's, and the job's sums
    assert job["summary"]["total_resource"] == sum(t["resource"] for t in trials["trials"])
    assert job["summary"]["judged_resource"] == sum(t["judged_resource"] for t in trials["trials"])
    assert all(t["judged_resource"] <= t["resource"] for t in trials["trials"])
    best = dashboard.json(f"/hyperband/api/jobs/{DONE}/trials?order=best&limit=1", viewer)["trials"]
    assert best[0]["trial_id"] == job["best_trial_id"] and best[0]["points"][-1]["resource"] == 27
    logged = LocalFileStore(dashboard.state_root / DONE).read_decisions()
    page = dashboard.json(f"/hyperband/api/jobs/{DONE}/decisions?offset=3&limit=4", viewer)
    assert page["total"] == len(logged)
    assert [d["action"] for d in page["decisions"]] == [d.action for d in logged[::-1][3:7]]
    assert dashboard.request(f"/hyperband/api/jobs/{DONE}/decisions?limit=0", token=viewer)[0] == 422
    assert dashboard.request("/hyperband/api/jobs/no-such-job", token=viewer)[0] == 404


def test_a_job_saved_with_a_removed_sampler_is_shown_with_the_note(dashboard: Dashboard, viewer: str) -> None:
    saved = dashboard.state_root / "kde-saved"
    shutil.copytree(dashboard.state_root / DONE, saved)
    try:
        state = json.loads((saved / "state.json").read_text())
        state["job_name"] = "kde-saved"
        state["config"]["HyperParameterTuningJobConfig"]["StrategyConfig"]["HyperbandStrategyConfig"]["Sampler"] = "KDE"
        (saved / "state.json").write_text(json.dumps(state))
        job = dashboard.json("/hyperband/api/jobs/kde-saved", viewer)
        assert job["summary"]["status"] == "Completed" and "Sampler KDE (BOHB) was removed" in job["summary"]["notes"][0]
        status, _, body = dashboard.request("/hyperband/jobs/kde-saved", token=viewer)
        assert status == 200 and b"Note: Sampler KDE (BOHB) was removed" in body and b"reads on with Random" in body
        assert dashboard.json(f"/hyperband/api/jobs/{DONE}", viewer)["summary"]["notes"] == []
    finally:
        shutil.rmtree(saved)


# ---- job names with path characters ------------------------------------------------------------------

TRAVERSALS = [
    "..", "%2e%2e", ".%2e", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "..%5C..%5Cetc", "%00", "job%00",
    f"{DONE}%00", "..%2Foutside", "outside%2F..%2F..", "%252e%252e", "~", "escape",
]


@pytest.fixture(scope="module")
def outside(dashboard: Dashboard) -> Iterator[Path]:
    """A job-looking directory outside the state root, and a symlink ``escape`` in the root pointing at it."""
    secret = dashboard.home.home / "outside"
    shutil.copytree(dashboard.state_root / DONE, secret, dirs_exist_ok=True)
    (secret / "state.json").write_text((secret / "state.json").read_text().replace(DONE, "SECRET-OUTSIDE"))
    link = dashboard.state_root / "escape"
    link.symlink_to(secret, target_is_directory=True)
    yield secret
    link.unlink()


@pytest.mark.parametrize("name", TRAVERSALS)
@pytest.mark.parametrize("route", ["/hyperband/api/jobs/{}", "/hyperband/api/jobs/{}/decisions",
                                   "/hyperband/api/jobs/{}/trials", "/hyperband/jobs/{}"])
def test_a_job_name_with_path_characters_reads_nothing_outside_the_state_root(
    dashboard: Dashboard, viewer: str, outside: Path, name: str, route: str
) -> None:
    status, _, body = dashboard.request(route.format(name), token=viewer)
    assert status == 404, (status, body[:300])
    assert b"SECRET-OUTSIDE" not in body and b"root:" not in body and b"validation:accuracy" not in body


def test_the_symlinked_job_is_not_listed(dashboard: Dashboard, viewer: str, outside: Path) -> None:
    names = {j["tuning_job_name"] for j in dashboard.json("/hyperband/api/jobs", viewer)["jobs"]}
    assert "escape" not in names and DONE in names


# ---- the task-instance view ----------------------------------------------------------------------


@pytest.mark.parametrize("map_index", ["-1", "%7BMAP_INDEX%7D"])  # an unmapped task leaves the placeholder
def test_the_task_instance_view_redirects_to_the_job_its_task_started(
    dashboard: Dashboard, viewer: str, map_index: str
) -> None:
    run = urllib.parse.quote(dashboard.run_id, safe="")
    status, headers, _ = dashboard.request(f"/hyperband/ti/{LINK_DAG}/{run}/tune/{map_index}", token=viewer)
    assert status == 307 and headers["location"] == f"/hyperband/jobs/{LIVE}"
    status, _, body = dashboard.request(f"/hyperband/ti/{LINK_DAG}/{run}/other/-1", token=viewer)
    assert status == 404 and b"has not started a Hyperband tuning job" in body


# ---- in the browser -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(dashboard: Dashboard) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (make browser)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (make browser installs Debian's chromium)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def page(browser: Any, dashboard: Dashboard) -> Iterator[Any]:
    """A browser tab signed in as the viewer through Airflow's own login page."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    tab.goto(f"{dashboard.url}/auth/login?next=/hyperband/")
    tab.get_by_label("Username").fill("viewer")
    tab.get_by_label("Password").fill(PASSWORDS["viewer"])
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_url("**/hyperband/")
    tab.locator("#content").wait_for()
    tab.wait_for_load_state("networkidle")
    yield tab
    context.close()


def test_browser_job_list_in_the_airflow_nav(page: Any, dashboard: Dashboard) -> None:
    page.goto(f"{dashboard.url}/plugin/hyperband")  # the nav entry: the Airflow UI frames the dashboard
    frame = page.frame_locator("iframe[title='Hyperband']")
    live = frame.locator(f"#job-list tr[data-job='{LIVE}']")
    live.wait_for()
    assert LINK_DAG in live.inner_text() and "InProgress" in live.inner_text()
    assert "Completed" in frame.locator(f"#job-list tr[data-job='{DONE}']").inner_text()
    page.screenshot(path=ARTIFACTS / "job-list-in-airflow.png")


def test_browser_job_page_shows_rungs_trials_charts_and_decisions(page: Any, dashboard: Dashboard) -> None:
    page.goto(f"{dashboard.url}/hyperband/")
    page.get_by_role("link", name=DONE).click()
    page.wait_for_url(f"**/hyperband/jobs/{DONE}")
    assert page.locator("#rung-table tbody tr").count() == 7
    assert page.locator("#trial-table tbody tr").count() == 30
    curves = page.locator("svg.chart-curves [data-trial]")
    assert curves.count() == 30 and page.locator("svg.chart-curves .s-stopped[data-trial]").count() >= 20
    box = page.locator("svg.chart-curves").bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    assert page.locator("svg.chart-best polyline.best-line").count() == 1
    assert page.locator("#decision-table tbody tr").count() == 50
    card = page.locator(".card", has_text="Resource trained (billed)")
    assert card.count() == 1 and "judged" in card.inner_text()
    page.get_by_role("link", name="older").click()
    page.wait_for_url("**offset=50**")
    assert page.locator("#decision-table tbody tr").first.inner_text() != ""
    page.goto(f"{dashboard.url}/hyperband/jobs/{DONE}")
    page.screenshot(path=ARTIFACTS / "job-finished.png", full_page=True)
    page.locator("section.charts").screenshot(path=ARTIFACTS / "charts.png")


def test_browser_running_job_page_refreshes_itself(page: Any, dashboard: Dashboard, tmp_path: Path) -> None:
    page.goto(f"{dashboard.url}/hyperband/jobs/{LIVE}")
    heading = page.locator("#decisions h2")
    before = heading.inner_text()
    page.evaluate("window.__notReloaded = true")
    page.screenshot(path=ARTIFACTS / "job-running.png", full_page=True)
    # The controller goes on: a later checkpoint of the same job replaces the files. (In a thread: the sync
    # Playwright API keeps an event loop running in this one.)
    with ThreadPoolExecutor(1) as pool:
        pool.submit(save_job, tmp_path, LIVE, rounds=LIVE_ROUNDS + 40, seed=3, jobs=40,
                    started_ago=LIVE_STARTED_AGO).result(timeout=60)
    for name in (LocalFileStore.DECISIONS, LocalFileStore.STATE):
        os.replace(tmp_path / LIVE / name, dashboard.state_root / LIVE / name)
    page.wait_for_function("text => document.querySelector('#decisions h2').innerText !== text", arg=before,
                           timeout=20_000)
    assert page.evaluate("window.__notReloaded") is True  # updated in place, not reloaded
    assert page.locator(".live").count() == 1


def test_browser_task_instance_tab(page: Any, dashboard: Dashboard) -> None:
    run = urllib.parse.quote(dashboard.run_id, safe="")
    page.goto(f"{dashboard.url}/dags/{LINK_DAG}/runs/{run}/tasks/tune")
    page.get_by_role("link", name="Hyperband tuning").click()
    frame = page.frame_locator("iframe[title='Hyperband tuning']")
    frame.locator("#rung-table").wait_for()
    assert LIVE in frame.locator("h1").inner_text()
    assert LINK_DAG in frame.locator("#summary").inner_text()
    page.screenshot(path=ARTIFACTS / "task-instance-tab.png")


def test_browser_no_tuning_job_yet(page: Any, dashboard: Dashboard) -> None:
    aside = dashboard.state_root.with_name("hyperband-aside")
    dashboard.state_root.rename(aside)
    try:
        page.goto(f"{dashboard.url}/plugin/hyperband")
        frame = page.frame_locator("iframe[title='Hyperband']")
        frame.locator("#no-jobs").wait_for()
        assert "No tuning job yet" in frame.locator("#no-jobs").inner_text()
        page.screenshot(path=ARTIFACTS / "no-jobs-yet.png")
    finally:
        aside.rename(dashboard.state_root)


def test_browser_signed_out(browser: Any, dashboard: Dashboard) -> None:
    context = browser.new_context(viewport={"width": 1000, "height": 500})
    try:
        tab = context.new_page()
        response = tab.goto(f"{dashboard.url}/hyperband/jobs/{DONE}", timeout=30_000)
        assert response is not None and response.status == 401
        assert tab.get_by_role("link", name="Sign in to Airflow").count() == 1
        assert tab.locator("#trial-table").count() == 0
        tab.screenshot(path=ARTIFACTS / "signed-out.png")
    finally:
        context.close()
