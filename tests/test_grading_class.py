"""The grader on a whole class (make test-all): exact scores for every fixture submission,
failures that are the grader's, stops and resumes, one and two jobs and a Dask cluster.
(Online, with a warm Keras cache: Gradescope's image, tests/test_gradescope.py.)

Every grading here runs the real command as an instructor does (tests/conftest.py:
``run_as_user``), except where a test must reach inside (the grader's own failure, the
held-out evaluation), which call the same functions in this process.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.config import REPO
from grader.sandbox import UID_BASE, UID_COUNT
from tests.conftest import SESSION_DIR, run_as_user, user_environment
from tests.master_text import hidden_test_lines
from tests.submissions.build import build_all, manifest
from tests.test_grading import (
    LAB,
    assert_self_checks_agree_with_the_grader,
    feedback_text,
    grade,
    read_grades,
    read_records,
)
from tests.test_grading_rootless import ONLY_IN_THE_LOADED_CLASS
from tests.waiting import has_loaded, sandboxed, started_after, wait_until

pytestmark = pytest.mark.slow

# Limits for the tests: long enough for the solution's slowest cell (about 6 s here, 15 s with
# the other core busy), short enough that the fixtures which loop or sleep for ever cost little;
# memory for a student's kernels 4 GiB, not lab 1's 8 (the solution peaks at 2.4 GiB), so that
# memory_exhaustion reaches the cap within the cell limit on this VM, where touching new memory
# ran at 270 MB/s in one CI run. (The default limits: the loaded class and lab 2's class.)
TEST_LIMITS = ("--cell-timeout", "30", "--notebook-timeout", "600", "--memory-gib", "4")


# Every fixture of the manifest, but those that the class graded under competing load
# (tests/test_grading_rootless.py) alone checks: each fixture's scores are checked once.
IN_THE_CLASS = sorted(set(manifest()["cases"]) - set(ONLY_IN_THE_LOADED_CLASS))


def sandbox_processes(seconds: float = 15) -> list[str]:
    """Sandbox processes started by this test session's graders (their environment names
    this session's folder), once ``seconds`` have passed or none is left."""
    marker = str(SESSION_DIR).encode()
    deadline = time.monotonic() + seconds
    while True:
        left = []
        for entry in Path("/proc").iterdir():
            try:
                ours = (
                    entry.name.isdigit() and UID_BASE <= entry.stat().st_uid < UID_BASE + UID_COUNT
                )
                if ours and marker in (entry / "environ").read_bytes():
                    left.append(entry.name)
            except OSError:
                pass
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory, offline_mirror, report):
    folder = tmp_path_factory.mktemp("submissions")
    build_all(folder, IN_THE_CLASS)
    out = tmp_path_factory.mktemp("graded")
    started = time.perf_counter()
    run = grade(folder, out, *TEST_LIMITS)  # the default: as many at a time as cores and RAM allow
    report(f"{time.perf_counter() - started:7.1f} s  grading the fixture class:")
    for line in run.stdout.splitlines():
        if " points (" in line:
            report(f"           {line}")
    assert run.returncode == 0, run.stdout + run.stderr
    return out, run.stdout


def test_every_fixture_gets_its_exact_score_per_part(graded_class):
    out, _ = graded_class
    expected = manifest()
    grades = read_grades(out)
    assert set(grades) == set(IN_THE_CLASS)
    maximum = sum(expected["max"].values())
    wrong = {}
    for name in IN_THE_CLASS:
        case = expected["cases"][name]
        row = grades[name]
        got = {part: float(row[part]) for part in expected["max"]}
        if got != {p: float(v) for p, v in case["expected"].items()}:
            wrong[name] = row
        assert float(row["total"]) == sum(got.values())
        assert float(row["max"]) == maximum
        for expected_note in case.get("note", []):
            assert expected_note in row["note"], f"{name}: note {row['note']!r}"
    assert not wrong, f"scores differ from the manifest: {wrong}"


def test_self_checks_fail_where_the_mistake_is_and_the_self_score_is_the_grade(graded_class):
    out, _ = graded_class
    assert_self_checks_agree_with_the_grader(out, IN_THE_CLASS)


def test_manifest_states_every_limit():
    cases = manifest()["cases"]
    assert len(cases) >= 32
    for name, case in cases.items():
        assert case["why"], name
        if not case.get("contained", True):
            assert len(case.get("limit", "")) > 20, f"{name}: say why it is not contained"


