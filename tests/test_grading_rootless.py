"""The grader run by an ordinary user, as on a laptop, a lab server or a JupyterHub server:
no root, the sandbox on (bubblewrap in a user namespace), the README's command with its
default settings, and the machine's cores also busy with another program: a class of
varied submissions, graded at the default number of jobs, gets every fixture's exact
expected scores (tests/submissions/manifest.json). Correct notebooks among them are never
set aside as the grader's failure.

The user is ``tlgrader``, which CI creates (``.ci/run``; elsewhere: ``sudo useradd
--create-home tlgrader``); the test runs as root and starts the real command as that user,
with a home of its own and the offline mirror.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from grader.sandbox import SandboxLimits
from grader.workers import default_jobs
from tests.conftest import HOME, run_as, user_environment
from tests.submissions.build import build_all, manifest
from tests.test_grading import LAB, PARTS, assert_self_checks_agree_with_the_grader, read_grades

pytestmark = pytest.mark.slow
# Correct notebooks written three ways (one with exploring cells that fail on purpose), a
# near miss and the untouched lab: enough students that the default grades two at a time
# here. All but the untouched lab are graded here only, not again in the fixture class
# (tests/test_grading_class.py): each fixture's scores are checked once.
ONLY_IN_THE_LOADED_CLASS = [
    "head_layers_unnamed",
    "sigmoid_activation_layer",
    "reads_grader_data",
    "flatten_head",
]
LOADED_CLASS = [*ONLY_IN_THE_LOADED_CLASS, "untouched"]
CORRECT = ["head_layers_unnamed", "sigmoid_activation_layer", "reads_grader_data"]


def test_an_ordinary_user_grades_a_class_under_competing_load_to_its_exact_scores(
    ordinary_user, offline_mirror, report
):
    home = Path(tempfile.mkdtemp(prefix="tlgrader-home-"))
    load = subprocess.Popen([sys.executable, "-c", "while True: pass"])  # another program
    try:
        # The lab's feature cache, as an instructor who ran the lab has it (built by the
        # earlier tests of this session; without it the first run computes it, a minute).
        cache = HOME / ".cache" / "tlcourse"
        if cache.is_dir():
            shutil.copytree(cache, home / ".cache" / "tlcourse")
        build_all(home / "subs", LOADED_CLASS)
        for path in [home, *home.rglob("*")]:
            os.lchown(path, ordinary_user.pw_uid, ordinary_user.pw_gid)
        started = time.perf_counter()
        run = run_as(
            ordinary_user,
            ["-m", "grader", "grade", "subs", "--out", "out"],
            env=user_environment(home, COURSE_OFFLINE_DIR=str(offline_mirror)),
            cwd=home,
        )
        report(
            f"{time.perf_counter() - started:7.1f} s  {len(LOADED_CLASS)} submissions graded by "
            "an ordinary user, default jobs, another program busy"
        )
        assert run.returncode == 0, run.stdout + run.stderr
        first = run.stdout.splitlines()[0]
        jobs = default_jobs(SandboxLimits().memory, len(LOADED_CLASS))
        assert f"{jobs} at a time" in first, first
        assert "sandboxed kernels; not enforced here: --memory-gib" in first, first
        assert "hand-in folder" in first
        # A new gradebook, filled by the coordinator of two workers, the environment not
        # activated (nbgrader creates it with its `alembic` script, found beside Python).
        assert "could not be written" not in run.stdout
        with Gradebook(f"sqlite:///{home / 'gradebook.db'}") as gb:
            scored = {s.student.id: s.score for s in gb.assignment_submissions(LAB)}
        grades = read_grades(home / "out")
        cases = manifest()["cases"]
        for name in LOADED_CLASS:
            got = {part: float(grades[name][part]) for part in PARTS}
            assert got == cases[name]["expected"], (name, grades[name])
            assert scored[name] == float(grades[name]["total"])
        assert_self_checks_agree_with_the_grader(home / "out", LOADED_CLASS)
        full = sum(manifest()["max"].values())
        for name in CORRECT:  # never set aside: full marks, no note
            assert float(grades[name]["total"]) == full and grades[name]["note"] == "", name
    finally:
        load.kill()
        load.wait()
        shutil.rmtree(home, ignore_errors=True)
