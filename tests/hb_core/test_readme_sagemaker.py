"""The README's "Tune on SageMaker from the command line (or on the emulator)", run exactly as written.

The section's two shell blocks are read from README.md (so this test fails when
the README drifts): the first starts the emulator (moto included) as a user
does in one terminal, the second runs the example to a finished tuning job in
another. The only change is the port: 4566 becomes a free one, so that runs
in parallel never collide. Both run in a copy of the repository's
``examples/mlp`` with ``.venv`` linked to this interpreter's environment.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEADING = "## Tune on SageMaker from the command line (or on the emulator)"
README_PORT = "4566"


def section_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert HEADING in text, "the README lost its section"
    body = text.split(HEADING, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", body, flags=re.DOTALL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory laid out like the repository's root for the commands, and an environment with no AWS in it."""
    shutil.copytree(ROOT / "examples" / "mlp", tmp_path / "examples" / "mlp",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    return tmp_path


def test_the_readme_runs_from_zero_to_a_finished_tuning_job_on_the_emulator(workdir: Path) -> None:
    blocks = section_blocks()
    assert len(blocks) == 2, blocks
    port = str(free_port())
    serve, steps = (block.replace(README_PORT, port) for block in blocks)
    assert f"http://127.0.0.1:{port}" in steps  # every call goes to the emulator on loopback
    server = subprocess.Popen(["bash", "-c", serve], cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, start_new_session=True)
    try:
        assert server.stdout is not None and server.stderr is not None
        url = server.stdout.readline().strip()
        assert url == f"http://127.0.0.1:{port}", server.stderr.read() if server.poll() is not None else url
        assert server.stdout.readline().startswith(f"export AWS_ENDPOINT_URL={url} ")
        done = subprocess.run(["bash", "-e", "-c", steps], cwd=workdir, capture_output=True, text=True, timeout=300,
                              check=False)
    finally:
        os.killpg(server.pid, signal.SIGINT)  # Ctrl-C in the first terminal
        try:
            _, err = server.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            raise
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    out = done.stdout
    assert "s3://demo-bucket/mlp/sourcedir.tar.gz" in out and "(channel validation)" in out
    assert "Tuning job mlp-sagemaker: Completed" in out and "trials          20 " in out
    assert "model           s3://demo-bucket/mlp/output/mlp-sagemaker-" in out
    assert server.returncode == 0, err[-2000:]
    with socket.socket() as sock:  # Ctrl-C stopped it: nothing listens on its port any more
        assert sock.connect_ex(("127.0.0.1", int(port))) != 0
