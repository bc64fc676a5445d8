"""Grades are stable and never lost: full marks every time for the solution, never for a
near miss, a SIGKILL loses nothing. (Regrading changes nothing:
tests/test_grading_class.py.)"""

import csv
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import SESSION_DIR, user_environment
from tests.submissions.build import build_one
from tests.test_grading import LAB, grade, read_grades
from tests.test_grading_class import TEST_LIMITS, sandbox_processes
from tests.waiting import has_loaded, started_after, wait_until

pytestmark = pytest.mark.slow

CLASS = {"s1": "solution", "s2": "solution", "near_miss": "near_miss_validation_93"}
# One student at a time, so that each signal falls inside a known student's grading (two at
# a time, interrupted and resumed: tests/test_grading_class.py).
ONE_AT_A_TIME = (*TEST_LIMITS, "--jobs", "1")


def rows(out) -> list[list[str]]:
    with open(out / LAB / "grades.csv", newline="") as handle:
        return list(csv.reader(handle))


def start_and_interrupt(folder, out, graded: int, sig: int, report) -> dict:
    """Start grading; once ``graded`` students are in grades.csv and the next one is under
    way, send ``sig``. Return the rows that were in grades.csv at that moment."""
    process = subprocess.Popen(
        [sys.executable, "-m", "grader", "grade", str(folder), "--out", str(out), *ONE_AT_A_TIME],
        env=user_environment(COURSE_OFFLINE_DIR=os.environ["COURSE_OFFLINE_DIR"]),
        cwd=SESSION_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline and process.poll() is None:
        if (out / LAB / "grades.csv").exists() and len(read_grades(out)) >= graded:
            break
        time.sleep(1)
    assert process.poll() is None, "the grader finished before it could be interrupted"
    # The next student's kernels start after grades.csv got its row (one at a time).
    written = (out / LAB / "grades.csv").stat().st_mtime

    def next_student_runs() -> bool:  # a kernel of the next student has loaded TensorFlow
        kernels = [int(pid) for pid in sandbox_processes(0)]
        return process.poll() is not None or any(
            started_after(pid, written) and has_loaded(pid, "tensorflow") for pid in kernels
        )

    wait_until(next_student_runs, 600, "the next student's kernel to load TensorFlow")
    assert process.poll() is None, "the grader finished before it could be interrupted"
    before = read_grades(out)
    started = time.monotonic()
    process.send_signal(sig)
    process.wait(timeout=120)
    report(
        f"{time.monotonic() - started:7.1f} s  grader stopped by {signal.Signals(sig).name} "
        f"with {len(before)} student(s) graded"
    )
    return before


def test_interrupted_grading_resumes_and_grades_are_stable(tmp_path, offline_mirror, report):
    folder = tmp_path / "class"
    folder.mkdir()
    for student, fixture in CLASS.items():
        build_one(fixture, folder).rename(folder / f"{student}.ipynb")
    out = tmp_path / "graded"

    # SIGTERM, with two students at a time, is tests/test_grading_class.py's; here SIGKILL.
    second = start_and_interrupt(folder, out, 2, signal.SIGKILL, report)
    assert len(second) == 2
    assert not sandbox_processes(), "student kernels outlived the killed grader"

    started = time.perf_counter()
    run = grade(folder, out, *ONE_AT_A_TIME)
    report(f"{time.perf_counter() - started:7.1f} s  resumed run")
    assert run.returncode == 0, run.stdout + run.stderr
    for student in second:
        assert f"{student} ... already graded, kept" in run.stdout
    final = read_grades(out)
    assert {k: final[k] for k in second} == second
    table = rows(out)
    assert len(table) == 1 + len(CLASS)  # a header and one row per student, no duplicates
    assert sorted(r[0] for r in table[1:]) == sorted(CLASS)

    # Regrading keeps grades.csv as it was: tests/test_grading_class.py regrades the solution.
    for student in ("s1", "s2"):
        assert final[student]["total"] == final[student]["max"] == "9", final[student]
    near = final["near_miss"]
    assert float(near["total"]) < 9 and near["part_e"] == "1", near
    report(f"           solution x2: 9/9 each; near miss: {near['total']}/9")
