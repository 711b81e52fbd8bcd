"""A real local Airflow with the Hyperband plugin: ``make airflow``, and the deployment tests' fixture.

Four processes, as a deployment runs them: ``airflow api-server`` (the UI, the
REST API, the dashboard, and the execution API the workers call),
``scheduler`` (with the LocalExecutor), ``dag-processor`` and ``triggerer``
(where the tuning controllers run), on SQLite in one ``AIRFLOW_HOME``. Each
runs in its own session (process group), logging to ``<home>/logs/<name>.log``,
so one can be killed and restarted alone and all are stopped as groups.

Settings a new user otherwise has to find in Airflow's source (see
:func:`settings`): ``[api] base_url`` on the api-server's port (workers call
the execution API there; with ``--port`` alone they call 8080), executor
parallelism 2 (the LocalExecutor's default of 32 workers is too many for a
laptop), one api-server worker, a JWT secret shared by all four processes
(kept in ``<home>/jwt_secret``), and the simple auth manager's ``admin`` user
whose password Airflow generates into ``<home>/passwords.json``.

Usage: ``python deploy/local_airflow.py [--home DIR] [--port N]``; prints the
URL and the login, and stops everything on Ctrl-C (or SIGTERM). Standard
library only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: In start order: the scheduler last, once the api-server answers (:meth:`LocalAirflow.start_all`).
COMPONENTS = ("api-server", "dag-processor", "triggerer", "scheduler")
ROOT = Path(__file__).resolve().parents[1]


class AirflowFailed(RuntimeError):
    """A component exited, or did not become healthy in time; the message has the end of its log."""


def settings(home: Path, dags: Path, port: int, *, parallelism: int = 2) -> dict[str, str]:
    """The environment of every component (on top of ``os.environ``)."""
    secret_file = home / "jwt_secret"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_urlsafe(32))
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": secret_file.read_text().strip(),
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }


class LocalAirflow:
    """The four components on one home; ``extra_env`` goes on top of :func:`settings`."""

    def __init__(self, home: Path, dags: Path, port: int, *, extra_env: Mapping[str, str] | None = None,
                 parallelism: int = 2) -> None:
        self.home, self.dags, self.port = home, dags, port
        home.mkdir(parents=True, exist_ok=True)
        (home / "logs").mkdir(exist_ok=True)
        self.env = {**os.environ, **settings(home, dags, port, parallelism=parallelism), **(extra_env or {})}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        #: every process group started (each component's, restarts included)
        self.groups: list[int] = []
        self.url = f"http://127.0.0.1:{port}"
        self.airflow = str(Path(sys.executable).with_name("airflow"))

    # ------------------------------------------------------------ lifecycle

    def migrate(self) -> None:
        log = self.home / "logs" / "migrate.log"
        with log.open("wb") as out:
            done = subprocess.run([self.airflow, "db", "migrate"], env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=900, check=False)
        if done.returncode != 0:
            raise AirflowFailed(f"airflow db migrate exited with {done.returncode}:\n{_tail(log)}")

    def start(self, component: str) -> subprocess.Popen[bytes]:
        """Start one component (in its own session); its log is appended to ``logs/<component>.log``."""
        command = [self.airflow, component]
        if component == "api-server":
            command += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        with self.log(component).open("ab") as out:
            process = subprocess.Popen(command, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True, cwd=self.home)
        self.processes[component] = process
        self.groups.append(process.pid)
        return process

    def start_all(self, timeout: float = 240.0) -> None:
        """Migrate, then start the components; the scheduler once the api-server answers (its workers call the
        execution API there from their first step: a run left queued by the last stop would otherwise start
        against a closed port and fail after four retries)."""
        self.migrate()
        for component in COMPONENTS:
            if component == "scheduler":
                self.wait_serving(timeout)
            self.start(component)
        self.wait_healthy(timeout)

    def kill(self, component: str, sig: int = signal.SIGKILL) -> None:
        """Signal a component's whole process group and reap it."""
        process = self.processes.pop(component)
        _signal_group(process, sig)
        process.wait(timeout=60)

    def stop(self) -> None:
        """Stop every component: SIGTERM to each group, then SIGKILL what is left after 30 s."""
        for process in self.processes.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for process in self.processes.values():
            _signal_group(process, signal.SIGKILL)  # the group's stragglers too (task runners, workers)
            process.wait(timeout=30)
        self.processes.clear()

    def log(self, component: str) -> Path:
        return self.home / "logs" / f"{component}.log"

    # ------------------------------------------------------------ health and login

    def health(self) -> dict[str, Any] | None:
        try:
            status, body = self.request("GET", "/api/v2/monitor/health")
        except OSError:
            return None
        return json.loads(body) if status == 200 else None

    def wait_serving(self, timeout: float = 240.0) -> None:
        """Until the api-server answers its health endpoint (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            if self.health() is not None:
                return
            time.sleep(0.5)
        raise AirflowFailed(f"the api-server does not answer on {self.url} after {timeout:.0f} s:\n"
                            f"{_tail(self.log('api-server'))}")

    def wait_healthy(self, timeout: float = 240.0, components: tuple[str, ...] = ("scheduler", "triggerer",
                                                                                  "dag_processor")) -> None:
        """Until the api-server answers and reports each of ``components`` healthy (bounded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            health = self.health()
            if health and all((health.get(c) or {}).get("status") == "healthy" for c in components):
                return
            time.sleep(1.0)
        raise AirflowFailed(f"Airflow not healthy after {timeout:.0f} s: {self.health()}\n"
                            + "\n".join(f"--- {c}\n{_tail(self.log(c))}" for c in self.processes))

    def check_alive(self) -> None:
        for component, process in self.processes.items():
            if process.poll() is not None:
                raise AirflowFailed(f"airflow {component} exited with {process.returncode}:\n"
                                    f"{_tail(self.log(component))}")

    def login(self) -> tuple[str, str]:
        """``("admin", password)``: the password Airflow generated (or the one the passwords file was given)."""
        passwords = json.loads((self.home / "passwords.json").read_text())
        return "admin", str(passwords["admin"])

    def request(self, method: str, path: str, body: Any = None, token: str | None = None,
                timeout: float = 30.0) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def token(self, user: str = "admin", password: str | None = None) -> str:
        password = password if password is not None else self.login()[1]
        status, body = self.request("POST", "/auth/token", {"username": user, "password": password})
        if status != 201:
            raise AirflowFailed(f"POST /auth/token: {status} {body[:300]!r}")
        return str(json.loads(body)["access_token"])


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(path: Path, size: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return "(no log)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=ROOT / "airflow_home")
    parser.add_argument("--dags", type=Path, default=ROOT / "dags")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    airflow = LocalAirflow(args.home.resolve(), args.dags.resolve(), args.port)

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    print(f"Starting Airflow in {airflow.home} (migrations, then {', '.join(COMPONENTS)}); logs in "
          f"{airflow.home / 'logs'}", flush=True)
    try:
        airflow.start_all()
        user, password = airflow.login()
        print(f"\nAirflow is up: {airflow.url}  (login: {user} / {password})\n"
              f"Tuning dashboard: {airflow.url}/hyperband/  (the Hyperband entry of the menu)\n"
              "Ctrl-C stops everything.", flush=True)
        while True:
            airflow.check_alive()
            time.sleep(2.0)
    except KeyboardInterrupt:
        print("\nStopping Airflow ...", flush=True)
        return 0
    except AirflowFailed as exc:
        print(f"\n{exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop short
        airflow.stop()
        print("Airflow stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