def test_nothing_students_receive_holds_hidden_test_code(graded_class):
    """labs/, solutions/ and every feedback file, after grading every fixture."""
    out, _ = graded_class
    hidden = hidden_test_lines()
    assert len(hidden) > 40
    given = [*(REPO / "labs").rglob("*.ipynb"), *(REPO / "solutions").rglob("*.ipynb")]
    records = read_records(out)
    with_feedback = {name for name, record in records.items() if record["feedback"]}
    feedback = sorted((out / LAB / "feedback").glob("*.html"))
    assert {path.stem for path in feedback} == with_feedback
    for path in given:
        leaked = [line for line in hidden if line in path.read_text()]
        assert not leaked, f"{path.name}: hidden test code: {leaked[:2]}"
    for path in feedback:
        leaked = [line for line in hidden if line in feedback_text(out, path.stem)]
        assert not leaked, f"{path.name}: hidden test code: {leaked[:2]}"


def test_the_class_leaves_no_process_and_no_change_behind(graded_class):
    left = sandbox_processes()
    assert not left, f"sandbox processes still running: {left}"
    assert (
        subprocess.run(
            ["git", "status", "--porcelain", "--", "grader", "tlcourse", "labs", "solutions"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        == ""
    )  # the fixtures that try to write to the repository changed nothing


def test_every_graded_student_gets_feedback_without_hidden_tests(graded_class):
    out, _ = graded_class
    for name, record in read_records(out).items():
        if record["status"] == "not graded" or "kernel died" in record["note"]:
            assert not (out / LAB / "feedback" / f"{name}.html").exists()
            continue
        text = feedback_text(out, name)
        assert "Lab: cats vs dogs" in text
        assert "Grade cell: part_e_tests" in text


def test_output_reports_progress_per_student(graded_class):
    _, stdout = graded_class
    for name in IN_THE_CLASS:
        assert f"] {name} ..." in stdout
    assert "Wrote" in stdout


def test_bad_files_get_a_clear_line_and_zero_and_regrading_keeps_others(graded_class, tmp_path):
    out, _ = graded_class
    copy = tmp_path / "graded"
    shutil.copytree(out, copy)
    before = read_grades(copy)
    folder = tmp_path / "resubmitted"
    folder.mkdir()
    (folder / "untrained_head.ipynb").write_text("{ this is not json")
    (folder / "empty.ipynb").write_text("")
    (folder / "essay.docx").write_bytes(b"PK\x03\x04")
    run = grade(folder, copy, *TEST_LIMITS)
    assert run.returncode == 0, run.stderr
    after = read_grades(copy)
    assert "not a valid notebook" in after["untrained_head"]["note"]
    assert "empty" in after["empty"]["note"]
    assert "not a notebook" in after["essay"]["note"]
    for name in ("untrained_head", "empty", "essay"):
        assert float(after[name]["total"]) == 0
        assert f"{name} ... 0 points" in run.stdout
    assert not (copy / LAB / "feedback" / "untrained_head.html").exists()
    for name, row in before.items():  # nobody else lost anything
        if name != "untrained_head":
            assert after[name] == row


def test_grading_twice_gives_the_same_grades_csv(graded_class, tmp_path):
    out, _ = graded_class
    copy = tmp_path / "graded"
    shutil.copytree(out, copy)
    folder = tmp_path / "again"
    build_all(folder, ["extra_cells"])  # (the solution graded by another run: below)
    first = (copy / LAB / "grades.csv").read_text()
    run = grade(folder, copy, *TEST_LIMITS, "--regrade")
    assert run.returncode == 0, run.stderr
    assert "extra_cells ... 1 points" in run.stdout  # graded again, not kept
    assert (copy / LAB / "grades.csv").read_text() == first


def test_a_submission_that_reaches_out_reads_writes_and_connects_to_nothing(graded_class):
    """reach_out walks the whole file system for notebooks with hidden tests and for
    gradebooks, and prints what it could read: nothing of this course, the grader or a
    classmate (only the sample files shipped inside nbgrader's own package); it can write
    to none of them, nor to the repository, only to its own /tmp; it reaches no host."""
    import re

    out, _ = graded_class
    text = feedback_text(out, "reach_out")
    found = re.findall(r"readable: (\S+)", text)
    assert "files with hidden tests or grades found" in text
    outside_nbgrader = [path for path in found if "site-packages/nbgrader/" not in path]
    assert not outside_nbgrader, f"the sandbox let these be read: {outside_nbgrader}"
    assert "notebooks or gradebooks found, writable: []" in text
    assert re.findall(r"^could write in (\S+)", text, re.MULTILINE) == ["/tmp"]
    assert len(re.findall(r"^cannot write in ", text, re.MULTILINE)) == 3
    assert not re.findall(r"^(connected to|downloaded) ", text, re.MULTILINE)
    assert len(re.findall(r"^no (connection to|download from) ", text, re.MULTILINE)) == 3


# ------------------------------------------------------------------------ settings


def test_a_failure_of_the_grader_is_reported_as_such(tmp_path, offline_mirror, monkeypatch):
    """The defect of issue 9, put back on purpose: the kernels are not given the weights the
    grader loaded. The student's kernel reports, before any student cell, that it lacks
    them; the run says it is the grader's problem, the student gets no feedback blaming them
    and no grade to import, and the next run grades them again."""
    from grader import kernel_data, run

    prepared = kernel_data.prepare_kernel_data

    def without_weights(folder, master, holdout):
        data = prepared(folder, master, holdout)
        for link in (data.mirror / "keras" / "models").iterdir():
            link.unlink()
        return data

    monkeypatch.setattr(kernel_data, "prepare_kernel_data", without_weights)
    monkeypatch.setattr("grader.grading.prepare_kernel_data", without_weights)
    folder = tmp_path / "subs"
    build_all(folder, ["untouched"])  # any notebook: the kernel fails before its cells
    out = tmp_path / "out"
    lines = []
    records = run.grade(folder, out, log=lambda *a, **k: lines.append(" ".join(map(str, a))))
    assert [record.status for record in records] == ["grader problem"]
    row = read_grades(out)["untouched"]
    assert row["total"] == "" and row["note"].startswith("GRADER PROBLEM, not the student's")
    assert "lacks what the grader gives it" in row["note"] and "mobilenet_v2" in row["note"]
    assert (out / LAB / "lms_grades.csv").read_text() == "student_id,total,max\n"
    assert not (out / LAB / "feedback" / "untouched.html").exists()
    assert any(line.startswith("GRADER PROBLEM: 1 student") for line in lines)
    monkeypatch.undo()
    lines.clear()
    again = run.grade(folder, out, log=lambda *a, **k: lines.append(" ".join(map(str, a))))
    assert [record.status for record in again] == ["graded"]  # not kept: graded again
    assert read_grades(out)["untouched"]["note"] == ""  # graded now: 0, as the lab is untouched


def test_a_clean_kernel_that_lacks_what_it_is_given_is_the_graders_problem(
    tmp_path, offline_mirror, monkeypatch
):
    """The clean kernel's readiness check fails (here: on purpose, as if the held-out photos
    could not be read): the student is set aside with the kernel's own error, not scored."""
    from grader import run
    from grader.kernel_data import KernelData

    def unreadable(self):
        return "raise PermissionError('holdout/cats/1.jpg cannot be read')"

    monkeypatch.setattr(KernelData, "check_ready_check", unreadable)
    folder = tmp_path / "subs"
    build_all(folder, ["extra_cells"])  # Part A answered: the clean kernel checks it
    records = run.grade(folder, tmp_path / "out", log=lambda *a, **k: None)
    assert [record.status for record in records] == ["grader problem"]
    note = read_grades(tmp_path / "out")["extra_cells"]["note"]
    assert "the clean kernel lacks what the grader gives it" in note
    assert "PermissionError: holdout/cats/1.jpg cannot be read" in note


def test_nbgrader_autograde_refuses_and_points_to_the_grader(tmp_path, offline_mirror):
    """An instructor presses the formgrader's autograde button, or types ``nbgrader
    autograde``: the repository's nbgrader settings refuse, and no part gets a point."""
    from nbgrader.api import Gradebook

    from grader.config import COURSE_ID, REPO
    from grader.master import SOURCE

    MASTER = SOURCE / "cats_vs_dogs" / "cats_vs_dogs.ipynb"

    source = tmp_path / "grader" / "source" / "cats_vs_dogs" / MASTER.name
    source.parent.mkdir(parents=True)
    source.write_bytes(MASTER.read_bytes())
    submitted = tmp_path / "submitted" / "alice" / "cats_vs_dogs"
    build_all(submitted, ["untrained_head"])[0].rename(submitted / MASTER.name)
    env = {
        "PATH": f"{Path(__import__('sys').executable).parent}:/usr/bin:/bin",  # nbgrader's own
        "HOME": str(tmp_path),
        "COURSE_GRADEBOOK": str(tmp_path / "gradebook.db"),
    }
    root = [f"--CourseDirectory.root={tmp_path}"]
    made = run_as_user(["-m", "nbgrader", "generate_assignment", "cats_vs_dogs", *root], env, REPO)
    assert made.returncode == 0, made.stdout + made.stderr
    run = run_as_user(["-m", "nbgrader", "autograde", "cats_vs_dogs", *root], env, REPO)
    assert run.returncode != 0
    assert "python -m grader grade" in run.stdout + run.stderr
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}", COURSE_ID) as gb:
        scores = [submission.score for submission in gb.assignment_submissions("cats_vs_dogs")]
    assert all(score == 0 for score in scores), scores


# One student at a time, two at a time (the fixture class above: the default here) and on a
# Dask cluster: the same grades, notes and feedback, on fixtures that pass, fail, are lowered
# by the clean kernel, crash the kernel and cannot be read. (The cell time limit, two at a time: the class's infinite_loop.)
PARALLEL_SET = [
    "solution",
    "near_miss_validation_93",
    "untouched",
    "os_exit_in_cell",
    "input_transformer",
    "not_json",
]


def assert_as_graded_in_the_class(out: Path, graded: Path, names: list[str]) -> None:
    assert read_grades(out) == {name: read_grades(graded)[name] for name in names}
    for name in names:
        assert (out / LAB / "feedback" / f"{name}.html").exists() == (
            graded / LAB / "feedback" / f"{name}.html"
        ).exists()
    assert not list((out / LAB / "records").glob("*.partial"))


def progress_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("[")]


