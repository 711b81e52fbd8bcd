"""A real ``airflow api-server`` for the dashboard tests: started on a free loopback port, signed in to over HTTP.

The simple auth manager with two users (``admin``, ``viewer``) and a password
file, a fixed JWT secret, one worker, in its own process group (stopped as a
group at the end).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.hb_airflow.conftest import AirflowHome

PASSWORDS = {"admin": "admin-pw-3141", "viewer": "viewer-pw-2718"}


@dataclass(kw_only=True)
class ApiServer:
    url: str
    port: int
    log: Path

    def request(self, path: str, *, token: str | None = None, cookie: str | None = None,
                method: str = "GET", body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """One request with ``path`` sent exactly as given (no client-side normalisation of ``..`` or ``%2F``)."""
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {token}"
        if cookie:
            sent["Cookie"] = f"_token={cookie}"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def json(self, path: str, token: str) -> Any:
        status, _, body = self.request(path, token=token)
        assert status == 200, (path, status, body[:500])
        return json.loads(body)

    def token(self, user: str) -> str:
        status, _, body = self.request("/auth/token", method="POST", headers={"Content-Type": "application/json"},
                                       body=json.dumps({"username": user, "password": PASSWORDS[user]}).encode())
        assert status == 201, body
        return str(json.loads(body)["access_token"])


@contextmanager
def api_server(home: AirflowHome, name: str, env: dict[str, str] | None = None,
               while_starting: Any = None) -> Iterator[ApiServer]:
    """An api-server on ``home`` with ``env`` on top, logging to ``<home>/<name>.log``; ``while_starting()`` runs
    while it boots (a DAG run, say)."""
    passwords = home.home / "passwords.json"
    passwords.write_text(json.dumps(PASSWORDS))
    full_env = {
        **home.env,
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API_AUTH__JWT_SECRET": "hyperband-dashboard-test-secret-0123456789",
        **(env or {}),
    }
    port = _free_port()
    log = home.home / f"{name}.log"
    airflow = Path(sys.executable).with_name("airflow")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(airflow), "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env=full_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        if while_starting is not None:
            while_starting()
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, process, log)
        yield ApiServer(url=url, port=port, log=log)
    finally:
        _stop(process)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    port = int(urllib.parse.urlsplit(url).port or 80)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"airflow api-server exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/api/v2/monitor/health")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            connection.close()
        time.sleep(0.5)
    pytest.fail(f"airflow api-server not healthy after {timeout:.0f} s:\n{log.read_text()[-4000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate the server's whole process group (uvicorn and its workers), then kill what is left."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
