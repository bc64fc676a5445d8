"""The class grader on real data: exact scores for every fixture submission."""

import csv
import html
import json
import re
import shutil
import subprocess
import sys
import time

import nbformat
import pytest

from grader.config import REPO
from tests.master_text import hidden_test_lines
from tests.submissions.build import build_all, manifest

pytestmark = pytest.mark.slow


def grade(submissions, out, *extra) -> subprocess.CompletedProcess:
    """Run the real grading command, as an instructor would."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "grader",
            "grade",
            str(submissions),
            "--out",
            str(out),
            *map(str, extra),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )


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
    for name, case in expected["cases"].items():
        row = grades[name]
        got = {part: float(row[part]) for part in expected["max"]}
        assert got == {p: float(v) for p, v in case["expected"].items()}, f"{name}: {row}"
        assert float(row["total"]) == sum(case["expected"].values())
        assert float(row["max"]) == maximum


def test_every_graded_student_gets_feedback_without_hidden_tests(graded_class):
    out, _ = graded_class
    hidden = hidden_test_lines()
    for name in manifest()["cases"]:
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
    assert grade(folder, copy).returncode == 0
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