def test_interrupted_twice_then_resumed_gives_the_grades_of_the_class(
    graded_class, tmp_path, report
):
    """Two students at a time, stopped by SIGTERM once the first is recorded (every worker
    and kernel ends, nothing half-written stays); resumed one at a time and killed by SIGKILL
    (the out-of-memory killer, a closed session) while the next student's kernels run (none
    outlives the grader); resumed one at a time to the end: every student kept is kept as it
    was, one row each, and the grades, notes and feedback are the class's, graded two at a
    time by another run."""
    in_class, _ = graded_class
    folder, out = tmp_path / "subs", tmp_path / "out"
    build_all(folder, PARALLEL_SET)
    command = ["-m", "grader", "grade", folder, "--out", out, *TEST_LIMITS, "--jobs"]
    env = user_environment(COURSE_OFFLINE_DIR=os.environ.get("COURSE_OFFLINE_DIR", ""))

    def start(jobs: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, *map(str, command), jobs],
            env=env,
            cwd=SESSION_DIR,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def recorded() -> dict:
        return read_records(out) if (out / LAB / "records").exists() else {}

    first = start("2")
    wait_until(lambda: len(recorded()) >= 2 or first.poll() is not None, 600, "two records")
    assert first.poll() is None, "the grader finished before it could be stopped"
    first.send_signal(signal.SIGTERM)  # not_json is recorded at once; then the first student
    assert first.wait(timeout=60) == 130  # stopped there: "interrupted; run the same command"
    stopped = recorded()
    assert len(stopped) < len(PARALLEL_SET)
    assert not sandbox_processes(), "student kernels outlived the stopped workers"
    assert not list((out / LAB / "records").glob("*.partial"))

    second = start("1")
    wait_until(lambda: len(recorded()) > len(stopped) or second.poll() is not None, 600, "a record")
    assert second.poll() is None, "the grader finished before it could be killed"
    written = max(path.stat().st_mtime for path in (out / LAB / "records").glob("*.json"))

    def next_student_runs() -> bool:  # a kernel started after that record has loaded TF
        kernels = [int(pid) for pid in sandbox_processes(0)]
        return second.poll() is not None or any(
            started_after(pid, written) and has_loaded(pid, "tensorflow") for pid in kernels
        )

    wait_until(next_student_runs, 600, "the next student's kernel to load TensorFlow")
    assert second.poll() is None, "the grader finished before it could be killed"
    second.kill()
    second.wait(timeout=60)
    killed = recorded()
    assert not sandbox_processes(), "student kernels outlived the killed grader"
    assert not list((out / LAB / "records").glob("*.partial"))
    assert {name: killed[name] for name in stopped} == stopped

    started = time.perf_counter()
    run = run_as_user([*command, "1"], env=env)
    report(
        f"{time.perf_counter() - started:7.1f} s  {len(PARALLEL_SET)} fixtures resumed, --jobs 1,"
        f" after SIGTERM ({len(stopped)} kept) and SIGKILL ({len(killed)} kept)"
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 at a time" in run.stdout
    for name in killed:
        assert f"{name} ... already graded, kept" in run.stdout
    assert {name: read_records(out)[name] for name in killed} == killed
    assert_as_graded_in_the_class(out, in_class, PARALLEL_SET)
    with open(out / LAB / "grades.csv", newline="") as handle:
        assert sorted(row[0] for row in list(csv.reader(handle))[1:]) == sorted(PARALLEL_SET)
    lines = progress_lines(run.stdout)  # one line per student, counted in finishing order
    count = len(PARALLEL_SET)
    assert [line.split("/")[0] for line in lines] == [f"[{n}" for n in range(1, count + 1)]
    assert sorted(line.split("] ")[1].split(" ...")[0] for line in lines) == sorted(PARALLEL_SET)
    assert any(line.endswith("left]") for line in lines)


@pytest.fixture
def dask_cluster(tmp_path):
    """A Dask scheduler and two workers on this machine (loopback only), started from a
    shell as the README shows; the workers see what an instructor's shell gives them."""
    from distributed import Client

    file = tmp_path / "scheduler.json"
    env = user_environment(COURSE_OFFLINE_DIR=os.environ.get("COURSE_OFFLINE_DIR", ""))
    quiet = subprocess.DEVNULL
    common = {"env": env, "cwd": SESSION_DIR, "stdout": quiet, "stderr": quiet}
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0"]
        + ["--no-dashboard", "--scheduler-file", str(file)],
        **common,
    )
    workers = []
    try:
        deadline = time.monotonic() + 60
        while not file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(file.read_text())["address"]
        for name in ("w1", "w2"):
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "dask", "worker", address, "--name", name]
                    + ["--nthreads", "1", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1"],
                    **{**common, "stderr": (tmp_path / f"{name}.log").open("wb")},
                )
            )
        with Client(address, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=120)
        yield address, workers
    finally:
        for process in [*workers, scheduler]:
            process.kill()
            process.wait()


