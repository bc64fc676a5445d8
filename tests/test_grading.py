"""The class grader on real data: exact scores for every fixture submission."""

import csv
import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from grader.config import REPO
from grader.sandbox import UID_BASE, UID_COUNT
from tests.master_text import hidden_test_lines
from tests.submissions.build import build_all, manifest

pytestmark = pytest.mark.slow


# Limits for the tests: long enough for the solution's slowest cell (about 30 s here), short
# enough that the fixtures which loop or sleep for ever cost little.
TEST_LIMITS = ("--cell-timeout", "90", "--notebook-timeout", "1200")


def grade_command(submissions, out, *extra) -> list[str]:
    """The real grading command, as an instructor would type it."""
    return [
        sys.executable,
        "-m",
        "grader",
        "grade",
        str(submissions),
        "--out",
        str(out),
        *TEST_LIMITS,
        *map(str, extra),
    ]


def grade(submissions, out, *extra) -> subprocess.CompletedProcess:
    """Run the real grading command and wait for it."""
    return subprocess.run(
        grade_command(submissions, out, *extra),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )


def sandbox_processes(seconds: float = 15) -> list[str]:
    """Sandbox processes started by this test session's graders (their environment names
    this session's cache), once ``seconds`` have passed or none is left."""
    marker = f"COURSE_CACHE_DIR={os.environ['COURSE_CACHE_DIR']}".encode()
    deadline = time.monotonic() + seconds
    while True:
        left = []
        for entry in Path("/proc").iterdir():
            try:
                ours = (
                    entry.name.isdigit() and UID_BASE <= entry.stat().st_uid < UID_BASE + UID_COUNT
                )
                if ours and marker in (entry / "environ").read_bytes().split(b"\0"):
                    left.append(entry.name)
            except OSError:
                pass
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


def read_grades(out) -> dict[str, dict[str, str]]:
    with open(out / "grades.csv", newline="") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory, offline_mirror, report):
    folder = tmp_path_factory.mktemp("submissions")
    build_all(folder)
    out = tmp_path_factory.mktemp("graded")
    started = time.perf_counter()
    run = grade(folder, out)
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
    assert set(grades) == set(expected["cases"])
    maximum = sum(expected["max"].values())
    wrong = {}
    for name, case in expected["cases"].items():
        row = grades[name]
        got = {part: float(row[part]) for part in expected["max"]}
        if got != {p: float(v) for p, v in case["expected"].items()}:
            wrong[name] = row
        assert float(row["total"]) == sum(got.values())
        assert float(row["max"]) == maximum
        assert case.get("note", "") in row["note"], f"{name}: note {row['note']!r}"
    assert not wrong, f"scores differ from the manifest: {wrong}"


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
    feedback = sorted((out / "feedback").glob("*.html"))
    rejected = json.loads((out / "rejected.json").read_text())
    assert len(feedback) == len(manifest()["cases"]) - len(rejected)
    given += feedback
    for path in given:
        text = path.read_text()
        if path.suffix == ".html":
            text = html.unescape(re.sub(r"<[^>]+>", "", text))
        leaked = [line for line in hidden if line in text]
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
    hidden = hidden_test_lines()
    rejected = json.loads((out / "rejected.json").read_text())  # not graded, or crashed
    for name in read_grades(out):
        if name in rejected:
            assert not (out / "feedback" / f"{name}.html").exists()
            continue
        text = html.unescape(
            re.sub(r"<[^>]+>", "", (out / "feedback" / f"{name}.html").read_text())
        )
        assert "Lab: cats vs dogs" in text
        assert "Grade cell: part_e_tests" in text
        leaked = [line for line in hidden if line in text]
        assert not leaked, f"{name}: hidden test code in feedback: {leaked[:2]}"


