"""The grader run by an ordinary user, as on a laptop, a lab server or a JupyterHub server:
no root, the sandbox on (bubblewrap in a user namespace), the worked solution to full marks.

The user is ``tlgrader``, which CI creates (``.ci/run``; elsewhere: ``sudo useradd
--create-home tlgrader``); the test runs as root and starts the real command as that user,
with a home of its own and the offline mirror.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import HOME, user_environment
from tests.submissions.build import build_all
from tests.test_grading import PARTS, read_grades

pytestmark = pytest.mark.slow
USER = "tlgrader"


@pytest.fixture(scope="module")
def ordinary_user() -> pwd.struct_passwd:
    problem = ""
    if os.geteuid() != 0:
        problem = "this test starts the grader as another user: run it as root"
    else:
        try:
            return pwd.getpwnam(USER)
        except KeyError:
            problem = f"no user {USER}: sudo useradd --create-home {USER}"
    if os.environ.get("CI"):
        pytest.fail(problem)
    pytest.skip(problem)


def test_an_ordinary_user_grades_the_worked_solution_to_full_marks_in_the_sandbox(
    ordinary_user, offline_mirror, report
):
    home = Path(tempfile.mkdtemp(prefix="tlgrader-home-"))
    try:
        # The lab's feature cache, as an instructor who ran the lab has it (built by the
        # earlier tests of this session; without it the first run computes it, a minute).
        cache = HOME / ".cache" / "tlcourse"
        if cache.is_dir():
            shutil.copytree(cache, home / ".cache" / "tlcourse")
        build_all(home / "subs", ["solution"])
        for path in [home, *home.rglob("*")]:
            os.lchown(path, ordinary_user.pw_uid, ordinary_user.pw_gid)
        started = time.perf_counter()
        run = subprocess.run(
            [sys.executable, "-m", "grader", "grade", "subs", "--out", "out"],
            env=user_environment(home, COURSE_OFFLINE_DIR=str(offline_mirror)),
            cwd=home,
            user=ordinary_user.pw_uid,
            group=ordinary_user.pw_gid,
            extra_groups=[],
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        report(f"{time.perf_counter() - started:7.1f} s  the solution graded by an ordinary user")
        assert run.returncode == 0, run.stdout + run.stderr
        first = run.stdout.splitlines()[0]
        assert "sandboxed kernels; not enforced here: --memory-gib" in first, first
        assert "hand-in folder" in first
        grades = read_grades(home / "out")
        assert {p: float(grades["solution"][p]) for p in PARTS} == PARTS, grades["solution"]
        assert grades["solution"]["note"] == ""
    finally:
        shutil.rmtree(home, ignore_errors=True)