def sandbox_lines(folder: Path) -> str:
    """What the sandboxes of the workers said on their stderr (kept in the workers' logs)."""
    lines = []
    for log in sorted(folder.glob("w*.log")):
        text = log.read_text(errors="replace")
        lines += [
            f"{log.stem}: {line}"
            for line in text.splitlines()
            if "[sandbox]" in line or "bwrap" in line
        ]
    return "\n".join(["", "workers' sandbox lines:", *lines[-20:]])


def test_a_dask_cluster_gives_the_grades_of_the_class_even_when_a_worker_is_killed(
    graded_class, dask_cluster, tmp_path
):
    """On a Dask cluster, one worker is killed while it grades: no half-written record; the
    student it was grading is graded (again, by the other worker or by the next run); the
    rerun completes with the grades, notes and feedback of the class graded here."""
    import psutil

    in_class, _ = graded_class
    address, workers = dask_cluster
    names = ["solution", "untrained_head", "os_exit_in_cell"]
    folder, out = tmp_path / "subs", tmp_path / "out"
    build_all(folder, names)
    command = [sys.executable, "-m", "grader", "grade", folder, "--out", out, *TEST_LIMITS]
    env = user_environment(COURSE_OFFLINE_DIR=os.environ.get("COURSE_OFFLINE_DIR", ""))
    first = subprocess.Popen(
        [*map(str, command), "--scheduler", address],
        env=env,
        cwd=SESSION_DIR,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    victim = psutil.Process(workers[0].pid)

    def grading() -> bool:  # a sandboxed kernel under the worker has loaded TensorFlow
        kernels = [p.pid for p in victim.children(recursive=True) if sandboxed(p.pid)]
        return any(has_loaded(pid, "tensorflow") for pid in kernels)

    wait_until(grading, 300, "the worker's student kernel to load TensorFlow", every=0.5)
    victim.kill()
    stdout, _ = first.communicate(timeout=1200)
    assert first.returncode == 0, stdout + sandbox_lines(tmp_path)
    assert f"on the Dask cluster at {address}" in stdout
    for record in read_records(out).values():  # whatever was written is whole
        assert record["status"] == "graded" and (out / LAB / record["feedback"]).exists()
    assert not list((out / LAB / "records").glob("*.partial"))
    assert not sandbox_processes()
    again = grade(folder, out, *TEST_LIMITS, "--scheduler", address)
    assert again.returncode == 0, again.stdout + again.stderr
    assert_as_graded_in_the_class(out, in_class, names)