def test_output_reports_progress_per_student(graded_class):
    _, stdout = graded_class
    for number, name in enumerate(sorted(manifest()["cases"]), 1):
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
    other = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Another lab")])
    nbformat.write(other, folder / "other_lab.ipynb")
    run = grade(folder, copy)
    assert run.returncode == 0, run.stderr
    after = read_grades(copy)
    assert "not a valid notebook" in after["untrained_head"]["note"]
    assert "empty" in after["empty"]["note"]
    assert "not a notebook" in after["essay"]["note"]
    assert "not the cats_vs_dogs lab" in after["other_lab"]["note"]
    for name in ("untrained_head", "empty", "essay", "other_lab"):
        assert float(after[name]["total"]) == 0
        assert f"{name} ... 0 points" in run.stdout
    assert not (copy / "feedback" / "untrained_head.html").exists()
    for name, row in before.items():  # nobody else lost anything
        if name != "untrained_head":
            assert after[name] == row


def test_grading_twice_gives_the_same_grades_csv(graded_class, tmp_path):
    out, _ = graded_class
    copy = tmp_path / "graded"
    shutil.copytree(out, copy)
    folder = tmp_path / "again"
    build_all(folder, ["untouched"])
    first = (copy / "grades.csv").read_text()
    run = grade(folder, copy, "--regrade")
    assert run.returncode == 0, run.stderr
    assert "untouched ... 0 points" in run.stdout  # graded again, not kept
    assert (copy / "grades.csv").read_text() == first


def test_missing_submissions_folder_and_bad_holdout_are_explained(tmp_path, offline_mirror):
    run = grade(tmp_path / "nowhere", tmp_path / "out")
    assert run.returncode != 0 and "is not a folder of submissions" in run.stderr
    (tmp_path / "subs").mkdir()
    (tmp_path / "subs" / "a.ipynb").write_text("{}")
    (tmp_path / "holdout").mkdir()
    run = grade(tmp_path / "subs", tmp_path / "out", "--holdout", tmp_path / "holdout")
    assert run.returncode == 2 and "missing: cats, dogs" in run.stderr


def test_nbgrader_layout_is_accepted(tmp_path, offline_mirror):
    nested = tmp_path / "submitted" / "s1" / "cats_vs_dogs"
    nested.mkdir(parents=True)
    (nested / "cats_vs_dogs.ipynb").write_text("not a notebook")
    run = grade(tmp_path, tmp_path / "out")
    assert run.returncode == 0, run.stderr
    assert json.loads((tmp_path / "out" / "rejected.json").read_text()).keys() == {"s1"}
    assert read_grades(tmp_path / "out")["s1"]["total"] == "0"


def test_without_the_sandbox_grading_still_works_and_says_so(tmp_path, offline_mirror):
    """--no-sandbox (for trusted notebooks on a machine without root) runs plain kernels."""
    folder = tmp_path / "subs"
    build_all(folder, ["untouched"])
    run = grade(folder, tmp_path / "out", "--no-sandbox")
    assert run.returncode == 0, run.stderr
    assert "NOT sandboxed: trusted notebooks only" in run.stdout
    assert read_grades(tmp_path / "out")["untouched"]["total"] == "0"
    assert (tmp_path / "out" / "feedback" / "untouched.html").exists()


def test_a_submission_that_searches_the_disk_finds_no_tests_or_grades(graded_class):
    """reach_read_files walks the whole file system for notebooks with hidden tests and for
    gradebooks, and prints what it could read: nothing of this course, the grader or a
    classmate (only the sample files shipped inside nbgrader's own package)."""
    out, _ = graded_class
    text = html.unescape(
        re.sub(r"<[^>]+>", "", (out / "feedback" / "reach_read_files.html").read_text())
    )
    found = re.findall(r"readable: (\S+)", text)
    assert "files with hidden tests or grades found" in text
    outside_nbgrader = [path for path in found if "site-packages/nbgrader/" not in path]
    assert not outside_nbgrader, f"the sandbox let these be read: {outside_nbgrader}"
