"""Lab 2 (fine_tuning) graded as an instructor grades it (make test-all): every fixture of
tests/submissions/fine_tuning/ with its exact score per part, by the README's command with
its default settings, in one folder with a notebook of lab 1: one command, two labs.
"""

from __future__ import annotations

import csv
import html
import re
import time

import pytest

from tests.master_text import MASTERS, hidden_test_lines
from tests.submissions.build import build_all, build_one, manifest
from tests.test_grading import assert_self_checks_agree_with_the_grader, grade

pytestmark = pytest.mark.slow

LAB2 = "fine_tuning"
CASES = manifest(LAB2)["cases"]


def feedback_text(out, lab: str, student: str) -> str:
    page = (out / lab / "feedback" / f"{student}.html").read_text()
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def read_grades(out, lab: str) -> dict[str, dict[str, str]]:
    with open(out / lab / "grades.csv", newline="") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def graded_lab2(tmp_path_factory, offline_mirror, report):
    folder = tmp_path_factory.mktemp("lab2")
    build_all(folder, list(CASES), lab=LAB2)
    lab1 = build_one("untouched", tmp_path_factory.mktemp("lab1"))  # lab 1's, as released
    lab1.rename(folder / "lab1_untouched.ipynb")
    out = tmp_path_factory.mktemp("graded")
    started = time.perf_counter()
    run = grade(folder, out)  # the README's command, its default settings
    report(f"{time.perf_counter() - started:7.1f} s  grading lab 2's fixture class (and a lab 1):")
    for line in run.stdout.splitlines():
        if " points (" in line:
            report(f"           {line}")
    assert run.returncode == 0, run.stdout + run.stderr
    return out, run.stdout


def test_every_lab2_fixture_gets_its_exact_score_per_part(graded_lab2):
    out, _ = graded_lab2
    expected = manifest(LAB2)
    grades = read_grades(out, LAB2)
    assert set(grades) == set(CASES)
    wrong = {}
    for name, case in CASES.items():
        row = grades[name]
        got = {part: float(row[part]) for part in expected["max"]}
        if got != {p: float(v) for p, v in case["expected"].items()}:
            wrong[name] = row
        assert float(row["max"]) == sum(expected["max"].values())
        for expected_note in case.get("note", []):
            assert expected_note in row["note"], f"{name}: note {row['note']!r}"
    assert not wrong, f"scores differ from the manifest: {wrong}"


def test_lab2_self_checks_fail_where_the_mistake_is_and_the_self_score_is_the_grade(graded_lab2):
    out, _ = graded_lab2
    assert_self_checks_agree_with_the_grader(out, list(CASES), LAB2)


def test_lab2_fixtures_cover_what_the_issue_asks(graded_lab2):
    assert len(CASES) >= 15
    assert all(case["why"] for case in CASES.values())
    full = sum(manifest(LAB2)["max"].values())
    assert sum(CASES["solution"]["expected"].values()) == full
    assert sum(CASES["untouched"]["expected"].values()) == 0


def test_one_command_grades_each_lab_into_its_own_importable_reports(graded_lab2):
    out, stdout = graded_lab2
    assert "submission(s) of cats_vs_dogs into" in stdout and "of fine_tuning into" in stdout
    lab1 = read_grades(out, "cats_vs_dogs")
    assert list(lab1) == ["lab1_untouched"] and lab1["lab1_untouched"]["total"] == "0"
    for lab in ("cats_vs_dogs", LAB2):
        lines = (out / lab / "lms_grades.csv").read_text().splitlines()
        assert lines[0] == "student_id,total,max" and len(lines) == 1 + len(read_grades(out, lab))


def test_lab2_feedback_names_its_parts_and_holds_no_hidden_test(graded_lab2):
    out, _ = graded_lab2
    hidden = hidden_test_lines([m for m in MASTERS if m.parent.name == LAB2])
    assert len(hidden) > 10
    text = feedback_text(out, LAB2, "solution")
    total = sum(manifest(LAB2)["max"].values())
    assert f"{LAB2}: {total:g} of {total:g} points" in text and "Part E" in text
    for path in (out / LAB2 / "feedback").glob("*.html"):
        leaked = [line for line in hidden if line in feedback_text(out, LAB2, path.stem)]
        assert not leaked, f"{path.name}: hidden test code: {leaked[:2]}"
