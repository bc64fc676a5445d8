"""`jupyter lab` from the repository root serves nbgrader's formgrader with the lab in it.

A real server is started with a token on a free localhost port. Jupyter's runtime, config
and data folders and the gradebook (``COURSE_GRADEBOOK``, read by nbgrader_config.py) are
temporary, so nothing is left behind. The formgrader lists the assignments found in
``grader/source``; no ``nbgrader generate_assignment`` is needed for that.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader.config import REPO
from grader.master import find_labs

pytestmark = pytest.mark.slow

STARTUP_SECONDS = 60
REPO_GRADEBOOK = REPO / "grader" / "gradebook.db"


def repo_gradebook_state() -> int | None:
    """Modification time of the repository's gradebook, None when there is none."""
    return REPO_GRADEBOOK.stat().st_mtime_ns if REPO_GRADEBOOK.exists() else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A running Jupyter server: ``get(path)`` returns (status, body)."""

    def __init__(self, url: str, token: str, process: subprocess.Popen, log: Path):
        self.url, self.token, self.process, self.log = url, token, process, log
        self.repo_gradebook_before: int | None = None

    def get(self, path: str) -> tuple[int, str]:
        request = urllib.request.Request(
            self.url + path, headers={"Authorization": f"token {self.token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")


@pytest.fixture(scope="module")
def gradebook(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("formgrader") / "gradebook.db"


@pytest.fixture(scope="module")
def server(tmp_path_factory, gradebook) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("jupyter")
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "COURSE_GRADEBOOK": str(gradebook),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
    }
    log = home / "server.log"
    before = repo_gradebook_state()
    with open(log, "w") as handle:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter",
                "lab",
                "--no-browser",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={token}",
                *(["--allow-root"] if os.geteuid() == 0 else []),
            ],  # containers, CI
            cwd=REPO,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    running = Server(f"http://127.0.0.1:{port}", token, process, log)
    running.repo_gradebook_before = before
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert process.poll() is None, f"jupyter lab exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, (
                f"no answer in {STARTUP_SECONDS} s:\n{log.read_text()}"
            )
            try:
                if running.get("/api/status")[0] == 200:
                    break
            except OSError:  # not listening yet
                pass
            time.sleep(0.5)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_formgrader_extension_is_loaded(server):
    status, body = server.get("/formgrader/api/status")
    assert status == 200, body
    assert json.loads(body) == {"status": True}
    status, page = server.get("/lab")
    assert status == 200 and "@jupyter/nbgrader" in page  # the Formgrader menu of the lab UI


def test_formgrader_lists_every_lab(server, gradebook):
    status, body = server.get("/formgrader/api/assignments")
    assert status == 200, body
    names = [assignment["name"] for assignment in json.loads(body)]
    assert sorted(names) == sorted(find_labs()) and len(names) >= 2
    for lab in names:
        status, body = server.get(f"/formgrader/api/assignment/{lab}")
        assert status == 200 and json.loads(body)["source_path"].endswith(lab), body
    assert gradebook.exists(), "the server should use the temporary gradebook"


def test_repository_gradebook_is_untouched(server):
    server.get("/formgrader/api/assignments")
    assert repo_gradebook_state() == server.repo_gradebook_before
